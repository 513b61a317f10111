"""Defect 1: RunTask off the heartbeat, concurrent, paced by token buckets, backoff on throttling."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from airflow_ecs_fargate.executor import EcsFargateExecutor
from airflow_ecs_fargate.rate_limit import TokenBucket, backoff_delay
from tests.executor.conftest import BOTH_STOCK_FAILS, OURS, arn_of, make_workload, settle, settle_until, task_events


def throttled(op: str = "RunTask") -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, op)


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_heartbeat_does_not_wait_for_run_task(cls, aws, make_executor):
    """10 launches at 0.3 s RunTask latency: the stock heartbeat blocks ~3 s, ours returns before
    even one call could have finished (the margin keeps this stable on a loaded 2-core machine)."""
    ex = make_executor(cls, launch_concurrency=10)
    ex.ecs.latency["run_task"] = 0.3
    workloads = [make_workload(f"t{i}") for i in range(10)]
    for w in workloads:
        ex.queue_workload(w, session=None)

    started = time.monotonic()
    ex.heartbeat()
    heartbeat_seconds = time.monotonic() - started

    assert heartbeat_seconds < 0.2, f"heartbeat took {heartbeat_seconds:.2f} s"
    ex.flush(5)
    assert all(ex.event_buffer[w.ti.key][0] == "running" for w in workloads)
    # Ten calls ran side by side in the pool: about one latency, not ten.
    assert ex.ecs.max_active >= 5
    assert {thread for op, _, _, thread in ex.ecs.calls if op == "run_task"} != {"MainThread"}


def test_launch_rate_paced_by_task_launch_bucket(aws, make_executor):
    """Burst of 5 then 50 launches/s: 15 launches need at least 10/50 = 0.2 s."""
    ex = make_executor(
        EcsFargateExecutor,
        task_launches_per_second=50,
        task_launch_burst=5,
        run_task_calls_per_second=1000,
        run_task_call_burst=1000,
        launch_concurrency=8,
    )
    for i in range(15):
        ex.queue_workload(make_workload(f"t{i}"), session=None)
    ex.heartbeat()
    ex.flush(5)
    times = sorted(t for op, _, t, _ in ex.ecs.calls if op == "run_task")
    assert len(times) == 15
    span = times[-1] - times[0]
    assert span >= 0.18, f"15 launches in {span:.3f} s exceed 5 burst + 50/s"
    # Token-bucket invariant: by time t at most burst + rate * (t - t0) calls (+1 for clock skew).
    for n, t in enumerate(times, start=1):
        assert n <= 5 + 50 * (t - times[0]) + 1


def test_run_task_call_rate_paced_separately(aws, make_executor):
    """The RunTask API-call bucket (20/s on Fargate) applies even when launch tokens are plenty."""
    ex = make_executor(
        EcsFargateExecutor,
        run_task_calls_per_second=40,
        run_task_call_burst=2,
        task_launches_per_second=1000,
        task_launch_burst=1000,
    )
    for i in range(6):
        ex.queue_workload(make_workload(f"t{i}"), session=None)
    ex.heartbeat()
    ex.flush(5)
    times = sorted(t for op, _, t, _ in ex.ecs.calls if op == "run_task")
    assert len(times) == 6
    assert times[-1] - times[0] >= 4 / 40 * 0.9


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_throttling_is_retried_without_using_up_attempts(cls, aws, make_executor):
    """ThrottlingException twice, max_run_task_attempts=1: ours backs off and launches; stock fails the task."""
    ex = make_executor(cls, max_run_task_attempts=1)
    ex.ecs.script["run_task"] = [throttled(), throttled()]
    w = make_workload()
    ex.queue_workload(w, session=None)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and w.ti.key not in ex.event_buffer:
        settle(ex)
        time.sleep(0.01)
    assert ex.event_buffer[w.ti.key][0] == "running"
    assert len(ex.ecs.of("run_task")) == 3
    assert any("throttled" in extra for _, extra in task_events(ex, w.ti.key))


def test_throttling_drains_the_shared_bucket(aws, make_executor):
    ex = make_executor(EcsFargateExecutor, run_task_calls_per_second=20, run_task_call_burst=20)
    ex.ecs.script["run_task"] = [throttled()]
    w = make_workload()
    ex.queue_workload(w, session=None)
    ex.heartbeat()
    ex.flush(5)
    # After AWS said "slow down", the next call must wait for a refill (1/20 s), not use the burst.
    assert ex.launch_queue.call_bucket.try_acquire() > 0


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_token_bucket_burst_then_sustained_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=20, capacity=100, clock=clock)
    assert all(bucket.try_acquire() == 0.0 for _ in range(100))
    assert bucket.try_acquire() == pytest.approx(1 / 20)
    clock.now += 1.0
    assert sum(1 for _ in range(40) if bucket.try_acquire() == 0.0) == 20
    clock.now += 1000
    assert sum(1 for _ in range(200) if bucket.try_acquire() == 0.0) == 100  # capped at the burst


def test_token_bucket_rejects_nonsense():
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, capacity=1)
    with pytest.raises(ValueError, match="capacity"):
        TokenBucket(rate=1, capacity=0)


def test_backoff_delay_grows_is_capped_and_jittered():
    assert backoff_delay(1, 2, 60, rng=lambda: 0.0) == 1.0
    assert backoff_delay(1, 2, 60, rng=lambda: 1.0) == 2.0
    assert backoff_delay(4, 2, 60, rng=lambda: 1.0) == 16.0
    assert backoff_delay(40, 2, 60, rng=lambda: 1.0) == 60.0
    samples = {round(backoff_delay(3, 2, 60), 6) for _ in range(50)}
    assert len(samples) > 10 and all(4.0 <= s <= 8.0 for s in samples)


@pytest.mark.parametrize("cls", [OURS])
def test_ecs_task_arn_reported_as_external_executor_id(cls, aws, make_executor):
    ex = make_executor(cls)
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    state, info = ex.event_buffer[w.ti.key]
    assert state == "running" and info == arn_of(ex, w.ti.key)
    # RunTask carried an idempotency token, so a retried call cannot start a second task.
    assert ex.ecs.of("run_task")[0]["clientToken"]


def test_a_heartbeat_takes_queued_workloads_in_for_at_most_its_budget(aws, make_executor):
    """A burst of queued tasks on a loaded host cannot hold one heartbeat past queue_budget_seconds:
    the rest stay queued for the next heartbeat, and every one is launched."""
    ex = make_executor(EcsFargateExecutor, queue_budget_seconds="0.000001")
    workloads = [make_workload(f"t{i}") for i in range(5)]
    for w in workloads:
        ex.queue_workload(w, session=None)
    ex.heartbeat()
    assert len(ex.queued_tasks) == 4  # one per heartbeat at least
    settle_until(ex, lambda: all(ex.event_buffer.get(w.ti.key, ("",))[0] == "running" for w in workloads))
    assert not ex.queued_tasks and len(ex.ecs.of("run_task")) == 5
