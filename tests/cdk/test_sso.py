"""Single sign-on (``sso_*`` keys) in the synthesized templates: the OpenID Connect settings and the
client secret reach the api-server's main container only, only its execution role may read the
secret, and without the local admin login the init container creates no admin."""

from __future__ import annotations

import json

import pytest

from airflow_ecs_fargate import sso
from tests.cdk.conftest import TEST_ACCOUNT, resources_of, synthesize
from tests.cdk.test_stacks import env_of

DOMAIN = {"domain_name": "airflow.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
          "hosted_zone_name": "example.com"}
SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:{TEST_ACCOUNT}:secret:airflow/sso-client-secret-AbCdEf"
SSO = {
    **DOMAIN,
    "sso_issuer_url": "https://example.okta.com",
    "sso_client_id": "0oa1b2c3d4e5f6g7h8i9",
    "sso_client_secret": SECRET_ARN,
    "sso_groups_to_roles": '{"airflow-admins": "Admin", "analysts": ["viewer"]}',
}


@pytest.fixture(scope="module")
def with_sso(tmp_path_factory):
    return synthesize(SSO, tmp_path_factory.mktemp("sso"))


@pytest.fixture(scope="module")
def no_break_glass(tmp_path_factory):
    return synthesize({**SSO, "sso_client_secret": "airflow/sso-client-secret", "sso_local_admin_login": "false"},
                      tmp_path_factory.mktemp("sso-no-local-login"))


def _containers(synthesized) -> dict[str, dict]:
    """Container name -> definition, over every task definition of every stack."""
    found = {}
    for template in synthesized.templates().values():
        for td in resources_of(template, "AWS::ECS::TaskDefinition").values():
            for c in td["Properties"]["ContainerDefinitions"]:
                found[c["Name"]] = c
    return found


def _secret_readers(template: dict, arn_fragment: str) -> list[str]:
    """Logical IDs of the IAM policies with a statement on a resource containing ``arn_fragment``."""
    readers = []
    for logical_id, policy in resources_of(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if arn_fragment in json.dumps(statement["Resource"]):
                readers.append(logical_id)
    return readers


def test_only_the_api_server_container_gets_the_settings_and_the_secret(with_sso):
    containers = _containers(with_sso)
    api = containers["api-server"]
    env = env_of(api)
    assert env["AIRFLOW__FAB__CONFIG_FILE"] == sso.WEBSERVER_CONFIG_PATH
    assert env[sso.ISSUER_ENV] == "https://example.okta.com"
    assert env[sso.CLIENT_ID_ENV] == "0oa1b2c3d4e5f6g7h8i9"
    assert json.loads(env[sso.ROLES_ENV]) == {"airflow-admins": ["Admin"], "analysts": ["Viewer"]}
    assert env[sso.LOCAL_LOGIN_ENV] == "true"
    assert sso.CLIENT_SECRET_ENV not in env
    (secret,) = [s for s in api["Secrets"] if s["Name"] == sso.CLIENT_SECRET_ENV]
    assert secret["ValueFrom"] == SECRET_ARN
    for name, c in containers.items():
        if name == "api-server":
            continue
        names = {e["Name"] for e in c.get("Environment", [])} | {s["Name"] for s in c.get("Secrets", [])}
        assert not {n for n in names if n.startswith("AIRFLOW_SSO_") or n == "AIRFLOW__FAB__CONFIG_FILE"}, name


def test_only_the_api_server_execution_role_reads_the_client_secret(with_sso):
    readers = [r for template in with_sso.templates().values()
               for r in _secret_readers(template, "airflow/sso-client-secret")]
    assert len(readers) == 1 and readers[0].startswith("ApiServerTaskDefinitionExecutionRole"), readers


def test_a_secret_by_name_is_granted_with_the_suffix_secrets_manager_appends(no_break_glass):
    (reader,) = [r for template in no_break_glass.templates().values()
                 for r in _secret_readers(template, "airflow/sso-client-secret")]
    template = no_break_glass.templates()["airflow"]
    (statement,) = [s for s in template["Resources"][reader]["Properties"]["PolicyDocument"]["Statement"]
                    if "airflow/sso-client-secret" in json.dumps(s["Resource"])]
    assert "secret:airflow/sso-client-secret-??????" in json.dumps(statement["Resource"])


def test_without_break_glass_the_init_container_only_migrates(no_break_glass, with_sso):
    init = _containers(no_break_glass)["db-migrate"]
    assert init["Command"] == ["db", "migrate"]
    assert "Secrets" not in init or "ADMIN_PASSWORD" not in {s["Name"] for s in init["Secrets"]}
    assert env_of(_containers(no_break_glass)["api-server"])[sso.LOCAL_LOGIN_ENV] == "false"
    assert "users create" in " ".join(_containers(with_sso)["db-migrate"]["Command"])


def test_without_sso_no_container_gets_sso_settings(synth):
    for name, c in _containers(synth("dev")).items():
        names = {e["Name"] for e in c.get("Environment", [])} | {s["Name"] for s in c.get("Secrets", [])}
        assert not {n for n in names if n.startswith("AIRFLOW_SSO_") or n == "AIRFLOW__FAB__CONFIG_FILE"}, name


def test_the_image_carries_the_webserver_config_where_the_setting_points():
    from tests.cdk.conftest import PROJECT_ROOT

    dockerfile = (PROJECT_ROOT / "docker" / "Dockerfile").read_text()
    assert f"COPY --chown=airflow:0 docker/webserver_config.py {sso.WEBSERVER_CONFIG_PATH}" in dockerfile
