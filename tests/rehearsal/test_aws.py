"""The AWS stand-in: secrets by their own rules, IAM principals with the synthesized policies,
authorization enforced per resource (moto server, no containers)."""

from __future__ import annotations

import json
import random

import pytest
from botocore.exceptions import ClientError

from local_ecs.assembly import CloudAssembly, StandIns
from local_ecs.aws import HOSTILE_PASSWORD_CHARS, PUNCTUATION, AwsStandIn, generate_secret_string


def test_generated_secrets_follow_their_rules():
    rng = random.Random(7)
    for _ in range(50):
        value = generate_secret_string({"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 43}, rng)
        assert len(value) == 43 and value.isalnum()
    document = json.loads(generate_secret_string(
        {"ExcludeCharacters": "\"'@/\\ ", "GenerateStringKey": "password", "PasswordLength": 30,
         "SecretStringTemplate": '{"username":"airflow"}'}, rng))
    assert document["username"] == "airflow" and len(document["password"]) == 30
    assert not set(document["password"]) & set("\"'@/\\ ")
    assert set(document["password"]) & set(PUNCTUATION)  # RequireEachIncludedType
    with pytest.raises(ValueError, match="excludes every character"):
        generate_secret_string({"ExcludeLowercase": True, "ExcludeUppercase": True, "ExcludeNumbers": True,
                                "ExcludePunctuation": True})


@pytest.fixture(scope="module")
def aws(cdk_out):
    stand_in = AwsStandIn(CloudAssembly(cdk_out()), StandIns(database_port=6543))
    stand_in.start()
    try:
        stand_in.provision()
        stand_in.enforce_iam()
        yield stand_in
    finally:
        stand_in.stop()


def _task_definition(aws: AwsStandIn, stack: str, prefix: str) -> dict:
    (logical_id,) = [k for k in aws.assembly.stack(stack).of_type("AWS::ECS::TaskDefinition") if k.startswith(prefix)]
    return aws.resolver.properties(stack, logical_id)


def test_db_secret_carries_the_attachment_fields_and_a_hostile_password(aws):
    """The _CMD helpers read the DB and fernet key secrets by ARN with the task role
    (airflow_ecs_fargate.config_commands); no container gets them as ECS secrets."""
    scheduler = _task_definition(aws, "Airflow", "Scheduler")
    env = {e["Name"]: e["Value"] for e in scheduler["ContainerDefinitions"][0]["Environment"]}
    task_role = aws.principal_of_role(scheduler["TaskRoleArn"])
    db = env["AIRFLOW_DB_SECRET_ARN"]
    assert aws.read_secret(f"{db}:port::", task_role) == "6543"
    assert aws.read_secret(f"{db}:dbname::", task_role) == "airflow"
    assert all(c in aws.read_secret(f"{db}:password::", task_role) for c in HOSTILE_PASSWORD_CHARS)
    fernet = aws.read_secret(env["AIRFLOW_FERNET_KEY_SECRET_ARN"], task_role)
    assert len(fernet) == 43 and fernet.isalnum()


def test_task_role_may_not_read_secrets_only_the_execution_role_may(aws):
    scheduler = _task_definition(aws, "Airflow", "Scheduler")
    value_from = scheduler["ContainerDefinitions"][0]["Secrets"][0]["ValueFrom"]
    before = len(aws.denials)
    with pytest.raises(ClientError, match="AccessDenied"):
        aws.read_secret(value_from, aws.principal_of_role(scheduler["TaskRoleArn"]))
    assert aws.denials[before].action == "secretsmanager:GetSecretValue"
    assert aws.denials[before].resource == value_from.split(":host")[0]


def test_worker_role_writes_task_logs_only_under_its_prefix(aws):
    workers = _task_definition(aws, "Cluster", "Workers")
    env = {e["Name"]: e["Value"] for e in workers["ContainerDefinitions"][0]["Environment"]}
    bucket = env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"].split("/")[2]
    s3 = aws.client("s3", aws.principal_of_role(workers["TaskRoleArn"]))
    s3.put_object(Bucket=bucket, Key="task-logs/dag/run/1.log", Body=b"ok")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object(Bucket=bucket, Key="elsewhere/1.log", Body=b"no")


def test_scheduler_role_is_checked_per_ecs_resource(aws):
    """The executor's calls, signed as the scheduler's principal: the template's grants work on
    their resources, and a call the template does not grant is denied and recorded."""
    scheduler = _task_definition(aws, "Airflow", "Scheduler")
    env = {e["Name"]: e["Value"] for e in scheduler["ContainerDefinitions"][0]["Environment"]}
    ecs = aws.client("ecs", aws.principal_of_role(scheduler["TaskRoleArn"]))
    cluster = env["AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"]
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["clusterName"] == cluster
    with pytest.raises(ClientError, match="403"):
        ecs.describe_clusters(clusters=["some-other-cluster"])
    family = env["AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION"]
    before = len(aws.denials)
    try:
        ecs.describe_task_definition(taskDefinition=family)
    except ClientError as error:
        # moto answers JSON-protocol services with its XML AccessDenied: botocore sees HTTP 403.
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert aws.denials[before].action == "ecs:DescribeTaskDefinition"
        assert family in aws.denials[before].resource
    else:  # the template grants it (the fix of the scheduler's IAM)
        assert len(aws.denials) == before


def test_head_bucket_is_authorized_as_list_bucket_as_aws_does(aws):
    """AWS authorizes HeadBucket as ``s3:ListBucket`` (granted to the workers by ``s3:List*`` on
    the logs bucket); moto alone would check an ``s3:HeadBucket`` no policy can grant."""
    workers = _task_definition(aws, "Cluster", "Workers")
    env = {e["Name"]: e["Value"] for e in workers["ContainerDefinitions"][0]["Environment"]}
    bucket = env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"].split("/")[2]
    before = len(aws.denials)
    aws.client("s3", aws.principal_of_role(workers["TaskRoleArn"])).head_bucket(Bucket=bucket)
    assert len(aws.denials) == before
    # The execution role has no S3 grant: denied, and recorded under the action AWS checks.
    with pytest.raises(ClientError, match="403"):
        aws.client("s3", aws.principal_of_role(workers["ExecutionRoleArn"])).head_bucket(Bucket=bucket)
    assert (aws.denials[before].action, aws.denials[before].resource) == ("s3:ListBucket", f"arn:aws:s3:::{bucket}")


def test_a_missing_connection_is_authorized_by_the_arn_its_name_makes_as_aws_does(aws):
    """The connections backend asks for ``<project>/<stage>/connections/<id>`` whether or not it
    is stored: AWS authorizes the ARN the name makes (the workers' statement on ``.../connections/*``
    allows it, the answer is ResourceNotFoundException); another deployment's name stays denied."""
    workers = _task_definition(aws, "Cluster", "Workers")
    secrets = aws.client("secretsmanager", aws.principal_of_role(workers["TaskRoleArn"]))
    before = len(aws.denials)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        secrets.get_secret_value(SecretId="airflow/dev/connections/aws_default")
    assert len(aws.denials) == before
    with pytest.raises(ClientError, match="AccessDenied"):
        secrets.get_secret_value(SecretId="sales/dev/connections/aws_default")
    assert aws.denials[before].resource == "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales/dev/connections/aws_default"


def test_the_scheduler_names_the_revision_ecs_registered_for_the_airflow_stacks_workers(aws):
    """The workers' family has two task definitions (the Airflow stack's and the Cluster stack's
    transitional one); ``Ref`` of each is the revision ECS gave it here, so the scheduler's
    setting names the Airflow stack's revision (its image and settings), not whichever came first."""
    scheduler = _task_definition(aws, "Airflow", "Scheduler")
    env = {e["Name"]: e["Value"] for e in scheduler["ContainerDefinitions"][0]["Environment"]}
    named = env["AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION"]
    family, revision = named.rsplit("/", 1)[-1].rsplit(":", 1)
    registered = aws.client("ecs").list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert named in registered and len(registered) >= 2, registered
    airflow_workers = _task_definition(aws, "Airflow", "WorkerTaskDefinition")
    described = aws.client("ecs").describe_task_definition(taskDefinition=named)["taskDefinition"]
    assert described["containerDefinitions"][0]["environment"] == [
        {"name": e["Name"], "value": e["Value"]} for e in airflow_workers["ContainerDefinitions"][0]["Environment"]]
    cluster_workers = [k for k in aws.assembly.stack("Cluster").of_type("AWS::ECS::TaskDefinition") if k.startswith("Workers")]
    assert cluster_workers and all(
        aws.resolver.resolve("Cluster", {"Ref": k}) != named for k in cluster_workers)
