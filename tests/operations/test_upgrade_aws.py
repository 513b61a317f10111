"""The AWS upgrade target (``airflow_ecs_ops.upgrade_aws``) and ``airflow-ecs upgrade`` /
``rollback`` against moto (ECS, CloudWatch Logs, RDS, Application Auto Scaling, CloudFormation).

moto is made as strict as AWS where the target relies on it (beyond ``conftest``'s):
- RunTask refuses an INACTIVE (deregistered) task definition (AWS: ClientException "TaskDefinition
  is inactive"); moto runs it. CloudFormation deregisters a service's old revision when a deploy
  replaces it, so a one-off task after the deploy must use the service's new one.
- moto's tasks never stop and report no exit code: a fake Fargate (:class:`FakeFargate`) stops each
  one-off task with the exit code and log lines the test scripts (the command's effect on the
  database's schema revision included).
- ``cdk deploy`` cannot run against moto: :class:`FakeCloudFormation` does what CloudFormation does
  to the services: registers new task definition revisions, updates each service with the
  template's ``DesiredCount`` (when it has one) and deregisters the old revisions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto.backends import get_backend
from moto.ecs.exceptions import EcsClientException
from moto.rds.exceptions import InvalidParameterValue
from moto.ecs.models import EC2ContainerServiceBackend

from airflow_ecs_ops import tasks, upgrade_aws
from airflow_ecs_ops.cli import cli
from airflow_ecs_ops.deployment import find_deployment
from airflow_ecs_ops.upgrade import Commands, UpgradeError, plan_rollback, plan_upgrade, rollback, upgrade
from airflow_ecs_ops.upgrade_aws import AwsUpgradeTarget, pinned_assembly

from .conftest import ACCOUNT, CLUSTER, DATABASE, REGION, SERVICES, make_deployment

OLD_REV, NEW_REV = "1d6611b6ab7c", "d2f4e1b3c5a7"
HEADS = {"3.2.0": OLD_REV, "3.3.0": NEW_REV}
SNAPSHOT = "airflow-dev-airflow-3-2-2-to-3-3-2-20261207-013000"
LOGICAL_IDS = {"scheduler": "SchedulerService1", "api-server": "ApiServerService1",
               "dag-processor": "DagProcessorService1", "triggerer": "TriggererService1"}
OUTPUTS = {"scheduler": "SchedulerServiceName", "api-server": "ApiServerServiceName",
           "dag-processor": "DagProcessorServiceName", "triggerer": "TriggererServiceName"}


def _strict_run_task(original):
    def run_task(self, cluster_str, task_definition_str, *args, **kwargs):
        if self.describe_task_definition(task_definition_str).status == "INACTIVE":
            raise EcsClientException("TaskDefinition is inactive")
        return original(self, cluster_str, task_definition_str, *args, **kwargs)
    return run_task


def ecs_backend():
    return get_backend("ecs")[ACCOUNT][REGION]


class FakeDatabase:
    def __init__(self, version="3.2.2", revision=OLD_REV):
        self.version, self.revision = version, revision
        #: command prefix -> (exit code, revision it leaves, log lines)
        self.results = {("db", "migrate"): (0, NEW_REV, ["Migrating the Airflow database", "Database migrating done!"]),
                        ("db", "downgrade"): (0, OLD_REV, ["Downgrade complete"])}


class FakeFargate:
    """Stops the one-off tasks the CLI starts, as Fargate would, with scripted results."""

    def __init__(self, deployment, db: FakeDatabase):
        self.deployment, self.db = deployment, db
        self.commands: list[tuple[list[str], dict]] = []
        #: log lines of a probe that fails (exit code 1), e.g. the database unreachable
        self.probe_fails: list[str] | None = None

    def __call__(self, seconds: float) -> None:
        backend = ecs_backend()
        for arn, task in list(backend.tasks.get(CLUSTER, {}).items()):
            if task.started_by != tasks.STARTED_BY or task.last_status == "STOPPED":
                continue
            overrides = {o["name"]: o.get("command") for o in task.overrides.get("containerOverrides", [])}
            command = overrides["api-server"]
            self.commands.append((command, overrides))
            if command[:2] == ["python", "-c"] and self.probe_fails is not None:
                code, lines = 1, self.probe_fails
            elif command[:2] == ["python", "-c"]:
                code, lines = 0, [f"airflow-version: {self.db.version}", f"alembic-revision: {self.db.revision}"]
            else:
                code, revision, lines = self.db.results[tuple(command[:2])]
                self.db.revision = revision
            self.deployment.put_log("api-server", f"api-server/api-server/{tasks.task_id(arn)}", *lines)
            self.deployment.stop(arn, code)


class FakeCloudFormation:
    """``cdk deploy`` of an assembly, as CloudFormation applies the Airflow stack to the services."""

    def __init__(self, db: FakeDatabase, new_version: str, on_deploy=None):
        self.db, self.new_version, self.on_deploy = db, new_version, on_deploy
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str] | None] = []
        self.templates: list[dict] = []
        self.counts_seen: list[dict] = []

    def __call__(self, command: list[str], env: dict[str, str] | None = None) -> int:
        self.calls.append(command)
        self.envs.append(env)
        app = Path(command[command.index("--app") + 1])
        manifest = json.loads((app / "manifest.json").read_text())
        stack = manifest["artifacts"]["Airflow"]["properties"]
        template = json.loads((app / stack["templateFile"]).read_text())
        self.templates.append(template)
        ecs = boto3.client("ecs", region_name=REGION)
        for component, name in SERVICES.items():
            service = ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]
            old = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
            containers = [{**c, "image": f"airflow:{self.new_version}"} for c in old["containerDefinitions"]]
            new = ecs.register_task_definition(
                family=old["family"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="512", memory="1024",
                containerDefinitions=containers)["taskDefinition"]["taskDefinitionArn"]
            props = template["Resources"][LOGICAL_IDS[component]]["Properties"]
            update = {"desiredCount": props["DesiredCount"]} if "DesiredCount" in props else {}
            ecs.update_service(cluster=CLUSTER, service=name, taskDefinition=new, **update)
            ecs.deregister_task_definition(taskDefinition=old["taskDefinitionArn"])
        self.counts_seen.append({c: ecs.describe_services(cluster=CLUSTER, services=[n])["services"][0]["desiredCount"]
                                 for c, n in SERVICES.items()})
        self.db.version = self.new_version
        if self.on_deploy:
            self.on_deploy()
        return 0


def write_assembly(root: Path, version: str = "3.3.2", desired: int | None = 1) -> Path:
    """A cloud assembly shaped as the app's: the Airflow stack's template as a file asset whose
    key is its SHA-256, the Image stack's staged Dockerfile."""
    root.mkdir(parents=True)
    resources = {}
    outputs = {}
    for component, logical_id in LOGICAL_IDS.items():
        props = {"TaskDefinition": {"Ref": f"{logical_id}TaskDefinition"}}
        if desired is not None:
            props["DesiredCount"] = desired
        resources[logical_id] = {"Type": "AWS::ECS::Service", "Properties": props}
        outputs[OUTPUTS[component]] = {"Value": {"Fn::GetAtt": [logical_id, "Name"]}}
    body = json.dumps({"Resources": resources, "Outputs": outputs}, indent=1)
    (root / "Airflow.template.json").write_text(body)
    digest = hashlib.sha256(body.encode()).hexdigest()
    bucket = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"
    (root / "Airflow.assets.json").write_text(json.dumps({"version": "55.0.0", "files": {digest: {
        "source": {"path": "Airflow.template.json", "packaging": "file"},
        "destinations": {"d": {"bucketName": bucket, "objectKey": f"{digest}.json"}}}}, "dockerImages": {}}))
    image_dir = root / "asset.image"
    (image_dir / "docker").mkdir(parents=True)
    (image_dir / "docker" / "Dockerfile").write_text(f"ARG PYTHON_VERSION=3.13\nARG AIRFLOW_VERSION={version}\nFROM x\n")
    (root / "Image.assets.json").write_text(json.dumps({"version": "55.0.0", "files": {}, "dockerImages": {"abc": {
        "source": {"directory": "asset.image", "dockerFile": "docker/Dockerfile"}, "destinations": {}}}}))
    (root / "Image.template.json").write_text("{}")
    manifest = {"version": "55.0.0", "artifacts": {
        "Airflow.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Airflow.assets.json"}},
        "Airflow": {"type": "aws:cloudformation:stack", "dependencies": ["Airflow.assets"], "properties": {
            "templateFile": "Airflow.template.json", "stackName": "airflow-dev-airflow",
            "stackTemplateAssetObjectUrl": f"s3://{bucket}/{digest}.json"}},
        "Image.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Image.assets.json"}},
        "Image": {"type": "aws:cloudformation:stack", "dependencies": ["Image.assets"], "properties": {
            "templateFile": "Image.template.json", "stackName": "airflow-dev-image"}},
    }}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture
