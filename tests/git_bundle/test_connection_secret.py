"""``git_connection_secret``: the secret named by ``dag_bundle_git_secret`` (name, complete or
partial ARN) becomes the ECS secret ``AIRFLOW_CONN_GIT_DAGS``."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ecs as ecs

from app_config.model import GitBundleConfig
from constructs_lib.airflow_settings import git_connection_secret

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:airflow/dev/git-dags"


def value_from(secret_name: str | None) -> list:
    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    found = git_connection_secret(stack, "Git", GitBundleConfig("https://h/r.git", "main", 60, secret_name))
    if not found:
        return []
    task = ecs.FargateTaskDefinition(stack, "T")
    task.add_container("c", image=ecs.ContainerImage.from_registry("x"), secrets=found)
    template = cdk.assertions.Template.from_stack(stack).to_json()
    (td,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    return td["Properties"]["ContainerDefinitions"][0]["Secrets"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (f"{ARN}-AbCdEf", f"{ARN}-AbCdEf"),  # complete ARN: as given
        (ARN, ARN),  # partial ARN (no suffix): ECS and IAM match it by prefix
    ],
)
def test_arns_are_used_as_given(given, expected):
    (secret,) = value_from(given)
    assert secret["Name"] == "AIRFLOW_CONN_GIT_DAGS" and secret["ValueFrom"] == expected


def test_a_name_becomes_the_secrets_arn():
    (secret,) = value_from("airflow/dev/git-dags")
    assert secret["Name"] == "AIRFLOW_CONN_GIT_DAGS"
    assert "secret:airflow/dev/git-dags" in str(secret["ValueFrom"])


def test_a_public_repository_has_no_secret():
    assert value_from(None) == []
