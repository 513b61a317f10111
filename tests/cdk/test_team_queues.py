"""A task role per team (issue 19 item 4) and PassRole per job where the DAG says which job
(issue 16 item 1): a team queue's tasks run with a task definition and task role of their own,
reach only their own prefixes, and only the queues that name a job may run it.

The S3 grants run under moto with IAM enforced (as in tests/cdk/test_task_log_grants.py: moto
authorizes S3 calls against the statement's resources down to the key); the ECS, IAM and Secrets
Manager statements are asserted on the template.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication

from tests.cdk.conftest import resources_of
from tests.cdk.test_stacks import container, env_of

REGION = "eu-west-1"
BUCKET = "data-test"
JOB = "upload-file-to-s3"


@pytest.fixture(scope="module")
def team(synth):
    return synth("team-queues")


def _statements(template: dict, role_prefix: str) -> list[dict]:
    (policy,) = [p for k, p in resources_of(template, "AWS::IAM::Policy").items() if k.startswith(role_prefix)]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _by_sid(statements: list[dict]) -> dict[str, dict]:
    return {s["Sid"]: s for s in statements if "Sid" in s}


class TestTeamTaskDefinitions:
    def test_each_team_queue_has_its_family_and_role_by_name_and_is_retained(self, team):
        airflow = team.templates()["airflow"]
        definitions = {td["Properties"]["Family"]: td for td in resources_of(airflow, "AWS::ECS::TaskDefinition").values()}
        for queue, cpu in (("team-a", "1024"), ("team-b", "512")):
            td = definitions[f"airflow-dev-worker-{queue}"]
            assert td["DeletionPolicy"] == td["UpdateReplacePolicy"] == "Retain"
            assert td["Properties"]["Cpu"] == cpu
            assert td["Properties"]["TaskRoleArn"]["Fn::Join"][1][-1] == f":role/airflow-dev-worker-{queue}"
            (worker,) = td["Properties"]["ContainerDefinitions"]
            assert worker["Name"] == "worker" and worker["LogConfiguration"]["Options"]["awslogs-stream-prefix"] == f"worker-{queue}"
        assert "airflow-dev-worker-large" not in definitions  # a size-only queue keeps the workers' definition
        roles = {r["Properties"].get("RoleName") for r in resources_of(team.templates()["cluster"], "AWS::IAM::Role").values()}
        assert {"airflow-dev-worker-team-a", "airflow-dev-worker-team-b"} <= roles

    def test_the_executor_launches_each_team_queue_with_its_revision(self, team):
        airflow = team.templates()["airflow"]
        queues = env_of(container(airflow, "scheduler"))["AIRFLOW__AWS_ECS_EXECUTOR__QUEUES"]["Fn::Join"][1]
        refs = [part["Ref"] for part in queues if isinstance(part, dict)]
        families = [airflow["Resources"][ref]["Properties"]["Family"] for ref in refs]
        assert families == ["airflow-dev-worker-team-a", "airflow-dev-worker-team-b"]
        text = "".join(p if isinstance(p, str) else "ARN" for p in queues)
        assert json.loads(text) == {
            "large": {"cpu": 2048, "memory": 8192},
            "team-a": {"cpu": 1024, "memory": 2048, "task_definition": "ARN", "log_stream_prefix": "worker-team-a"},
            "team-b": {"cpu": 512, "memory": 1024, "task_definition": "ARN", "log_stream_prefix": "worker-team-b"},
        }

    def test_the_api_server_reads_the_live_logs_of_the_default_and_each_team_queues_workers_only(self, team):
        cluster = team.templates()["cluster"]
        (statement,) = [s for s in _statements(cluster, "ServiceRolesApiServer") if s.get("Sid") == "ReadWorkerLiveLogs"]
        assert statement["Action"] == "logs:GetLogEvents"
        streams = sorted(json.dumps(r).split("log-stream:")[1].split('"')[0] for r in statement["Resource"])
        assert streams == ["worker-team-a/worker/*", "worker-team-b/worker/*", "worker/worker/*"]

    def test_the_scheduler_may_launch_and_pass_the_team_roles_only_to_ecs(self, team):
        cluster = team.templates()["cluster"]
        statements = _by_sid(_statements(cluster, "ServiceRolesSchedulerDefaultPolicy"))
        run = json.dumps(statements["RunWorkerTasks"]["Resource"])
        assert all(f":task-definition/{f}:*" in run for f in ("airflow-dev-worker", "airflow-dev-worker-team-a", "airflow-dev-worker-team-b"))
        passed = sorted(r["Fn::GetAtt"][0][:-8] for r in statements["PassWorkerRoles"]["Resource"])
        assert passed == ["WorkersExecutionRole", "WorkersQueuesteama", "WorkersQueuesteamb", "WorkersTaskRole"]
        assert statements["PassWorkerRoles"]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}

    def test_a_team_role_reads_its_secrets_prefix_and_has_its_managed_policies(self, team):
        cluster = team.templates()["cluster"]
        secrets = _by_sid(_statements(cluster, "WorkersQueuesteamaDefaultPolicy"))["ReadTeamSecrets"]
        assert secrets["Action"] == "secretsmanager:GetSecretValue"
        assert secrets["Resource"]["Fn::Join"][1][-1] == ":secret:team-a/*"
        roles = resources_of(cluster, "AWS::IAM::Role")
        (team_a,) = [r for r in roles.values() if r["Properties"].get("RoleName") == "airflow-dev-worker-team-a"]
        assert team_a["Properties"]["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/AmazonAthenaFullAccess"]
        (team_b,) = [r for r in roles.values() if r["Properties"].get("RoleName") == "airflow-dev-worker-team-b"]
        assert "ManagedPolicyArns" not in team_b["Properties"]
        assert "team-a/" not in json.dumps(_statements(cluster, "WorkersQueuesteambDefaultPolicy"))


class TestPassRolePerJob:
    def test_only_the_queues_that_name_a_job_may_run_it(self, team):
        cluster = team.templates()["cluster"]
        team_a = _by_sid(_statements(cluster, "WorkersQueuesteamaDefaultPolicy"))
        assert sorted(r["Fn::GetAtt"][0].rsplit("Role", 1)[0] for r in team_a["PassJobRoles"]["Resource"]) == [
            "JobsUploadFileToS3Execution", "JobsUploadFileToS3Task",
        ]
        assert f":task-definition/airflow-dev-job-{JOB}:*" in json.dumps(team_a["RunJobs"]["Resource"])
        for other in ("WorkersQueuesteambDefaultPolicy", "WorkersTaskRoleDefaultPolicy"):
            text = json.dumps(_statements(cluster, other))
            assert "PassJobRoles" not in text and "RunJobs" not in text and "JobsUploadFileToS3" not in text, other

    def test_a_job_no_queue_names_stays_with_the_workers(self, dev):
        statements = _by_sid(_statements(dev.templates()["cluster"], "WorkersTaskRoleDefaultPolicy"))
        assert {"RunJobs", "PassJobRoles"} <= set(statements)


def _data_policy(template: dict, role_prefix: str) -> dict:
    """The role's statements on the jobs' data bucket, with the bucket's ARN filled in."""
    statements = []
    for s in _statements(template, role_prefix):
        if "JobsData" not in json.dumps(s["Resource"]):
            continue
        resolved = []
        for r in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
            parts = [r] if "Fn::GetAtt" in r else r["Fn::Join"][1]
            resolved.append("".join(p if isinstance(p, str) else f"arn:aws:s3:::{BUCKET}" for p in parts))
        statements.append({"Effect": "Allow", "Action": s["Action"], "Resource": resolved})
    return {"Version": "2012-10-17", "Statement": statements or [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}


@pytest.fixture
def s3_as(team, monkeypatch):
    """``s3_as(queue)``: an S3 client signed by a moto IAM user holding the queue role's data-bucket statements."""
    cluster = team.templates()["cluster"]
    policies = {
        "team-a": _data_policy(cluster, "WorkersQueuesteamaDefaultPolicy"),
        "team-b": _data_policy(cluster, "WorkersQueuesteambDefaultPolicy"),
        "workers": _data_policy(cluster, "WorkersTaskRoleDefaultPolicy"),
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        admin = boto3.client("s3", region_name=REGION)
        admin.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for key in ("team-a/in.csv", "team-b/in.csv"):
            admin.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        iam = boto3.client("iam", region_name=REGION)
        clients = {}
        for queue, policy in policies.items():  # created before IAM is enforced
            iam.create_user(UserName=queue)
            iam.put_user_policy(UserName=queue, PolicyName="p", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=queue)["AccessKey"]
            clients[queue] = boto3.client(
                "s3", region_name=REGION, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
            )
        with enable_iam_authentication():
            yield clients.__getitem__


def _denied(call) -> None:
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.parametrize(("mine", "theirs"), [("team-a", "team-b"), ("team-b", "team-a")])
def test_a_team_task_reaches_its_prefix_and_is_denied_on_the_other_teams(s3_as, mine, theirs):
    s3 = s3_as(mine)
    assert s3.get_object(Bucket=BUCKET, Key=f"{mine}/in.csv")["Body"].read() == b"x"
    s3.put_object(Bucket=BUCKET, Key=f"{mine}/out.csv", Body=b"y")
    _denied(lambda: s3.get_object(Bucket=BUCKET, Key=f"{theirs}/in.csv"))
    _denied(lambda: s3.put_object(Bucket=BUCKET, Key=f"{theirs}/out.csv", Body=b"y"))
    _denied(lambda: s3.delete_object(Bucket=BUCKET, Key=f"{mine}/in.csv"))


def test_the_shared_workers_reach_no_team_prefix(s3_as):
    s3 = s3_as("workers")
    for queue in ("team-a", "team-b"):
        _denied(lambda: s3.get_object(Bucket=BUCKET, Key=f"{queue}/in.csv"))
