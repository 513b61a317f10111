"""Run ECS tasks as podman containers, with ECS's semantics, and an ECS stand-in for RunTask.

:class:`LocalTask` runs one task: it reads the secrets as the task's execution role, gives the
containers the credentials of the task role's IAM principal and the moto endpoint, starts the
containers in dependsOn order (START, COMPLETE, SUCCESS, HEALTHY), runs each health check
every ``interval`` with ``podman healthcheck run`` and applies ECS's rules (failures during
``startPeriod`` do not count; ``retries`` consecutive failures make the container UNHEALTHY; a
check slower than ``timeout`` fails), and stops the task when an essential container exits:
SIGTERM, then SIGKILL after ``stopTimeout`` (``podman stop --time``).

:class:`Runner` owns every task of one run: one ``podman ps`` per tick for all of them, labels on
every container and volume it creates, and :meth:`Runner.cleanup`, which removes all of them
(also after a failure).

:class:`EcsStandIn` plays Fargate behind moto's ECS API: a RunTask that moto accepted becomes a
:class:`LocalTask` of the registered task definition with the RunTask overrides; DescribeTasks
then shows PROVISIONING, RUNNING (containers without exitCode) and STOPPED with each
container's exit code; StopTask stops the containers. RunTask of an INACTIVE revision is refused
(ClientException), as ECS refuses it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from local_ecs.taskdef import ContainerSpec, TaskSpec, podman_run_args, split_environment

log = logging.getLogger(__name__)

#: Label on everything the runner creates; its value is the run's ID.
RUN_LABEL = "local_ecs.run"
TASK_LABEL = "local_ecs.task"
#: ECS's stoppedReason when an essential container exits.
ESSENTIAL_EXITED = "Essential container in task exited"
LOG_TAIL_LINES = 40
#: Seconds after which a health check process is abandoned (far beyond any ECS timeout).
HEALTH_CHECK_HARD_LIMIT = 900


class TaskFailed(RuntimeError):
    """A container of a task failed (exited non-zero where that stops the task, or became
    UNHEALTHY, or its secrets could not be read).

    :ivar container: the container's name in the task definition.
    :ivar exit_code: its exit code (None if it never ran).
    :ivar log_tail: the last lines of its log.
    """

    def __init__(self, task: str, container: str, exit_code: int | None, reason: str, log_tail: str):
        self.container, self.exit_code, self.log_tail = container, exit_code, log_tail
        super().__init__(f"task {task}: container {container} {reason} (exit code {exit_code}); "
                         f"last lines of its log:\n{log_tail}")


def _default_podman():
    from local_ecs.podman import podman

    return podman


@dataclass
class ContainerRun:
    """What the runner knows of one container of a task."""

    spec: ContainerSpec
    podman_name: str
    state: str = "PENDING"  # PENDING, RUNNING, STOPPED
    exit_code: int | None = None
    started_at: float | None = None
    stopped_at: float | None = None
    health: str | None = None  # None (no check), UNKNOWN, HEALTHY, UNHEALTHY
    consecutive_failures: int = 0
    next_check_at: float = 0.0
    checking: bool = False
    check_seconds: list[float] = field(default_factory=list)
    check_results: list[bool] = field(default_factory=list)
    stop_requested_at: float | None = None
    stop_seconds: float | None = None
    never_started_reason: str | None = None
    over_timeout: list[float] = field(default_factory=list)
    #: What ``podman inspect`` said just before the container was removed: ``Config.Cmd``,
    #: ``State.StartedAt`` and ``State.FinishedAt`` (None until then, or if inspect failed).
    inspect: dict | None = None

    def report(self) -> dict:
        return {
            "name": self.spec.name,
            "podman_name": self.podman_name,
            "essential": self.spec.essential,
            "exit_code": self.exit_code,
            "healthy": None if self.health is None else self.health == "HEALTHY",
            "health_status": self.health,
            "health_check_seconds": [round(s, 2) for s in self.check_seconds],
            "health_check_passed": list(self.check_results),
            "health_checks_over_timeout": list(self.over_timeout),
            "health_check_timeout": self.spec.health_check.timeout if self.spec.health_check else None,
            "stop_seconds": None if self.stop_seconds is None else round(self.stop_seconds, 2),
            "stop_timeout": self.spec.stop_timeout,
            "started": self.started_at is not None,
        }


class LocalTask:
    """One ECS task as podman containers (see the module docstring).

    :param task_id: a short ID, unique in the run (podman names are ``<run>-<task_id>-<container>``).
    :param spec: the task definition, overrides applied.
    :param environment_for: ``(spec, container) -> {name: value}``: the container's whole
        environment (template environment, secrets as the execution role, AWS credentials of
        the task role, endpoint). Raising there fails the task before any container starts.
    :param image_for: template image URI -> local image.
    :param hosts: ``/etc/hosts`` entries for every container.
    :param runner: the :class:`Runner` it belongs to.
    :param strict_health_timeouts: a check slower than its ``timeout`` fails (ECS). False
        records it in the container's report (``health_checks_over_timeout``) and judges the
        check by its exit code only: for machines whose cores are shared by many processes.
    :param bind_mounts: host path -> container path, read-only, in every container
        (``make local``'s DAG folder, the git bundle rehearsal's certificate of its git server;
        ECS has no such mount, the other rehearsals never use it).
    :param hostname: the task's host name (``--hostname``), as each Fargate task has its own;
        None keeps the host's (every container then has the same one).
    """

    def __init__(self, task_id: str, spec: TaskSpec, *, environment_for: Callable[[TaskSpec, ContainerSpec], dict],
                 image_for: Callable[[str], str], hosts: dict[str, str], runner: "Runner",
                 strict_health_timeouts: bool = True, bind_mounts: dict[str, str] | None = None,
                 hostname: str | None = None):
        self.task_id = task_id
        self.hostname = hostname
        self.bind_mounts = dict(bind_mounts or {})
        self.strict_health_timeouts = strict_health_timeouts
        self.spec = spec
        self.environment_for = environment_for
        self.image_for = image_for
        self.hosts = hosts
        self.runner = runner
        prefix = f"{runner.run_id}-{task_id}"
        self.containers = {c.name: ContainerRun(c, f"{prefix}-{c.name}") for c in spec.start_order()}
        self.volumes = {v: f"{prefix}-{v}" for v in spec.volumes}
        self.status = "PROVISIONING"
        self.stopped_reason: str | None = None
        self.failure: TaskFailed | None = None
        self.created_at = time.monotonic()
        self.started_at: float | None = None
        self._env: dict[str, dict] = {}
        self._lock = threading.Lock()

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: self.runner.run_id, TASK_LABEL: self.task_id}

    # -- lifecycle ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Read every container's environment (secrets included) before any starts, as ECS
        does; a failure stops the task with ``ResourceInitializationError``."""
        try:
            for run in self.containers.values():
                self._env[run.spec.name] = self.environment_for(self.spec, run.spec)
        except Exception as error:
            self.status = "STOPPED"
            self.stopped_reason = f"ResourceInitializationError: unable to pull secrets or registry auth: {error}"
            first = next(iter(self.containers.values()))
            self.failure = TaskFailed(self.task_id, first.spec.name, None, "could not start", self.stopped_reason)
            for run in self.containers.values():
                run.state = "STOPPED"
            raise self.failure from error
        for volume in self.volumes.values():
            args = ["volume", "create"] + [a for k, v in self.labels.items() for a in ("--label", f"{k}={v}")]
            self.runner.podman(*args, volume)

    def _dependency_state(self, run: ContainerRun) -> str:
        """``ready``, ``wait`` or ``never`` for the container's dependsOn conditions."""
        for name, condition in run.spec.depends_on:
            other = self.containers[name]
            if condition == "START":
                ok, never = other.state != "PENDING", other.state == "STOPPED" and other.started_at is None
            elif condition == "COMPLETE":
                ok, never = other.state == "STOPPED", False
            elif condition == "SUCCESS":
                ok = other.state == "STOPPED" and other.exit_code == 0
                never = other.state == "STOPPED" and other.exit_code != 0
            else:  # HEALTHY
                ok, never = other.health == "HEALTHY", other.health == "UNHEALTHY" or other.state == "STOPPED"
            if never:
                return "never"
            if not ok:
                return "wait"
        return "ready"

    def _start(self, run: ContainerRun) -> None:
        inline, env = split_environment(self._env[run.spec.name])
        args = podman_run_args(run.spec, self.spec, name=run.podman_name, image=self.image_for(run.spec.image),
                               volume_names=self.volumes, hosts=self.hosts, env_names=sorted(env),
                               labels=self.labels, env_inline=inline, bind_mounts=self.bind_mounts)
        if self.hostname:
            args[1:1] = ["--hostname", self.hostname]
        if run.spec.health_check and not self.strict_health_timeouts:
            # podman fails a check at --health-timeout (exit -1); here the runner judges the time.
            args[args.index("--health-timeout") + 1] = f"{HEALTH_CHECK_HARD_LIMIT}s"
        self.runner.podman(*args, env={**self.runner.base_env, **env})
        run.state = "RUNNING"
        run.started_at = time.monotonic()
        if run.spec.health_check:
            run.health = "UNKNOWN"
            run.next_check_at = run.started_at + min(run.spec.health_check.interval, 5)
        if self.started_at is None:
            self.started_at = run.started_at
            self.status = "RUNNING"
        log.info("task %s: started container %s", self.task_id, run.spec.name)

    def tick(self, states: dict[str, tuple[str, int | None]]) -> None:
        """Advance the task: record exits from ``states`` (podman name -> (state, exit code)),
        start containers whose dependencies are met, schedule health checks, stop the task when
        an essential container exits or a dependency can never be met."""
        if self.status == "STOPPED":
            return
        now = time.monotonic()
        for run in self.containers.values():
            if run.state == "RUNNING" and states.get(run.podman_name, ("running", None))[0] in ("exited", "stopped"):
                run.state, run.exit_code, run.stopped_at = "STOPPED", states[run.podman_name][1], now
                if run.stop_requested_at is not None:
                    run.stop_seconds = now - run.stop_requested_at
                log.info("task %s: container %s exited %s", self.task_id, run.spec.name, run.exit_code)
        if self.stopped_reason is None:
            for run in self.containers.values():
                if run.state == "PENDING":
                    dependency = self._dependency_state(run)
                    if dependency == "ready":
                        self._start(run)
                    elif dependency == "never":
                        run.state, run.never_started_reason = "STOPPED", "dependency can never be met"
                        blocker = next(self.containers[n] for n, _ in run.spec.depends_on
                                       if self.containers[n].state == "STOPPED")
                        self._fail(blocker, f"exited {blocker.exit_code}, so {run.spec.name} can never start")
                elif run.state == "RUNNING" and run.health is not None and not run.checking and now >= run.next_check_at:
                    run.checking = True
                    threading.Thread(target=self._health_check, args=(run,), daemon=True,
                                     name=f"health-{run.podman_name}").start()
            for run in self.containers.values():
                if run.state == "STOPPED" and run.spec.essential and run.never_started_reason is None:
                    if run.exit_code not in (0, None):
                        self._fail(run, f"exited with code {run.exit_code}")
                    self.stop(ESSENTIAL_EXITED)
                    break
        if all(run.state == "STOPPED" for run in self.containers.values()):
            self.status = "STOPPED"
            self.runner.remove_task(self)

    def _fail(self, run: ContainerRun, reason: str) -> None:
        if self.failure is None:
            self.failure = TaskFailed(self.task_id, run.spec.name, run.exit_code, reason,
                                      self.runner.logs(run.podman_name))

    def _health_check(self, run: ContainerRun) -> None:
        check = run.spec.health_check
        started = time.monotonic()
        try:
            # No kill at the timeout: the check process inside the container would live on, and
            # checks would pile up. The next check starts only when this one has ended; one
            # slower than ``timeout`` counts as failed, as in ECS.
            result = self.runner.podman("healthcheck", "run", run.podman_name, check=False,
                                        timeout=HEALTH_CHECK_HARD_LIMIT)
            ok = result.returncode == 0
        except Exception:
            ok = False
        seconds = time.monotonic() - started
        if seconds > check.timeout:
            run.over_timeout.append(round(seconds, 1))
            if self.strict_health_timeouts:
                ok = False
        with self._lock:
            run.check_seconds.append(seconds)
            run.check_results.append(ok)
            in_start_period = started - (run.started_at or started) < check.start_period
            if ok:
                run.health, run.consecutive_failures = "HEALTHY", 0
            elif not in_start_period:
                run.consecutive_failures += 1
                if run.consecutive_failures >= check.retries:
                    run.health = "UNHEALTHY"
            # Until the first success, check again soon (ECS checks every interval; a rehearsal
            # would wait minutes for nothing); then every interval.
            interval = check.interval if run.health == "HEALTHY" else min(check.interval, 5)
            run.next_check_at = time.monotonic() + interval
            run.checking = False
        log.info("task %s: health check of %s %s in %.1fs (timeout %ss)", self.task_id, run.spec.name,
                 "passed" if ok else "failed", seconds, check.timeout)

    def stop(self, reason: str = "Task stopped by user") -> None:
        """Stop every running container (SIGTERM, SIGKILL after its stopTimeout), in reverse
        start order, in parallel; containers not yet started never start."""
        if self.stopped_reason is None:
            self.stopped_reason = reason
        threads = []
        for run in reversed(list(self.containers.values())):
            if run.state == "PENDING":
                run.state = "STOPPED"
                run.never_started_reason = reason
            elif run.state == "RUNNING" and run.stop_requested_at is None:
                run.stop_requested_at = time.monotonic()
                thread = threading.Thread(target=self.runner.podman, daemon=True,
                                          args=("stop", "--time", str(run.spec.stop_timeout), run.podman_name),
                                          kwargs={"check": False, "timeout": run.spec.stop_timeout + 30})
                thread.start()
                threads.append(thread)

    def health_summary(self) -> dict[str, str | None]:
        return {name: run.health for name, run in self.containers.items()}


