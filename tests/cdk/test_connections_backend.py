"""Connections and variables from AWS Secrets Manager (``secrets_backend``): every Airflow container
is configured with the amazon provider's ``SecretsManagerBackend`` over the deployment's prefixes,
and each task role may read those two prefixes only; the worker's grant is enforced by moto's IAM
authorization against another deployment's secret."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.backends import get_backend
from moto.core.authorization import enable_iam_authentication
from moto.secretsmanager.responses import SecretsManagerResponse

from constructs_lib.airflow_settings import SECRETS_MANAGER_BACKEND
from tests.cdk.conftest import TEST_ACCOUNT, resources_of, synthesize

REGION = "eu-west-1"
#: Role logical-ID prefixes of every process that resolves connections and variables.
ROLES = {
    "worker": "WorkersTaskRole",
    "scheduler": "ServiceRolesScheduler",
    "api-server": "ServiceRolesApiServer",
    "dag-processor": "ServiceRolesDagProcessor",
    "triggerer": "ServiceRolesTriggerer",
}
SID = "ReadConnectionsAndVariables"


def _resolve(value, region: str = REGION, account: str = TEST_ACCOUNT):
    """A resource as CloudFormation would write it for ``account`` in ``region``."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account}[value["Ref"]]
    if "Fn::Join" not in value:
        raise AssertionError(f"unexpected resource {value}")
    separator, parts = value["Fn::Join"]
    return separator.join(_resolve(p, region, account) for p in parts)


def _containers(synthesized):
    templates = synthesized.templates()
    for role in ("cluster", "airflow"):
        for logical_id, td in resources_of(templates[role], "AWS::ECS::TaskDefinition").items():
            for container in td["Properties"]["ContainerDefinitions"]:
                yield logical_id, container


def _grants(synthesized) -> dict[str, list[dict]]:
    template = synthesized.templates()["cluster"]
    found: dict[str, list[dict]] = {name: [] for name in ROLES}
    for logical_id, policy in resources_of(template, "AWS::IAM::Policy").items():
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            if not any(a.startswith("secretsmanager:") for a in actions):
                continue
            owner = [name for name, prefix in ROLES.items() if logical_id.startswith(prefix)]
            assert owner, (logical_id, s)  # no other role of the stack reads a secret here
            found[owner[0]].append(s)
    return found


@pytest.fixture(scope="module")
def on(synth):
    return synth("dev")


@pytest.fixture(scope="module")
def off(tmp_path_factory):
    return synthesize({"secrets_backend": "none"}, tmp_path_factory.mktemp("no-secrets-backend"))


@pytest.fixture(scope="module")
def other_project(tmp_path_factory):
    return synthesize({"project_name": "sales", "account": TEST_ACCOUNT, "region": REGION,
                       "availability_zones": "eu-west-1a,eu-west-1b"}, tmp_path_factory.mktemp("sales-dev"))


def test_every_container_uses_the_secrets_manager_backend_with_the_deployments_prefixes(on):
    containers = list(_containers(on))
    assert len(containers) >= 5
    for logical_id, container in containers:
        env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
        if "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" not in env:
            continue  # not an Airflow container
        assert env["AIRFLOW__SECRETS__BACKEND"] == SECRETS_MANAGER_BACKEND, logical_id
        assert json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"]) == {
            "connections_prefix": "airflow/dev/connections",
            "variables_prefix": "airflow/dev/variables",
            "config_prefix": None,
        }, logical_id


def test_the_prefixes_follow_project_and_stage(other_project):
    kwargs = {
        json.loads(e["Value"])["connections_prefix"]
        for _, c in _containers(other_project)
        for e in c.get("Environment", [])
        if e["Name"] == "AIRFLOW__SECRETS__BACKEND_KWARGS"
    }
    assert kwargs == {"sales/dev/connections"}
    grants = _grants(other_project)
    assert {tuple(sorted(_resolve(r) for r in s["Resource"])) for name in ROLES for s in grants[name]
            if s.get("Sid") == SID} == {(
        f"arn:aws:secretsmanager:{REGION}:{TEST_ACCOUNT}:secret:sales/dev/connections/*",
        f"arn:aws:secretsmanager:{REGION}:{TEST_ACCOUNT}:secret:sales/dev/variables/*",
    )}


