"""The task-log grants of the synthesized roles, enforced by moto's IAM authorization.

moto authorizes S3 calls against the statement's resources down to the key (it ignores
Condition blocks, and these statements have none), so the S3 statements of each role's policy
run as they are, with the bucket's ARN filled in. The other statements (ECS, logs, secrets) are
left out: tests/cdk/test_security.py asserts them on the template.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication

from tests.cdk.conftest import resources_of

REGION = "eu-west-1"
BUCKET = "task-logs-test"


def _s3_policy(template: dict, role_prefix: str, bucket_logical_id: str) -> dict:
    """The role's S3 statements with the task-log bucket's ARN resolved."""
    statements = []
    for logical_id, policy in resources_of(template, "AWS::IAM::Policy").items():
        if not logical_id.startswith(role_prefix):
            continue
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            if not all(a.startswith("s3:") for a in actions):
                continue
            text = json.dumps(s["Resource"])
            if bucket_logical_id not in text:
                continue
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            resolved = []
            for r in resources:
                if "Fn::GetAtt" in r:
                    resolved.append(f"arn:aws:s3:::{BUCKET}")
                else:
                    parts = r["Fn::Join"][1]
                    resolved.append(f"arn:aws:s3:::{BUCKET}" + "".join(p for p in parts if isinstance(p, str)))
            statements.append({"Effect": "Allow", "Action": actions, "Resource": resolved})
    return {"Version": "2012-10-17", "Statement": statements or [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def policies(synth):
    template = synth("dev").template("cluster").to_json()
    (bucket,) = [k for k in resources_of(template, "AWS::S3::Bucket") if k.startswith("TaskLogs")]
    return {
        name: _s3_policy(template, prefix, bucket)
        for name, prefix in (
            ("worker", "WorkersTaskRole"),
            ("triggerer", "ServiceRolesTriggerer"),
            ("api-server", "ServiceRolesApiServer"),
            ("scheduler", "ServiceRolesScheduler"),
            ("dag-processor", "ServiceRolesDagProcessor"),
        )
    }


@pytest.fixture
def s3_as(policies, monkeypatch):
    """``s3_as(component)``: an S3 client signed by a moto IAM user holding that role's S3 statements."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        admin = boto3.client("s3", region_name=REGION)
        admin.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        admin.put_object(Bucket=BUCKET, Key="task-logs/dag_id=a/run_id=r/task_id=t/attempt=1.log", Body=b"old\n")
        admin.put_object(Bucket=BUCKET, Key="elsewhere/x", Body=b"x")
        iam = boto3.client("iam", region_name=REGION)
        clients = {}
        for component, policy in policies.items():  # created before IAM is enforced
            iam.create_user(UserName=component)
            iam.put_user_policy(UserName=component, PolicyName="p", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=component)["AccessKey"]
            clients[component] = boto3.client(
                "s3", region_name=REGION, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
            )
        with enable_iam_authentication():
            yield clients.__getitem__


LOG = "task-logs/dag_id=a/run_id=r/task_id=t/attempt=1.log"


def _denied(call) -> None:
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.parametrize("component", ["worker", "triggerer"])
def test_writers_append_to_logs_but_never_delete(s3_as, component):
    s3 = s3_as(component)
    old = s3.get_object(Bucket=BUCKET, Key=LOG)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=LOG, Body=old + b"new\n")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="task-logs/")["KeyCount"] == 1
    _denied(lambda: s3.delete_object(Bucket=BUCKET, Key=LOG))
    _denied(lambda: s3.put_object(Bucket=BUCKET, Key="elsewhere/y", Body=b"y"))
    _denied(lambda: s3.get_object(Bucket=BUCKET, Key="elsewhere/x"))


def test_the_api_server_only_reads(s3_as):
    s3 = s3_as("api-server")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="task-logs/dag_id=a/")["Contents"]]
    assert keys == [LOG]
    assert s3.get_object(Bucket=BUCKET, Key=LOG)["Body"].read() == b"old\n"
    _denied(lambda: s3.put_object(Bucket=BUCKET, Key=LOG, Body=b"forged"))
    _denied(lambda: s3.delete_object(Bucket=BUCKET, Key=LOG))


@pytest.mark.parametrize("component", ["scheduler", "dag-processor"])
def test_the_scheduler_and_dag_processor_have_no_task_log_access(s3_as, component):
    s3 = s3_as(component)
    _denied(lambda: s3.get_object(Bucket=BUCKET, Key=LOG))
    _denied(lambda: s3.put_object(Bucket=BUCKET, Key=LOG, Body=b"x"))
