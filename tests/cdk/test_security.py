"""Least privilege and exposure, checked across every template of every configuration."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Annotations, Match

from tests.cdk.conftest import CONFIGURATIONS, PROJECT_ROOT, resources_of, synthesize

#: Actions allowed on Resource "*" because AWS offers no resource-level permission for them
#: (Service Authorization Reference), each with where it comes from.
STAR_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken": "execution roles: the ECR login token is account-wide",
    "logs:PutRetentionPolicy": "CDK's LogRetention Lambda (RDS log groups it does not own by name)",
    "logs:DeleteRetentionPolicy": "CDK's LogRetention Lambda",
    "ssmmessages:CreateControlChannel": "ECS Exec (only with enable_ecs_exec)",
    "ssmmessages:CreateDataChannel": "ECS Exec",
    "ssmmessages:OpenControlChannel": "ECS Exec",
    "ssmmessages:OpenDataChannel": "ECS Exec",
    "logs:DescribeLogGroups": "ECS Exec session logging",
    "ecs:DescribeTaskDefinition": "scheduler: the executor reads a worker task definition's essential containers",
    "ecs:ListTasks": "workers with ECS jobs (reattach=True): names no task; limited by the ecs:cluster condition",
}


def statements(template: dict):
    """Yield (logical ID, statement) for every statement of every identity policy."""
    for logical_id, policy in resources_of(template, "AWS::IAM::Policy").items():
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield logical_id, s
    for logical_id, role in resources_of(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            for s in inline["PolicyDocument"]["Statement"]:
                yield logical_id, s


def as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module", params=[*CONFIGURATIONS, "exec"])
def every_config(request, synth, tmp_path_factory):
    if request.param == "exec":
        return synthesize({"enable_ecs_exec": "true", "read_only_root_filesystem": "false"}, tmp_path_factory.mktemp("exec"))
    return synth(request.param)


class TestLeastPrivilege:
    def test_no_wildcard_action(self, every_config):
        for role, template in every_config.templates().items():
            for logical_id, s in statements(template):
                for action in as_list(s["Action"]):
                    assert action != "*" and not action.endswith(":*"), f"{role}/{logical_id}: {action}"

    def test_star_resource_only_where_no_resource_level_permission_exists(self, every_config):
        for role, template in every_config.templates().items():
            for logical_id, s in statements(template):
                if "*" in as_list(s.get("Resource", [])):
                    extra = set(as_list(s["Action"])) - set(STAR_RESOURCE_ACTIONS)
                    assert not extra, f"{role}/{logical_id}: {sorted(extra)} on Resource *"
                    if "ecs:ListTasks" in as_list(s["Action"]):
                        assert "ecs:cluster" in json.dumps(s.get("Condition")), f"{role}/{logical_id}: ListTasks in any cluster"

    def test_pass_role_only_for_the_two_worker_roles_to_ecs_tasks(self, every_config):
        """The scheduler passes the two worker roles; with ECS jobs the workers pass each job's
        two roles (constructs_lib/ecs_jobs.py). Nothing else passes a role."""
        found = []
        jobs = [j.name.replace("-", " ").title().replace(" ", "") for j in every_config.config.jobs]
        for template in every_config.templates().values():
            for logical_id, s in statements(template):
                if "iam:PassRole" in as_list(s["Action"]):
                    found.append(s.get("Sid"))
                    targets = {r["Fn::GetAtt"][0] for r in as_list(s["Resource"])}
                    if s.get("Sid") == "PassWorkerRoles":
                        assert len(targets) == 2 and all(t.startswith(("WorkersTaskRole", "WorkersExecutionRole")) for t in targets)
                    else:
                        expected = {f"Jobs{j}{r}" for j in jobs for r in ("TaskRole", "ExecutionRole")}
                        assert {t[:-8] for t in targets} == expected, targets
                    assert s["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
        assert sorted(found) == sorted(["PassWorkerRoles"] + (["PassJobRoles"] if jobs else [])), found

    def test_worker_task_role_cannot_touch_the_db_or_secrets(self, every_config):
        cluster = every_config.templates()["cluster"]
        for logical_id, s in statements(cluster):
            if logical_id.startswith("WorkersTaskRole"):
                text = json.dumps(s)
                assert not any(a.startswith(("rds", "secretsmanager", "kms")) for a in as_list(s["Action"])), text
                assert "ImportValue" not in text, f"worker task role reaches into another stack: {text}"


class TestNetworkExposure:
    def test_private_only_mode_uses_an_internal_load_balancer(self, tmp_path):
        private = synthesize({"ui_private_only": "true"}, tmp_path)
        private.template("airflow").has_resource_properties(
            "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"}
        )
        lb = next(
            v for v in resources_of(private.templates()["network"], "AWS::EC2::SecurityGroup").values()
            if v["Properties"]["GroupDescription"] == "Airflow UI load balancer"
        )
        assert {r["CidrIp"] for r in lb["Properties"]["SecurityGroupIngress"]} == {"10.0.0.0/16"}

    def test_prod_with_private_ui_needs_no_certificate(self, tmp_path):
        synthesize({"stage": "prod", "ui_private_only": "true"}, tmp_path)

    def test_dev_without_certificate_warns(self, dev):
        Annotations.from_stack(dev.stacks["airflow"]).has_warning(
            "/Airflow/Ui", Match.string_like_regexp("plain HTTP: set domain_name")
        )

    def test_prod_with_certificate_does_not_warn(self, prod):
        Annotations.from_stack(prod.stacks["airflow"]).has_no_warning("*", Match.string_like_regexp("plain HTTP"))

    def test_workers_egress_is_execution_api_and_https_only(self, dev):
        t = dev.templates()["network"]
        workers = next(v for v in resources_of(t, "AWS::EC2::SecurityGroup").values() if "worker tasks" in v["Properties"]["GroupDescription"])
        egress = workers["Properties"].get("SecurityGroupEgress", [])
        egress += [r["Properties"] for r in resources_of(t, "AWS::EC2::SecurityGroupEgress").values()]
        ports = sorted((e["FromPort"], e.get("CidrIp", "sg")) for e in egress if e.get("GroupId") in (None,) or "Workers" in json.dumps(e.get("GroupId", "")))
        assert ports == [(443, "0.0.0.0/0"), (8080, "sg")], ports


def test_read_only_root_filesystem_can_be_turned_off(tmp_path):
    writable = synthesize({"read_only_root_filesystem": "false"}, tmp_path)
    flags = {
        c["ReadonlyRootFilesystem"]
        for role in ("cluster", "airflow")
        for td in resources_of(writable.templates()[role], "AWS::ECS::TaskDefinition").values()
        for c in td["Properties"]["ContainerDefinitions"]
    }
    assert flags == {False}


class TestEcsExec:
    def test_off_by_default(self, dev):
        for s in resources_of(dev.templates()["airflow"], "AWS::ECS::Service").values():
            assert not s["Properties"].get("EnableExecuteCommand")

    def test_when_enabled_sessions_are_logged(self, tmp_path):
        exec_on = synthesize({"enable_ecs_exec": "true", "read_only_root_filesystem": "false"}, tmp_path)
        exec_on.template("cluster").has_resource_properties(
            "AWS::ECS::Cluster",
            {"Configuration": {"ExecuteCommandConfiguration": Match.object_like({"Logging": "OVERRIDE", "LogConfiguration": Match.object_like({"CloudWatchLogGroupName": Match.any_value()})})}},
        )
        for s in resources_of(exec_on.templates()["airflow"], "AWS::ECS::Service").values():
            assert s["Properties"]["EnableExecuteCommand"] is True
        # The SSM agent ECS Exec injects needs a writable root in every container it may enter.
        for td in resources_of(exec_on.templates()["airflow"], "AWS::ECS::TaskDefinition").values():
            assert all(c["ReadonlyRootFilesystem"] is False for c in td["Properties"]["ContainerDefinitions"])


class TestScratchSpace:
    """Every container writes scratch files to an airflow-owned volume named by TMPDIR, so nothing
    relies on the mode Fargate gives /tmp."""

    def test_every_container_mounts_the_scratch_volume_and_sets_tmpdir(self, any_config):
        from constructs_lib.airflow_service import SCRATCH_PATH

        checked = 0
        for role in ("cluster", "airflow"):
            for logical_id, td in resources_of(any_config.templates()[role], "AWS::ECS::TaskDefinition").items():
                if logical_id.startswith("Jobs"):
                    continue  # ECS jobs run images of the user's own (jobs/<name>/), not Airflow's
                volumes = {v["Name"] for v in td["Properties"]["Volumes"]}
                for c in td["Properties"]["ContainerDefinitions"]:
                    mounts = {m["ContainerPath"]: m for m in c["MountPoints"]}
                    assert mounts[SCRATCH_PATH]["SourceVolume"] in volumes and mounts[SCRATCH_PATH]["ReadOnly"] is False
                    assert {"Name": "TMPDIR", "Value": SCRATCH_PATH} in c["Environment"], c["Name"]
                    checked += 1
        assert checked == 9  # the worker, four components and their four init containers

    def test_the_image_creates_the_scratch_path_as_the_airflow_user_and_declares_it_a_volume(self):
        from constructs_lib.airflow_service import SCRATCH_PATH, WRITABLE_PATHS

        lines = (PROJECT_ROOT / "docker" / "Dockerfile").read_text().splitlines()
        user_line = max(i for i, line in enumerate(lines) if line.startswith("USER "))
        assert lines[user_line] == "USER 50000"
        mkdir_line = next(i for i, line in enumerate(lines) if line.startswith("RUN") and SCRATCH_PATH in line)
        assert mkdir_line > user_line, "created after USER 50000, so owned by airflow"
        (volume,) = [line for line in lines if line.startswith("VOLUME")]
        assert set(json.loads(volume.removeprefix("VOLUME "))) == set(WRITABLE_PATHS.values())
