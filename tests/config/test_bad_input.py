"""Issue 16's configuration bad inputs: each refused before synthesis with the key and the fix."""

from __future__ import annotations

import argparse
import json

import pytest

from app_config import ConfigError, load_config
from app_config.model import BUNDLED_ECS_EXECUTOR, STOCK_ECS_EXECUTOR
from app_config.settings import MAX_UI_CIDRS, RULES_PER_UI_CIDR, SECURITY_GROUP_INBOUND_RULES

PROD = {"stage": "prod", "domain_name": "airflow.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
        "hosted_zone_name": "example.com"}
ENV = {"account": "123456789012", "region": "eu-west-1"}


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return info.value.problems


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"worker_queues": {"large": {"cpu": 2048.9, "memory_mib": 8192}}},
         "worker_queues: queue 'large': cpu=2048.9: expected a whole number\n"),
        ({"worker_queues": '{"large": {"cpu": "2048.9", "memory_mib": 8192}}'}, "queue 'large': cpu='2048.9'"),
        ({"jobs": ""}, "jobs is empty: leave the key out for its default; for no job write jobs={}"),
        ({"ui_allowed_cidrs": ""}, "ui_allowed_cidrs is empty: leave the key out for its default; give the IPv4 CIDRs"),
        ({"ui_allowed_cidrs": " , "}, "ui_allowed_cidrs is empty: give the IPv4 CIDRs that may reach the UI"),
        ({"vpc_cidr": "8.8.0.0/16"}, "vpc_cidr='8.8.0.0/16' is a public range; use a private (RFC 1918) range"),
        ({"office_hours_scope": "ui", "office_hours_start": "cron(0 8 ? * MON-FRI *)",
          "office_hours_stop": "cron(0 8 ? * MON-FRI *)"},
         "office_hours_start/office_hours_stop: office hours start and stop at the same minute"),
        ({"office_hours_scope": "ui", "office_hours_start": "cron(0 8 30 FEB ? *)"},
         "office hours that never start or never stop"),
        ({"Stage": "prod"}, "Stage: unknown configuration key; did you mean stage?"),
        ({"nat-gateways": "0"}, "nat-gateways: unknown configuration key; did you mean nat_gateways?"),
        ({"NAT_GATEWAYS": "0"}, "NAT_GATEWAYS: unknown configuration key; did you mean nat_gateways?"),
        ({"admin_username": "-admin"}, "admin_username='-admin': use 1-64 letters, digits, _ . @ -, not starting with -"),
        ({"db_max_allocated_storage_gib": "99999999"}, "db_max_allocated_storage_gib=99999999: RDS gp3 storage is 20 to 65536 GiB"),
        ({"executor_class": "os.system"}, "executor_class='os.system': give the executor's import path"),
        ({"executor_class": "json.System"}, "executor_class='json.System': module json has no System"),
        ({"executor_class": "airflow_ecs_fargate.executr.EcsFargateExecutor"}, "there is no module airflow_ecs_fargate.executr"),
        ({"ui_allowed_cidrs": ",".join(f"198.51.100.{i}/32" for i in range(MAX_UI_CIDRS + 1))},
         f"ui_allowed_cidrs: {MAX_UI_CIDRS + 1} CIDRs need {(MAX_UI_CIDRS + 1) * RULES_PER_UI_CIDR} inbound rules"),
        ({"ui_allowed_cidrs": "198.51.100.7/32,198.51.100.7/32"}, "ui_allowed_cidrs: a CIDR is listed twice"),
        ({**ENV, "availability_zones": "eu-west-1a,eu-west-1a"}, "availability_zones=eu-west-1a,eu-west-1a: an AZ is listed twice"),
        ({**ENV, "availability_zones": "us-east-1a,us-east-1b"}, "availability_zones: us-east-1a, us-east-1b not in region eu-west-1"),
        ({"availability_zones": "foo"}, "availability_zones: set account and region too"),
        ({"db_instance_type": "foo.bar"}, "db_instance_type='foo.bar': write it like db.t4g.micro or m7g.large (db.<family>.<size>"),
        ({"jobs": {"a-b": {}, "a--b": {}}}, "jobs a--b and a-b get the same construct ID AB"),
        ({"scheduler_count": "two"}, "scheduler_count='two': expected a whole number, e.g. -c scheduler_count=2"),
        ({"nat_gateways": True}, "nat_gateways=True: expected a whole number"),
        ({"stage": "prod", "domain_name": "airflow.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
          "hosted_zone_name": "example.com"}, "ui_allowed_cidrs: prod admits nobody by default"),
    ],
)
def test_bad_input_is_refused_with_the_key_and_the_fix(raw, expected):
    message = "\n".join(problems_of(raw)) + "\n"
    assert expected in message, message