def aws(moto_aws, monkeypatch):
    monkeypatch.setattr(EC2ContainerServiceBackend, "run_task", _strict_run_task(EC2ContainerServiceBackend.run_task))
    return monkeypatch


def with_init_dependencies() -> None:
    """Give each service's main container the ``dependsOn`` its init container has in the app's
    templates (``conftest`` registers the init container without it)."""
    ecs = boto3.client("ecs", region_name=REGION)
    for component, name in SERVICES.items():
        service = ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]
        old = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        init = [c["name"] for c in old["containerDefinitions"] if not c.get("essential", True)]
        containers = [{**c, "dependsOn": [{"containerName": i, "condition": "SUCCESS"} for i in init]}
                      if c["name"] == component else c for c in old["containerDefinitions"]]
        new = ecs.register_task_definition(family=old["family"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                                           cpu="512", memory="1024", containerDefinitions=containers)
        ecs.update_service(cluster=CLUSTER, service=name, taskDefinition=new["taskDefinition"]["taskDefinitionArn"])
        ecs.deregister_task_definition(taskDefinition=old["taskDefinitionArn"])


def setup(aws, tmp_path, *, office_hours="none", db=None, new_version="3.3.2", on_deploy=None, team_queues=()):
    moto_deployment = make_deployment(office_hours=office_hours, team_queues=team_queues)
    with_init_dependencies()
    db = db or FakeDatabase()
    fargate = FakeFargate(moto_deployment, db)
    aws.setattr(tasks, "sleep", fargate)
    cloudformation = FakeCloudFormation(db, new_version, on_deploy)
    deployment = find_deployment(boto3.Session(region_name=REGION), "airflow", "dev", ("cluster", "airflow", "database"))
    lines: list[str] = []
    target = AwsUpgradeTarget(boto3.Session(region_name=REGION), deployment, assembly=write_assembly(tmp_path / "cdk.out", new_version),
                              cdk=["cdk"], echo=lines.append, run_cdk=cloudformation, waiter_delay_seconds=1,
                              poll_seconds=0, sleep=lambda s: None)
    return target, db, fargate, cloudformation, lines


def counts():
    ecs = boto3.client("ecs", region_name=REGION)
    return {c: ecs.describe_services(cluster=CLUSTER, services=[n])["services"][0]["desiredCount"] for c, n in SERVICES.items()}


def plan(a="3.2.2", b="3.3.2"):
    return plan_upgrade(a, b, HEADS, "3.3.2")


class TestTarget:
    def test_the_probe_reads_the_version_and_revision_from_a_one_off_tasks_log(self, aws, tmp_path):
        target, db, fargate, _, _ = setup(aws, tmp_path)
        assert target.deployed_version() == "3.2.2" and target.schema_revision() == OLD_REV
        assert len(fargate.commands) == 1  # cached
        command, overrides = fargate.commands[0]
        # the api-server's init container (airflow db migrate) is told to print the version instead
        assert overrides["db-migrate"] == ["version"]

    def test_a_probe_that_cannot_reach_the_database_says_what_to_check(self, aws, tmp_path):
        target, db, fargate, _, _ = setup(aws, tmp_path)
        fargate.probe_fails = ["psycopg2.OperationalError: connection timed out"]
        with pytest.raises(upgrade_aws.OpsError) as err:
            target.deployed_version()
        assert "exited 1" in str(err.value) and "connection timed out" in str(err.value)
        assert "airflow-ecs wake --wait" in str(err.value)

    def test_the_snapshot_is_tagged_with_the_deployment_and_both_versions(self, aws, tmp_path):
        target, *_ = setup(aws, tmp_path)
        target.snapshot(SNAPSHOT)
        rds = boto3.client("rds", region_name=REGION)
        snapshot = rds.describe_db_snapshots(DBSnapshotIdentifier=SNAPSHOT)["DBSnapshots"][0]
        assert snapshot["Status"] == "available" and snapshot["DBInstanceIdentifier"] == DATABASE
        tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=snapshot["DBSnapshotArn"])["TagList"]}
        assert tags == {"airflow-ecs:deployment": "airflow-dev", "airflow-ecs:upgrade": "3.2.2 to 3.3.2"}
        assert target.snapshot_created(SNAPSHOT) is not None and target.snapshot_created("nope") is None
        assert target.latest_snapshot("airflow-dev-airflow-3-2-2-to-3-3-2-") == SNAPSHOT

    def test_a_restore_keeps_the_identifier_and_sets_the_old_instance_aside(self, aws, tmp_path):
        target, *_ = setup(aws, tmp_path)
        rds_backend = get_backend("rds")[ACCOUNT][REGION]
        # CloudFormation tags what it creates with aws:cloudformation:* keys, which a caller may not
        # set (RDS: InvalidParameterValue); moto accepts them: refuse as AWS does.
        rds_backend.databases[DATABASE].tags.append({"Key": "aws:cloudformation:stack-name", "Value": "airflow-dev-database"})
        rds_backend.databases[DATABASE].tags.append({"Key": "team", "Value": "data"})
        original_restore = type(rds_backend).restore_db_instance_from_db_snapshot

        def strict_restore(self, snapshot_id, overrides):
            if any(t["Key"].startswith("aws:") for t in overrides.get("tags") or []):
                raise InvalidParameterValue("Tag keys starting with aws: are reserved")
            return original_restore(self, snapshot_id, overrides)

        aws.setattr(type(rds_backend), "restore_db_instance_from_db_snapshot", strict_restore)
        boto3.client("rds", region_name=REGION).modify_db_instance(
            DBInstanceIdentifier=DATABASE, BackupRetentionPeriod=7, ApplyImmediately=True)
        target.snapshot(SNAPSHOT)
        # moto names the automated snapshot of a new instance by the minute; the restored instance's
        # would collide with the original's (AWS takes it at the backup window): drop moto's.
        snapshots = get_backend("rds")[ACCOUNT][REGION].database_snapshots
        for key in [k for k in snapshots if k.startswith("rds:")]:
            del snapshots[key]
        target.restore_snapshot(SNAPSHOT)
        rds = boto3.client("rds", region_name=REGION)
        names = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
        assert DATABASE in names
        assert any(n.startswith(f"{DATABASE}-before-restore-") for n in names)
        restored = rds.describe_db_instances(DBInstanceIdentifier=DATABASE)["DBInstances"][0]
        assert {"Key": "team", "Value": "data"} in restored.get("TagList", [])
        assert restored["BackupRetentionPeriod"] == 7

    def test_the_pinned_assembly_keeps_the_counts_and_renames_the_templates_asset(self, tmp_path):
        original = write_assembly(tmp_path / "cdk.out")
        out = tmp_path / "pinned"
        changed = pinned_assembly(original, out, "airflow-dev-airflow", dict.fromkeys(LOGICAL_IDS, 0))
        assert sorted(changed) == sorted(f"{c}=0" for c in LOGICAL_IDS)
        template = (out / "Airflow.template.json").read_bytes()
        assert {r["Properties"]["DesiredCount"] for r in json.loads(template)["Resources"].values()} == {0}
        digest = hashlib.sha256(template).hexdigest()
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["artifacts"]["Airflow"]["properties"]["stackTemplateAssetObjectUrl"].endswith(f"/{digest}.json")
        files = json.loads((out / "Airflow.assets.json").read_text())["files"]
        assert list(files) == [digest]
        assert files[digest]["destinations"]["d"]["objectKey"] == f"{digest}.json"
        image = json.loads((out / "Image.assets.json").read_text())["dockerImages"]["abc"]["source"]["directory"]
        assert Path(image) == (original / "asset.image").resolve()
        # the original is untouched
        assert json.loads((original / "Airflow.template.json").read_text())["Resources"]["SchedulerService1"]["Properties"]["DesiredCount"] == 1

    def test_the_version_of_an_assembly_is_its_dockerfiles(self, tmp_path):
        assert upgrade_aws.assembly_airflow_version(write_assembly(tmp_path / "a", "3.4.0"), "airflow-dev-image") == "3.4.0"


