"""The launch queue: workloads waiting for RunTask, the launch threads, and their retries.

The scheduler thread adds launches (:meth:`LaunchQueue.add`), hands the due ones to a bounded
pool of launch threads (:meth:`LaunchQueue.dispatch_ready`) and decides what a failed attempt
comes to (:meth:`LaunchQueue.retry_or_fail`). The launch threads take a RunTask-call token and
the launch tokens (this scheduler's share of the Fargate quotas), call RunTask (falling back from
Fargate Spot to on-demand) and report one :class:`LaunchOutcome` per attempt. The queue changes
no Airflow state itself: it calls back the executor to fail a task or log a task event.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from airflow_ecs_fargate import metrics
from airflow_ecs_fargate.errors import (
    SubmitErrorKind,
    classify_exception,
    classify_failure_reasons,
    describe_exception,
    is_capacity_reason,
    needs_new_client,
)
from airflow_ecs_fargate.rate_limit import ShuttingDown, TokenBucket, backoff_delay
from airflow_ecs_fargate.run_task_config import on_demand_kwargs, uses_fargate_spot
from airflow_ecs_fargate.quota import Share
from airflow_ecs_fargate.settings import ExecutorSettings
from airflow_ecs_fargate.workload_command import OVERRIDES_MAX_CHARS, compact_command, overrides_chars

EVENT_SUBMIT_FAILED = "ecs task submit failure"
EVENT_SUBMIT_RETRY = "ecs task submit retry"
EVENT_SPOT_FALLBACK = "ecs fargate spot fallback"
EVENT_LAUNCHED_AFTER_RETRIES = "ecs task launched after retries"


class WorkloadTooLarge(ValueError):
    """The RunTask overrides exceed ECS's limit even with the compact workload command."""


@dataclass
class Launch:
    """An Airflow workload waiting for, or in, a RunTask call."""

    key: Any
    command: list[Any]
    queue: str | None
    executor_config: dict
    queued_at: float
    attempt: int = 1  # counts toward max_run_task_attempts
    throttled: int = 0  # throttling retries (do not count)
    transient: int = 0  # transient retries (do not count; bounded by the workload's deadline)
    client_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    cancelled: bool = False
    reasons: list[str] = field(default_factory=list)
    #: (seconds since queued, reason) of each transient failure, for the task's events.
    transient_reasons: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class LaunchOutcome:
    """What one launch attempt came to (reported by a launch thread).

    :param arn: the task ECS started; None if none.
    :param kind: the failure's class when nothing started.
    :param reason: the failure, for the task's events.
    :param spot_fallback_reason: why Fargate Spot was given up for on-demand; empty if it was not.
    :param cancelled: the launch was revoked or the executor is shutting down; nothing to apply.
    """

    launch: Launch
    arn: str | None = None
    kind: SubmitErrorKind | None = None
    reason: str = ""
    spot_fallback_reason: str = ""
    cancelled: bool = False


def story(failures: list[tuple[float, str]]) -> str:
    """Group repeated failure reasons: ``N x reason (+first s .. +last s)``."""
    groups: dict[str, list[float]] = {}
    for at, reason in failures:
        groups.setdefault(reason, []).append(at)
    return "; ".join(
        f"{len(times)} x {reason} (+{times[0]:.0f} s" + (f" .. +{times[-1]:.0f} s)" if len(times) > 1 else ")")
        for reason, times in groups.items()
    )


def failure_reasons(response: dict) -> list[str]:
    """The ``failures`` reasons of a RunTask response."""
    return [f.get("reason") or str(f) for f in response.get("failures") or []]