def test_a_word_for_a_count_reports_that_word_only():
    """Before, scheduler_count=two also reported "scheduler_count=0: must be 1 to 10"."""
    assert problems_of({"scheduler_count": "two"}) == [
        "scheduler_count='two': expected a whole number, e.g. -c scheduler_count=2"
    ]


def test_rules_between_keys_are_reported_with_a_bad_key_but_not_its_consequences():
    found = problems_of({"nat_gateways": "many", "task_public_ip": "true", "image_uri": "a/b", "image_tag": "v1"})
    assert any(p.startswith("nat_gateways='many'") for p in found)
    assert "image_uri and image_tag: set at most one of them" in found
    assert not any("task_public_ip" in p for p in found), found  # it reads nat_gateways, which was refused


def test_cdk_own_keys_are_left_alone():
    load_config({"@aws-cdk/core:newStyleStackSynthesis": True, "aws:cdk:enable-path-metadata": True,
                 "acknowledged-issue-numbers": [1234], "cli-telemetry": False,
                 "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a"]})


def test_prod_with_cidrs_or_private_ui_is_accepted():
    assert load_config({**PROD, "ui_allowed_cidrs": "203.0.113.0/24"}).ingress.allowed_cidrs == ("203.0.113.0/24",)
    assert load_config({**PROD, "ui_allowed_cidrs": "0.0.0.0/0"}).ingress.allowed_cidrs == ("0.0.0.0/0",)
    assert load_config({"stage": "prod", "ui_private_only": "true"}).ingress.allowed_cidrs == ("10.0.0.0/16",)


def test_accepted_shapes_still_pass():
    config = load_config({**ENV, "availability_zones": "eu-west-1a,eu-west-1b", "db_instance_type": "db.r6gd.2xlarge",
                          "admin_username": "ops.admin@team", "db_max_allocated_storage_gib": "65536",
                          "vpc_cidr": "172.16.0.0/16", "jobs": {"a-b": {}}},
                         jobs_dir=_job_dirs("a-b"))
    assert config.network.availability_zones == ("eu-west-1a", "eu-west-1b")
    assert config.database.instance_type == "r6gd.2xlarge"
    assert load_config({"ui_allowed_cidrs": ",".join(f"198.51.100.{i}/32" for i in range(MAX_UI_CIDRS))})
    assert load_config({"executor_class": STOCK_ECS_EXECUTOR}).executor.executor_class == STOCK_ECS_EXECUTOR


def _job_dirs(*names: str):
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp())
    for name in names:
        (root / name).mkdir()
        (root / name / "Dockerfile").write_text("FROM scratch\n")
    return root


@pytest.mark.parametrize("path", [BUNDLED_ECS_EXECUTOR, STOCK_ECS_EXECUTOR])
def test_the_executors_the_project_names_are_airflow_executors(path):
    import importlib

    from airflow.executors.base_executor import BaseExecutor

    module, _, name = path.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), name), BaseExecutor)


@pytest.mark.parametrize(("name", "accepted"), [("admin", True), ("ops.admin@team", True), ("-admin", False)])
def test_admin_username_rule_matches_airflows_cli(name, accepted):
    """The FAB provider's own --username argument, parsed as `airflow users create` parses it."""
    from airflow.providers.fab.cli.definition import ARG_USERNAME

    parser = argparse.ArgumentParser(exit_on_error=False)
    ARG_USERNAME.add_to_parser(parser)
    try:
        parsed = parser.parse_args(["--username", name]).username == name
    except (argparse.ArgumentError, SystemExit):
        parsed = False
    assert parsed == accepted
    assert (not problems_of_or_none({"admin_username": name})) == accepted


def problems_of_or_none(raw: dict) -> list[str]:
    try:
        load_config(raw)
    except ConfigError as err:
        return err.problems
    return []


def test_the_ui_cidr_limit_fits_the_security_group_quota(tmp_path):
    """The template with the most CIDRs accepted spends RULES_PER_UI_CIDR inbound rules per CIDR
    and stays within the quota of the load balancer's security group."""
    from tests.cdk.conftest import resources_of, synthesize

    cidrs = [f"198.51.100.{i}/32" for i in range(MAX_UI_CIDRS)]
    network = synthesize({"ui_allowed_cidrs": ",".join(cidrs)}, tmp_path).template("network").to_json()
    [group] = [g for g in resources_of(network, "AWS::EC2::SecurityGroup").values()
               if g["Properties"]["GroupDescription"] == "Airflow UI load balancer"]
    inbound = group["Properties"]["SecurityGroupIngress"]
    assert len(inbound) == RULES_PER_UI_CIDR * len(cidrs) <= SECURITY_GROUP_INBOUND_RULES
    assert {rule["CidrIp"] for rule in inbound} == set(cidrs)
    json.dumps(inbound)
