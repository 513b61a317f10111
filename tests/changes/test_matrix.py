"""The transition matrix: changes users make to a deployed stack, each synthesized before ->
after and run through the change check. Safe ones must come out with no finding; destructive ones
as data loss naming the configuration key (or a code change where no key exists)."""

from __future__ import annotations

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

#: name -> (before, after): changes that must pass with no finding.
SAFE = {
    "add a domain": (BASE, DOMAIN),
    "remove the domain": (DOMAIN, BASE),
    "publish an image tag": (BASE, {"image_tag": "v1.2.3"}),
    "un-publish the image tag": ({"image_tag": "v1.2.3"}, BASE),
    "private UI on": (BASE, {"ui_private_only": "true"}),
    "private UI off": ({"ui_private_only": "true"}, BASE),
    "DAG bundle image -> s3": (BASE, {"dag_bundle": "s3"}),
    "DAG bundle s3 -> image": ({"dag_bundle": "s3"}, BASE),
    "secrets backend off": (BASE, {"secrets_backend": "none"}),
    "secrets backend on": ({"secrets_backend": "none"}, BASE),
    "office hours on": (BASE, OFFICE_HOURS),
    "office hours off": (OFFICE_HOURS, BASE),
    "office hours ui -> environment": ({"office_hours_scope": "ui"}, OFFICE_HOURS),
    "api-server autoscaling on": (BASE, {"api_server_scale_on": "cpu"}),
    "api-server autoscaling off": ({"api_server_scale_on": "cpu"}, BASE),
    "NAT 1 -> 0": (BASE, {"nat_gateways": "0"}),
    "add a worker queue": (BASE, {"worker_queues": '{"large": {"cpu": 2048, "memory_mib": 8192}}'}),
    "remove the worker queue": ({"worker_queues": '{"large": {"cpu": 2048, "memory_mib": 8192}}'}, BASE),
    "add the jobs back": ({"jobs": "{}"}, BASE),
    "ECS Exec on": (BASE, {"enable_ecs_exec": "true", "read_only_root_filesystem": "false"}),
    "log retention": (BASE, {"log_retention_days": "90"}),
    "alarm e-mail": (BASE, {"alarm_email": "ops@example.com"}),
    "scheduler count": (BASE, {"scheduler_count": "2"}),
    "DB instance class": (BASE, {"db_instance_type": "t4g.small"}),
    "DB Multi-AZ": (BASE, {"db_multi_az": "true"}),
    "task public IP on (no NAT)": ({"nat_gateways": "0"}, {"nat_gateways": "0", "task_public_ip": "true"}),
}

#: name -> (before, after, code patches of the after-synthesis, expected key or None for code).
DESTRUCTIVE = {
    "vpc_cidr": (BASE, {"vpc_cidr": "10.1.0.0/16"}, None, "vpc_cidr"),
    "project_name": (BASE, {"project_name": "other"}, None, "project_name"),
    # The ECS jobs' data bucket exists only while jobs are configured (constructs_lib/ecs_jobs.py).
    "remove every job": (BASE, {"jobs": "{}"}, None, "jobs"),
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
