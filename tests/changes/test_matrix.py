"""The transition matrix: changes users make to a deployed stack, each synthesized before ->
after and run through the change check. Safe ones must come out with no finding; destructive ones
as data loss naming the configuration key (or a code change where no key exists)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from aws_cdk import aws_kms as kms

from changes.check import DATA_LOSS, compare


class _RenamedKey(kms.Key):
    """The database's KMS key under another construct ID: a code change that replaces the key."""

    def __init__(self, scope, construct_id, **kwargs):
        super().__init__(scope, f"{construct_id}V2", **kwargs)


DOMAIN = {"domain_name": "airflow.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "example.com"}
OFFICE_HOURS = {"office_hours_scope": "environment"}
#: The before-configuration most transitions share (one synthesis).
BASE: dict[str, str] = {}
#: A created VPC in one account and region, and an existing VPC there (``vpc_id``).
IN_ACCOUNT = {"account": "123456789012", "region": "eu-west-1", "availability_zones": "eu-west-1a,eu-west-1b"}
EXISTING_VPC = {**IN_ACCOUNT, "vpc_id": "vpc-0123456789abcdef0",
                "private_subnet_ids": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
                "public_subnet_ids": "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2",
                "public_subnet_cidrs": "10.20.0.0/24,10.20.1.0/24"}
#: Single sign-on (sso_* keys) on a deployment with a domain.
SSO = {**DOMAIN, "sso_issuer_url": "https://example.okta.com", "sso_client_id": "0oa1b2c3d4",
       "sso_client_secret": "airflow/sso-client-secret", "sso_groups_to_roles": '{"airflow-admins": "Admin"}'}
OTHER_VPC = {**EXISTING_VPC, "vpc_id": "vpc-0fedcba9876543210",
             "private_subnet_ids": "subnet-0ccccccccccccccc1,subnet-0ccccccccccccccc2"}

#: The git DAG bundle (dag_bundle=git) over a private repository.
GIT = {"dag_bundle": "git", "dag_bundle_git_url": "https://git.example.com/team/dags.git",
       "dag_bundle_git_secret": "airflow/dev/git-dags"}

#: A private package index for the image build (pip_index_file): a file outside the repository.
PIP_INDEX_FILE = Path(tempfile.mkdtemp(prefix="pip-index-")) / "private-index.conf"
PIP_INDEX_FILE.write_text("[global]\nextra-index-url = https://aws:not-a-token@pypi.example.com/simple/\n")

TEAM_QUEUE = '{"team-a": {"cpu": 1024, "memory_mib": 2048, "s3_prefixes": ["team-a/"], "jobs": ["upload-file-to-s3"]}}'

#: name -> (before, after): changes that must pass with no finding.
SAFE = {
    "add a domain": (BASE, DOMAIN),
    "remove the domain": (DOMAIN, BASE),
    "publish an image tag": (BASE, {"image_tag": "v1.2.3"}),
    # A new image (another AIRFLOW_VERSION build argument) in new task definition revisions; the
    # schema migration is the upgrade's (airflow-ecs upgrade), not the template's.
    "upgrade Airflow to the image's version": ({"airflow_version": "3.2.2"}, BASE),
    "back to the previous Airflow version": (BASE, {"airflow_version": "3.2.2"}),
    "un-publish the image tag": ({"image_tag": "v1.2.3"}, BASE),
    "private UI on": (BASE, {"ui_private_only": "true"}),
    "private UI off": ({"ui_private_only": "true"}, BASE),
    "login rate limit on": (BASE, {"login_rate_limit": "100"}),
    "login rate limit changed": ({"login_rate_limit": "100"}, {"login_rate_limit": "50"}),
    "login rate limit off": ({"login_rate_limit": "100"}, BASE),
    "DAG bundle image -> s3": (BASE, {"dag_bundle": "s3"}),
    "DAG bundle s3 -> image": ({"dag_bundle": "s3"}, BASE),
    "private package index on": (BASE, {"pip_index_file": str(PIP_INDEX_FILE)}),
    "DAG bundle image -> git": (BASE, GIT),
    "DAG bundle git -> image": (GIT, BASE),
    "git bundle: other branch, refresh and secret": (GIT, {**GIT, "dag_bundle_git_branch": "release",
                                                           "dag_bundle_git_refresh_seconds": "30",
                                                           "dag_bundle_git_secret": "airflow/dev/git-dags-2"}),
    "secrets backend off": (BASE, {"secrets_backend": "none"}),
    "secrets backend on": ({"secrets_backend": "none"}, BASE),
    "single sign-on on": (DOMAIN, SSO),
    "single sign-on off": (SSO, DOMAIN),
    "break-glass login off": (SSO, {**SSO, "sso_local_admin_login": "false"}),
    "office hours on": (BASE, OFFICE_HOURS),
    "office hours off": (OFFICE_HOURS, BASE),
    "office hours ui -> environment": ({"office_hours_scope": "ui"}, OFFICE_HOURS),
    "api-server autoscaling on": (BASE, {"api_server_scale_on": "cpu"}),
    "api-server autoscaling off": ({"api_server_scale_on": "cpu"}, BASE),
    "NAT 1 -> 0": (BASE, {"nat_gateways": "0"}),
    "add a worker queue": (BASE, {"worker_queues": '{"large": {"cpu": 2048, "memory_mib": 8192}}'}),
    "remove the worker queue": ({"worker_queues": '{"large": {"cpu": 2048, "memory_mib": 8192}}'}, BASE),
    # A team queue's role (Cluster stack) is named physically in the Airflow stack: no export.
    "add a team queue": (BASE, {"worker_queues": TEAM_QUEUE}),
    "remove the team queue": ({"worker_queues": TEAM_QUEUE}, BASE),
    # The jobs' data bucket stays without jobs (constructs_lib/ecs_jobs.py): on -> off -> on loses nothing.
    "remove every job": (BASE, {"jobs": "{}"}),
    "add the jobs back": ({"jobs": "{}"}, BASE),
    "ECS Exec on": (BASE, {"enable_ecs_exec": "true", "read_only_root_filesystem": "false"}),
    "log retention": (BASE, {"log_retention_days": "90"}),
    "alarm e-mail": (BASE, {"alarm_email": "ops@example.com"}),
    "scheduler count": (BASE, {"scheduler_count": "2"}),
    "DB instance class": (BASE, {"db_instance_type": "t4g.small"}),
    "DB Multi-AZ": (BASE, {"db_multi_az": "true"}),
    "task public IP on (no NAT)": ({"nat_gateways": "0"}, {"nat_gateways": "0", "task_public_ip": "true"}),
    "existing VPC: private UI on": (EXISTING_VPC, {**EXISTING_VPC, "ui_private_only": "true", "ui_allowed_cidrs": "10.0.0.0/8",
                                                   "private_subnet_cidrs": "10.20.10.0/24,10.20.11.0/24"}),
}

#: name -> (before, after, code patches of the after-synthesis, expected key or None for code).
DESTRUCTIVE = {
    "vpc_cidr": (BASE, {"vpc_cidr": "10.1.0.0/16"}, None, "vpc_cidr"),
    "project_name": (BASE, {"project_name": "other"}, None, "project_name"),
    # The database moves to another VPC: its DB subnet group cannot take the other VPC's subnets.
    "created VPC -> existing VPC": (IN_ACCOUNT, EXISTING_VPC, None, "vpc_id"),
    "existing VPC -> created VPC": (EXISTING_VPC, IN_ACCOUNT, None, "vpc_id"),
    "existing VPC -> another VPC": (EXISTING_VPC, OTHER_VPC, None, "vpc_id"),
    "the DB's name (code)": (BASE, BASE, {"constructs_lib.metadata_db.DATABASE_NAME": "airflow2"}, None),
    "the DB's KMS key (code)": (BASE, BASE, {"constructs_lib.metadata_db.kms.Key": _RenamedKey}, None),
}


@pytest.mark.parametrize("name", list(SAFE))
def test_safe_change_has_no_finding(assembly, name):
    before, after = SAFE[name]
    report = compare(assembly(before), assembly(after))
    assert report.findings == [], report.text()


@pytest.mark.parametrize("name", list(DESTRUCTIVE))
def test_destructive_change_is_data_loss_naming_the_key(assembly, name):
    before, after, patches, key = DESTRUCTIVE[name]
    report = compare(assembly(before), assembly(after, patches))
    losses = [f for f in report.findings if f.kind == DATA_LOSS]
    assert losses, report.text()
    assert report.blocking(), report.text()
    if key is None:
        assert all(not f.keys for f in losses), report.text()
        assert "a code change" in report.text()
    else:
        assert all(f.keys == (key,) and f.exact for f in losses), report.text()
