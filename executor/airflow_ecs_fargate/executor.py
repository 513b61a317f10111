"""EcsFargateExecutor: the provider's AwsEcsExecutor, made non-blocking and strict about failures.

Threading model. The scheduler thread (``heartbeat()``/``sync()``) never calls AWS. It
queues launches, hands the ready ones to a bounded launch pool, hands one DescribeTasks round
per ``describe_tasks_interval_seconds`` to a single poll thread, and applies the outcomes those
threads put on a queue. All Airflow-visible state (``running``, ``event_buffer``, task events)
is changed on the scheduler thread only; worker threads only call AWS and report back.

Parts. :mod:`~airflow_ecs_fargate.launching` holds the launch queue (``launch_queue``: workloads
waiting for RunTask, the launch threads, the quota token buckets, retries);
:mod:`~airflow_ecs_fargate.tracking` the launched and adopted ECS tasks (``tracker``);
:mod:`~airflow_ecs_fargate.polling` the DescribeTasks rounds (``poller``). This module composes
them behind Airflow's executor interface and decides what their outcomes mean for Airflow
(success, failure, relaunch, task events).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import AirflowException
from airflow.providers.amazon.aws.executors.ecs.ecs_executor import AwsEcsExecutor
from airflow.providers.amazon.aws.executors.ecs.utils import CONFIG_DEFAULTS, CONFIG_GROUP_NAME, AllEcsConfigKeys
from airflow.providers.amazon.aws.hooks.ecs import EcsHook
from botocore.exceptions import ClientError

from airflow_ecs_fargate.errors import SubmitErrorKind, classify_exception, describe_exception, needs_new_client
from airflow_ecs_fargate.launching import (
    EVENT_LAUNCHED_AFTER_RETRIES,
    EVENT_SPOT_FALLBACK,
    EVENT_SUBMIT_FAILED,
    Launch,
    LaunchOutcome,
    LaunchQueue,
    story,
)
from airflow_ecs_fargate.polling import Poller, PollOutcome
from airflow_ecs_fargate.queues import parse_queues
from airflow_ecs_fargate import metrics
from airflow_ecs_fargate.rate_limit import backoff_delay
from airflow_ecs_fargate.run_task_config import build_run_task_kwargs
from airflow_ecs_fargate.settings import ExecutorSettings
from airflow_ecs_fargate.task_config import FIX as EXECUTOR_CONFIG_FIX
from airflow_ecs_fargate.task_config import executor_config_errors, run_task_parameters, task_override_parameters
from airflow_ecs_fargate.task_logs import read_stream, stream_name
from airflow_ecs_fargate.task_state import Verdict
from airflow_ecs_fargate.tracking import TaskTracker, Tracked

if TYPE_CHECKING:
    from airflow.models.taskinstance import TaskInstance

EVENT_TASK_STOPPED = "ecs task stopped"
EVENT_TASK_RELAUNCH = "ecs task relaunch"
EVENT_TASK_REVOKED = "ecs task revoked"
EVENT_TASK_LOST = "ecs task lost"


class EcsHealthCheckFailed(AirflowException):
    """The start-up health check failed; ``kind`` says how (:class:`SubmitErrorKind`).

    :param kind: the failure's class; PERMANENT stops the scheduler, any other lets it start.
    :param reason: ``Type: message`` of the error.
    """

    def __init__(self, kind: SubmitErrorKind, reason: str):
        super().__init__(f"ECS Executor health check has failed ({kind.value}): {reason}")
        self.kind = kind
        self.reason = reason


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
        #: Outcomes of the launch and poll threads, applied on the scheduler thread (sync()).
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        from airflow.configuration import conf as global_conf

        #: The workloads waiting for RunTask and the launch threads (:mod:`airflow_ecs_fargate.launching`).
        self.launch_queue = LaunchQueue(
            settings=self.settings,
            share=self.share,
            max_attempts=self.max_run_task_attempts,
            deadline_seconds=global_conf.getfloat("scheduler", "task_queued_timeout", fallback=600.0),
            clock=self._clock,
            stop=self._stop,
            client=self.ecs_client,
            client_stale=self.mark_client_stale,
            build_kwargs=self.run_task_kwargs_for,
            serialize=self.workload_command,
            resolve_launch_type=self._resolve_launch_type,
            report=self._results.put,
            fail=self._fail,
            log_event=lambda key, event, extra: self.log_task_event(event=event, extra=extra, ti_key=key),
        )
        #: The launched and adopted ECS tasks (:mod:`airflow_ecs_fargate.tracking`).
        self.tracker = TaskTracker()
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

    def run_task_kwargs_for(self, key, command: list[str], queue: str | None, executor_config: dict) -> dict:
        """The RunTask kwargs (no ``clientToken``) of one workload, as it would be launched.

        The stock builder (``run_task_kwargs`` from the ``[aws_ecs_executor]`` keys, ``command``
        in the Airflow container, ``executor_config`` merged recursively over them), with the
        queue's size (``queues`` setting) under ``executor_config``. The command is used as given:
        the compact fallback for oversized overrides is the launch queue's
        (:meth:`~airflow_ecs_fargate.launching.LaunchQueue.fit_overrides`).

        :param key: the Airflow key (the task's ``startedBy``/name comes from it).
        :param command: the container command, e.g. :meth:`workload_command`'s.
        :raises Exception: ``executor_config`` cannot be merged (what the provider's merge raises).
        """
        size = self._queues.get(queue) if queue else None
        queue_kwargs = size.run_task_kwargs() if size is not None else {}
        if queue_kwargs:
            from airflow.utils.helpers import merge_dicts

            executor_config = merge_dicts(queue_kwargs, executor_config or {})
        kwargs = super()._run_task_kwargs(key, command, queue, executor_config)
        if "capacityProviderStrategy" in queue_kwargs:
            kwargs.pop("launchType", None)
        return kwargs

    def _run_task_kwargs(self, task_id, cmd, queue, exec_config):
        """The provider's hook for the RunTask kwargs: :meth:`run_task_kwargs_for`."""
        return self.run_task_kwargs_for(task_id, cmd, queue, exec_config)

    def workload_command(self, workload) -> list[str]:
        """The inline ``execute_workload --json-string`` command of a workload (the provider's serialization).

        :param workload: an ``ExecuteTask`` or ``ExecuteCallback`` workload.
        """
        # The provider types its result as any command; it is always a list of strings.
        return cast("list[str]", self._serialize_workload_to_command(workload))

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
        self.launch_queue.warm_up()

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
        # (LaunchQueue._launch_in_worker): at ~0.1 ms each, 1,000 of them would hold one heartbeat ~100 ms.
        command = list(command)
        if executor_config or queue in self._queues:
            # Building the RunTask kwargs costs ~0.1-0.2 ms (deep copy and merge); with an empty
            # executor_config there is nothing task-specific to validate, and a heartbeat that
            # queues 1,000 tasks must stay far below 50 ms (bench/README.md).
            try:
                self.run_task_kwargs_for(key, command, queue, executor_config)
            except Exception as e:
                self._fail(key, EVENT_SUBMIT_FAILED, f"executor_config cannot be applied: {describe_exception(e)}")
                return
        self.launch_queue.add(Launch(key, command, queue, executor_config, queued_at=self._clock()))

    def sync(self) -> None:
        """Apply finished background work, dispatch ready launches, start a poll when due.

        Does no AWS call and never raises. Cost per call: O(results ready + launches ready),
        independent of the number of running ECS tasks.
        """
        try:
            self._drain_results()
            self.launch_queue.dispatch_ready()
            self.poller.maybe_poll(self.tracker.arns)
        except Exception:
            self.log.exception("EcsFargateExecutor sync failed; will retry on the next heartbeat")

    def revoke_task(self, *, ti: TaskInstance) -> None:
        """Forget the task and stop its ECS task (StopTask, on a worker thread).

        Called by the scheduler for tasks stuck in queued longer than ``[scheduler]
        task_queued_timeout``. Changes no Airflow state, adds no event-buffer entry, never raises.
        """
        try:
            key = self._ti_key(ti)
            launch = self.launch_queue.pop(key)
            if launch is not None:
                launch.cancelled = True
            arn = self.tracker.forget(key, getattr(ti, "external_executor_id", None))
            if arn:
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
        try:
            known = self.poller.describe_now(list(by_arn))
        except Exception as e:
            self.log.warning("DescribeTasks failed during adoption (%s); adopting all %d tasks", e, len(by_arn))
            known = {arn: {} for arn in by_arn}
        adopted = []
        now = self._clock()
        for arn, ti in by_arn.items():
            if arn not in known:
                continue
            key = self._ti_key(ti)
            self.tracker.track(key, arn, None, launched_at=now, started=bool(known[arn].get("startedAt")))
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
            self.close()

    def terminate(self):
        """StopTask every tracked ECS task (concurrently), then shut the worker threads down."""
        try:
            self.launch_queue.cancel_all()
            futures = [self._submit_stop(arn, "Airflow executor received SIGTERM") for arn in self.tracker.arns()]
            wait([f for f in futures if f], timeout=self.settings.shutdown_timeout_seconds)
        except Exception:
            self.log.exception("Failed to terminate %s", type(self).__name__)
        finally:
            self.close()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for in-flight launches and polls, then apply their results (scheduler thread).

        For shutdown and tests; the heartbeat never calls it.

        :param timeout: seconds to wait at most.
        """
        deadline = self._clock() + timeout
        while True:
            pending = self.launch_queue.in_flight()
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
        self.launch_queue.pop(key)
        self.fail(key, info=reason)

    def _drain_results(self) -> None:
        while True:
            try:
                outcome = self._results.get_nowait()
            except queue.Empty:
                return
            try:
                if isinstance(outcome, LaunchOutcome):
                    self._apply_launch(outcome)
                elif isinstance(outcome, PollOutcome):
                    self._apply_poll(outcome)
            except Exception:
                self.log.exception("Could not apply %s", type(outcome).__name__)

    def _apply_launch(self, outcome: LaunchOutcome) -> None:
        metrics.count_launch_outcome(outcome)
        launch = outcome.launch
        key = launch.key
        current = self.launch_queue.is_current(launch)
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
                    f"{self._clock() - launch.queued_at:.0f} s: {story(launch.transient_reasons)}.",
                )
            self.launch_queue.pop(key)
            self.tracker.track(key, outcome.arn, launch, launched_at=self._clock())
            self.running_state(key, outcome.arn)
            return
        if not current or outcome.cancelled:
            return
        self.launch_queue.retry_or_fail(launch, outcome.kind or SubmitErrorKind.UNKNOWN, outcome.reason)

    def _apply_poll(self, outcome: PollOutcome) -> None:
        if outcome.error:
            self.log.warning("DescribeTasks round failed, retrying next interval: %s", outcome.error)
        for tracked, judgement in self.tracker.settle_stopped(outcome):
            if judgement.verdict is Verdict.SUCCESS:
                self.success(tracked.key, info=judgement.reason)
            elif judgement.verdict is Verdict.FAILED:
                self._fail(tracked.key, EVENT_TASK_STOPPED, judgement.reason)
            else:
                self._relaunch_or_fail(tracked, judgement.reason)
        lost = self.tracker.settle_lost(
            outcome, now=self._clock(), grace_seconds=self.settings.missing_task_grace_seconds
        )
        for tracked, reason in lost:
            self._fail(
                tracked.key,
                EVENT_TASK_LOST,
                f"ECS no longer knows task {tracked.arn} (DescribeTasks: {reason}); it is not relaunched, to avoid a "
                "second copy of a task that may have run.",
            )

    def _relaunch_or_fail(self, tracked: Tracked, reason: str) -> None:
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
        self.launch_queue.relaunch(launch, reason)

    def _submit_stop(self, arn: str, reason: str) -> Future | None:
        return self.launch_queue.submit(self._stop_in_worker, arn, reason)

    def close(self) -> None:
        """Stop the launch, poll and health-check threads without waiting and without applying results.

        ``end()`` and ``terminate()`` finish with it; call it directly to discard an executor
        (tests, tools) without ``end()``'s wait for in-flight calls. ECS tasks are left running.
        """
        self._stop.set()
        self.launch_queue.shutdown()
        self.poller.shutdown()

    # ------------------------------------------------------------------ worker-thread internals

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

