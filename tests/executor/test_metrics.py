"""Airflow's metrics and the bundled executor's counters as CloudWatch EMF records on stdout.

Airflow builds its StatsD logger from ``[metrics]`` (``statsd_custom_client_path`` names our
client); each Stats call that passes ``metrics_allow_list`` must come out as one embedded metric
format record that CloudWatch Logs turns into a metric.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from airflow_ecs_fargate import metrics
from airflow_ecs_fargate.emf_stats import EmfStatsClient, emf_record
from airflow_ecs_fargate.executor import EcsFargateExecutor
from tests.executor.conftest import make_workload, settle, settle_until
from tests.executor.test_capacity_providers import NO_SPOT, SPOT_FIRST

ALLOW = "^scheduler_heartbeat$,^executor\\.open_slots$,^task\\.duration$,^ecs_fargate\\."


@pytest.fixture
def emf_metrics(monkeypatch):
    """Configure Airflow's [metrics] as the CDK app does (see constructs_lib/monitoring.py)."""
    env = {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_CUSTOM_CLIENT_PATH": "airflow_ecs_fargate.emf_stats.EmfStatsClient",
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__METRICS__METRICS_ALLOW_LIST": ALLOW,
        "AIRFLOW_METRICS_NAMESPACE": "Airflow",
        "AIRFLOW_METRICS_DEPLOYMENT": "airflow-test",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield
    from airflow._shared.observability.metrics import stats
    from airflow._shared.observability.metrics.base_stats_logger import NoStatsLogger

    stats.initialize(factory=NoStatsLogger, export_legacy_names=False)


def records(capfd) -> list[dict]:
    out = capfd.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def values(recs: list[dict], name: str) -> list[float]:
    return [r[name] for r in recs if name in r]


def test_statsd_lines_become_emf_records():
    rec = emf_record("airflow.executor.open_slots:7|g", prefix="airflow", namespace="NS", deployment="d", now_ms=5)
    assert rec == {
        "_aws": {
            "Timestamp": 5,
            "CloudWatchMetrics": [
                {"Namespace": "NS", "Dimensions": [["Deployment"]], "Metrics": [{"Name": "executor.open_slots", "Unit": "None"}]}
            ],
        },
        "Deployment": "d",
        "executor.open_slots": 7.0,
    }
    assert emf_record("x:12.5|ms", prefix=None, namespace="N", deployment="d", now_ms=1)["_aws"]["CloudWatchMetrics"][0][
        "Metrics"
    ] == [{"Name": "x", "Unit": "Milliseconds"}]
    assert emf_record("x:1|c|@0.25", prefix=None, namespace="N", deployment="d", now_ms=1)["x"] == 4.0
    assert emf_record("x:1|s", prefix=None, namespace="N", deployment="d", now_ms=1) is None
    assert emf_record("not statsd", prefix=None, namespace="N", deployment="d", now_ms=1) is None


def test_airflow_stats_calls_reach_stdout_as_emf_through_airflows_own_config(emf_metrics, capfd):
    from airflow._shared.observability.metrics import stats
    from airflow.observability.metrics import stats_utils

    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    stats.incr("scheduler_heartbeat", 1, 1)
    stats.gauge("executor.open_slots", 31, tags={"status": "open"})
    stats.timing("task.duration", 1500.0, tags={"dag_id": "d", "task_id": "t"})
    stats.incr("dag_processing.other_thing")  # not allow-listed: never sent
    recs = records(capfd)
    assert values(recs, "scheduler_heartbeat") == [1.0]
    assert values(recs, "executor.open_slots") == [31.0]
    assert values(recs, "task.duration") == [1500.0]
    assert not values(recs, "dag_processing.other_thing")
    for rec in recs:
        # one dimension only: a dimension per DAG or task would be a billed metric each
        assert rec["Deployment"] == "airflow-test" and "dag_id" not in rec
        assert rec["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Airflow"


def test_client_is_a_statsd_client_as_airflow_requires():
    from statsd import StatsClient

    assert issubclass(EmfStatsClient, StatsClient)


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "RunTask")


def test_executor_counts_run_task_calls_spot_fallbacks_and_capacity_failures(emf_metrics, capfd, aws, make_executor):
    ex = make_executor(EcsFargateExecutor, launch_type=None, capacity_provider_strategy=SPOT_FIRST)
    ex.ecs.script["run_task"] = [NO_SPOT]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    assert ex.event_buffer[w.ti.key][0] == "running"
    recs = records(capfd)
    assert sum(values(recs, metrics.RUN_TASK_CALLS)) == 2  # Spot, then on-demand
    assert sum(values(recs, metrics.SPOT_FALLBACKS)) == 1
    assert sum(values(recs, metrics.CAPACITY_FAILURES)) == 1
    assert not values(recs, metrics.SUBMIT_FAILURES)


def test_executor_counts_throttles_and_submit_failures(emf_metrics, capfd, aws, make_executor):
    ex = make_executor(EcsFargateExecutor, max_run_task_attempts=1)
    ex.ecs.script["run_task"] = [throttled(), throttled()]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: w.ti.key in ex.event_buffer and ex.event_buffer[w.ti.key][0] == "running")
    recs = records(capfd)
    assert sum(values(recs, metrics.RUN_TASK_CALLS)) == 3
    assert sum(values(recs, metrics.THROTTLES)) == 2
    assert sum(values(recs, metrics.SUBMIT_FAILURES)) == 2


def test_metrics_fall_back_to_the_providers_stats_when_airflow_s_stats_module_has_no_incr(monkeypatch):
    """Airflow 3.2.2's ``airflow._shared.observability.metrics.stats`` has no module-level ``incr``
    (found by the upgrade rehearsal: every launch failed with AttributeError); the counters then
    go through the provider's ``Stats`` instead of failing every launch."""
    import importlib
    import sys
    import types

    import airflow_ecs_fargate.metrics as metrics
    from airflow.providers.common.compat.sdk import Stats

    import airflow._shared.observability.metrics as package

    without_incr = types.ModuleType("airflow._shared.observability.metrics.stats")
    monkeypatch.setitem(sys.modules, "airflow._shared.observability.metrics.stats", without_incr)
    monkeypatch.setattr(package, "stats", without_incr)
    try:
        reloaded = importlib.reload(metrics)
        assert reloaded._stats is Stats
        reloaded.count_run_task_call()  # no AttributeError
    finally:
        monkeypatch.undo()
        importlib.reload(metrics)
