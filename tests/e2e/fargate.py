"""A stand-in for Fargate's container runtime, on top of moto's ECS API.

moto answers the ECS API (RunTask, DescribeTasks, StopTask) but never runs anything: its tasks sit in
RUNNING with no startedAt (and, without standins/moto_ecs.py, exit code 0 while running). This harness plays the part moto leaves out, and nothing
more: it watches moto's backend for tasks that RunTask created, runs each task's container command
(the real `python -m airflow.sdk.execution_time.execute_workload ...`) as a local subprocess with the
environment the container would get, and records the outcome on moto's Task object the way ECS
reports it (lastStatus/desiredStatus STOPPED, startedAt, container exitCode and reason, stoppedReason).
Like the awslogs log driver, it sends each container's output, line by line while it runs, to the
CloudWatch Logs stream ``<awslogs-stream-prefix>/<container name>/<task id>`` of the log group in
the task definition's ``logConfiguration``.

It runs as a thread in the pytest process, beside moto's ThreadedMotoServer, so both share
`moto.backends.get_backend("ecs")`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import psutil

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
ESSENTIAL_EXITED = "Essential container in task exited"
STOP_TIMEOUT_SECONDS = 30.0


@dataclasses.dataclass
class Kill:
    """A chaos rule's verdict: kill the container with this exit code and reason.

    The kill comes `after_seconds` after the container's output first contains `after_output`
    (or after it started, if None), or at the latest `deadline_seconds` after it started.
    """

    after_seconds: float
    after_output: str | None = None
    deadline_seconds: float = 120.0
    exit_code: int = 137
    reason: str = OOM_REASON
    armed_at: float | None = None

    def due(self, container: "Container") -> bool:
        now = time.monotonic()
        if self.armed_at is None:
            if self.after_output is None or self.after_output.encode() in _read(container.log_path):
                self.armed_at = now
        if self.armed_at is not None and now - self.armed_at >= self.after_seconds:
            return True
        return now - container.started_at >= self.deadline_seconds


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


@dataclasses.dataclass
class Container:
    task_arn: str
    short_id: str
    command: list[str]
    env: dict[str, str]
    workload: dict | None
    log_path: Path
    queued_at: float
    proc: subprocess.Popen | None = None
    # The container's other processes (the task runner forks and leaves the process group), as
    # last seen: killed with the container, as ECS would, even once the main process is gone.
    descendants: list = dataclasses.field(default_factory=list)
    started_at: float | None = None
    kill: Kill | None = None
    killed: bool = False
    terminated_at: float | None = None
    exit_code: int | None = None
    log_group: str | None = None  # awslogs: where the output goes
    log_stream: str | None = None
    shipped: int = 0  # bytes of log_path already sent

    @property
    def label(self) -> str:
        ti = (self.workload or {}).get("ti") or {}
        if not ti:
            return self.short_id
        index = ti.get("map_index", -1)
        suffix = f"[{index}]" if index is not None and index >= 0 else ""
        return f"{ti.get('dag_id')}.{ti.get('task_id')}{suffix} try {ti.get('try_number')} ({self.short_id})"


def workload_of(command: list[str]) -> dict | None:
    """The ExecuteTask JSON that the executor put into the container command (inline or compact)."""
    from airflow_ecs_fargate.workload_command import workload_json

    text = workload_json(command)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class FakeFargate:
    """Runs the containers of moto ECS tasks as local processes, at most `max_running` at a time."""

    def __init__(
        self,
        ecs_backend,
        cluster: str,
        work_dir: Path,
        base_env: dict[str, str],
        max_running: int = 4,
        chaos: Callable[[Container], Kill | None] | None = None,
        poll_seconds: float = 0.3,
        logs_client=None,
    ):
        self.backend = ecs_backend
        self.cluster = cluster
        self.work_dir = work_dir
        self.base_env = base_env
        self.max_running = max_running
        self.chaos = chaos or (lambda container: None)
        self.poll_seconds = poll_seconds
        self.logs_client = logs_client  # boto3 CloudWatch Logs client for the awslogs driver
        self.seen: dict[str, Container] = {}
        self.pending: collections.deque[Container] = collections.deque()
        self.running: dict[str, Container] = {}
        self.finished: list[Container] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-fargate", daemon=True)
        work_dir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for container in list(self.running.values()):
            self._signal(container, signal.SIGKILL)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as error:  # keep playing Fargate; the test reports what went wrong
                self.errors.append(f"{time.strftime('%H:%M:%S')} {error!r}")
            self._stop.wait(self.poll_seconds)

    # -- one pass ----------------------------------------------------------------------------

    def _tasks(self) -> dict:
        # moto's request threads add tasks concurrently; retry the copy if the dict changes under us.
        for _ in range(5):
            try:
                return dict(self.backend.tasks.get(self.cluster, {}))
            except RuntimeError:
                time.sleep(0.01)
        return {}

    def _tick(self) -> None:
        for arn, task in self._tasks().items():
            if arn not in self.seen:
                self._accept(arn, task)
        for arn, container in list(self.running.items()):
            self._watch(self._tasks().get(arn), container)
        for container in list(self.pending):
            task = self._tasks().get(container.task_arn)
            if task is not None and task.desired_status == "STOPPED":
                # StopTask before the container started: ECS reports no startedAt and no exit code.
                self.pending.remove(container)
                self._finish(task, container, exit_code=None, reason=task.stopped_reason or "Task stopped")
        while self.pending and len(self.running) < self.max_running:
            container = self.pending.popleft()
            self._launch(self._tasks()[container.task_arn], container)

    def _accept(self, arn: str, task) -> None:
        definition = self.backend.describe_task_definition(task.task_definition_arn)
        main = definition.container_definitions[0]
        env = {item["name"]: item["value"] for item in main.get("environment") or []}
        command = list(main.get("command") or [])
        for override in (task.overrides or {}).get("containerOverrides", []):
            if override.get("name") == main["name"]:
                env.update({item["name"]: item["value"] for item in override.get("environment") or []})
                command = list(override.get("command") or command)
        short_id = arn.rsplit("/", 1)[-1][:8]
        awslogs = (main.get("logConfiguration") or {}).get("options") or {}
        container = Container(
            task_arn=arn,
            short_id=short_id,
            command=command,
            env={**self.base_env, **env},
            workload=workload_of(command),
            log_path=self.work_dir / f"{short_id}.log",
            queued_at=time.monotonic(),
        )
        if awslogs.get("awslogs-group") and self.logs_client is not None:
            container.log_group = awslogs["awslogs-group"]
            container.log_stream = f"{awslogs.get('awslogs-stream-prefix')}/{main['name']}/{arn.rsplit('/', 1)[-1]}"
        self.seen[arn] = container
        # What ECS reports while a task waits for capacity and pulls its image.
        task.last_status = "PROVISIONING"
        self.pending.append(container)

    def _launch(self, task, container: Container) -> None:
        container.kill = self.chaos(container)
        with open(container.log_path, "wb") as log:
            log.write(f"$ {container.label}\n".encode())
            log.flush()
            container.proc = subprocess.Popen(
                container.command,
                env=container.env,
                cwd=self.work_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        container.started_at = time.monotonic()
        if container.log_stream:
            self.logs_client.create_log_stream(logGroupName=container.log_group, logStreamName=container.log_stream)
        task.started_at = _now()
        task.last_status = "RUNNING"
        for moto_container in task.containers:
            moto_container.last_status = "RUNNING"
        self.running[container.task_arn] = container

    def _ship_logs(self, container: Container, final: bool = False) -> None:
        """awslogs: send the complete lines written since the last call (all of it when final)."""
        if not container.log_stream:
            return
        data = _read(container.log_path)[container.shipped:]
        end = len(data) if final else data.rfind(b"\n") + 1
        if end <= 0:
            return
        now = int(time.time() * 1000)
        lines = [line for line in data[:end].decode(errors="replace").splitlines() if line]
        for i in range(0, len(lines), 1000):  # PutLogEvents takes up to 10,000 events per call
            self.logs_client.put_log_events(
                logGroupName=container.log_group,
                logStreamName=container.log_stream,
                logEvents=[{"timestamp": now, "message": line} for line in lines[i : i + 1000]],
            )
        container.shipped += end

    def _watch(self, task, container: Container) -> None:
        self._ship_logs(container)
        exit_code = container.proc.poll()
        if exit_code is None:
            with contextlib.suppress(psutil.Error):
                container.descendants = psutil.Process(container.proc.pid).children(recursive=True)
            if container.kill and not container.killed and container.kill.due(container):
                self._signal(container, signal.SIGKILL)
                container.killed = True
                container.proc.wait(timeout=10)
                self._finish(task, container, container.kill.exit_code, container.kill.reason)
            elif task is not None and task.desired_status == "STOPPED" and not container.killed:
                # StopTask: ECS sends SIGTERM, then SIGKILL after the stop timeout (30 s by default).
                self._signal(container, signal.SIGTERM)
                container.killed = True
                container.terminated_at = time.monotonic()
            elif container.terminated_at and time.monotonic() - container.terminated_at > STOP_TIMEOUT_SECONDS:
                self._signal(container, signal.SIGKILL)
            return
        if container.killed:
            reason = task.stopped_reason if task is not None and task.stopped_reason else "Task stopped"
            self._finish(task, container, exit_code if exit_code >= 0 else 128 - exit_code, reason)
        else:
            self._finish(task, container, exit_code, None)

    def _finish(self, task, container: Container, exit_code: int | None, reason: str | None) -> None:
        self.running.pop(container.task_arn, None)
        for process in container.descendants:  # a container's processes end with it
            with contextlib.suppress(psutil.Error):
                process.kill()
        container.exit_code = exit_code
        self.finished.append(container)
        if container.started_at:
            with contextlib.suppress(Exception):
                self._ship_logs(container, final=True)
        with open(container.log_path, "ab") as log:
            log.write(f"\n[fake-fargate] exit code {exit_code}, reason {reason}\n".encode())
        if task is None:
            self.errors.append(f"task {container.task_arn} vanished from moto")
            return
        for moto_container in task.containers:
            moto_container.last_status = "STOPPED"
            if exit_code is not None:
                moto_container.exit_code = exit_code
                moto_container.exitCode = exit_code
            elif hasattr(moto_container, "exitCode"):
                # moto defaults exitCode to 0; a container that never started has none.
                del moto_container.exitCode
            if reason and exit_code not in (None, 0):
                moto_container.reason = reason
        task.stopped_at = _now()
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        if not task.stopped_reason:
            task.stopped_reason = reason or ESSENTIAL_EXITED
        task.stop_code = "EssentialContainerExited" if container.started_at else "TaskFailedToStart"

    @staticmethod
    def _signal(container: Container, sig: int) -> None:
        if sig == signal.SIGKILL:
            with contextlib.suppress(psutil.Error):
                container.descendants = psutil.Process(container.proc.pid).children(recursive=True)
            for process in container.descendants:
                with contextlib.suppress(psutil.Error):
                    process.kill()
        try:
            os.killpg(container.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    # -- diagnostics -------------------------------------------------------------------------

    def summary(self, tail_failed: int = 5, lines: int = 40) -> str:
        out = [
            f"fake Fargate: {len(self.seen)} tasks seen, {len(self.pending)} pending, "
            f"{len(self.running)} running, {len(self.finished)} finished"
        ]
        out += [f"  harness error: {error}" for error in self.errors[-10:]]
        for container in list(self.running.values()):
            out.append(f"  running {time.monotonic() - container.started_at:6.1f}s: {container.label}")
        for container in list(self.pending)[:20]:
            out.append(f"  pending {time.monotonic() - container.queued_at:6.1f}s: {container.label}")
        failed = [c for c in self.finished if c.exit_code not in (0,)]
        for container in failed[-tail_failed:]:
            out.append(f"  --- container {container.label} exited {container.exit_code}; log tail:")
            out.append(tail(container.log_path, lines))
        return "\n".join(out)


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError as error:
        return f"    <cannot read {path}: {error}>"
    # Long lines (a workload's JSON, a TI repr) are cut: the full text stays in the file.
    return "\n".join("    " + (line if len(line) <= 400 else line[:400] + " [...]") for line in text[-lines:])
