"""Defect 2: DescribeTasks on an interval, in batches of up to 100, off the heartbeat."""

from __future__ import annotations

import math
import time

import pytest

from airflow_ecs_fargate.executor import EcsFargateExecutor
from tests.executor.conftest import BOTH_STOCK_FAILS, make_workload, settle

N_TASKS = 120


def launch_many(ex, n):
    workloads = [make_workload(f"t{i}") for i in range(n)]
    for w in workloads:
        ex.queue_workload(w, session=None)
    settle(ex)
    assert all(ex.event_buffer[w.ti.key][0] == "running" for w in workloads)
    return workloads


FAST = {
    "task_launches_per_second": 10000,
    "task_launch_burst": 10000,
    "run_task_calls_per_second": 10000,
    "run_task_call_burst": 10000,
}


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_describe_calls_do_not_grow_with_scheduler_loops(cls, aws, make_executor):
    """Five scheduler loops with 120 running tasks: stock calls DescribeTasks 5 x 2 times; ours
    at most once per interval (ceil(120/100) = 2 calls)."""
    ex = make_executor(cls, describe_tasks_interval_seconds=10, **FAST)
    launch_many(ex, N_TASKS)
    before = len(ex.ecs.of("describe_tasks"))
    for _ in range(5):
        settle(ex)
    calls = ex.ecs.of("describe_tasks")[before:]
    assert len(calls) <= math.ceil(N_TASKS / 100)


def test_one_round_uses_batches_of_100(aws, make_executor):
    ex = make_executor(EcsFargateExecutor, **FAST)
    launch_many(ex, N_TASKS)
    ex.ecs.calls.clear()
    ex.poll_now()
    settle(ex)
    sizes = [len(kw["tasks"]) for kw in ex.ecs.of("describe_tasks")]
    assert sorted(sizes) == [20, 100]


def test_polls_follow_the_configured_interval(aws, make_executor):
    ex = make_executor(EcsFargateExecutor, describe_tasks_interval_seconds=0.1)
    launch_many(ex, 3)
    ex.ecs.calls.clear()
    deadline = time.monotonic() + 0.55
    loops = 0
    while time.monotonic() < deadline:
        settle(ex)
        loops += 1
        time.sleep(0.005)
    rounds = len(ex.ecs.of("describe_tasks"))
    assert loops > 20
    assert 3 <= rounds <= 6  # about 0.55 / 0.1, not one per loop


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_slow_describe_tasks_does_not_block_heartbeat(cls, aws, make_executor):
    ex = make_executor(cls, describe_tasks_interval_seconds=0.01)
    launch_many(ex, 2)
    ex.ecs.latency["describe_tasks"] = 0.3
    time.sleep(0.02)
    started = time.monotonic()
    ex.heartbeat()
    assert time.monotonic() - started < 0.1
    if isinstance(ex, EcsFargateExecutor):
        assert ex.poller.last_round is not None  # the round did start, on the poll thread
