"""One executor's run, in a process of its own: queue N workloads, heartbeat once a second, measure.

``python -m bench.phase --executor stock|ours --endpoint URL --tasks N --out FILE``; bench.run starts
it with the executor's configuration in the environment (AIRFLOW__AWS_ECS_EXECUTOR__*), the same for
both executors. The process hard-exits when done, so a heartbeat still blocked at the time cap (the
stock executor's serial RunTask loop) cannot hold the benchmark hostage.

No metadata database is used. The scheduler's side of the protocol is played by this driver:
``queue_workload`` with real ExecuteTask workloads, ``heartbeat()`` once a second, and
``get_event_buffer()`` after each heartbeat, where the scheduler would write states to the DB; here
the events are only counted. BaseExecutor's own success/fail/running bookkeeping is in memory and
runs unmodified; nothing of either executor is stubbed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import threading
import time
import urllib.request

EXECUTORS = {
    "stock": "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor",
    "ours": "airflow_ecs_fargate.executor.EcsFargateExecutor",
}
TERMINAL = {"success", "failed"}


def load_class(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


class Fargate:
    """The emulator's control endpoints (not ECS API calls; never counted)."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")

    def _get(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(self.endpoint + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self._get("/_bench/reset", method="POST")

    def stats(self, full: bool = False) -> dict:
        return self._get("/_bench/stats" + ("?full=1" if full else ""))


def sustained_rate(times: list[float]) -> float | None:
    """Launches/s over the middle 80% of launches: leaves out the start-up burst and the tail."""
    n = len(times)
    if n < 2:
        return None
    if n < 20:
        return (n - 1) / (times[-1] - times[0]) if times[-1] > times[0] else None
    i1, i2 = n // 10, n - 1 - n // 10
    span = times[i2] - times[i1]
    return (i2 - i1) / span if span > 0 else None


class Phase:
    def __init__(self, args):
        self.args = args
        self.fargate = Fargate(args.endpoint)
        self.heartbeats_ms: list[float] = []
        self.hb_started: float | None = None
        self.events = {"running": 0, "success": 0, "failed": 0, "queued": 0, "other": 0}
        self.terminal_keys: set = set()
        self.running_times: list[float] = []
        self.last_terminal_at: float | None = None
        self.launch_window_calls: dict | None = None
        self.launch_window_launched = 0
        self._done = threading.Lock()
        self.t0 = 0.0

    def run(self) -> None:
        from bench.api_calls import EcsCallCounter
        from bench.workload import make_workloads

        args = self.args
        self.counter = EcsCallCounter()
        self.counter.install()

        executor_path = EXECUTORS[args.executor]
        cls = load_class(executor_path)
        executor = cls(parallelism=args.tasks)
        try:
            generator = executor.jwt_generator
        except Exception:  # a token is payload realism only; an empty one is what ExecuteTask allows
            generator = None
        workloads = make_workloads(args.tasks, generator)

        # A running scheduler has emitted metrics long before an executor's first heartbeat. Without this,
        # loading Airflow's metrics registry (a one-time YAML parse, ~0.1-0.3 s) would land inside whichever
        # executor's first heartbeat emits a gauge, and be billed to that executor.
        from airflow._shared.observability.metrics import stats

        stats.incr("scheduler_heartbeat")
        # Likewise the ORM: a scheduler has configured SQLAlchemy's mappers before it runs an executor. The
        # first Log() built in a process configures them all (~2 s here), and both executors build Log()
        # rows in log_task_event (held in memory for the scheduler to write; no DB is touched here).
        from airflow.models import Log

        Log(event="bench warm-up")

        if not args.shared:
            self.fargate.reset()
        self.counter.reset()
        executor.start()
        for w in workloads:
            executor.queue_workload(w, session=None)
        if args.go_file:
            # Shared emulator (two schedulers): say ready, then start heartbeating when told to.
            open(args.go_file + f".ready-{os.getpid()}", "w").close()
            while not os.path.exists(args.go_file):
                time.sleep(0.01)

        self.t0 = time.monotonic()
        threading.Thread(target=self._watchdog, daemon=True, name="cap-watchdog").start()
        next_beat = self.t0
        all_launched = False
        while True:
            now = time.monotonic()
            if now < next_beat:
                time.sleep(next_beat - now)
            hb_start = self.hb_started = time.monotonic()
            executor.heartbeat()
            hb_end = time.monotonic()
            self.hb_started = None
            self.heartbeats_ms.append((hb_end - hb_start) * 1000.0)
            self._drain(executor)
            next_beat = max(next_beat + args.heartbeat_interval, hb_end)

            # On a shared emulator its launch count is every scheduler's: count this one's own.
            launched_now = self.events["running"] if args.shared else self.fargate.stats()["launched"]
            if not all_launched and launched_now >= args.tasks:
                all_launched = True
                self.launch_window_calls = self.counter.snapshot()
                self.launch_window_launched = launched_now
            finished = len(self.terminal_keys) >= args.tasks
            elapsed = time.monotonic() - self.t0
            if finished or (all_launched and not args.lifecycle):
                self._finish(capped=False)
            if args.cap_s and elapsed >= args.cap_s:
                self._finish(capped=True)
            if elapsed >= args.max_seconds:
                self._finish(capped=True)

    def _drain(self, executor) -> None:
        now = time.monotonic()
        for key, (state, _info) in executor.get_event_buffer().items():
            name = str(getattr(state, "value", state)).lower()
            self.events[name if name in self.events else "other"] += 1
            if name == "running":
                self.running_times.append(now)
            if name in TERMINAL and key not in self.terminal_keys:
                self.terminal_keys.add(key)
                self.last_terminal_at = now

    def _watchdog(self) -> None:
        limit = self.args.cap_s or self.args.max_seconds
        while True:
            time.sleep(0.25)
            hb = self.hb_started
            if hb is not None and time.monotonic() - self.t0 >= limit:
                self._finish(capped=True, in_heartbeat_ms=(time.monotonic() - hb) * 1000.0)

    def _finish(self, capped: bool, in_heartbeat_ms: float | None = None) -> None:
        if not self._done.acquire(blocking=False):
            return
        try:
            result = self._collect(capped, in_heartbeat_ms)
        except Exception as e:  # still hand back something the parent can report
            result = {"error": f"{type(e).__name__}: {e}"}
        with open(self.args.out, "w") as f:
            json.dump(result, f, indent=2)
        os._exit(0)  # executor threads (ours) or a blocked heartbeat (stock) must not keep us alive

    def _collect(self, capped: bool, in_heartbeat_ms: float | None) -> dict:
        args = self.args
        end = time.monotonic()
        stats = self.fargate.stats(full=True)
        calls = self.counter.snapshot()
        # The emulator stamps launches with time.monotonic(): CLOCK_MONOTONIC is system-wide on Linux,
        # so its stamps and this process's t0 are on one clock.
        if args.shared:
            # Launches of this scheduler: when the executor reported each running (heartbeat resolution).
            times = sorted(t - self.t0 for t in self.running_times)
        else:
            times = sorted(t - self.t0 for t in stats["launch_times"])
        launched = len(times)
        all_launched = launched >= args.tasks
        finished = len(self.terminal_keys) >= args.tasks

        completed_hb = max(self.heartbeats_ms, default=0.0)
        max_hb = max(completed_hb, in_heartbeat_ms or 0.0)
        overall = launched / times[-1] if launched and times[-1] > 0 else None
        sustained = sustained_rate(times)

        total_calls = sum(calls.values())
        if finished:
            basis = "full lifecycle: every task launched, ran and was reported finished"
            per_task = total_calls / args.tasks
        elif all_launched:
            basis = "launch plus partial polling: all launched, not all finished when the run stopped"
            per_task = total_calls / args.tasks
        else:
            basis = "partial: time cap reached before all tasks launched; calls / tasks launched"
            per_task = total_calls / launched if launched else None
        lw_calls = self.launch_window_calls if self.launch_window_calls is not None else calls
        lw_launched = self.launch_window_launched or launched

        http = stats["ops"]
        return {
            "executor": EXECUTORS[args.executor],
            "tasks": args.tasks,
            "launched": launched,
            "capped": capped,
            "cap_s": args.cap_s or None,
            "wall_seconds": round(end - self.t0, 2),
            "seconds_to_launch_all": round(times[-1], 2) if all_launched else None,
            "seconds_to_launch_all_estimated": (
                round(times[-1], 2) if all_launched else (round(args.tasks / overall, 1) if overall else None)
            ),
            "launches_per_s": round(sustained, 2) if sustained else None,
            "overall_launches_per_s": round(overall, 2) if overall else None,
            "first_launch_s": round(times[0], 3) if times else None,
            "max_heartbeat_ms": round(max_hb, 1),
            "max_heartbeat_is_lower_bound": in_heartbeat_ms is not None and in_heartbeat_ms >= completed_hb,
            "max_heartbeat_ms_after_first": round(max(self.heartbeats_ms[1:], default=0.0), 1),
            "first_heartbeat_ms": round(self.heartbeats_ms[0], 1) if self.heartbeats_ms else None,
            "slowest_heartbeats": [
                {"index": i, "ms": round(ms, 1)}
                for i, ms in sorted(enumerate(self.heartbeats_ms), key=lambda p: -p[1])[:3]
            ],
            "heartbeats": len(self.heartbeats_ms) + (1 if in_heartbeat_ms is not None else 0),
            "p50_heartbeat_ms": round(statistics.median(self.heartbeats_ms), 1) if self.heartbeats_ms else None,
            "p99_heartbeat_ms": (
                round(statistics.quantiles(self.heartbeats_ms, n=100, method="inclusive")[98], 1) if len(self.heartbeats_ms) >= 2 else None
            ),
            "api_calls_per_task": round(per_task, 3) if per_task is not None else None,
            "api_calls_basis": basis,
            "api_calls": calls,
            "api_calls_total": total_calls,
            "non_runtask_calls_per_task": (
                round((total_calls - calls.get("RunTask", 0)) / (args.tasks if all_launched else launched), 3)
                if launched else None
            ),
            "api_calls_per_task_launch_window": (
                round(sum(lw_calls.values()) / lw_launched, 3) if lw_launched else None
            ),
            "api_calls_launch_window": lw_calls,
            "non_runtask_calls_per_task_launch_window": (
                round((sum(lw_calls.values()) - lw_calls.get("RunTask", 0)) / lw_launched, 3) if lw_launched else None
            ),
            "http_requests_seen_by_fargate": http,
            "runtask_throttled": http.get("RunTask", {}).get("throttled", 0),
            "tasks_reported_finished": len(self.terminal_keys),
            "seconds_to_finish_all": round(self.last_terminal_at - self.t0, 2) if finished else None,
            "executor_events": self.events,
        }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="one executor's benchmark phase (started by bench.run)")
    p.add_argument("--executor", choices=sorted(EXECUTORS), required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--out", required=True)
    p.add_argument("--heartbeat-interval", type=float, default=1.0)
    p.add_argument("--cap-s", type=float, default=0.0, help="stop at this many seconds, reporting what was reached")
    p.add_argument("--max-seconds", type=float, default=900.0, help="safety stop for any phase")
    p.add_argument("--lifecycle", action=argparse.BooleanOptionalAction, default=True,
                   help="keep heartbeating until every task is reported finished")
    p.add_argument("--shared", action="store_true",
                   help="the emulator is shared with another scheduler: never reset it, count own launches")
    p.add_argument("--go-file", default="",
                   help="after queueing, create <go-file>.ready-<pid> and wait for <go-file> before the first heartbeat")
    return p.parse_args(argv)


def main(argv=None) -> None:
    Phase(parse_args(argv)).run()


if __name__ == "__main__":
    main()