class TestUpgradeOnMoto:
    def test_a_schema_upgrade_stops_snapshots_deploys_at_0_migrates_once_and_starts(self, aws, tmp_path):
        target, db, fargate, cloudformation, lines = setup(aws, tmp_path, office_hours="environment")
        before = counts()
        scaling = boto3.client("application-autoscaling", region_name=REGION)

        def suspended():
            return {t["ResourceId"]: t.get("SuspendedState", {}).get("ScheduledScalingSuspended")
                    for t in scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]}

        during: list[dict] = []
        cloudformation.on_deploy = lambda: during.append(suspended())
        report = upgrade(target, plan(), lines.append, snapshot=SNAPSHOT, sleep=lambda s: None)
        assert report.ok and (report.revision_before, report.revision_after) == (OLD_REV, NEW_REV)
        # the deploy kept every service at 0 (the template's DesiredCount 1 was pinned to 0)
        assert cloudformation.counts_seen == [dict.fromkeys(SERVICES, 0)]
        assert set(during[0].values()) == {True}
        assert set(suspended().values()) == {False}
        # one migration, in the new task definition, its init container not migrating
        migrations = [(c, o) for c, o in fargate.commands if c[:2] == ["db", "migrate"]]
        assert len(migrations) == 1 and migrations[0][1]["db-migrate"] == ["version"]
        assert counts() == before
        rds = boto3.client("rds", region_name=REGION)
        assert rds.describe_db_snapshots(DBSnapshotIdentifier=SNAPSHOT)["DBSnapshots"][0]["Status"] == "available"

    def test_the_drain_waits_for_a_team_queues_task_before_stopping_the_writers(self, aws, tmp_path):
        """A team queue's worker runs its own family (<workers' family>-<queue>): it reports to
        the Execution API too, so the api-server stops only after it finished."""
        target, db, fargate, cloudformation, lines = setup(aws, tmp_path, team_queues=("team-a",))
        team_task = fargate.deployment.run_worker("team-a")
        api_server_at_stop: list[int] = []
        polls: list[float] = []

        def sleep(seconds: float) -> None:
            polls.append(seconds)
            if len(polls) == 2:
                api_server_at_stop.append(counts()["api-server"])
                fargate.deployment.stop(team_task, 0)

        report = upgrade(target, plan(), lines.append, snapshot=SNAPSHOT, sleep=sleep)

        assert report.ok and report.workers_left == 0
        assert lines.count("[drain-workers] 1 worker task(s) running after 0 s") == 2
        assert api_server_at_stop == [1]  # still serving while the team task ran
        drain = next(s for s in report.steps if s.name == "drain-workers")
        assert drain.detail.startswith("no worker task running")
        assert lines.index("[stop-writers] started") > max(i for i, line in enumerate(lines) if "1 worker task(s)" in line)

    def test_a_failed_snapshot_leaves_the_services_at_0_and_deploys_nothing(self, aws, tmp_path):
        target, db, fargate, cloudformation, lines = setup(aws, tmp_path)
        boto3.client("rds", region_name=REGION).create_db_snapshot(DBSnapshotIdentifier=SNAPSHOT, DBInstanceIdentifier=DATABASE)
        with pytest.raises(UpgradeError) as err:
            upgrade(target, plan(), lines.append, snapshot=SNAPSHOT, sleep=lambda s: None)
        assert err.value.step == "snapshot" and "DBSnapshotAlreadyExists" in str(err.value)
        assert cloudformation.calls == [] and set(counts().values()) == {0}

    def test_a_failed_migration_leaves_the_services_at_0(self, aws, tmp_path):
        db = FakeDatabase()
        db.results[("db", "migrate")] = (1, "0123abcd4567", ["Running upgrade ...", "psycopg2.errors.LockNotAvailable"])
        target, db, fargate, cloudformation, lines = setup(aws, tmp_path, db=db)
        with pytest.raises(UpgradeError) as err:
            upgrade(target, plan(), lines.append, snapshot=SNAPSHOT, sleep=lambda s: None)
        assert err.value.step == "migrate" and "migrated halfway" in str(err.value)
        assert set(counts().values()) == {0}
        assert any("LockNotAvailable" in line for line in lines)  # the migration's log is echoed

    def test_an_image_only_rollout_keeps_the_services_running(self, aws, tmp_path):
        db = FakeDatabase("3.3.2", NEW_REV)
        target, db, fargate, cloudformation, lines = setup(aws, tmp_path, db=db)
        before = counts()
        report = upgrade(target, plan("3.3.2", "3.3.2"), lines.append, sleep=lambda s: None)
        assert report.ok and cloudformation.counts_seen == [before]
        assert not [c for c, _ in fargate.commands if c[0] == "db"]
        assert boto3.client("rds", region_name=REGION).describe_db_snapshots(SnapshotType="manual")["DBSnapshots"] == []

    def test_a_rollback_downgrades_with_the_current_task_definition_then_deploys(self, aws, tmp_path):
        db = FakeDatabase("3.3.2", NEW_REV)
        target, db, fargate, cloudformation, lines = setup(aws, tmp_path, db=db, new_version="3.2.2")
        report = rollback(target, plan_rollback("3.3.2", "3.2.2", HEADS, "3.3.2"), lines.append, confirm=lambda q: False,
                          snapshot="airflow-dev-airflow-3-3-2-to-3-2-2-20261207-020000", sleep=lambda s: None,
                          commands=Commands())
        assert report.ok and db.revision == OLD_REV
        downgrade = [c for c, _ in fargate.commands if c[:2] == ["db", "downgrade"]]
        assert downgrade == [["db", "downgrade", "--to-version", "3.2.2", "-y"]]
        assert cloudformation.counts_seen == [dict.fromkeys(SERVICES, 0)]


