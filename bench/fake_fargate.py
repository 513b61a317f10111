"""An emulated Fargate: moto's ECS backend behind a WSGI front door that behaves like the real service.

Runs as its own process (``python -m bench.fake_fargate``) so that the service's CPU work does not
land inside the executor's heartbeat. The front door:

- throttles RunTask like ECS/Fargate: one token bucket for RunTask calls, one for task launches
  (``count`` tokens per call); a call that finds either bucket short gets HTTP 400
  ``ThrottlingException: Rate exceeded`` at once, with no latency, as the real service answers;
- delays every admitted RunTask by the injected latency (concurrent calls wait concurrently);
- plays the Fargate task lifecycle on moto's Task objects: PROVISIONING at RunTask, RUNNING after
  ``--start-seconds`` (``started_at`` set), STOPPED ``--task-seconds`` later with exit code 0
  (no exit code before that; INACTIVE task definitions refused: standins/moto_ecs.py);
- counts every ECS request by operation, and records when each task was created.

Everything here is the same for every executor under test; it knows nothing about who calls it.
Control endpoints (not ECS): ``POST /_bench/reset``, ``GET /_bench/stats[?full=1]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import io
import json
import os
import sys
import threading
import time
import uuid
from collections import defaultdict

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from moto.ecs.exceptions import InvalidParameterException  # noqa: E402
from moto.ecs.models import EC2ContainerServiceBackend  # noqa: E402
from moto.moto_api import state_manager  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

from standins.moto_ecs import ecs_stop_task, strict_run_task  # noqa: E402
from bench.token_bucket import TokenBucket  # noqa: E402

ECS_TARGET_PREFIX = "AmazonEC2ContainerService"

# One lock around moto's backend: moto is not written for concurrent mutation, and the lifecycle
# thread mutates the same Task objects that DescribeTasks serializes.
BACKEND_LOCK = threading.RLock()


class Lifecycle:
    """Moves created tasks through PROVISIONING -> RUNNING -> STOPPED on a clock."""

    def __init__(self, start_seconds: float, task_seconds: float):
        self.start_seconds = start_seconds
        self.task_seconds = task_seconds
        self._heap: list[tuple[float, int, str, object]] = []
        self._seq = 0
        self._heap_lock = threading.Lock()
        self.launch_times: list[float] = []
        self.running = 0
        self.stopped = 0

    def created(self, task) -> None:
        now = time.monotonic()
        task.last_status = "PROVISIONING"
        task.desired_status = "RUNNING"
        for c in task.containers:
            c.last_status = "PENDING"
        self.launch_times.append(now)
        self._push(now + self.start_seconds, "start", task)

    def _push(self, when: float, what: str, task) -> None:
        with self._heap_lock:
            self._seq += 1
            heapq.heappush(self._heap, (when, self._seq, what, task))

    def tick(self) -> None:
        now = time.monotonic()
        due = []
        with self._heap_lock:
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap))
        if not due:
            return
        wall = dt.datetime.now(dt.timezone.utc)
        with BACKEND_LOCK:
            for _, _, what, task in due:
                if task.desired_status == "STOPPED":  # stopped early (StopTask): nothing more to play
                    continue
                if what == "start":
                    task.last_status = "RUNNING"
                    task.started_at = wall
                    for c in task.containers:
                        c.last_status = "RUNNING"
                    self.running += 1
                    self._push(now + self.task_seconds, "stop", task)
                else:
                    task.desired_status = "STOPPED"
                    task.last_status = "STOPPED"
                    task.stopped_at = wall
                    task.stopped_reason = "Essential container in task exited"
                    for c in task.containers:
                        c.last_status = "STOPPED"
                        c.exitCode = 0
                        c.exit_code = 0
                    self.running -= 1
                    self.stopped += 1

    def run_forever(self, period: float = 0.05) -> None:
        while True:
            self.tick()
            time.sleep(period)


def patch_moto(lifecycle: Lifecycle) -> None:
    # moto advances ECS tasks one state per DescribeTasks by default; the lifecycle above owns state.
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**12})

    # ECS's rules where moto is lenient: no exit code before a container exits, no INACTIVE
    # task definition, StopTask of an unknown task (standins/moto_ecs.py).
    original_run_task = strict_run_task(EC2ContainerServiceBackend.run_task)

    def run_task(self, *args, **kwargs):
        tasks = original_run_task(self, *args, **kwargs)
        for task in tasks:
            lifecycle.created(task)
        return tasks

    def describe_tasks(self, cluster_str, tasks):
        # Same result as moto's, in linear time: moto's version scans every task for every ARN asked
        # (quadratic), which at 1,000 tasks would make the emulator, not the executor, the bottleneck.
        self._get_cluster(cluster_str)
        if not tasks:
            raise InvalidParameterException("Tasks cannot be empty.")
        wanted = set(tasks) | {t.split("/")[-1] for t in tasks}
        response = []
        for cluster_tasks in self.tasks.values():
            for task_arn, task in cluster_tasks.items():
                if task_arn in wanted or task_arn.split("/")[-1] in wanted:
                    task.advance()
                    response.append(task)
        return response

    EC2ContainerServiceBackend.run_task = run_task
    EC2ContainerServiceBackend.stop_task = ecs_stop_task(EC2ContainerServiceBackend.stop_task)
    EC2ContainerServiceBackend.describe_tasks = describe_tasks


class FrontDoor:
    """WSGI middleware in front of moto: rate limits, latency, counting, control endpoints."""

    def __init__(self, app, lifecycle: Lifecycle, args):
        self.app = app
        self.lifecycle = lifecycle
        self.args = args
        self._stats_lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        a = self.args
        with self._stats_lock:
            self.run_task_calls = TokenBucket(a.runtask_rate, a.runtask_burst)
            self.launches = TokenBucket(a.launch_rate, a.launch_burst)
            self.ops: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            self.lifecycle.launch_times = []
            self.reset_at = time.monotonic()

    def _count(self, op: str, outcome: str) -> None:
        with self._stats_lock:
            self.ops[op]["requests"] += 1
            self.ops[op][outcome] += 1

    def stats(self, full: bool) -> dict:
        with self._stats_lock:
            out = {
                "now": time.monotonic(),
                "reset_at": self.reset_at,
                "launched": len(self.lifecycle.launch_times),
                "running": self.lifecycle.running,
                "stopped": self.lifecycle.stopped,
                "ops": {op: dict(v) for op, v in self.ops.items()},
            }
            if full:
                out["launch_times"] = list(self.lifecycle.launch_times)
        return out

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_bench/"):
            return self._control(path, environ, start_response)

        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(ECS_TARGET_PREFIX):
            return self._forward(environ, start_response)  # set-up calls to EC2 etc.
        op = target.rsplit(".", 1)[-1]

        if op == "RunTask":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                count = int(json.loads(body or b"{}").get("count", 1))
            except (ValueError, TypeError):
                count = 1
            # Both limits are checked at the door; a call refused by either is refused whole.
            if not self.run_task_calls.try_take(1):
                self._count(op, "throttled")
                return self._throttle(start_response, "Rate exceeded")
            if not self.launches.try_take(count):
                self._count(op, "throttled")
                return self._throttle(start_response, "Rate exceeded")
            time.sleep(self.args.runtask_latency_ms / 1000.0)
        elif self.args.other_latency_ms:
            time.sleep(self.args.other_latency_ms / 1000.0)

        status_holder = {}
        response = self._forward(environ, lambda s, h, exc_info=None: status_holder.update(s=s, h=h))
        self._count(op, "ok" if status_holder["s"].startswith("2") else "error")
        start_response(status_holder["s"], status_holder["h"])
        return response

    def _forward(self, environ, start_response):
        with BACKEND_LOCK:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        return [body]

    @staticmethod
    def _throttle(start_response, message: str):
        body = json.dumps({"__type": "ThrottlingException", "message": message}).encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(body))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
        )
        return [body]

    def _control(self, path, environ, start_response):
        if path == "/_bench/reset":
            self.reset()
            payload = {"ok": True}
        elif path == "/_bench/stats":
            payload = self.stats(full="full=1" in environ.get("QUERY_STRING", ""))
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"unknown control path"]
        body = json.dumps(payload).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs):  # one line per request would swamp the run's output
        pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--runtask-latency-ms", type=float, default=300.0)
    p.add_argument("--other-latency-ms", type=float, default=0.0)
    p.add_argument("--runtask-rate", type=float, default=20.0)
    p.add_argument("--runtask-burst", type=float, default=20.0)
    p.add_argument("--launch-rate", type=float, default=20.0)
    p.add_argument("--launch-burst", type=float, default=100.0)
    p.add_argument("--start-seconds", type=float, default=2.0)
    p.add_argument("--task-seconds", type=float, default=60.0)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    lifecycle = Lifecycle(args.start_seconds, args.task_seconds)
    patch_moto(lifecycle)
    front = FrontDoor(DomainDispatcherApplication(create_backend_app), lifecycle, args)
    server = make_server("127.0.0.1", args.port, front, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=lifecycle.run_forever, daemon=True, name="lifecycle").start()
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
