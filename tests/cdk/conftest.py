"""Synthesize each configuration once per test session (jsii costs seconds per app)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from app import PROJECT_ROOT, Synthesis, cdk_json_context  # noqa: F401 (PROJECT_ROOT: for the tests that import it from here)
from app import synthesize as app_synthesize

CDK_JSON_CONTEXT = cdk_json_context()
#: Never a real account: the placeholder of the AWS docs.
TEST_ACCOUNT = "123456789012"
TEST_CERTIFICATE = f"arn:aws:acm:eu-west-1:{TEST_ACCOUNT}:certificate/11111111-2222-3333-4444-555555555555"

#: The configurations every scanner and invariant runs on.
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "dev": {},
    "prod": {
        "stage": "prod",
        "account": TEST_ACCOUNT,
        "region": "eu-west-1",
        "availability_zones": "eu-west-1a,eu-west-1b",
        "certificate_arn": TEST_CERTIFICATE,
        "domain_name": "airflow.example.com",
        "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
        "hosted_zone_name": "example.com",
        "ui_allowed_cidrs": "203.0.113.0/24",
    },
    "no-nat": {"nat_gateways": "0"},
    "lean": {"stage": "lean"},
}
#: Options that add resources, checked by the scanners besides CONFIGURATIONS.
OPTIONAL_FEATURES: dict[str, dict[str, str]] = {
    "ecs-exec": {"enable_ecs_exec": "true", "read_only_root_filesystem": "false"},
    "s3-dags": {"dag_bundle": "s3"},
    "git-dags": {"dag_bundle": "git", "dag_bundle_git_url": "https://git.example.com/team/dags.git",
                 "dag_bundle_git_secret": "airflow/dev/git-dags"},
    "private-ui-prod": {"stage": "prod", "ui_private_only": "true"},
    "issued-certificate": {
        "domain_name": "airflow.example.com",
        "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
        "hosted_zone_name": "example.com",
    },
    "office-hours-environment": {
        "office_hours_scope": "environment",
        "office_hours_timezone": "Europe/Berlin",
        "api_server_scale_on": "requests",
        "api_server_max_count": "6",
    },
    "office-hours-ui": {"office_hours_scope": "ui", "api_server_scale_on": "cpu", "api_server_min_count": "2"},
    "no-jobs": {"jobs": "{}"},
    # Single sign-on: the client secret by name (CDK grants <name>-??????) and no local admin.
    "sso": {
        "domain_name": "airflow.example.com",
        "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
        "hosted_zone_name": "example.com",
        "sso_issuer_url": "https://example.okta.com",
        "sso_client_id": "0oa1b2c3d4e5f6g7h8i9",
        "sso_client_secret": "airflow/sso-client-secret",
        "sso_groups_to_roles": '{"airflow-admins": "Admin", "analysts": "Viewer"}',
        "sso_local_admin_login": "false",
    },
    # Team queues (issue 19 item 4): a task role and task definition family per team queue.
    "team-queues": {"worker_queues": json.dumps({
        "team-a": {"cpu": 1024, "memory_mib": 2048, "s3_prefixes": ["team-a/"], "secrets_prefixes": ["team-a/"],
                   "managed_policy_arns": ["arn:aws:iam::aws:policy/AmazonAthenaFullAccess"], "jobs": ["upload-file-to-s3"]},
        "team-b": {"cpu": 512, "memory_mib": 1024, "s3_prefixes": ["team-b/"], "secrets_prefixes": ["team-b/"]},
        "large": {"cpu": 2048, "memory_mib": 8192},
    })},
    "alarm-email-no-metrics": {"alarm_email": "ops@example.com", "airflow_metrics": "false", "dashboard": "false"},
    # An existing VPC (vpc_id): the app builds the network from the given IDs and creates none of it.
    "existing-vpc": {
        "account": TEST_ACCOUNT,
        "region": "eu-west-1",
        "availability_zones": "eu-west-1a,eu-west-1b",
        "vpc_id": "vpc-0123456789abcdef0",
        "private_subnet_ids": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
        "public_subnet_ids": "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2",
        "public_subnet_cidrs": "10.20.0.0/24,10.20.1.0/24",
    },
}


class Synthesized(Synthesis):
    """An app synthesized from one configuration (:func:`app.synthesize`), with the templates as
    ``aws_cdk.assertions.Template`` objects."""

    def template(self, role: str) -> Template:
        return Template.from_stack(self.stacks[role])

    def templates(self) -> dict[str, dict]:
        return {role: self.template(role).to_json() for role in self.stacks}


def synthesize(overrides: dict[str, str], outdir: Path) -> Synthesized:
    return Synthesized(**vars(app_synthesize(overrides, outdir)))


_CACHE: dict[str, Synthesized] = {}


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """Return a function ``name -> Synthesized`` for the names in :data:`CONFIGURATIONS`."""

    def get(name: str) -> Synthesized:
        if name not in _CACHE:
            overrides = CONFIGURATIONS.get(name, OPTIONAL_FEATURES.get(name))
            _CACHE[name] = synthesize(overrides, tmp_path_factory.mktemp(f"cdk-{name}"))
        return _CACHE[name]

    return get


@pytest.fixture(scope="session")
def dev(synth) -> Synthesized:
    return synth("dev")


@pytest.fixture(scope="session")
def prod(synth) -> Synthesized:
    return synth("prod")


@pytest.fixture(scope="session")
def no_nat(synth) -> Synthesized:
    return synth("no-nat")


@pytest.fixture(params=list(CONFIGURATIONS))
def any_config(request, synth) -> Synthesized:
    return synth(request.param)


def resources_of(template: dict, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template.get("Resources", {}).items() if v["Type"] == type_}