class TestCli:
    def invoke(self, *args):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    def test_upgrade_end_to_end_writes_its_report(self, aws, tmp_path, monkeypatch):
        target, db, fargate, cloudformation, _ = setup(aws, tmp_path)
        monkeypatch.setattr(upgrade_aws, "_run_cdk", cloudformation)
        report = tmp_path / "report.json"
        result = self.invoke("upgrade", "--assembly", str(tmp_path / "cdk.out"), "--drain-timeout", "0",
                             "--report", str(report))
        assert result.exit_code == 0, result.output
        data = json.loads(report.read_text())
        assert data["ok"] and data["plan"]["from_version"] == "3.2.2" and data["plan"]["to_version"] == "3.3.2"
        assert data["snapshot"].startswith("airflow-dev-airflow-3-2-2-to-3-3-2-")
        assert "[migrate] done in" in result.stderr
        # cdk deploys into the region the CLI works in (here AWS_REGION; also --region)
        assert cloudformation.envs[-1]["AWS_REGION"] == REGION
        assert cloudformation.calls[-1][:3] == ["node_modules/.bin/cdk", "deploy", "--all"] or \
            cloudformation.calls[-1][:3] == ["cdk", "deploy", "--all"]

    def test_an_upgrade_across_two_minors_is_refused_with_one_line(self, aws, tmp_path):
        setup(aws, tmp_path, new_version="3.4.0")
        result = CliRunner().invoke(cli, ["upgrade", "--assembly", str(tmp_path / "cdk.out"), "--from-version", "3.2.2"])
        assert result.exit_code == 1
        assert "skips a minor version (3.3)" in result.output and "Traceback" not in result.output
        assert set(counts().values()) == {1}

    def test_a_rollback_without_a_previous_synthesis_is_refused(self, aws, tmp_path):
        setup(aws, tmp_path)
        result = CliRunner().invoke(cli, ["rollback"])
        assert result.exit_code == 1 and "No previous version to roll back to" in result.output
        assert "airflow-ecs rollback --assembly" in result.output and "Traceback" not in result.output
        assert set(counts().values()) == {1}

    def test_a_rollback_whose_downgrade_fails_offers_the_upgrades_snapshot_and_restores_with_yes(self, aws, tmp_path, monkeypatch):
        db = FakeDatabase("3.3.2", NEW_REV)
        db.results[("db", "downgrade")] = (1, NEW_REV, ["alembic.util.exc.CommandError: no downgrade path"])
        target, db, fargate, cloudformation, _ = setup(aws, tmp_path, db=db, new_version="3.2.2")
        monkeypatch.setattr(upgrade_aws, "_run_cdk", cloudformation)
        restore = AwsUpgradeTarget.restore_snapshot

        def restore_and_the_schema_with_it(self, name):
            restore(self, name)
            db.revision = OLD_REV  # the snapshot was taken at 3.2.2's schema

        monkeypatch.setattr(AwsUpgradeTarget, "restore_snapshot", restore_and_the_schema_with_it)
        rds = boto3.client("rds", region_name=REGION)
        rds.create_db_snapshot(DBSnapshotIdentifier=SNAPSHOT, DBInstanceIdentifier=DATABASE)
        args = ["rollback", "--assembly", str(tmp_path / "cdk.out"), "--drain-timeout", "0"]

        declined = CliRunner().invoke(cli, args)  # no terminal: the question is answered no
        assert declined.exit_code == 1, declined.output
        assert f"restoring {SNAPSHOT} replaces the database" in declined.stderr
        assert f"--restore-snapshot {SNAPSHOT} --yes" in declined.stderr and "Traceback" not in declined.output
        assert cloudformation.calls == [] and set(counts().values()) == {0}

        snapshots = get_backend("rds")[ACCOUNT][REGION].database_snapshots
        for key in [k for k in snapshots if k.startswith("rds:")]:  # see the restore test above
            del snapshots[key]
        restored = self.invoke(*args, "--yes", "--counts", "scheduler=1,api-server=1,dag-processor=1,triggerer=1")
        assert restored.exit_code == 0, restored.output
        assert "[restore-snapshot] done" in restored.stderr and "rolled back to Airflow 3.2.2" in restored.output
        names = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
        assert any(n.startswith(f"{DATABASE}-before-restore-") for n in names)
        assert set(counts().values()) == {1}
