"""EcsFargateExecutor: the provider's AwsEcsExecutor, made non-blocking and strict about failures.

Threading model. The scheduler thread (``heartbeat()``/``sync()``) never calls AWS. It
queues launches, hands the ready ones to a bounded launch pool, hands one DescribeTasks round
per ``describe_tasks_interval_seconds`` to a single poll thread, and applies the outcomes those
threads put on a queue. All Airflow-visible state (``running``, ``event_buffer``, task events)
is changed on the scheduler thread only; worker threads only call AWS and report back.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException
from airflow.providers.amazon.aws.executors.ecs.ecs_executor import AwsEcsExecutor
from airflow.providers.amazon.aws.executors.ecs.utils import CONFIG_DEFAULTS, CONFIG_GROUP_NAME, AllEcsConfigKeys
from airflow.providers.amazon.aws.hooks.ecs import EcsHook
from botocore.exceptions import ClientError

from airflow_ecs_fargate.errors import (
    SubmitErrorKind,
    classify_exception,
    classify_failure_reasons,
    describe_exception,
    is_capacity_reason,
    needs_new_client,
)
from airflow_ecs_fargate.polling import DESCRIBE_TASKS_MAX_ARNS, Poller, PollOutcome, batches
from airflow_ecs_fargate.queues import parse_queues
from airflow_ecs_fargate import metrics
from airflow_ecs_fargate.rate_limit import ShuttingDown, TokenBucket, backoff_delay
from airflow_ecs_fargate.run_task_config import (
    build_run_task_kwargs,
    on_demand_kwargs,
    uses_fargate_spot,
)
from airflow_ecs_fargate.settings import ExecutorSettings
from airflow_ecs_fargate.task_config import FIX as EXECUTOR_CONFIG_FIX
from airflow_ecs_fargate.task_config import executor_config_errors, run_task_parameters, task_override_parameters
from airflow_ecs_fargate.task_logs import read_stream, stream_name
from airflow_ecs_fargate.task_state import Verdict
from airflow_ecs_fargate.workload_command import OVERRIDES_MAX_CHARS, compact_command, overrides_chars

if TYPE_CHECKING:
    from airflow.models.taskinstance import TaskInstance

EVENT_SUBMIT_FAILED = "ecs task submit failure"
EVENT_SUBMIT_RETRY = "ecs task submit retry"
EVENT_SPOT_FALLBACK = "ecs fargate spot fallback"
EVENT_TASK_STOPPED = "ecs task stopped"
EVENT_TASK_RELAUNCH = "ecs task relaunch"
EVENT_TASK_REVOKED = "ecs task revoked"
EVENT_TASK_LOST = "ecs task lost"
EVENT_LAUNCHED_AFTER_RETRIES = "ecs task launched after retries"


class EcsHealthCheckFailed(AirflowException):
    """The start-up health check failed; ``kind`` says how (:class:`SubmitErrorKind`).

    :param kind: the failure's class; PERMANENT stops the scheduler, any other lets it start.
    :param reason: ``Type: message`` of the error.
    """

    def __init__(self, kind: SubmitErrorKind, reason: str):
        super().__init__(f"ECS Executor health check has failed ({kind.value}): {reason}")
        self.kind = kind
        self.reason = reason


class WorkloadTooLarge(ValueError):
    """The RunTask overrides exceed ECS's limit even with the compact workload command."""


@dataclass
class _Launch:
    """An Airflow workload waiting for, or in, a RunTask call."""

    key: Any
    command: list[str]
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


def _story(failures: list[tuple[float, str]]) -> str:
    """Group repeated failure reasons: ``N x reason (+first s .. +last s)``."""
    groups: dict[str, list[float]] = {}
    for at, reason in failures:
        groups.setdefault(reason, []).append(at)
    return "; ".join(
        f"{len(times)} x {reason} (+{times[0]:.0f} s" + (f" .. +{times[-1]:.0f} s)" if len(times) > 1 else ")")
        for reason, times in groups.items()
    )


@dataclass
class _Tracked:
    """A launched ECS task the executor follows with DescribeTasks."""

    key: Any
    arn: str
    launch: _Launch | None  # None for adopted tasks: no workload token to relaunch with
    launched_at: float
    started: bool = False


@dataclass
class _LaunchOutcome:
    launch: _Launch
    arn: str | None = None
    kind: SubmitErrorKind | None = None
    reason: str = ""
    spot_fallback_reason: str = ""
    cancelled: bool = False


