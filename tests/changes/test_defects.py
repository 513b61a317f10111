"""The template defects of a change to a running deployment, one test each;
each failed on the templates before the fix."""

from __future__ import annotations

import json

import pytest

from constructs_lib.monitoring import ALARM_WAKE_GRACE_MINUTES, shift_cron
from tests.changes.test_matrix import BASE, DOMAIN, OFFICE_HOURS


def _resources(templates, role, type_):
    return {k: r for k, r in templates.stacks[role].resources.items() if r["Type"] == type_}


def test_port_80_keeps_its_listener_when_a_domain_is_added(assembly):
    """ELBv2 refuses a second listener on a port: port 80 keeps one logical ID, only its action changes."""
    def port_80(templates):
        (lid, listener), = [(k, r) for k, r in _resources(templates, "Airflow", "AWS::ElasticLoadBalancingV2::Listener").items() if r["Properties"]["Port"] == 80]
        return lid, listener["Properties"]["DefaultActions"][0]

    plain_id, plain_action = port_80(assembly(BASE))
    tls_id, tls_action = port_80(assembly(DOMAIN))
    assert plain_id == tls_id
    assert plain_action["Type"] == "forward"
    assert tls_action["Type"] == "redirect" and tls_action["RedirectConfig"]["Port"] == "443"


@pytest.mark.parametrize(
    "overrides",
    [{"image_tag": "v1.2.3"}, {"ui_private_only": "true"}, {"dag_bundle": "s3"}, {"jobs": "{}"}],
    ids=["image_tag", "ui_private_only", "dag_bundle", "jobs"],
)
def test_exports_do_not_come_and_go_with_a_configuration_value(assembly, overrides):
    """An export that exists only under some values is removed while a deployed stack imports it."""
    base, other = assembly(BASE), assembly(overrides)
    for role in ("Network", "Image", "Cluster"):
        assert set(base.stacks[role].exports()) == set(other.stacks[role].exports()), role


@pytest.mark.parametrize(
    "overrides, scaled",
    [
        (OFFICE_HOURS, {"Scheduler", "ApiServer", "DagProcessor", "Triggerer"}),
        ({"office_hours_scope": "ui"}, {"ApiServer"}),
        ({"api_server_scale_on": "cpu"}, {"ApiServer"}),
    ],
    ids=["office-hours-environment", "office-hours-ui", "autoscaling"],
)
def test_scaled_services_carry_no_desired_count(assembly, overrides, scaled):
    """A DesiredCount is re-sent on every update and overrides what Application Auto Scaling set."""
    services = _resources(assembly(overrides), "Airflow", "AWS::ECS::Service")
    with_count = {k.split("Service")[0] for k, r in services.items() if "DesiredCount" in r["Properties"]}
    assert with_count == {"Scheduler", "ApiServer", "DagProcessor", "Triggerer"} - scaled
    targets = _resources(assembly(overrides), "Airflow", "AWS::ApplicationAutoScaling::ScalableTarget")
    assert {k.split("Service")[0] for k in targets} == scaled
    # a new service starts at the scaling target's minimum (RegisterScalableTarget brings it into range)
    assert all(t["Properties"]["MinCapacity"] >= 1 for t in targets.values())


def test_unscaled_services_keep_their_count(assembly):
    services = _resources(assembly(BASE), "Airflow", "AWS::ECS::Service")
    assert all(r["Properties"]["DesiredCount"] >= 1 for r in services.values())


def _alarm_schedules(templates):
    schedules = {}
    for lid, r in _resources(templates, "Airflow", "AWS::Scheduler::Schedule").items():
        arn = json.dumps(r["Properties"]["Target"]["Arn"])
        if "aws-sdk:cloudwatch:" in arn:
            action = arn.split("aws-sdk:cloudwatch:")[1].split('"')[0]
            schedules[action] = r["Properties"]
    return schedules


def test_health_alarms_are_silent_while_office_hours_keep_the_environment_asleep(assembly):
    """The five health alarms treat missing data as breaching: without this they fire every night."""
    templates = assembly(OFFICE_HOURS)
    alarms = _resources(templates, "Airflow", "AWS::CloudWatch::Alarm")
    health = {k for k in alarms if k.startswith("MonitoringSchedulerSilent") or "BelowDesired" in k}
    assert len(health) == 5
    schedules = _alarm_schedules(templates)
    assert set(schedules) == {"disableAlarmActions", "enableAlarmActions"}
    assert schedules["disableAlarmActions"]["ScheduleExpression"] == "cron(0 19 ? * MON-FRI *)"
    assert schedules["enableAlarmActions"]["ScheduleExpression"] == f"cron({ALARM_WAKE_GRACE_MINUTES} 7 ? * MON-FRI *)"
    for props in schedules.values():
        silenced = {ref["Ref"] for ref in json.loads(json.dumps(props["Target"]["Input"]))["Fn::Join"][1] if isinstance(ref, dict)}
        assert health <= silenced
        assert any(k.startswith("MonitoringAlb5xx") for k in silenced)


def test_alarms_stay_loud_without_office_hours(assembly):
    assert _alarm_schedules(assembly(BASE)) == {}


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("cron(0 7 ? * MON-FRI *)", "cron(30 7 ? * MON-FRI *)"),
        ("cron(45 7 ? * MON-FRI *)", "cron(15 8 ? * MON-FRI *)"),
        ("cron(40 6-8 ? * MON-FRI *)", "cron(10 7-9 ? * MON-FRI *)"),
        ("cron(40 23 ? * MON-FRI *)", None),
        ("cron(0/5 7 ? * MON-FRI *)", None),
        ("cron(0 * ? * MON-FRI *)", None),
    ],
)
def test_shift_cron(expression, expected):
    assert shift_cron(expression, 30) == expected
