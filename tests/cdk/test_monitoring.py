"""Metrics, dashboard and alarms in the templates (constructs_lib/monitoring.py)."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from constructs_lib.monitoring import AIRFLOW_METRICS, NAMESPACE, metrics_environment
from tests.cdk.conftest import resources_of


def alarms_by_id(template: dict) -> dict[str, dict]:
    """Alarm construct ID (``MonitoringSchedulerSilent``...) -> properties."""
    found = {}
    for logical_id, resource in resources_of(template, "AWS::CloudWatch::Alarm").items():
        found[logical_id[: -8]] = resource["Properties"]
    return found


def single_metric(alarm: dict) -> dict:
    """``{"Namespace", "MetricName", "Dimensions", "Stat"}`` of a one-metric alarm (either form)."""
    if "MetricName" in alarm:
        return {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions"), "Stat": alarm["Statistic"]}
    (query,) = alarm["Metrics"]
    stat = query["MetricStat"]
    return {**stat["Metric"], "Stat": stat["Stat"]}


def env_of(template: dict, container: str) -> dict:
    for td in resources_of(template, "AWS::ECS::TaskDefinition").values():
        for c in td["Properties"]["ContainerDefinitions"]:
            if c["Name"] == container:
                return {e["Name"]: e["Value"] for e in c.get("Environment", [])}
    raise AssertionError(f"no container {container}")


def test_airflows_own_allow_list_validator_passes_exactly_the_catalogue():
    from airflow._shared.observability.metrics.validators import get_validator

    validator = get_validator(metrics_environment("d")["AIRFLOW__METRICS__METRICS_ALLOW_LIST"], None)
    assert all(validator.test(name) for name in AIRFLOW_METRICS)
    for other in ("dag.example.task.duration", "executor.open_slots.EcsFargateExecutor", "ti_failures_x", "pool.open_slots"):
        assert not validator.test(other), other


@pytest.mark.parametrize("container", ["scheduler", "api-server", "dag-processor", "triggerer"])
def test_every_airflow_component_sends_emf_metrics(dev, container):
    env = env_of(dev.template("airflow").to_json(), container)
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert env["AIRFLOW__METRICS__STATSD_CUSTOM_CLIENT_PATH"] == "airflow_ecs_fargate.emf_stats.EmfStatsClient"
    assert env["AIRFLOW_METRICS_DEPLOYMENT"] == "airflow-dev"


def test_workers_send_task_metrics(dev):
    env = env_of(dev.template("cluster").to_json(), "worker")
    assert env["AIRFLOW__METRICS__METRICS_ALLOW_LIST"] == metrics_environment("x")["AIRFLOW__METRICS__METRICS_ALLOW_LIST"]


def test_dev_alarms(dev):
    template = dev.template("airflow").to_json()
    alarms = alarms_by_id(template)
    assert set(alarms) == {
        "MonitoringSchedulerSilent", "MonitoringTaskFailures", "MonitoringSubmitFailures", "MonitoringDbStorageLow",
        "MonitoringAlb5xx", "MonitoringSchedulerBelowDesired", "MonitoringApiServerBelowDesired",
        "MonitoringDagProcessorBelowDesired", "MonitoringTriggererBelowDesired",
    }
    silent = alarms["MonitoringSchedulerSilent"]
    metric = single_metric(silent)
    assert (metric["Namespace"], metric["MetricName"], metric["Stat"]) == (NAMESPACE, "scheduler_heartbeat", "Sum")
    assert metric["Dimensions"] == [{"Name": "Deployment", "Value": "airflow-dev"}]
    assert silent["ComparisonOperator"] == "LessThanThreshold" and silent["Threshold"] == 1
    assert silent["TreatMissingData"] == "breaching", "a dead scheduler sends nothing: silence must alarm"
    assert single_metric(alarms["MonitoringSubmitFailures"])["MetricName"] == "ecs_fargate.submit_failures"
    assert single_metric(alarms["MonitoringTaskFailures"])["MetricName"] == "ti_failures"
    storage = alarms["MonitoringDbStorageLow"]
    assert single_metric(storage)["MetricName"] == "FreeStorageSpace" and storage["Threshold"] == 20 * 0.1 * 1024**3
    below = alarms["MonitoringSchedulerBelowDesired"]
    names = {q.get("MetricStat", {}).get("Metric", {}).get("MetricName") for q in below["Metrics"]}
    assert {"RunningTaskCount", "DesiredTaskCount"} <= names
    assert "desired - running" in [q.get("Expression") for q in below["Metrics"]]
    alb = alarms["MonitoringAlb5xx"]
    assert {"HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"} <= {
        q.get("MetricStat", {}).get("Metric", {}).get("MetricName") for q in alb["Metrics"]
    }


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(any_config):
    template = any_config.template("airflow").to_json()
    topics = resources_of(template, "AWS::SNS::Topic")
    assert len(topics) == 1
    topic_id = next(iter(topics))
    for name, alarm in alarms_by_id(template).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name
        assert alarm.get("AlarmDescription"), name


def test_no_email_subscription_unless_configured(dev, synth):
    assert not resources_of(dev.template("airflow").to_json(), "AWS::SNS::Subscription")
    with_email = synth("alarm-email-no-metrics").template("airflow")
    with_email.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})


def test_without_airflow_metrics_no_metric_alarms_env_or_dashboard(synth):
    template = synth("alarm-email-no-metrics").template("airflow").to_json()
    assert not {"MonitoringSchedulerSilent", "MonitoringTaskFailures", "MonitoringSubmitFailures"} & set(alarms_by_id(template))
    assert "AIRFLOW__METRICS__STATSD_ON" not in env_of(template, "scheduler")
    assert not resources_of(template, "AWS::CloudWatch::Dashboard")


def test_lean_without_container_insights_alarms_on_missing_cpu_datapoints(synth):
    alarms = alarms_by_id(synth("lean").template("airflow").to_json())
    below = alarms["MonitoringApiServerBelowDesired"]
    metric = single_metric(below)
    assert (metric["Namespace"], metric["MetricName"], metric["Stat"]) == ("AWS/ECS", "CPUUtilization", "SampleCount")
    assert below["TreatMissingData"] == "breaching"


def test_dashboard_shows_services_alb_db_and_airflow_metrics(dev):
    template = dev.template("airflow")
    dashboards = template.find_resources("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body = json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])
    for needle in ("CPUUtilization", "MemoryUtilization", "RunningTaskCount", "HTTPCode_ELB_5XX_Count",
                   "TargetResponseTime", "DatabaseConnections", "FreeStorageSpace", *AIRFLOW_METRICS):
        assert needle in body, needle
    template.has_resource_properties("AWS::SNS::Topic", {"DisplayName": Match.string_like_regexp("airflow-dev")})