class EcsFargateExecutor(AwsEcsExecutor):
    """Run each Airflow task as its own ECS task on Fargate, without blocking the scheduler.

    Reads the stock ``[aws_ecs_executor]`` keys (``cluster``, ``container_name``,
    ``task_definition``, ``launch_type``, ``capacity_provider_strategy`` (JSON or the provider's
    documented Python literal), ``subnets``,
    ``security_groups``, ``assign_public_ip``, ``platform_version``, ``run_task_kwargs``,
    ``conn_id``, ``region_name``, ``max_run_task_attempts``, ``check_health_on_startup``) plus
    the keys of :class:`~airflow_ecs_fargate.settings.ExecutorSettings`. Per-task
    ``executor_config`` is merged recursively over the RunTask kwargs (lists replaced).

    Differences from the stock executor, each covered by a test in ``tests/executor``:
    RunTask runs in a bounded thread pool paced by token buckets (this scheduler's share of the
    Fargate quotas, ``scheduler_count``), DescribeTasks runs on its own thread every
    ``describe_tasks_interval_seconds``, submit failures are classified (permanent fail at once;
    capacity, throttling, known outages and unknown failures retried, see
    :mod:`airflow_ecs_fargate.errors`), the start-up health check lets the scheduler start through
    an outage,
    Fargate Spot falls back to on-demand, stopped tasks are judged by their essential containers
    (see :mod:`airflow_ecs_fargate.task_state`), no exception escapes ``heartbeat()``,
    ``revoke_task`` stops the ECS task, adopted tasks are never relaunched with an empty token,
    and the cluster lookup uses the configured connection and region. Every failure is written
    to the task's own log with ``log_task_event``.

    :raises ValueError: at construction, on malformed settings (message names the key).
    """

    # Narrower than the provider's attributes: __init__ makes the attempts an int, and the provider
    # does not start without a container name (its check_health and settings validation).
    max_run_task_attempts: int  # type: ignore[assignment]
    container_name: str

    def __init__(self, *args, **kwargs):
        self._needs_cluster_lookup = False
        self._resolved_launch_type: str | None = None
        super().__init__(*args, **kwargs)
        self.settings = ExecutorSettings.from_conf(self.conf)
        # Strong references to recent task events until the scheduler has saved them; see
        # log_task_event. Bounded: events are saved on every scheduler loop.
        self._event_log_refs: deque = deque(maxlen=10_000)
        self.max_run_task_attempts = int(self.max_run_task_attempts)
        self._clock = time.monotonic
        self._stop = threading.Event()
        self._client_lock = threading.Lock()
        self._client_stale = False
        self._launch_type_lock = threading.Lock()
        #: This scheduler's share of the account's Fargate quotas (``scheduler_count``).
        self.share = self.settings.share()
        self._call_bucket = TokenBucket(self.share.run_task_calls_per_second, self.share.run_task_call_burst)
        self._launch_bucket = TokenBucket(self.share.task_launches_per_second, self.share.task_launch_burst)
        self._launch_pool = ThreadPoolExecutor(
            max_workers=self.settings.launch_concurrency, thread_name_prefix="ecs-fargate-launch"
        )
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._ready: list[tuple[float, int, _Launch]] = []  # heap by not-before time
        self._seq = itertools.count()
        self._launches: dict[Any, _Launch] = {}  # key -> launch not yet running on ECS
        self._in_flight: set[Future] = set()  # launches and StopTask calls not finished yet
        self._in_flight_lock = threading.Lock()
        self._tracked: dict[str, _Tracked] = {}  # ECS task ARN -> tracked task
        self._arn_by_key: dict[Any, str] = {}
        #: The DescribeTasks rounds (:mod:`airflow_ecs_fargate.polling`).
        self.poller = Poller(
            client=self.ecs_client,
            cluster=self.cluster,
            container_name=self.container_name,
            interval_seconds=self.settings.describe_tasks_interval_seconds,
            task_definition_retry_seconds=self.settings.task_definition_retry_seconds,
            clock=self._clock,
            report=self._results.put,
            client_stale=self.mark_client_stale,
            log=self.log,
        )
        self._queues = parse_queues(self.settings.queues)
        self._logs_client = None
        from airflow.configuration import conf as global_conf

        #: Seconds a launch may wait before its workload token (valid task_queued_timeout s) expires.
        self._launch_deadline_seconds = global_conf.getfloat("scheduler", "task_queued_timeout", fallback=600.0)

    # ------------------------------------------------------------------ configuration

    def _pool_connections(self) -> int:
        """HTTP connections the ECS client may hold: every launch thread, the poll thread, and one spare.

        botocore's default pool is 10 connections; with 10 launch threads and a poll thread urllib3
        warned "Connection pool is full, discarding connection" and reopened TLS connections.
        """
        settings = getattr(self, "settings", None) or ExecutorSettings.from_conf(self.conf)
        return settings.launch_concurrency + 2

    def _botocore_config(self):
        """The ECS client's botocore ``Config``: pool size and an explicit retry mode.

        The retry mode is ``api_retry_mode`` with ``api_max_attempts`` attempts (botocore's
        "Retries" guide: legacy, standard, adaptive), never botocore's implicit default, so that
        how many times a call is retried before the executor classifies it does not depend on the
        environment (``AWS_RETRY_MODE``, ``~/.aws/config``).
        """
        from botocore.config import Config

        settings = getattr(self, "settings", None) or ExecutorSettings.from_conf(self.conf)
        return Config(
            max_pool_connections=self._pool_connections(),
            retries={"mode": settings.api_retry_mode, "total_max_attempts": settings.api_max_attempts},
        )

    def _ecs_hook(self) -> EcsHook:
        region = self.conf.get(CONFIG_GROUP_NAME, AllEcsConfigKeys.REGION_NAME, fallback=None)
        return EcsHook(aws_conn_id=self._aws_conn_id(), region_name=region, config=self._botocore_config())

    def load_ecs_connection(self, check_connection: bool = True):
        """The stock loader, with a connection pool as large as the threads that share the client."""
        self.ecs = self._ecs_hook().conn
        self.attempts_since_last_successful_connection += 1
        if check_connection:
            self.check_health()
            self.attempts_since_last_successful_connection = 0

    def _run_task_kwargs(self, task_id, cmd, queue, exec_config):
        """The stock kwargs builder, with the queue's size (``queues`` setting) under ``executor_config``."""
        size = self._queues.get(queue) if queue else None
        queue_kwargs = size.run_task_kwargs() if size is not None else {}
        if queue_kwargs:
            from airflow.utils.helpers import merge_dicts

            exec_config = merge_dicts(queue_kwargs, exec_config or {})
        kwargs = super()._run_task_kwargs(task_id, cmd, queue, exec_config)
        if "capacityProviderStrategy" in queue_kwargs:
            kwargs.pop("launchType", None)
        return kwargs

    def _load_run_kwargs(self) -> dict:
        kwargs, self._needs_cluster_lookup = build_run_task_kwargs(self.conf)
        self.get_container(kwargs["overrides"]["containerOverrides"])
        return kwargs

    def _aws_conn_id(self) -> str:
        return str(self.conf.get(
            CONFIG_GROUP_NAME, AllEcsConfigKeys.AWS_CONN_ID, fallback=CONFIG_DEFAULTS[AllEcsConfigKeys.AWS_CONN_ID]
        ))

    def mark_client_stale(self) -> None:
        """Make the next :meth:`ecs_client` call build a new client (after an expired or invalid credential).

        Safe from any thread.
        """
        self._client_stale = True

    def ecs_client(self):
        """The boto3 ECS client from the configured connection and region; rebuilt once after :meth:`mark_client_stale`.

        Safe from any thread; every AWS call of the executor goes through it.
        """
        if self._client_stale:
            with self._client_lock:
                if self._client_stale:
                    self.ecs = self._ecs_hook().conn
                    self._client_stale = False
        return self.ecs

    def _resolve_launch_type(self, kwargs: dict) -> dict:
        """Fill in launchType FARGATE when the cluster has no default capacity provider strategy.

        Runs on a worker thread, with the executor's client (configured conn_id and region).
        """
        if self._needs_cluster_lookup:
            with self._launch_type_lock:
                if self._needs_cluster_lookup:
                    cluster_name = self.run_task_kwargs.get("cluster", "default")
                    response = self.ecs_client().describe_clusters(clusters=[cluster_name])
                    clusters = response.get("clusters") or []
                    if not clusters:
                        reasons = [f.get("reason", "") for f in response.get("failures") or []]
                        raise ValueError(
                            f"ECS cluster {cluster_name!r} not found in the configured region "
                            f"(conn_id={self._aws_conn_id()!r}): {reasons}. Check [aws_ecs_executor] cluster "
                            "and region_name, or set launch_type / capacity_provider_strategy."
                        )
                    if not clusters[0].get("defaultCapacityProviderStrategy"):
                        self._resolved_launch_type = "FARGATE"
                    self._needs_cluster_lookup = False
        if self._resolved_launch_type and "launchType" not in kwargs and "capacityProviderStrategy" not in kwargs:
            kwargs["launchType"] = self._resolved_launch_type
        return kwargs

    # ------------------------------------------------------------------ scheduler-facing API

    def start(self):
        """Check ECS once (if ``check_health_on_startup``), then start the launch threads.

        The check is the stock probe (:meth:`check_health`), classified like every other ECS call
        (:func:`~airflow_ecs_fargate.errors.classify_exception`): a permanent failure (access
        denied, no such cluster, no region) stops the scheduler with the reason, as the stock
        executor does; any other failure (endpoint unreachable, 5xx, throttled, credentials not
        there yet, an unknown error) lets the executor start, and a background thread checks again
        with jittered backoff (``submit_retry_base_seconds`` doubling up to
        ``submit_retry_max_seconds``), logging each failure, until ECS answers. Launches meanwhile
        ride out the outage as transient failures.

        :raises EcsHealthCheckFailed: the check failed permanently.
        """
        check = self.conf.getboolean(CONFIG_GROUP_NAME, AllEcsConfigKeys.CHECK_HEALTH_ON_STARTUP, fallback=False)
        if check:
            self.log.info("Starting %s and determining health...", type(self).__name__)
            try:
                self.check_health()
            except EcsHealthCheckFailed as e:
                if e.kind is SubmitErrorKind.PERMANENT:
                    self.log.error("Stopping the Airflow scheduler from starting until the issue is resolved: %s", e)
                    raise
                self.log.warning(
                    "%s; starting anyway (a %s failure: launches are retried through it) and checking ECS "
                    "again until it answers.", e, e.kind.value,
                )
                threading.Thread(target=self._recheck_health, name="ecs-fargate-health", daemon=True).start()
        self.IS_BOTO_CONNECTION_HEALTHY = True
        # Load botocore's RunTask model now, not in the first heartbeat that checks a task's
        # executor_config (0.1-1 s the first time).
        run_task_parameters()
        task_override_parameters()
        # Start the launch threads now: starting them lazily costs ~3 ms each inside the first
        # heartbeat that has work for them.
        barrier = threading.Barrier(self.settings.launch_concurrency, timeout=5)
        for _ in range(self.settings.launch_concurrency):
            self._launch_pool.submit(self._wait_at, barrier)

    def check_health(self) -> None:
        """The stock probe: StopTask of a task id that cannot exist, on the configured client.

        ECS answering ``InvalidParameterException`` "task was not found" means the credentials,
        the permission and the cluster are fine (the provider's ``AwsEcsExecutor.check_health``).

        :raises EcsHealthCheckFailed: any other outcome, with its class (``kind``) and reason.
        """
        try:
            self.ecs_client().stop_task(cluster=self.cluster, task="a" * 32)
        except ClientError as e:
            error = e.response.get("Error", {}) if isinstance(e.response, dict) else {}
            if "InvalidParameterException" in str(error.get("Code", "")) and "task was not found" in str(
                error.get("Message", "")
            ):
                self.log.info("ECS Executor health check has succeeded.")
                return
            self._health_failed(e)
        except Exception as e:
            self._health_failed(e)
        raise EcsHealthCheckFailed(
            SubmitErrorKind.UNKNOWN, "StopTask of a task id that cannot exist did not fail, as it should have"
        )

    def _health_failed(self, error: Exception) -> None:
        if needs_new_client(error):
            self.mark_client_stale()
        raise EcsHealthCheckFailed(classify_exception(error), describe_exception(error)) from error

    def _recheck_health(self) -> None:
        """Background thread after a non-permanent start-up failure: check until ECS answers."""
        started = self._clock()
        checks = 0
        while True:
            checks += 1
            delay = backoff_delay(checks, self.settings.submit_retry_base_seconds, self.settings.submit_retry_max_seconds)
            if self._stop.wait(delay):
                return
            try:
                self.check_health()
            except EcsHealthCheckFailed as e:
                if e.kind is SubmitErrorKind.PERMANENT:
                    self.log.error(
                        "ECS answers again after %.0f s, but %s; launches fail with this reason until it is fixed.",
                        self._clock() - started, e,
                    )
                    return
                self.log.warning("%s; still checking (%d checks over %.0f s).", e, checks, self._clock() - started)
                continue
            except Exception:  # never let the thread die silently
                self.log.exception("ECS health re-check failed unexpectedly; still checking")
                continue
            self.log.info("ECS answers again after %.0f s (%d checks): the executor is healthy.", self._clock() - started, checks)
            return

    @staticmethod
    def _wait_at(barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass

    def log_task_event(self, *, event: str, extra: str, ti_key) -> None:
        """Add an event to the task's log table (shown in the UI), and keep it alive until saved.

        Airflow 3.3.2's ``SchedulerJobRunner._process_task_event_logs`` hands
        ``session.bulk_save_objects`` a generator that pops the ``Log`` objects off the executor's
        deque; SQLAlchemy keeps only weak references, so when two or more events are saved in one
        loop the rows are inserted empty (``NotNullViolation`` on ``log.event``) and every event of
        that loop is lost. Holding a reference here keeps the objects alive until they are flushed.
        """
        super().log_task_event(event=event, extra=extra, ti_key=ti_key)
        if self._task_event_logs:
            self._event_log_refs.append(self._task_event_logs[-1])

    def heartbeat(self) -> None:
        """Base heartbeat (trigger tasks, then ``sync()``); nothing raised here reaches the scheduler."""
        try:
            super().heartbeat()
        except Exception:
            self.log.exception("EcsFargateExecutor heartbeat failed; the scheduler keeps running")

    def _process_workloads(self, workload_items: Sequence[Any]) -> None:
        """Take queued workloads into the launch queue, for at most ``queue_budget_seconds``.

        Workloads not reached stay in ``queued_tasks`` (as with no open slot) and are taken by the
        next heartbeat: a burst of queued tasks on a loaded host cannot hold one heartbeat longer
        than the budget (plus one workload). At least one workload is taken per heartbeat.
        """
        from airflow.executors import workloads

        budget_ends = self._clock() + self.settings.queue_budget_seconds
        for index, workload in enumerate(workload_items):
            if index and self._clock() > budget_ends:
                break
            key = None
            try:
                if isinstance(workload, workloads.ExecuteTask):
                    key = self._ti_key(workload.ti)
                    self.queued_tasks.pop(key, None)
                    queue_name = workload.ti.queue
                    executor_config = workload.ti.executor_config or {}
                elif isinstance(workload, getattr(workloads, "ExecuteCallback", ())):
                    key = workload.callback.key
                    self.queued_callbacks.pop(key, None)
                    queue_name, executor_config = None, {}
                else:
                    self.log.error("%s cannot run workloads of type %s; dropped", type(self).__name__, type(workload))
                    continue
                self.running.add(key)
                self.execute_async(key=key, command=[workload], queue=queue_name, executor_config=executor_config)
            except Exception as e:
                self.log.exception("Could not queue workload %s", key)
                if key is not None:
                    self._fail(key, EVENT_SUBMIT_FAILED, f"The executor could not queue the task: {describe_exception(e)}")

    def execute_async(self, key, command, queue=None, executor_config=None):
        """Validate the workload and queue it for launch; never calls AWS.

        An invalid ``executor_config`` (not a dict, or one that sets ``name`` or ``command``, or
        one that cannot be merged into the RunTask kwargs) fails the task at once with the reason.
        """
        errors = executor_config_errors(executor_config)
        if errors:
            self._fail(key, EVENT_SUBMIT_FAILED, "; ".join(errors) + f". {EXECUTOR_CONFIG_FIX}")
            return
        executor_config = executor_config or {}
        # A workload object is serialized to its execute_workload command on a launch thread
        # (_launch_in_worker): at ~0.1 ms each, 1,000 of them would hold one heartbeat ~100 ms.
        command = list(command)
        if executor_config or queue in self._queues:
            # Building the RunTask kwargs costs ~0.1-0.2 ms (deep copy and merge); with an empty
            # executor_config there is nothing task-specific to validate, and a heartbeat that
            # queues 1,000 tasks must stay far below 50 ms (bench/README.md).
            try:
                self._run_task_kwargs(key, command, queue, executor_config)
            except Exception as e:
                self._fail(key, EVENT_SUBMIT_FAILED, f"executor_config cannot be applied: {describe_exception(e)}")
                return
        launch = _Launch(key, command, queue, executor_config, queued_at=self._clock())
        self._launches[key] = launch
        self._schedule(launch, 0.0)

    def sync(self) -> None:
        """Apply finished background work, dispatch ready launches, start a poll when due.

        Does no AWS call and never raises. Cost per call: O(results ready + launches ready),
        independent of the number of running ECS tasks.
        """
        try:
            self._drain_results()
            self._dispatch_ready()
            self.poller.maybe_poll(self._tracked_arns)
        except Exception:
            self.log.exception("EcsFargateExecutor sync failed; will retry on the next heartbeat")

    def revoke_task(self, *, ti: TaskInstance) -> None:
        """Forget the task and stop its ECS task (StopTask, on a worker thread).

        Called by the scheduler for tasks stuck in queued longer than ``[scheduler]
        task_queued_timeout``. Changes no Airflow state, adds no event-buffer entry, never raises.
        """
        try:
            key = self._ti_key(ti)
            launch = self._launches.pop(key, None)
            if launch is not None:
                launch.cancelled = True
            arn = self._arn_by_key.pop(key, None) or getattr(ti, "external_executor_id", None)
            if arn:
                self._tracked.pop(arn, None)
                self._submit_stop(arn, "Revoked by the Airflow scheduler (task stuck in queued)")
            self.running.discard(key)
            self.queued_tasks.pop(key, None)
            self.event_buffer.pop(key, None)
            self.log_task_event(
                event=EVENT_TASK_REVOKED,
                ti_key=key,
                extra=f"Revoked by the scheduler; ECS task {arn or '(none launched)'} is being stopped.",
            )
        except Exception:
            self.log.exception("revoke_task failed for %s", getattr(ti, "key", ti))

    def try_adopt_task_instances(self, tis: Sequence[TaskInstance]) -> Sequence[TaskInstance]:
        """Keep following the ECS tasks of a dead scheduler.

        Adopted tasks are tracked without a workload (its token is gone). If one stops before it
        started, it is failed with a clear reason instead of being relaunched with an empty token.
        TIs without an ARN, or whose ARN ECS does not know, are returned for the scheduler to reset.
        If DescribeTasks itself fails, every TI with an ARN is adopted and the poller settles them.

        Emits the stock executor's timer ``ecs_executor.adopt_task_instances.duration`` (ms), tagged
        ``team_name`` when the executor has a team, like the provider's ``AwsEcsExecutor``.
        """
        with metrics.adopt_timer(self.team_name):
            return self._adopt(tis)

    def _adopt(self, tis: Sequence[TaskInstance]) -> Sequence[TaskInstance]:
        by_arn = {ti.external_executor_id: ti for ti in tis if ti.external_executor_id}
        if not by_arn:
            return list(tis)
        known: dict[str, dict] = {}
        try:
            for batch in batches(list(by_arn), DESCRIBE_TASKS_MAX_ARNS):
                response = self.ecs_client().describe_tasks(cluster=self.cluster, tasks=batch)
                for task in response.get("tasks") or []:
                    known[task["taskArn"]] = task
        except Exception as e:
            self.log.warning("DescribeTasks failed during adoption (%s); adopting all %d tasks", e, len(by_arn))
            known = {arn: {} for arn in by_arn}
        adopted = []
        now = self._clock()
        for arn, ti in by_arn.items():
            if arn not in known:
                continue
            key = self._ti_key(ti)
            self._tracked[arn] = _Tracked(key, arn, None, launched_at=now, started=bool(known[arn].get("startedAt")))
            self._arn_by_key[key] = arn
            self.running.add(key)
            adopted.append(ti)
        if adopted:
            self.log.info("Adopted %d ECS tasks from a dead scheduler", len(adopted))
        return [ti for ti in tis if ti not in adopted]

    def end(self, heartbeat_interval=10):
        """Stop launching, wait up to ``shutdown_timeout_seconds`` for in-flight calls, record results.

        Running ECS tasks are left running: the next scheduler adopts them via their ARN.
        """
        try:
            self.flush(self.settings.shutdown_timeout_seconds)
        except Exception:
            self.log.exception("Failed to end %s cleanly", type(self).__name__)
        finally:
            self._shutdown()

    def terminate(self):
        """StopTask every tracked ECS task (concurrently), then shut the worker threads down."""
        try:
            for launch in self._launches.values():
                launch.cancelled = True
            futures = [self._submit_stop(arn, "Airflow executor received SIGTERM") for arn in list(self._tracked)]
            wait([f for f in futures if f], timeout=self.settings.shutdown_timeout_seconds)
        except Exception:
            self.log.exception("Failed to terminate %s", type(self).__name__)
        finally:
            self._shutdown()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for in-flight launches and polls, then apply their results (scheduler thread).

        For shutdown and tests; the heartbeat never calls it.

        :param timeout: seconds to wait at most.
        """
        deadline = self._clock() + timeout
        while True:
            with self._in_flight_lock:
                pending = {f for f in self._in_flight if not f.done()}
            poll_round = self.poller.round_in_flight()
            if poll_round is not None:
                pending.add(poll_round)
            if not pending:
                break
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            wait(pending, timeout=remaining)
        self._drain_results()

    def poll_now(self) -> None:
        """Make the next ``sync()`` start a DescribeTasks round regardless of the interval."""
        self.poller.poll_now()

    # ------------------------------------------------------------------ scheduler-thread internals

    def _ti_key(self, ti):
        """The executor key of a task instance, as the stock executor computes it."""
        # get_task_key exists on Airflow versions that key task instances by UUID (the provider's check).
        return self.get_task_key(ti) if self.supports_task_instance_uuid else ti.key  # type: ignore[attr-defined]

    def _fail(self, key, event: str, reason: str) -> None:
        self.log.error("Airflow task %s failed: %s", key, reason)
        self.log_task_event(event=event, ti_key=key, extra=reason)
        self._launches.pop(key, None)
        self.fail(key, info=reason)

    def _schedule(self, launch: _Launch, delay: float) -> None:
        heapq.heappush(self._ready, (self._clock() + delay, next(self._seq), launch))

    def _deadline(self, launch: _Launch) -> float:
        """Last moment (monotonic s) to launch: its queued time + task_queued_timeout - margin."""
        return launch.queued_at + self._launch_deadline_seconds - self.settings.transient_retry_margin_seconds

    def _dispatch_ready(self) -> None:
        """Hand the launches that are due to the launch threads.

        They go as at most ``launch_concurrency`` batches (striped, so queue order is kept
        across threads): one pool submission per launch costs ~30 us of scheduler time, which
        for 1,000 queued tasks alone breaks the 50 ms heartbeat budget (bench/README.md).
        """
        now = self._clock()
        ready: list[_Launch] = []
        while self._ready and self._ready[0][0] <= now:
            _, _, launch = heapq.heappop(self._ready)
            if launch.cancelled or self._launches.get(launch.key) is not launch:
                continue
            if now > self._deadline(launch):
                self._fail(
                    launch.key,
                    EVENT_SUBMIT_FAILED,
                    f"Not launched within [scheduler] task_queued_timeout ({self._launch_deadline_seconds:.0f} s), "
                    f"after which its workload token is invalid (stopped {self.settings.transient_retry_margin_seconds:.0f} s "
                    f"before). Reasons: {'; '.join(launch.reasons) or 'none'}"
                    + (f"; transient failures: {_story(launch.transient_reasons)}" if launch.transient_reasons else ""),
                )
                continue
            ready.append(launch)
        workers = max(1, self.settings.launch_concurrency)
        for i in range(min(workers, len(ready))):
            self._track_future(self._launch_pool.submit(self._launch_batch_in_worker, ready[i::workers]))

    def _tracked_arns(self) -> list[str]:
        return list(self._tracked)

    def _drain_results(self) -> None:
        while True:
            try:
                outcome = self._results.get_nowait()
            except queue.Empty:
                return
            try:
                if isinstance(outcome, _LaunchOutcome):
                    self._apply_launch(outcome)
                elif isinstance(outcome, PollOutcome):
                    self._apply_poll(outcome)
            except Exception:
                self.log.exception("Could not apply %s", type(outcome).__name__)

    def _apply_launch(self, outcome: _LaunchOutcome) -> None:
        metrics.count_launch_outcome(outcome)
        launch = outcome.launch
        key = launch.key
        current = self._launches.get(key) is launch and not launch.cancelled
        if outcome.arn:
            if not current:
                self._submit_stop(outcome.arn, "Airflow task was revoked while RunTask was in flight")
                return
            if outcome.spot_fallback_reason:
                self.log_task_event(
                    event=EVENT_SPOT_FALLBACK,
                    ti_key=key,
                    extra=f"Fargate Spot had no capacity ({outcome.spot_fallback_reason}); "
                    f"launched on {self.settings.on_demand_capacity_provider} instead as {outcome.arn}.",
                )
            if launch.transient:
                self.log_task_event(
                    event=EVENT_LAUNCHED_AFTER_RETRIES,
                    ti_key=key,
                    extra=f"Launched as {outcome.arn} after {launch.transient} transient RunTask failures over "
                    f"{self._clock() - launch.queued_at:.0f} s: {_story(launch.transient_reasons)}.",
                )
            self._launches.pop(key, None)
            self._tracked[outcome.arn] = _Tracked(key, outcome.arn, launch, launched_at=self._clock())
            self._arn_by_key[key] = outcome.arn
            self.running_state(key, outcome.arn)
            return
        if not current or outcome.cancelled:
            return
        kind = outcome.kind or SubmitErrorKind.UNKNOWN
        if kind is SubmitErrorKind.TRANSIENT:
            self._retry_transient(launch, outcome.reason)
            return
        launch.reasons.append(f"attempt {launch.attempt}: {outcome.reason}")
        if kind is SubmitErrorKind.PERMANENT:
            self._fail(key, EVENT_SUBMIT_FAILED, f"RunTask failed permanently, not retried: {outcome.reason}")
            return
        if kind is SubmitErrorKind.THROTTLED:
            launch.throttled += 1
            delay = backoff_delay(launch.throttled, self.settings.submit_retry_base_seconds / 2, self.settings.submit_retry_max_seconds)
            if launch.throttled == 1:
                self.log_task_event(
                    event=EVENT_SUBMIT_RETRY,
                    ti_key=key,
                    extra=f"RunTask throttled ({outcome.reason}); retrying with backoff "
                    "(throttling retries do not count toward max_run_task_attempts; further ones are not logged).",
                )
            self._schedule(launch, delay)
            return
        if launch.attempt >= self.max_run_task_attempts:
            self._fail(
                key,
                EVENT_SUBMIT_FAILED,
                f"RunTask failed {launch.attempt} times ({kind.value}); giving up. Reasons: " + "; ".join(launch.reasons),
            )
            return
        delay = backoff_delay(launch.attempt, self.settings.submit_retry_base_seconds, self.settings.submit_retry_max_seconds)
        self.log_task_event(
            event=EVENT_SUBMIT_RETRY,
            ti_key=key,
            extra=f"RunTask attempt {launch.attempt} of {self.max_run_task_attempts} failed ({kind.value}): "
            f"{outcome.reason}. Retrying in {delay:.1f} s.",
        )
        launch.attempt += 1
        if kind is SubmitErrorKind.CAPACITY:
            # Nothing was launched: a new token. An unknown failure keeps its token, so that a
            # retry of a call ECS did act on returns that task instead of launching a second one.
            launch.client_token = uuid.uuid4().hex
        self._schedule(launch, delay)

    def _retry_transient(self, launch: _Launch, reason: str) -> None:
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
        deadline = self._deadline(launch)
        if now >= deadline:
            self._fail(
                launch.key,
                EVENT_SUBMIT_FAILED,
                f"RunTask failed transiently {launch.transient} times over {now - launch.queued_at:.0f} s; its workload "
                f"token expires {self._launch_deadline_seconds:.0f} s ([scheduler] task_queued_timeout) after queueing, "
                f"so the executor stopped retrying {self.settings.transient_retry_margin_seconds:.0f} s before that. "
                f"Failures: {_story(launch.transient_reasons)}"
                + (f". Earlier: {'; '.join(launch.reasons)}" if launch.reasons else ""),
            )
            return
        if launch.transient == 1:
            self.log_task_event(
                event=EVENT_SUBMIT_RETRY,
                ti_key=launch.key,
                extra=f"RunTask failed transiently ({reason}); retrying with jittered backoff for up to "
                f"{deadline - launch.queued_at:.0f} s after queueing (transient retries do not count toward "
                "max_run_task_attempts; the outcome is logged when it launches or gives up).",
            )
        self._schedule(launch, min(delay, max(0.0, deadline - now)))

    def _apply_poll(self, outcome: PollOutcome) -> None:
        if outcome.error:
            self.log.warning("DescribeTasks round failed, retrying next interval: %s", outcome.error)
        for arn, judgement in outcome.judgements.items():
            tracked = self._tracked.get(arn)
            if tracked is None:
                continue
            tracked.started = tracked.started or judgement.started
            if judgement.verdict is Verdict.RUNNING:
                continue
            self._untrack(tracked)
            if judgement.verdict is Verdict.SUCCESS:
                self.success(tracked.key, info=judgement.reason)
            elif judgement.verdict is Verdict.FAILED:
                self._fail(tracked.key, EVENT_TASK_STOPPED, judgement.reason)
            else:
                self._relaunch_or_fail(tracked, judgement.reason)
        now = self._clock()
        for arn, reason in outcome.missing.items():
            tracked = self._tracked.get(arn)
            if tracked is None or now - tracked.launched_at < self.settings.missing_task_grace_seconds:
                continue
            self._untrack(tracked)
            self._fail(
                tracked.key,
                EVENT_TASK_LOST,
                f"ECS no longer knows task {arn} (DescribeTasks: {reason}); it is not relaunched, to avoid a "
                "second copy of a task that may have run.",
            )

    def _untrack(self, tracked: _Tracked) -> None:
        self._tracked.pop(tracked.arn, None)
        if self._arn_by_key.get(tracked.key) == tracked.arn:
            del self._arn_by_key[tracked.key]

    def _relaunch_or_fail(self, tracked: _Tracked, reason: str) -> None:
        launch = tracked.launch
        if launch is None or not launch.command:
            self._fail(
                tracked.key,
                EVENT_TASK_STOPPED,
                f"{reason} It was adopted after a scheduler restart, so the executor has no valid workload "
                "token to relaunch it with; failing it instead (Airflow task retries apply).",
            )
            return
        if launch.attempt >= self.max_run_task_attempts:
            self._fail(
                tracked.key,
                EVENT_TASK_STOPPED,
                f"{reason} Launched {launch.attempt} times (max_run_task_attempts); giving up.",
            )
            return
        self.log_task_event(
            event=EVENT_TASK_RELAUNCH,
            ti_key=tracked.key,
            extra=f"{reason} Relaunching (attempt {launch.attempt + 1} of {self.max_run_task_attempts}).",
        )
        launch.reasons.append(f"attempt {launch.attempt}: {reason}")
        launch.attempt += 1
        launch.client_token = uuid.uuid4().hex
        self._launches[tracked.key] = launch
        self._schedule(
            launch,
            backoff_delay(launch.attempt - 1, self.settings.submit_retry_base_seconds, self.settings.submit_retry_max_seconds),
        )

    def _submit_stop(self, arn: str, reason: str) -> Future | None:
        try:
            future = self._launch_pool.submit(self._stop_in_worker, arn, reason)
        except RuntimeError:  # pool already shut down
            return None
        self._track_future(future)
        return future

    def _track_future(self, future: Future) -> None:
        with self._in_flight_lock:
            self._in_flight.add(future)
        future.add_done_callback(self._forget_future)

    def _forget_future(self, future: Future) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(future)

    def _shutdown(self) -> None:
        self._stop.set()
        self._launch_pool.shutdown(wait=False, cancel_futures=True)
        self.poller.shutdown()

    # ------------------------------------------------------------------ worker-thread internals

    def _launch_batch_in_worker(self, batch: list[_Launch]) -> None:
        """Launch ``batch`` one after another on this launch thread (see ``_dispatch_ready``)."""
        for launch in batch:
            if self._stop.is_set():
                return
            self._launch_in_worker(launch)

    def _launch_in_worker(self, launch: _Launch) -> None:
        """RunTask for one launch (worker thread); the outcome goes to the results queue."""
        outcome = _LaunchOutcome(launch)
        try:
            if launch.cancelled:
                outcome.cancelled = True
                return
            if launch.command and not isinstance(launch.command[0], str):
                launch.command = self._serialize_workload_to_command(launch.command[0])
            kwargs = self._fit_overrides(launch)
            kwargs = self._resolve_launch_type(kwargs)
            fallback = self.settings.spot_fallback_to_on_demand and uses_fargate_spot(kwargs)
            try:
                response = self._call_run_task(kwargs, launch.client_token, launch)
                reasons = _failure_reasons(response)
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
            reasons = _failure_reasons(response)
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
                self.mark_client_stale()
            if outcome.kind is SubmitErrorKind.THROTTLED:
                self._call_bucket.drain()
        finally:
            self._results.put(outcome)

    def _fit_overrides(self, launch: _Launch) -> dict:
        """RunTask kwargs whose ``overrides`` fit ECS's 8,192 characters.

        Uses the inline ``execute_workload --json-string`` command when it fits, else the compact
        one (:mod:`airflow_ecs_fargate.workload_command`).

        :raises WorkloadTooLarge: even the compact command does not fit (a permanent failure).
        """
        kwargs = self._run_task_kwargs(launch.key, launch.command, launch.queue, launch.executor_config)
        inline = overrides_chars(kwargs["overrides"])
        if inline <= OVERRIDES_MAX_CHARS:
            return kwargs
        launch.command = compact_command(launch.command)
        kwargs = self._run_task_kwargs(launch.key, launch.command, launch.queue, launch.executor_config)
        compact = overrides_chars(kwargs["overrides"])
        if compact <= OVERRIDES_MAX_CHARS:
            return kwargs
        raise WorkloadTooLarge(
            f"RunTask overrides would be {compact} characters even with the compact workload command "
            f"({inline} inline); ECS accepts at most {OVERRIDES_MAX_CHARS}. Shorten executor_config overrides "
            "(environment values above all) or the dag/task/run ids."
        )

    def _call_run_task(self, kwargs: dict, client_token: str, launch: _Launch) -> dict:
        """Take a RunTask-call token and ``count`` launch tokens (waiting here), then call RunTask."""
        self._call_bucket.acquire(1, stop=self._stop)
        self._launch_bucket.acquire(kwargs.get("count", 1), stop=self._stop)
        if launch.cancelled:
            raise ShuttingDown()
        metrics.count_run_task_call()
        return self.ecs_client().run_task(clientToken=client_token, **kwargs)

    def _stop_in_worker(self, arn: str, reason: str) -> None:
        try:
            self.ecs_client().stop_task(cluster=self.cluster, task=arn, reason=reason[:255])
        except Exception as e:
            self.log.warning("StopTask %s failed: %s", arn, describe_exception(e))

    # ------------------------------------------------------------------ live task logs

    def get_task_log(self, ti, try_number: int) -> tuple[list[str], list[str]]:
        """The log so far of a RUNNING task's worker, from its CloudWatch Logs (awslogs) stream.

        Airflow 3.3's ``FileTaskHandler._read`` calls this in the api-server for RUNNING task
        instances; a non-empty source list also stops it from fetching the worker's port 8793,
        which is unreachable on Fargate. Needs ``worker_log_group`` (and the stream prefix: a team
        queue's own, ``queues``' ``log_stream_prefix``, for the tasks of that queue) and
        ``logs:GetLogEvents`` on the workers' streams. Finished tasks are read from remote logging.

        :return: ``(sources, [log text])``; empty when live logs are not configured; never raises.
        """
        group = self.settings.worker_log_group
        arn = getattr(ti, "external_executor_id", None)
        if not group or not arn or try_number != getattr(ti, "try_number", try_number):
            return [], []
        queue = self._queues.get(getattr(ti, "queue", None) or "")
        prefix = (queue.log_stream_prefix if queue is not None and queue.log_stream_prefix
                  else self.settings.worker_log_stream_prefix)
        stream = stream_name(prefix, self.container_name, arn)
        source = f"CloudWatch Logs {group} {stream} (ECS task {arn})"
        try:
            if self._logs_client is None:
                from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

                region = self.conf.get(CONFIG_GROUP_NAME, AllEcsConfigKeys.REGION_NAME, fallback=None)
                self._logs_client = AwsLogsHook(aws_conn_id=self._aws_conn_id(), region_name=region).conn
            lines = read_stream(self._logs_client, group, stream)
        except Exception as e:
            code = getattr(e, "response", {}).get("Error", {}).get("Code", "") if hasattr(e, "response") else ""
            if code == "ResourceNotFoundException":
                return [source], ["(no log lines yet: the worker container has not written any)\n"]
            return [source], [f"(could not read the worker's live log: {describe_exception(e)})\n"]
        return [source], ["\n".join(lines) + ("\n" if lines else "")]


def _failure_reasons(response: dict) -> list[str]:
    return [f.get("reason") or str(f) for f in response.get("failures") or []]

