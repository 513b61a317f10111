"""Whole-output invariants: every resource of a kind has X, on every configuration."""

from __future__ import annotations

import json
import re

import pytest

from tests.cdk.conftest import resources_of

SECRET_NAME = re.compile(r"password|secret|token|fernet|private_key|api_key", re.IGNORECASE)
#: Environment names that look secret but hold no secret: commands that read one, and the ARNs
#: those commands read (airflow_ecs_fargate.config_commands), and the ``[secrets]`` section's
#: backend class and its kwargs (name prefixes, constructs_lib.airflow_settings).
NOT_SECRET_VALUES = re.compile(r"_CMD$|_SECRET_ARN$|^AIRFLOW__SECRETS__BACKEND(_KWARGS)?$")


def all_resources(synthesized, type_):
    for role, template in synthesized.templates().items():
        for logical_id, resource in resources_of(template, type_).items():
            yield role, logical_id, resource


def test_every_log_group_has_retention(any_config):
    groups = list(all_resources(any_config, "AWS::Logs::LogGroup"))
    assert len(groups) >= 6
    for role, logical_id, group in groups:
        assert "RetentionInDays" in group["Properties"], f"{role}/{logical_id} keeps logs forever"


def test_every_container_logs_through_awslogs(any_config):
    containers = [
        (logical_id, c)
        for _, logical_id, td in all_resources(any_config, "AWS::ECS::TaskDefinition")
        for c in td["Properties"]["ContainerDefinitions"]
    ]
    # 4 components + 4 init containers + the worker (twice: the Cluster stack keeps its
    # transitional one, constructs_lib/workers.py) + one per ECS job
    assert len(containers) == 10 + len(any_config.config.jobs)
    for logical_id, c in containers:
        assert c["LogConfiguration"]["LogDriver"] == "awslogs", f"{logical_id}/{c['Name']}"


def test_every_container_is_unprivileged_non_root_and_read_only(any_config):
    for logical_id, td in ((k, v) for _, k, v in all_resources(any_config, "AWS::ECS::TaskDefinition")):
        for c in td["Properties"]["ContainerDefinitions"]:
            assert c.get("Privileged") in (None, False), f"{logical_id}/{c['Name']}"
            assert c["User"] == "50000:0", f"{logical_id}/{c['Name']} runs as root"
            assert c["ReadonlyRootFilesystem"] is True, f"{logical_id}/{c['Name']}"


def test_every_service_has_the_circuit_breaker(any_config):
    services = list(all_resources(any_config, "AWS::ECS::Service"))
    assert len(services) == 4
    for _, logical_id, service in services:
        breaker = service["Properties"]["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
        assert breaker == {"Enable": True, "Rollback": True}, logical_id


def test_no_secret_in_any_plaintext_environment_value(any_config):
    for _, logical_id, td in all_resources(any_config, "AWS::ECS::TaskDefinition"):
        for c in td["Properties"]["ContainerDefinitions"]:
            for entry in c.get("Environment", []):
                if SECRET_NAME.search(entry["Name"]) and not NOT_SECRET_VALUES.search(entry["Name"]):
                    pytest.fail(f"{logical_id}/{c['Name']}: {entry['Name']} is a plaintext environment value")


def test_every_bucket_is_private_encrypted_and_tls_only(any_config):
    buckets = list(all_resources(any_config, "AWS::S3::Bucket"))
    policies = {json.dumps(p["Properties"]["Bucket"]): p for _, _, p in all_resources(any_config, "AWS::S3::BucketPolicy")}
    for role, logical_id, bucket in buckets:
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["LifecycleConfiguration"]["Rules"]
        policy = policies[json.dumps({"Ref": logical_id})]
        assert '"aws:SecureTransport": "false"' in json.dumps(policy), f"{role}/{logical_id} accepts plain HTTP"


#: Logical IDs of stateful resources: a change replaces the resource and loses its data.
STATEFUL = {
    "network": {"AWS::EC2::VPC": ["NetworkVpc7FB7348F"]},
    "database": {
        "AWS::RDS::DBInstance": ["MetadataDbInstanceD6E9D06F"],
        "AWS::SecretsManager::Secret": [
            "AirflowSecretsAdminPassword267F75DB",
            "AirflowSecretsApiSecretKey64BB0D38",
            "AirflowSecretsFernetKey2535D25A",
            "AirflowSecretsJwtSecretD0FAA37B",
            "DatabaseMetadataDbInstanceSecret7A2A505679f715039b5c094b66d7218f662dea65",
        ],
        "AWS::KMS::Key": ["MetadataDbKey22A0634E"],
    },
    "image": {"AWS::ECR::Repository": ["AirflowImageRepository5C8E424E"]},
    "cluster": {"AWS::S3::Bucket": ["AccessLogs8B620ECA", "Dags188BE91E", "JobsData2621DEEE", "TaskLogs5C7CDF8E"]},
}


@pytest.mark.parametrize("role", list(STATEFUL))
def test_stateful_logical_ids_are_pinned(dev, role):
    template = dev.templates()[role]
    for type_, expected in STATEFUL[role].items():
        assert sorted(resources_of(template, type_)) == sorted(expected), (
            f"{role}: the logical IDs of {type_} changed; deploying this replaces the resource and "
            "loses its data. Rename back, or plan a migration."
        )