class LaunchQueue:
    """Launches by Airflow key, the not-before heap, the launch threads, the quota token buckets.

    :param settings: the executor's settings (``launch_concurrency``, retry delays, Spot fallback).
    :param share: this scheduler's share of the account's Fargate quotas (token bucket rates).
    :param max_attempts: ``max_run_task_attempts``; attempts beyond it fail the task.
    :param deadline_seconds: ``[scheduler] task_queued_timeout``: a workload token's life from queueing (s).
    :param clock: monotonic clock, seconds.
    :param stop: set when the executor shuts down; token waits and batches end early.
    :param client: returns the ECS client to call.
    :param client_stale: called on a launch thread after an error that needs a new client.
    :param build_kwargs: ``(key, command, queue, executor_config) -> RunTask kwargs`` (no clientToken).
    :param serialize: a workload object -> its inline ``execute_workload`` command.
    :param resolve_launch_type: fills in a launch type the cluster needs (may call DescribeClusters).
    :param report: called on the launch thread with each :class:`LaunchOutcome`.
    :param fail: ``(key, event, reason)``: fail the Airflow task (scheduler thread).
    :param log_event: ``(key, event, extra)``: add an event to the task's log (scheduler thread).
    """

    def __init__(
        self,
        *,
        settings: ExecutorSettings,
        share: Share,
        max_attempts: int,
        deadline_seconds: float,
        clock: Callable[[], float],
        stop: threading.Event,
        client: Callable[[], Any],
        client_stale: Callable[[], None],
        build_kwargs: Callable[[Any, list, str | None, dict], dict],
        serialize: Callable[[Any], list[str]],
        resolve_launch_type: Callable[[dict], dict],
        report: Callable[[LaunchOutcome], None],
        fail: Callable[[Any, str, str], None],
        log_event: Callable[[Any, str, str], None],
    ):
        self.settings = settings
        self.max_attempts = max_attempts
        #: Seconds a launch may wait before its workload token (valid task_queued_timeout s) expires.
        self.deadline_seconds = deadline_seconds
        self._clock = clock
        self._stop = stop
        self._client = client
        self._client_stale = client_stale
        self._build_kwargs = build_kwargs
        self._serialize = serialize
        self._resolve_launch_type = resolve_launch_type
        self._report = report
        self._fail = fail
        self._log_event = log_event
        #: RunTask calls per second (tokens: calls), this scheduler's share; drained on throttling.
        self.call_bucket = TokenBucket(share.run_task_calls_per_second, share.run_task_call_burst)
        #: Task launches per second (tokens: tasks), this scheduler's share.
        self.launch_bucket = TokenBucket(share.task_launches_per_second, share.task_launch_burst)
        self._pool = ThreadPoolExecutor(max_workers=settings.launch_concurrency, thread_name_prefix="ecs-fargate-launch")
        self._ready: list[tuple[float, int, Launch]] = []  # heap by not-before time
        self._seq = itertools.count()
        self._launches: dict[Any, Launch] = {}  # key -> launch not yet running on ECS
        self._in_flight: set[Future] = set()  # launches and other pool calls not finished yet
        self._in_flight_lock = threading.Lock()

    # ------------------------------------------------------------------ the queue (scheduler thread)

    @property
    def thread_count(self) -> int:
        """How many launch threads the pool runs at most (``launch_concurrency``)."""
        return self._pool._max_workers

    def add(self, launch: Launch, delay: float = 0.0) -> None:
        """Queue ``launch`` (replacing any launch of its key) to be dispatched after ``delay`` seconds."""
        self._launches[launch.key] = launch
        self.schedule(launch, delay)

    def schedule(self, launch: Launch, delay: float) -> None:
        """Make ``launch`` due again after ``delay`` seconds."""
        heapq.heappush(self._ready, (self._clock() + delay, next(self._seq), launch))

    def pop(self, key: Any) -> Launch | None:
        """Remove and return ``key``'s launch (it no longer waits for RunTask), or None."""
        return self._launches.pop(key, None)

    def is_current(self, launch: Launch) -> bool:
        """``launch`` is still its key's launch and was not cancelled."""
        return self._launches.get(launch.key) is launch and not launch.cancelled

    def cancel_all(self) -> None:
        """Cancel every queued launch (a RunTask in flight reports ``cancelled``)."""
        for launch in self._launches.values():
            launch.cancelled = True

    def deadline(self, launch: Launch) -> float:
        """Last moment (monotonic s) to launch: its queued time + task_queued_timeout - margin."""
        return launch.queued_at + self.deadline_seconds - self.settings.transient_retry_margin_seconds

    def dispatch_ready(self) -> None:
        """Hand the launches that are due to the launch threads.

        They go as at most ``launch_concurrency`` batches (striped, so queue order is kept
        across threads): one pool submission per launch costs ~30 us of scheduler time, which
        for 1,000 queued tasks alone breaks the 50 ms heartbeat budget (bench/README.md).
        A launch past its deadline fails instead.
        """
        now = self._clock()
        ready: list[Launch] = []
        while self._ready and self._ready[0][0] <= now:
            _, _, launch = heapq.heappop(self._ready)
            if launch.cancelled or self._launches.get(launch.key) is not launch:
                continue
            if now > self.deadline(launch):
                self._fail_launch(
                    launch,
                    f"Not launched within [scheduler] task_queued_timeout ({self.deadline_seconds:.0f} s), "
                    f"after which its workload token is invalid (stopped {self.settings.transient_retry_margin_seconds:.0f} s "
                    f"before). Reasons: {'; '.join(launch.reasons) or 'none'}"
                    + (f"; transient failures: {story(launch.transient_reasons)}" if launch.transient_reasons else ""),
                )
                continue
            ready.append(launch)
        workers = max(1, self.settings.launch_concurrency)
        for i in range(min(workers, len(ready))):
            self._track_future(self._pool.submit(self._launch_batch_in_worker, ready[i::workers]))

    def retry_or_fail(self, launch: Launch, kind: SubmitErrorKind, reason: str) -> None:
        """Decide what a failed attempt comes to: a retry (with backoff) or the task's failure.

        Transient failures retry until the deadline (:meth:`retry_transient`); permanent ones fail
        at once; throttling retries without counting; the others count toward
        ``max_run_task_attempts``. A capacity failure retries with a new idempotency token.
        """
        key = launch.key
        if kind is SubmitErrorKind.TRANSIENT:
            self.retry_transient(launch, reason)
            return
        launch.reasons.append(f"attempt {launch.attempt}: {reason}")
        if kind is SubmitErrorKind.PERMANENT:
            self._fail_launch(launch, f"RunTask failed permanently, not retried: {reason}")
            return
        if kind is SubmitErrorKind.THROTTLED:
            launch.throttled += 1
            delay = backoff_delay(launch.throttled, self.settings.submit_retry_base_seconds / 2, self.settings.submit_retry_max_seconds)
            if launch.throttled == 1:
                self._log_event(
                    key,
                    EVENT_SUBMIT_RETRY,
                    f"RunTask throttled ({reason}); retrying with backoff "
                    "(throttling retries do not count toward max_run_task_attempts; further ones are not logged).",
                )
            self.schedule(launch, delay)
            return
        if launch.attempt >= self.max_attempts:
            self._fail_launch(
                launch,
                f"RunTask failed {launch.attempt} times ({kind.value}); giving up. Reasons: " + "; ".join(launch.reasons),
            )
            return
        delay = backoff_delay(launch.attempt, self.settings.submit_retry_base_seconds, self.settings.submit_retry_max_seconds)
        self._log_event(
            key,
            EVENT_SUBMIT_RETRY,
            f"RunTask attempt {launch.attempt} of {self.max_attempts} failed ({kind.value}): "
            f"{reason}. Retrying in {delay:.1f} s.",
        )
        launch.attempt += 1
        if kind is SubmitErrorKind.CAPACITY:
            # Nothing was launched: a new token. An unknown failure keeps its token, so that a
            # retry of a call ECS did act on returns that task instead of launching a second one.
            launch.client_token = uuid.uuid4().hex
        self.schedule(launch, delay)

    def retry_transient(self, launch: Launch, reason: str) -> None:
        """Retry a transient RunTask failure with jittered backoff until the workload's deadline.

        Network errors, 5xx and expired or refreshing credentials say nothing about the task: an
        outage should delay it, not fail it. They do not use up ``max_run_task_attempts``; the
        bound is the workload token's life (``[scheduler] task_queued_timeout`` from its queueing),
        less ``transient_retry_margin_seconds``. Retries keep the idempotency token.
        """
        now = self._clock()
        launch.transient += 1
        launch.transient_reasons.append((now - launch.queued_at, reason))
        delay = backoff_delay(launch.transient, self.settings.submit_retry_base_seconds, self.settings.submit_retry_max_seconds)
        deadline = self.deadline(launch)
        if now >= deadline:
            self._fail_launch(
                launch,
                f"RunTask failed transiently {launch.transient} times over {now - launch.queued_at:.0f} s; its workload "
                f"token expires {self.deadline_seconds:.0f} s ([scheduler] task_queued_timeout) after queueing, "
                f"so the executor stopped retrying {self.settings.transient_retry_margin_seconds:.0f} s before that. "
                f"Failures: {story(launch.transient_reasons)}"
                + (f". Earlier: {'; '.join(launch.reasons)}" if launch.reasons else ""),
            )
            return
        if launch.transient == 1:
            self._log_event(
                launch.key,
                EVENT_SUBMIT_RETRY,
                f"RunTask failed transiently ({reason}); retrying with jittered backoff for up to "
                f"{deadline - launch.queued_at:.0f} s after queueing (transient retries do not count toward "
                "max_run_task_attempts; the outcome is logged when it launches or gives up).",
            )
        self.schedule(launch, min(delay, max(0.0, deadline - now)))

    def relaunch(self, launch: Launch, reason: str) -> None:
        """Queue ``launch`` again after its ECS task stopped before starting, with a new token and backoff."""
        launch.reasons.append(f"attempt {launch.attempt}: {reason}")
        launch.attempt += 1
        launch.client_token = uuid.uuid4().hex
        self.add(
            launch,
            backoff_delay(launch.attempt - 1, self.settings.submit_retry_base_seconds, self.settings.submit_retry_max_seconds),
        )

    def _fail_launch(self, launch: Launch, reason: str) -> None:
        self._fail(launch.key, EVENT_SUBMIT_FAILED, reason)

    # ------------------------------------------------------------------ the pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future | None:
        """Run ``fn(*args)`` on a launch thread, followed by :meth:`in_flight`; None once shut down."""
        try:
            future = self._pool.submit(fn, *args)
        except RuntimeError:  # pool already shut down
            return None
        self._track_future(future)
        return future

    def warm_up(self) -> None:
        """Start every launch thread now: starting them lazily costs ~3 ms each inside the first
        heartbeat that has work for them."""
        barrier = threading.Barrier(self.settings.launch_concurrency, timeout=5)
        for _ in range(self.settings.launch_concurrency):
            self._pool.submit(_wait_at, barrier)

    def in_flight(self) -> set[Future]:
        """The launches and other pool calls not finished yet."""
        with self._in_flight_lock:
            return {f for f in self._in_flight if not f.done()}

    def shutdown(self) -> None:
        """Stop the launch threads without waiting; calls not started yet are cancelled."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _track_future(self, future: Future) -> None:
        with self._in_flight_lock:
            self._in_flight.add(future)
        future.add_done_callback(self._forget_future)

    def _forget_future(self, future: Future) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(future)

    # ------------------------------------------------------------------ launch threads

    def _launch_batch_in_worker(self, batch: list[Launch]) -> None:
        """Launch ``batch`` one after another on this launch thread (see :meth:`dispatch_ready`)."""
        for launch in batch:
            if self._stop.is_set():
                return
            self._launch_in_worker(launch)

    def _launch_in_worker(self, launch: Launch) -> None:
        """RunTask for one launch (launch thread); the outcome is reported."""
        outcome = LaunchOutcome(launch)
        try:
            if launch.cancelled:
                outcome.cancelled = True
                return
            if launch.command and not isinstance(launch.command[0], str):
                launch.command = self._serialize(launch.command[0])
            kwargs = self.fit_overrides(launch)
            kwargs = self._resolve_launch_type(kwargs)
            fallback = self.settings.spot_fallback_to_on_demand and uses_fargate_spot(kwargs)
            try:
                response = self._call_run_task(kwargs, launch.client_token, launch)
                reasons = failure_reasons(response)
                if fallback and not response.get("tasks") and reasons and all(map(is_capacity_reason, reasons)):
                    outcome.spot_fallback_reason = "; ".join(reasons)
            except Exception as e:
                if not (fallback and classify_exception(e) is SubmitErrorKind.CAPACITY):
                    raise
                outcome.spot_fallback_reason = describe_exception(e)
            if outcome.spot_fallback_reason:
                on_demand = on_demand_kwargs(kwargs, self.settings.on_demand_capacity_provider)
                # A different idempotency token: same token with other parameters is an error.
                response = self._call_run_task(on_demand, launch.client_token[:32] + "-on-demand", launch)
            tasks = response.get("tasks") or []
            reasons = failure_reasons(response)
            if tasks:
                outcome.arn = tasks[0]["taskArn"]
            elif reasons:
                outcome.kind = classify_failure_reasons(reasons)
                outcome.reason = "RunTask failures: " + "; ".join(reasons)
            else:
                outcome.kind = SubmitErrorKind.UNKNOWN
                outcome.reason = f"RunTask returned neither tasks nor failures: {response!r}"
        except ShuttingDown:
            outcome.cancelled = True
        except Exception as e:
            outcome.kind = classify_exception(e)
            outcome.reason = describe_exception(e)
            if needs_new_client(e):
                self._client_stale()
            if outcome.kind is SubmitErrorKind.THROTTLED:
                self.call_bucket.drain()
        finally:
            self._report(outcome)

    def fit_overrides(self, launch: Launch) -> dict:
        """RunTask kwargs whose ``overrides`` fit ECS's 8,192 characters.

        Uses the inline ``execute_workload --json-string`` command when it fits, else the compact
        one (:mod:`airflow_ecs_fargate.workload_command`), which then replaces ``launch.command``.

        :raises WorkloadTooLarge: even the compact command does not fit (a permanent failure).
        """
        kwargs = self._build_kwargs(launch.key, launch.command, launch.queue, launch.executor_config)
        inline = overrides_chars(kwargs["overrides"])
        if inline <= OVERRIDES_MAX_CHARS:
            return kwargs
        launch.command = compact_command(launch.command)
        kwargs = self._build_kwargs(launch.key, launch.command, launch.queue, launch.executor_config)
        compact = overrides_chars(kwargs["overrides"])
        if compact <= OVERRIDES_MAX_CHARS:
            return kwargs
        raise WorkloadTooLarge(
            f"RunTask overrides would be {compact} characters even with the compact workload command "
            f"({inline} inline); ECS accepts at most {OVERRIDES_MAX_CHARS}. Shorten executor_config overrides "
            "(environment values above all) or the dag/task/run ids."
        )

    def _call_run_task(self, kwargs: dict, client_token: str, launch: Launch) -> dict:
        """Take a RunTask-call token and ``count`` launch tokens (waiting here), then call RunTask."""
        self.call_bucket.acquire(1, stop=self._stop)
        self.launch_bucket.acquire(kwargs.get("count", 1), stop=self._stop)
        if launch.cancelled:
            raise ShuttingDown()
        metrics.count_run_task_call()
        return self._client().run_task(clientToken=client_token, **kwargs)


def _wait_at(barrier: threading.Barrier) -> None:
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
