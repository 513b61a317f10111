"""Defect 5: stopped ECS tasks judged by their essential containers; never left RUNNING."""

from __future__ import annotations

import pytest

from airflow_ecs_fargate.executor import EcsFargateExecutor
from airflow_ecs_fargate.task_state import Verdict, essential_container_names, judge_task
from tests.executor.conftest import BOTH_PASS, BOTH_STOCK_FAILS, arn_of, make_workload, poll, settle, task_events


def launched(ex, task_id="t1"):
    w = make_workload(task_id)
    ex.queue_workload(w, session=None)
    settle(ex)
    return w, arn_of(ex, w.ti.key)


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_started_task_killed_by_oom_fails_at_once_with_reason(cls, aws, make_executor):
    ex = make_executor(cls)
    w, arn = launched(ex)
    aws.stop_task(
        arn,
        exit_codes={"base": 137, "sidecar": 0},
        reasons={"base": "OutOfMemoryError: Container killed due to memory usage"},
        stopped_reason="Essential container in task exited",
    )
    poll(ex)
    state, info = ex.event_buffer[w.ti.key]
    assert state == "failed"
    assert len(ex.ecs.of("run_task")) == 1  # not relaunched
    (event, extra), = [(e, x) for e, x in task_events(ex, w.ti.key) if e == "ecs task stopped"]
    assert "137" in extra and "OutOfMemoryError" in extra and "Essential container in task exited" in extra


@pytest.mark.parametrize("cls", BOTH_PASS)
def test_never_started_task_is_relaunched(cls, aws, make_executor):
    ex = make_executor(cls)
    w, arn = launched(ex)
    aws.stop_task(arn, started=False, exit_codes={}, stopped_reason="CannotPullContainerError: pull access denied")
    poll(ex)
    if isinstance(ex, EcsFargateExecutor):
        settle(ex)
        ex.flush(2)
        import time

        time.sleep(0.06)  # the relaunch waits out a short backoff
        settle(ex)
        relaunches = [x for e, x in task_events(ex, w.ti.key) if e == "ecs task relaunch"]
        assert relaunches and "CannotPullContainerError" in relaunches[0]
        run_tasks = ex.ecs.of("run_task")
        assert len(run_tasks) == 2
        assert run_tasks[0]["overrides"] == run_tasks[1]["overrides"]  # same command, same token
        assert ex.event_buffer[w.ti.key][0] == "running"
        assert arn_of(ex, w.ti.key) != arn
    else:
        assert ex.event_buffer[w.ti.key][0] == "running"
        assert len(ex.pending_workloads) == 1  # stock re-queues it for a later attempt


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_non_essential_sidecar_exit_code_is_ignored(cls, aws, make_executor):
    ex = make_executor(cls)
    w, arn = launched(ex)
    aws.add_sidecar(arn)
    aws.stop_task(arn, exit_codes={"base": 0, "sidecar": 1})
    poll(ex)
    assert ex.event_buffer[w.ti.key][0] == "success"


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_stopped_task_without_exit_code_is_settled(cls, aws, make_executor):
    ex = make_executor(cls)
    w, arn = launched(ex)
    aws.stop_task(arn, exit_codes={}, stopped_reason="Your Spot Task was interrupted.", stop_code="SpotInterruption")
    poll(ex)
    state, info = ex.event_buffer[w.ti.key]
    assert state == "failed"
    assert "Spot Task was interrupted" in info


def test_running_task_stays_running_and_is_not_reported_again(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    w, arn = launched(ex)
    ex.event_buffer.clear()
    aws.start_task(arn)
    poll(ex)
    assert ex.event_buffer == {}
    assert ex.tracker.get(arn).started


def task(**kw):
    base = {"taskArn": "arn:t", "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "startedAt": "2026-01-01"}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "t, essential, verdict",
    [
        (task(lastStatus="RUNNING", desiredStatus="RUNNING", containers=[{"name": "base"}]), None, Verdict.RUNNING),
        (task(containers=[{"name": "base", "exitCode": 0}]), {"base"}, Verdict.SUCCESS),
        (task(containers=[{"name": "base", "exitCode": 1}]), {"base"}, Verdict.FAILED),
        (task(containers=[{"name": "base", "exitCode": 0}, {"name": "s", "exitCode": 2}]), {"base"}, Verdict.SUCCESS),
        (task(containers=[{"name": "base", "exitCode": 0}, {"name": "s", "exitCode": 2}]), {"base", "s"}, Verdict.FAILED),
        (task(containers=[{"name": "base"}]), {"base"}, Verdict.FAILED),
        (task(startedAt=None, containers=[{"name": "base"}]), {"base"}, Verdict.RELAUNCH),
        # desired STOPPED and the essential container exited: settled before lastStatus catches up
        (task(lastStatus="DEPROVISIONING", containers=[{"name": "base", "exitCode": 3}]), {"base"}, Verdict.FAILED),
        (task(lastStatus="DEPROVISIONING", containers=[{"name": "base"}]), {"base"}, Verdict.RUNNING),
        # unknown essential set: every container counts
        (task(containers=[{"name": "a", "exitCode": 0}, {"name": "b", "exitCode": 9}]), {"zzz"}, Verdict.FAILED),
    ],
)
def test_judge_task_rule(t, essential, verdict):
    assert judge_task(t, essential).verdict is verdict


def test_essential_flag_defaults_to_true():
    td = {"containerDefinitions": [{"name": "a"}, {"name": "b", "essential": False}, {"name": "c", "essential": True}]}
    assert essential_container_names(td) == {"a", "c"}
