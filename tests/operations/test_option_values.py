"""Issue 16, bad input: ``--stage``, ``--project``, ``--region`` (and their environment
variables) and ``--timeout`` are checked before any AWS call, with the option, the value and the
rule; AWS itself is unreachable here (an endpoint that refuses connections), so a value that got
through would end in "Cannot reach AWS" instead."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from airflow_ecs_ops.cli import cli
from airflow_ecs_ops.options import MAX_NAME_PART


@pytest.fixture
def unreachable(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def refused(result, option: str) -> str:
    """The usage error's last line, naming ``option``; exit status 2, no traceback, no AWS call."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Cannot reach AWS" not in result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: Invalid value for '{option}'"), result.stderr
    return line


def reached_aws(result) -> bool:
    return result.exit_code == 1 and "Cannot reach AWS" in result.stderr


@pytest.mark.parametrize("stage", ["a b", "", "-dev", "dev-", "prod;rm", "dév", "x" * (MAX_NAME_PART + 1)])
def test_a_stage_no_stack_name_can_hold_is_refused(unreachable, stage):
    line = refused(invoke("--stage", stage, "status"), "--stage")
    assert repr(stage) in line and "letters, digits and hyphens" in line and "--stage prod" in line


def test_the_stage_from_the_environment_is_checked_too(unreachable, monkeypatch):
    monkeypatch.setenv("AIRFLOW_ECS_STAGE", "my stage")
    assert "'my stage'" in refused(invoke("status"), "--stage")


@pytest.mark.parametrize("project", ["1airflow", "air flow", "airflow-"])
def test_a_project_no_stack_name_can_hold_is_refused(unreachable, project):
    line = refused(invoke("--project", project, "status"), "--project")
    assert "start with a letter" in line


@pytest.mark.parametrize("stage", ["dev", "prod", "lean", "staging-2", "x" * MAX_NAME_PART])
def test_a_well_formed_stage_goes_on_to_aws(unreachable, stage):
    assert reached_aws(invoke("--stage", stage, "status"))


@pytest.mark.parametrize("region, hint", [
    ("EU-WEST-1", "did you mean eu-west-1"),
    ("eu west 1", "did you mean eu-west-1"),
    ("eu_west_1", "did you mean eu-west-1"),
    ("xx-fake-9", "a region name looks like eu-west-1"),
    ("", "a region name looks like eu-west-1"),
])
def test_a_region_that_is_no_region_name_is_refused(unreachable, region, hint):
    line = refused(invoke("--region", region, "status"), "--region")
    assert repr(region) in line and "is not an AWS region name" in line and hint in line


def test_the_region_from_aws_region_is_checked_too(unreachable, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "Frankfurt")
    assert "'Frankfurt' (from --region or AWS_REGION)" in refused(invoke("preflight"), "--region")


@pytest.mark.parametrize("region", ["eu-west-1", "us-gov-west-1", "cn-north-1", "eu-west-9"])
def test_a_region_name_botocore_knows_or_of_a_partitions_form_goes_on_to_aws(unreachable, region):
    assert reached_aws(invoke("--region", region, "status"))


@pytest.mark.parametrize("timeout", ["-5", "0", "nan", "inf", "-inf", "ten", ""])
def test_a_timeout_that_is_no_positive_number_of_seconds_is_refused(unreachable, timeout):
    line = refused(invoke("run", "--timeout", timeout, "--", "db", "check"), "--timeout")
    assert "a number greater than 0, e.g. --timeout 600" in line


@pytest.mark.parametrize("timeout", ["600", "90.5", "1e3"])
def test_a_positive_timeout_goes_on_to_aws(unreachable, timeout):
    assert reached_aws(invoke("run", "--timeout", timeout, "--", "db", "check"))
