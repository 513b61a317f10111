"""Defect 6: nothing escapes heartbeat(); the task concerned fails with a clear message."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError

from airflow_ecs_fargate.executor import EcsFargateExecutor
from tests.executor.conftest import BOTH_STOCK_FAILS, make_workload, poll, settle, settle_until, task_events


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_no_credentials_on_run_task_does_not_stop_the_scheduler(cls, aws, make_executor):
    """Missing credentials (e.g. while the task role's credentials refresh) delay the launch."""
    ex = make_executor(cls, max_run_task_attempts=1)
    ex.ecs.script["run_task"] = [NoCredentialsError()]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)  # stock: AttributeError ('NoCredentialsError' has no attribute 'response') escapes
    settle_until(ex, lambda: w.ti.key in ex.event_buffer, timeout=2)
    assert ex.event_buffer[w.ti.key][0] == "running"
    assert any("Unable to locate credentials" in extra for _, extra in task_events(ex, w.ti.key))


def test_endpoint_unreachable_fails_task_with_clear_message(aws, make_executor, monkeypatch):
    monkeypatch.setenv("AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT", "0.6")
    ex = make_executor(EcsFargateExecutor, max_run_task_attempts=2, transient_retry_margin_seconds="0.3")
    ex.ecs.script["run_task"] = [EndpointConnectionError(endpoint_url="https://ecs.x")] * 1000
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: w.ti.key in ex.event_buffer)
    state, info = ex.event_buffer[w.ti.key]
    assert state == "failed" and "Could not connect to the endpoint URL" in info
    assert task_events(ex, w.ti.key)[-1][0] == "ecs task submit failure"


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_describe_tasks_errors_do_not_escape_heartbeat(cls, aws, make_executor):
    ex = make_executor(cls)
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    ex.ecs.script["describe_tasks"] = [NoCredentialsError(), EndpointConnectionError(endpoint_url="https://e")]
    poll(ex)
    poll(ex)
    assert ex.event_buffer[w.ti.key][0] == "running"  # nothing settled on a failed read
    assert w.ti.key in ex.running


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
@pytest.mark.parametrize("bad", [{"name": "other"}, {"command": ["rm", "-rf", "/"]}], ids=["name", "command"])
def test_bad_executor_config_fails_only_that_task(cls, bad, aws, make_executor):
    ex = make_executor(cls)
    bad_w, good_w = make_workload("bad", executor_config=bad), make_workload("good")
    ex.queue_workload(bad_w, session=None)
    ex.queue_workload(good_w, session=None)
    settle(ex)  # stock: ValueError escapes heartbeat
    state, info = ex.event_buffer[bad_w.ti.key]
    assert state == "failed" and list(bad)[0] in info
    assert bad_w.ti.key not in ex.running
    assert ex.event_buffer[good_w.ti.key][0] == "running"
    assert [e for e, _ in task_events(ex, bad_w.ti.key)] == ["ecs task submit failure"]


def test_executor_config_without_the_airflow_container_fails_clearly(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    w = make_workload(executor_config={"overrides": {"containerOverrides": [{"name": "wrong", "cpu": 1}]}})
    ex.queue_workload(w, session=None)
    settle(ex)
    state, info = ex.event_buffer[w.ti.key]
    assert state == "failed" and "No such container found by container name: base" in info
    assert ex.ecs.of("run_task") == []


def test_unexpected_bug_in_sync_is_contained(aws, make_executor, monkeypatch):
    ex = make_executor(EcsFargateExecutor)

    def boom():
        raise RuntimeError("bug")

    monkeypatch.setattr(ex.launch_queue, "dispatch_ready", boom)
    ex.queue_workload(make_workload(), session=None)
    ex.heartbeat()  # does not raise