class Runner:
    """All tasks of one run (see the module docstring).

    :param run_id: prefix of every podman name and value of the run label, e.g. ``rh1a2b``.
    :param log_dir: where container logs are written when a task ends.
    :param podman: ``(*args, env=None, check=True, timeout=None) -> CompletedProcess``
        (default :func:`local_ecs.podman.podman`).
    :param base_env: environment of the podman processes (PATH etc.).
    """

    def __init__(self, run_id: str, log_dir: Path, podman=None, base_env: dict | None = None, tick_seconds: float = 1.0):
        import os

        self.run_id = run_id
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._podman = podman or _default_podman()
        self.base_env = dict(base_env if base_env is not None else os.environ)
        self.tick_seconds = tick_seconds
        self.tasks: dict[str, LocalTask] = {}
        self.finished: list[LocalTask] = []
        self.errors: list[str] = []
        #: Ticks that failed since the last one that did not (read by the scenario's check).
        self.failed_ticks_in_a_row = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self.listeners: list[Callable[[], None]] = []

    def podman(self, *args: str, env: dict | None = None, check: bool = True, timeout: float | None = None):
        return self._podman(*args, env=env if env is not None else self.base_env, check=check, timeout=timeout)

    def add(self, task: LocalTask) -> LocalTask:
        task.prepare()
        with self._lock:
            self.tasks[task.task_id] = task
        return task

    def remove_task(self, task: LocalTask) -> None:
        with self._lock:
            if self.tasks.pop(task.task_id, None) is not None:
                self.finished.append(task)
        self._inspect([run for run in task.containers.values() if run.started_at is not None])
        for run in task.containers.values():
            if run.started_at is not None:
                (self.log_dir / f"{run.podman_name}.log").write_text(self.logs(run.podman_name, lines=None))
        for name in [r.podman_name for r in task.containers.values() if r.started_at is not None]:
            self.podman("rm", "--force", name, check=False)
        for volume in task.volumes.values():
            self.podman("volume", "rm", "--force", volume, check=False)

    def _inspect(self, runs: list[ContainerRun]) -> None:
        """Keep what ``podman inspect`` says of each container's start in :attr:`ContainerRun.inspect`
        before the container is removed (the worker start overhead, local_ecs/start_overhead.py,
        needs ``State.StartedAt`` and the command); a failure is recorded in :attr:`errors`."""
        if not runs:
            return
        try:
            result = self.podman("inspect", *[run.podman_name for run in runs], check=False, timeout=60)
            if result.returncode:
                raise RuntimeError(f"exit code {result.returncode}: {(result.stderr or '').strip()[-300:]}")
            items = json.loads(result.stdout or "[]")
        except Exception as error:
            self.errors.append(f"{time.strftime('%H:%M:%S')} podman inspect {runs[0].podman_name}...: {error!r}")
            return
        by_name = {str(item.get("Name", "")).lstrip("/"): item for item in items}
        for run in runs:
            item = by_name.get(run.podman_name)
            if item is not None:
                state = item.get("State") or {}
                run.inspect = {"Config": {"Cmd": (item.get("Config") or {}).get("Cmd")},
                               "State": {"StartedAt": state.get("StartedAt"), "FinishedAt": state.get("FinishedAt")}}

    def logs(self, podman_name: str, lines: int | None = LOG_TAIL_LINES) -> str:
        args = ["logs"] + (["--tail", str(lines)] if lines else []) + [podman_name]
        with contextlib.suppress(Exception):
            result = self.podman(*args, check=False, timeout=30)
            return (result.stdout or "") + (result.stderr or "")
        path = self.log_dir / f"{podman_name}.log"
        text = path.read_text() if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) if lines else text

    def states(self) -> dict[str, tuple[str, int | None]]:
        """podman name -> (state, exit code) of every container of this run (one ``podman ps``)."""
        result = self.podman("ps", "--all", "--format", "json", "--filter", f"label={RUN_LABEL}={self.run_id}",
                             check=False, timeout=60)
        if result.returncode:
            raise RuntimeError(f"podman ps failed: {result.stderr}")
        states = {}
        for item in json.loads(result.stdout or "[]"):
            for name in item.get("Names") or []:
                states[name] = (item.get("State", ""), item.get("ExitCode"))
        return states

    def tick(self) -> None:
        with self._lock:
            tasks = list(self.tasks.values())
        if tasks:
            states = self.states()
            for task in tasks:
                task.tick(states)
        for listener in list(self.listeners):
            listener()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="local-ecs-runner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                self.failed_ticks_in_a_row = 0
            except Exception as error:
                self.errors.append(f"{time.strftime('%H:%M:%S')} {error!r}")
                self.failed_ticks_in_a_row += 1
                log.exception("runner tick failed")
            self._stop.wait(self.tick_seconds)

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str, check: Callable[[], None] | None = None):
        """Wait until ``predicate()``; ``check()`` may raise (e.g. a task failed).

        :raises TimeoutError: naming ``what``.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check:
                check()
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

    def stop_all(self, timeout: float = 120) -> None:
        """Stop every task (SIGTERM, then SIGKILL after each container's stopTimeout) and wait
        for them to end."""
        with self._lock:
            tasks = list(self.tasks.values())
        for task in tasks:
            task.stop("Task stopped by user")
        with contextlib.suppress(TimeoutError):
            self.wait(lambda: not self.tasks, timeout, "every task to stop")

    def cleanup(self) -> list[str]:
        """Remove every container and volume with this run's label, whatever state it is in.

        :returns: names of the containers that were still there.
        """
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        left = []
        with contextlib.suppress(Exception):
            left = list(self.states())
        for name in left:
            self.podman("rm", "--force", "--time", "0", name, check=False, timeout=60)
        result = self.podman("volume", "ls", "--quiet", "--filter", f"label={RUN_LABEL}={self.run_id}",
                             check=False, timeout=60)
        for volume in (result.stdout or "").split():
            self.podman("volume", "rm", "--force", volume, check=False)
        return left


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class EcsStandIn:
    """Fargate behind moto's ECS API (see the module docstring).

    :param aws: the :class:`~local_ecs.aws.AwsStandIn` (its moto server runs in this process).
    :param cluster: the cluster name RunTask targets.
    :param make_task: ``(task_id, TaskSpec) -> LocalTask``.
    :param runner: the :class:`Runner`.
    :param max_running: concurrent worker tasks (the others wait in PROVISIONING).
    """

    def __init__(self, aws, cluster: str, make_task: Callable[[str, TaskSpec], LocalTask], runner: Runner,
                 max_running: int = 3):
        self.aws = aws
        self.cluster = cluster
        self.make_task = make_task
        self.runner = runner
        self.max_running = max_running
        self.tasks: dict[str, LocalTask] = {}  # moto task ARN -> task
        self.pending: list[tuple[str, TaskSpec]] = []
        self.launched = 0
        self.failures: list[str] = []
        self._patches: list[tuple[type, str, object]] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        from moto.backends import get_backend
        from moto.ecs.models import EC2ContainerServiceBackend

        from standins.moto_ecs import ecs_stop_task, strict_run_task

        self.backend = get_backend("ecs")[self.aws.stand_ins.account][self.aws.stand_ins.region]
        # ECS's rules where moto is lenient (INACTIVE revisions, StopTask of an unknown task).
        original_run_task = EC2ContainerServiceBackend.run_task
        original_stop_task = EC2ContainerServiceBackend.stop_task
        self._patches.append((EC2ContainerServiceBackend, "run_task", original_run_task))
        self._patches.append((EC2ContainerServiceBackend, "stop_task", original_stop_task))
        EC2ContainerServiceBackend.run_task = strict_run_task(original_run_task)
        EC2ContainerServiceBackend.stop_task = ecs_stop_task(original_stop_task)
        self.runner.listeners.append(self.tick)

    def stop(self) -> None:
        for cls, name, original in reversed(self._patches):
            setattr(cls, name, original)
        self._patches.clear()
        with contextlib.suppress(ValueError):
            self.runner.listeners.remove(self.tick)

    def _moto_tasks(self) -> dict:
        for _ in range(5):
            with contextlib.suppress(RuntimeError):
                return dict(self.backend.tasks.get(self.cluster, {}))
            time.sleep(0.01)
        return {}

    def tick(self) -> None:
        """Accept new RunTask tasks, launch what capacity allows, mirror states into moto."""
        for arn, task in self._moto_tasks().items():
            if arn in self.tasks or any(arn == p[0] for p in self.pending):
                continue
            if task.desired_status == "STOPPED" and task.last_status == "STOPPED":
                continue
            definition = self.backend.describe_task_definition(task.task_definition_arn)
            spec = TaskSpec.parse(_api_form(definition)).with_overrides(task.overrides)
            for container in task.containers:  # a container that has not run has no exit code
                if hasattr(container, "exitCode"):
                    del container.exitCode
            task.last_status = "PROVISIONING"
            self.pending.append((arn, spec))
        running = sum(1 for t in self.tasks.values() if t.status != "STOPPED")
        for arn, spec in list(self.pending):
            task = self._moto_tasks().get(arn)
            if task is not None and task.desired_status == "STOPPED":
                self.pending.remove((arn, spec))
                self._mirror_stopped(task, None, task.stopped_reason or "Task stopped by user")
                continue
            if running >= self.max_running:
                break
            self.pending.remove((arn, spec))
            self.launched += 1
            local = self.make_task(f"w{self.launched}", spec)
            self.tasks[arn] = local
            try:
                self.runner.add(local)
            except Exception as error:
                self.failures.append(str(error))
                self._mirror_stopped(task, local, local.stopped_reason or str(error))
                continue
            running += 1
        for arn, local in list(self.tasks.items()):
            task = self._moto_tasks().get(arn)
            if task is None:
                continue
            if task.desired_status == "STOPPED" and local.stopped_reason is None:
                local.stop(task.stopped_reason or "Task stopped by user")
            if local.status == "RUNNING" and task.last_status != "RUNNING":
                task.last_status = "RUNNING"
                task.started_at = _now()
                for container in task.containers:
                    container.last_status = "RUNNING"
            if local.status == "STOPPED" and task.last_status != "STOPPED":
                self._mirror_stopped(task, local, local.stopped_reason or ESSENTIAL_EXITED)
                if local.failure:
                    self.failures.append(str(local.failure))

    @staticmethod
    def _mirror_stopped(task, local: LocalTask | None, reason: str) -> None:
        runs = {r.spec.name: r for r in local.containers.values()} if local else {}
        for container in task.containers:
            container.last_status = "STOPPED"
            run = runs.get(container.name)
            if run is not None and run.exit_code is not None:
                container.exitCode = run.exit_code
            elif hasattr(container, "exitCode"):
                del container.exitCode
        task.stopped_at = _now()
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        task.stopped_reason = task.stopped_reason or reason
        started = bool(local and local.started_at)
        task.stop_code = "EssentialContainerExited" if started else "TaskFailedToStart"


def _api_form(definition) -> dict:
    """moto's TaskDefinition as the ECS API's ``taskDefinition`` dict."""
    return {
        "family": definition.family,
        "cpu": definition.cpu,
        "memory": definition.memory,
        "taskRoleArn": definition.task_role_arn,
        "executionRoleArn": definition.execution_role_arn,
        "volumes": definition.volumes or [],
        "containerDefinitions": definition.container_definitions,
    }