def test_each_resolving_role_reads_exactly_the_two_prefixes(on):
    grants = _grants(on)
    for name in ROLES:
        mine = [s for s in grants[name] if s.get("Sid") == SID]
        assert len(mine) == 1, (name, grants[name])
        (s,) = mine
        assert s["Effect"] == "Allow" and s["Action"] == "secretsmanager:GetSecretValue" and "Condition" not in s
        assert sorted(_resolve(r) for r in s["Resource"]) == [
            f"arn:aws:secretsmanager:{REGION}:{TEST_ACCOUNT}:secret:airflow/dev/connections/*",
            f"arn:aws:secretsmanager:{REGION}:{TEST_ACCOUNT}:secret:airflow/dev/variables/*",
        ]
    # The workers read no other secret at all (they never open the DB).
    assert [s.get("Sid") for s in grants["worker"]] == [SID]
    # No KMS grant: the secrets use the AWS managed key.
    template = json.dumps(on.templates()["cluster"])
    assert "kms:Decrypt" not in template


def test_off_leaves_no_backend_and_no_grant(off):
    for logical_id, container in _containers(off):
        names = {e["Name"] for e in container.get("Environment", [])}
        assert not names & {"AIRFLOW__SECRETS__BACKEND", "AIRFLOW__SECRETS__BACKEND_KWARGS"}, logical_id
    grants = _grants(off)
    assert not [s for name in ROLES for s in grants[name] if s.get("Sid") == SID]
    assert grants["worker"] == []


def _secret_arn(self) -> str:
    """The ARN of the secret a Secrets Manager call names (moto authorizes against ``*``, AWS
    against the secret's ARN): moto made as strict as AWS for these tests."""
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    backend = get_backend("secretsmanager")[TEST_ACCOUNT][REGION]
    for secret in backend.secrets.values():
        if secret_id in (secret.name, secret.arn):
            return secret.arn
    return f"arn:aws:secretsmanager:{REGION}:{TEST_ACCOUNT}:secret:{secret_id}"


@pytest.fixture
def worker_client(on, monkeypatch):
    """A Secrets Manager client of a moto IAM user holding the worker role's statement, IAM enforced."""
    (statement,) = [s for s in _grants(on)["worker"] if s.get("Sid") == SID]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": statement["Action"], "Resource": [_resolve(r) for r in statement["Resource"]],
    }]}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(SecretsManagerResponse, "_determine_resource", _secret_arn, raising=False)
    with mock_aws():
        admin = boto3.client("secretsmanager", region_name=REGION)
        for name in ("airflow/dev/connections/x", "airflow/dev/variables/v", "sales/dev/connections/x",
                     "airflow/prod/connections/x", "airflow/dev/connectionsx", "airflow/dev/other/x"):
            admin.create_secret(Name=name, SecretString=f"value of {name}")
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="worker")
        iam.put_user_policy(UserName="worker", PolicyName="p", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="worker")["AccessKey"]
        client = boto3.client("secretsmanager", region_name=REGION, aws_access_key_id=key["AccessKeyId"],
                              aws_secret_access_key=key["SecretAccessKey"])
        with enable_iam_authentication():
            yield client


def _assert_denied(err: ClientError, action: str) -> None:
    # moto answers an IAM refusal with HTTP 403 and AccessDenied (AWS: AccessDeniedException).
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert f"is not authorized to perform: {action}" in err.response["Error"]["Message"]


def test_the_worker_reads_its_deployments_connections_and_variables_only(worker_client):
    get = worker_client.get_secret_value
    assert get(SecretId="airflow/dev/connections/x")["SecretString"] == "value of airflow/dev/connections/x"
    assert get(SecretId="airflow/dev/variables/v")["SecretString"] == "value of airflow/dev/variables/v"
    for other in ("sales/dev/connections/x", "airflow/prod/connections/x", "airflow/dev/connectionsx",
                  "airflow/dev/other/x"):
        with pytest.raises(ClientError) as raised:
            get(SecretId=other)
        _assert_denied(raised.value, "secretsmanager:GetSecretValue")
    with pytest.raises(ClientError) as raised:
        worker_client.put_secret_value(SecretId="airflow/dev/connections/x", SecretString="forged")
    _assert_denied(raised.value, "secretsmanager:PutSecretValue")
