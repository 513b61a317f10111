"""Defect 7: revoke_task stops the ECS task (StopTask) so task_queued_timeout can clean up."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from botocore.exceptions import EndpointConnectionError

from airflow_ecs_fargate.executor import EcsFargateExecutor
from tests.executor.conftest import BOTH_STOCK_FAILS, arn_of, make_workload, settle


def as_ti(workload, external_executor_id=None):
    """The scheduler passes its TaskInstance; revoke_task needs only .key and .external_executor_id."""
    return SimpleNamespace(key=workload.ti.key, external_executor_id=external_executor_id)


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_revoke_stops_the_provisioning_ecs_task(cls, aws, make_executor):
    ex = make_executor(cls)
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    arn = arn_of(ex, w.ti.key)
    ex.event_buffer.clear()

    ex.revoke_task(ti=as_ti(w, arn))  # stock: NotImplementedError (the scheduler then skips cleanup)
    ex.flush(5)

    assert [kw["task"] for kw in ex.ecs.of("stop_task")] == [arn]
    assert aws.task(arn).desired_status == "STOPPED"
    assert w.ti.key not in ex.running
    assert ex.event_buffer == {}  # revoke must not add events
    ex.poll_now()
    settle(ex)
    assert ex.event_buffer == {}  # and the stopped task is no longer tracked


def test_revoke_of_a_task_waiting_for_retry_cancels_its_launch(aws, make_executor):
    ex = make_executor(EcsFargateExecutor, submit_retry_base_seconds=0.2, submit_retry_max_seconds=0.2)
    ex.ecs.script["run_task"] = [EndpointConnectionError(endpoint_url="https://e")]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    ex.revoke_task(ti=as_ti(w))
    time.sleep(0.25)
    settle(ex)
    assert len(ex.ecs.of("run_task")) == 1
    assert ex.ecs.of("stop_task") == []
    assert w.ti.key not in ex.event_buffer


def test_revoke_while_run_task_in_flight_stops_the_new_task(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    release = threading.Event()
    real = ex.ecs._client.run_task

    def slow_run_task(**kw):
        release.wait(5)
        return real(**kw)

    ex.ecs._client = SimpleNamespace(
        run_task=slow_run_task,
        stop_task=ex.ecs._client.stop_task,
        describe_tasks=ex.ecs._client.describe_tasks,
        meta=ex.ecs._client.meta,
    )
    w = make_workload()
    ex.queue_workload(w, session=None)
    ex.heartbeat()
    ex.revoke_task(ti=as_ti(w))
    release.set()
    ex.flush(5)
    ex.flush(5)
    stopped = [kw["task"] for kw in ex.ecs.of("stop_task")]
    assert len(stopped) == 1 and aws.task(stopped[0]).desired_status == "STOPPED"
    assert w.ti.key not in ex.event_buffer


def test_terminate_stops_every_tracked_task(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    ws = [make_workload(f"t{i}") for i in range(3)]
    for w in ws:
        ex.queue_workload(w, session=None)
    settle(ex)
    arns = {arn_of(ex, w.ti.key) for w in ws}
    ex.terminate()
    assert {kw["task"] for kw in ex.ecs.of("stop_task")} == arns


def test_end_does_not_wait_for_running_tasks(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    w = make_workload()
    ex.queue_workload(w, session=None)
    ex.heartbeat()
    started = time.monotonic()
    ex.end()
    assert time.monotonic() - started < 2
    assert ex.event_buffer[w.ti.key][0] == "running"  # the in-flight launch was recorded
