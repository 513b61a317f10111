"""``airflow-ecs wake``, ``sleep``, ``status`` under office hours, and the pre-deploy check of a
database office hours stopped, against moto (ECS, RDS, Application Auto Scaling, CloudFormation).

The deployment's scalable targets and scheduled actions are those ``constructs_lib/scaling.py``
makes (see ``conftest._office_hours``); moto is strict where it matters here: RDS refuses to stop
an instance that is not available and to start one that is not stopped (InvalidDBInstanceState),
and Application Auto Scaling refuses a target whose ECS service does not exist.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto.backends import get_backend

from airflow_ecs_ops.cli import cli
from airflow_ecs_ops.office_hours import cron_fields, next_fire

from .conftest import ACCOUNT, AWAKE_COUNTS, CLUSTER, DATABASE, REGION, SERVICES, make_deployment

BERLIN = "Europe/Berlin"


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, input=input)


def targets() -> dict[str, tuple[int, int]]:
    """component -> (min, max) of its scalable target."""
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    by_id = {f"service/{CLUSTER}/{name}": c for c, name in SERVICES.items()}
    return {
        by_id[t["ResourceId"]]: (t["MinCapacity"], t["MaxCapacity"])
        for t in scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    }


def desired() -> dict[str, int]:
    ecs = boto3.client("ecs", region_name=REGION)
    services = ecs.describe_services(cluster=CLUSTER, services=list(SERVICES.values()))["services"]
    names = {v: k for k, v in SERVICES.items()}
    return {names[s["serviceName"]]: s["desiredCount"] for s in services}


def db_status() -> str:
    rds = boto3.client("rds", region_name=REGION)
    return rds.describe_db_instances(DBInstanceIdentifier=DATABASE)["DBInstances"][0]["DBInstanceStatus"]


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


class TestCron:
    @pytest.mark.parametrize(
        "aws, fields",
        [
            ("cron(0 8 ? * MON-FRI *)", "0 8 ? * MON-FRI"),
            ("cron(30 7 ? * 2-6 *)", "30 7 ? * 1-5"),
            ("cron(0 6 ? * 6#3 *)", "0 6 ? * 5#3"),
            ("cron(0 6 L * ? *)", "0 6 L * ?"),
            ("cron(0 6 ? * 1,7 *)", "0 6 ? * 0,6"),
            ("cron(0 6 15W * ? *)", None),
            ("cron(0 6 ? * 6L *)", None),
            ("cron(0 6 ? * MON 2027)", None),
            ("rate(1 hour)", None),
        ],
    )
    def test_aws_cron_becomes_five_cron_fields(self, aws, fields):
        assert cron_fields(aws) == fields

    def test_next_start_follows_the_time_zone(self):
        friday_evening = dt.datetime(2026, 12, 4, 19, 0, tzinfo=dt.timezone.utc)
        when = next_fire("cron(0 8 ? * MON-FRI *)", BERLIN, friday_evening)
        assert when.isoformat() == "2026-12-07T08:00:00+01:00"

    def test_an_unknown_time_zone_gives_no_time(self):
        assert next_fire("cron(0 8 ? * MON-FRI *)", "Europe/Atlantis", dt.datetime.now(dt.timezone.utc)) is None


class TestSleepAndWake:
    def test_sleep_stops_every_service_then_the_database(self, moto_aws):
        make_deployment(office_hours="environment")

        result = invoke("sleep")

        assert result.exit_code == 0, result.output
        assert targets() == {c: (0, 0) for c in SERVICES}
        assert desired() == {c: 0 for c in SERVICES}
        assert db_status() == "stopped"
        assert "office hours: asleep until " in result.stdout and "(cron(0 8 ? * MON-FRI *))" in result.stdout

    def test_wake_starts_the_database_and_returns_the_services_to_their_counts(self, moto_aws):
        make_deployment(office_hours="environment")
        assert invoke("sleep").exit_code == 0

        result = invoke("wake", "--wait")

        assert result.exit_code == 0, result.output
        assert db_status() == "available"
        assert targets() == {c: (n, n) for c, n in AWAKE_COUNTS.items()}
        assert desired() == AWAKE_COUNTS

    def test_status_says_asleep_and_until_when_then_awake(self, moto_aws):
        make_deployment(office_hours="environment")
        invoke("sleep")

        asleep = invoke("status")
        assert asleep.exit_code == 0, asleep.output
        assert "office hours: asleep until " in asleep.stdout and f"08:00 {BERLIN}" in asleep.stdout
        assert f"database {DATABASE}: stopped" in asleep.stdout

        invoke("wake")
        awake = invoke("status")
        assert "office hours: awake until " in awake.stdout and f"18:00 {BERLIN}" in awake.stdout

    def test_status_without_office_hours_says_always_on(self, moto_aws):
        make_deployment()
        result = invoke("status")
        assert result.exit_code == 0, result.output
        assert "office hours: none (always on)" in result.stdout

    def test_ui_scope_sleeps_the_api_server_only_and_keeps_the_database(self, moto_aws):
        make_deployment(office_hours="ui")

        assert invoke("sleep").exit_code == 0

        assert targets() == {"api-server": (0, 0)}
        assert desired() == {"scheduler": 1, "api-server": 0, "dag-processor": 1, "triggerer": 1}
        assert db_status() == "available"

    def test_sleep_twice_and_wake_twice_are_harmless(self, moto_aws):
        make_deployment(office_hours="environment")
        assert invoke("sleep").exit_code == 0
        again = invoke("sleep")
        assert again.exit_code == 0 and "already stopped" in again.stdout
        assert invoke("wake").exit_code == 0
        assert invoke("wake").exit_code == 0
        assert db_status() == "available" and desired() == AWAKE_COUNTS


class TestBadInput:
    @pytest.mark.parametrize("command", ["wake", "sleep"])
    def test_without_office_hours_names_the_key(self, moto_aws, command):
        make_deployment()
        error = one_line_error(invoke(command))
        assert "office_hours_scope=environment" in error

    @pytest.mark.parametrize("command", ["wake", "sleep", "status"])
    def test_an_unknown_stage_names_the_stacks_looked_for(self, moto_aws, command):
        make_deployment(office_hours="environment")
        error = one_line_error(invoke("--stage", "staging", command))
        assert "stage 'staging'" in error and "airflow-staging-cluster" in error

    @pytest.mark.parametrize("command", ["wake", "sleep", "status", "preflight"])
    def test_aws_unreachable_is_one_line(self, aws_env, monkeypatch, command):
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        error = one_line_error(invoke(command))
        assert "Cannot reach AWS" in error

    def test_wake_while_the_database_is_still_stopping_says_wait(self, moto_aws):
        make_deployment(office_hours="environment")
        invoke("sleep")
        get_backend("rds")[ACCOUNT][REGION].databases[DATABASE].status = "stopping"
        error = one_line_error(invoke("wake"))
        assert "still stopping" in error and "try again" in error

    def test_sleep_while_the_database_is_busy_says_wait(self, moto_aws):
        make_deployment(office_hours="environment")
        get_backend("rds")[ACCOUNT][REGION].databases[DATABASE].status = "backing-up"
        error = one_line_error(invoke("sleep"))
        assert "backing-up" in error
        assert targets() == {c: (n, n) for c, n in AWAKE_COUNTS.items()}, "nothing changed"


# The pre-deploy check --------------------------------------------------------------------------

DB_PROPERTIES = {
    "Engine": "postgres",
    "DBInstanceClass": "db.t4g.micro",
    "AllocatedStorage": "20",
    "MasterUsername": "airflow",
    "MasterUserPassword": "secret-password",
}


def database_template(**changes) -> dict:
    return {
        "Resources": {"MetadataDb": {"Type": "AWS::RDS::DBInstance", "Properties": {**DB_PROPERTIES, **changes}}},
        "Outputs": {"DatabaseInstanceIdentifier": {"Value": {"Ref": "MetadataDb"}}},
    }


def deploy_database_stack() -> str:
    """The database stack with its RDS instance (moto creates it from the template)."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName="airflow-dev-database", TemplateBody=json.dumps(database_template()))
    [stack] = cfn.describe_stacks(StackName="airflow-dev-database")["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["DatabaseInstanceIdentifier"]


def write_assembly(directory: Path, template: dict) -> Path:
    directory.mkdir()
    (directory / "Database.template.json").write_text(json.dumps(template))
    (directory / "manifest.json").write_text(json.dumps({"artifacts": {"Database": {
        "type": "aws:cloudformation:stack",
        "properties": {"templateFile": "Database.template.json", "stackName": "airflow-dev-database"},
    }}}))
    return directory


class TestPreflight:
    def setup_db(self, tmp_path, **changes):
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="CDKToolkit", TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
        )
        make_deployment(office_hours="environment", missing_roles=("database",))
        identifier = deploy_database_stack()
        rds = boto3.client("rds", region_name=REGION)
        rds.stop_db_instance(DBInstanceIdentifier=identifier)
        return identifier, write_assembly(tmp_path / "cdk.out", database_template(**changes))

    def test_a_change_to_the_stopped_database_is_refused_before_the_deploy(self, moto_aws, tmp_path):
        identifier, assembly = self.setup_db(tmp_path, DBInstanceClass="db.t4g.small", MultiAZ=True)

        error = one_line_error(invoke("preflight", "--assembly", str(assembly)))

        assert f"The database {identifier} is stopped" in error
        assert "MetadataDb: DBInstanceClass, MultiAZ" in error
        assert "InvalidDBInstanceState" in error and "airflow-ecs wake --wait" in error

    def test_a_deploy_that_leaves_the_database_alone_passes_and_stays_asleep(self, moto_aws, tmp_path):
        identifier, assembly = self.setup_db(tmp_path)

        result = invoke("preflight", "--assembly", str(assembly))

        assert result.exit_code == 0, result.output
        assert f"database {identifier} is stopped (asleep): this deploy does not change it" in result.stdout
        rds = boto3.client("rds", region_name=REGION)
        assert rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"] == "stopped"

    def test_wake_on_request_then_the_deploy_goes_on(self, moto_aws, tmp_path):
        identifier, assembly = self.setup_db(tmp_path, DBInstanceClass="db.t4g.small")
        # The scalable targets office hours made: the database stack's output names the instance.
        invoke("sleep")  # services to 0/0 (the database is already stopped)

        result = invoke("preflight", "--assembly", str(assembly), "--wake")

        assert result.exit_code == 0, result.output
        rds = boto3.client("rds", region_name=REGION)
        assert rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"] == "available"
        assert desired() == AWAKE_COUNTS
        assert "airflow-ecs sleep puts it back to sleep" in result.stdout

    def test_a_first_deploy_has_no_database_to_check(self, moto_aws, tmp_path):
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="CDKToolkit", TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
        )
        result = invoke("preflight", "--assembly", str(write_assembly(tmp_path / "cdk.out", database_template())))
        assert result.exit_code == 0, result.output

    def test_an_awake_database_takes_any_change(self, moto_aws, tmp_path):
        identifier, assembly = self.setup_db(tmp_path, DBInstanceClass="db.t4g.small")
        boto3.client("rds", region_name=REGION).start_db_instance(DBInstanceIdentifier=identifier)
        assert invoke("preflight", "--assembly", str(assembly)).exit_code == 0

    def test_no_assembly_at_the_path_says_run_make_synth(self, moto_aws, tmp_path):
        self.setup_db(tmp_path)
        error = one_line_error(invoke("preflight", "--assembly", str(tmp_path / "nowhere")))
        assert "make synth" in error
