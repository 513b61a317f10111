"""``airflow-ecs connections|variables``: the secrets land where the provider's
``SecretsManagerBackend`` looks (``<project>/<stage>/<kind>/<name>``), values are printed only on
request, bad names are refused before any AWS call, and an AWS failure is one ``Error:`` line."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from airflow_ecs_ops import secrets as secrets_mod
from airflow_ecs_ops.cli import cli

from .conftest import REGION

PASSWORD = "s3cr3t-Pa55"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def secretsmanager():
    return boto3.client("secretsmanager", region_name=REGION)


def test_connection_uri_is_stored_under_the_backends_name_and_read_by_the_provider(moto_aws):
    uri = f"postgres://etl:{PASSWORD}@warehouse.example.com:5432/sales"
    result = invoke("connections", "set", "warehouse", "--uri", uri)
    assert result.exit_code == 0, result.output
    assert result.output == "created connection warehouse (airflow/dev/connections/warehouse)\n"
    assert PASSWORD not in result.output
    assert secretsmanager().get_secret_value(SecretId="airflow/dev/connections/warehouse")["SecretString"] == uri

    from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend

    backend = SecretsManagerBackend(
        connections_prefix="airflow/dev/connections", variables_prefix="airflow/dev/variables", config_prefix=None,
        region_name=REGION,
    )
    assert backend.get_conn_value("warehouse") == uri


def test_connection_json_is_stored_as_an_object_the_provider_maps(moto_aws):
    value = {"conn_type": "postgres", "host": "db", "user": "etl", "password": PASSWORD, "extra": {"sslmode": "require"}}
    assert invoke("connections", "set", "db", "--json", json.dumps(value)).exit_code == 0
    stored = secretsmanager().get_secret_value(SecretId="airflow/dev/connections/db")["SecretString"]
    assert json.loads(stored) == value

    from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend

    backend = SecretsManagerBackend(connections_prefix="airflow/dev/connections", config_prefix=None, region_name=REGION)
    standard = json.loads(backend.get_conn_value("db"))
    assert (standard["conn_type"], standard["login"], standard["password"]) == ("postgres", "etl", PASSWORD)


def test_set_again_updates_and_restores_a_deleted_secret(moto_aws):
    assert invoke("variables", "set", "batch_size", "10").output == "created variable batch_size (airflow/dev/variables/batch_size)\n"
    assert invoke("variables", "set", "batch_size", "20").output.startswith("updated variable batch_size")
    assert invoke("variables", "delete", "batch_size").output == (
        "deleted variable batch_size (airflow/dev/variables/batch_size); restorable for 30 days\n"
    )
    assert invoke("variables", "list").output == "no variables under airflow/dev/variables/\n"
    assert invoke("variables", "set", "batch_size", "30").output.startswith("restored variable batch_size")
    assert secretsmanager().get_secret_value(SecretId="airflow/dev/variables/batch_size")["SecretString"] == "30"


def test_list_shows_names_of_this_deployment_only_never_values(moto_aws):
    client = secretsmanager()
    client.create_secret(Name="airflow/prod/connections/other_stage", SecretString=PASSWORD)
    client.create_secret(Name="airflow/dev/connectionsx/near_miss", SecretString=PASSWORD)
    client.create_secret(Name="airflow/dev/variables/a_variable", SecretString=PASSWORD)
    invoke("connections", "set", "b_conn", "--uri", f"http://u:{PASSWORD}@h")
    invoke("connections", "set", "a_conn", "--uri", f"http://u:{PASSWORD}@h")
    result = invoke("connections", "list")
    assert result.exit_code == 0
    assert [line.split("\t")[0] for line in result.output.splitlines()] == ["a_conn", "b_conn"]
    assert PASSWORD not in result.output


def test_get_hides_the_value_unless_show(moto_aws):
    invoke("variables", "set", "api_token", PASSWORD)
    hidden = invoke("variables", "get", "api_token")
    assert hidden.exit_code == 0
    assert PASSWORD not in hidden.output
    assert "value hidden (use --show)" in hidden.output
    assert invoke("variables", "get", "api_token", "--show").output == f"{PASSWORD}\n"


def test_project_and_stage_choose_the_prefix(moto_aws):
    assert invoke("--project", "sales", "--stage", "prod", "variables", "set", "k", "v").exit_code == 0
    assert secretsmanager().get_secret_value(SecretId="sales/prod/variables/k")["SecretString"] == "v"


@pytest.mark.parametrize("command", ["get", "delete"])
def test_missing_name_says_how_to_list(moto_aws, command):
    result = CliRunner().invoke(cli, ["connections", command, "nope"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: No connection 'nope' (secret airflow/dev/connections/nope): list them with airflow-ecs connections list.\n"
    )


@pytest.mark.parametrize(
    "name, problem",
    [
        ("my conn", "has characters Secrets Manager refuses (' '): use letters, digits and / _ + = . @ - only"),
        ("bad#id!", "has characters Secrets Manager refuses ('!#'): use letters, digits and / _ + = . @ - only"),
        ("/lead", "starts or ends with / or has //"),
        ("a" * 500, "Secrets Manager allows 512: use a shorter name"),
    ],
)
def test_names_secrets_manager_refuses_are_refused_before_any_aws_call(aws_env, monkeypatch, name, problem):
    def no_aws(*args, **kwargs):
        raise AssertionError("AWS was called")

    monkeypatch.setattr("boto3.Session.client", no_aws)
    for args in (["connections", "set", name, "--uri", "http://h"], ["variables", "get", name]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: The ")
        assert problem in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "options, problem",
    [
        ([], "Give the connection as --uri"),
        (["--uri", "http://h", "--json", "{}"], "Give the connection as --uri"),
        (["--uri", "warehouse.example.com"], "--uri: an Airflow connection URI starts with the connection type"),
        (["--json", "{not json"], "--json: not valid JSON"),
        (["--json", "[1]"], "--json: a connection is a JSON object"),
        (["--json", '{"host": "h"}'], "--json: name the connection type with one of the keys conn_type"),
        (["--json", '{"conn_type": "http", "extra": "nope"}'], "--json: extra must be a JSON object"),
    ],
)
def test_bad_connection_values_are_refused_before_any_aws_call(aws_env, monkeypatch, options, problem):
    monkeypatch.setattr("boto3.Session.client", lambda *a, **k: (_ for _ in ()).throw(AssertionError("AWS called")))
    result = CliRunner().invoke(cli, ["connections", "set", "c", *options])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {problem}")


def test_json_extra_as_a_string_holding_an_object_is_accepted():
    assert secrets_mod.connection_value(None, '{"conn_type": "http", "extra": "{\\"a\\": 1}"}')


@pytest.mark.parametrize("args", [["connections", "list"], ["variables", "set", "k", "v"], ["connections", "get", "c"]])
def test_aws_unreachable_is_one_error_line(aws_env, monkeypatch, args):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: Cannot reach AWS while ")
    assert "Traceback" not in result.output


def test_access_denied_names_the_refusal(moto_aws, monkeypatch):
    from moto.core.exceptions import JsonRESTError
    from moto.secretsmanager.models import SecretsManagerBackend

    def denied(self, *args, **kwargs):
        raise JsonRESTError("AccessDeniedException", "not authorized")

    monkeypatch.setattr(SecretsManagerBackend, "get_secret_value", denied)
    result = CliRunner().invoke(cli, ["variables", "get", "k"])
    assert result.exit_code == 1
    assert result.output == "Error: AWS error while reading variable k: AccessDeniedException: not authorized\n"
