"""`make bench`: the stock AwsEcsExecutor and ours, launching the same workload on the same emulated Fargate.

Each side gets a fresh emulator process (bench.fake_fargate) with the same latency and rate limits, and
runs in its own process (bench.phase) with the same environment. Results go to bench/results.json and
one summary line to stdout. See bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from bench.phase import EXECUTORS, Fargate, sustained_rate

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
REGION = "us-east-1"
CLUSTER = "bench"
TASK_FAMILY = "airflow-worker"
CONTAINER = "base"

TARGETS = {
    "ours_launches_per_s_min": 19.0,
    "launch_rate_ratio_min": 4.0,
    "ours_max_heartbeat_ms_max": 50.0,
    "api_calls_ratio_max": 0.5,
    # Two schedulers on one emulated account: together at least 19 launches/s, at most 2 % of
    # their RunTask requests throttled, every heartbeat of either within 50 ms.
    "two_schedulers_launches_per_s_min": 19.0,
    "two_schedulers_throttled_share_max": 0.02,
    "two_schedulers_max_heartbeat_ms_max": 50.0,
}

#: Variants of the two-scheduler phase: (executor environment, what it shows). "share" is the
#: default (each scheduler paces at the quota / 2); the others measure the alternatives.
TWO_SCHEDULER_VARIANTS = {
    "share": ({"AIRFLOW__AWS_ECS_EXECUTOR__SCHEDULER_COUNT": "2"},
              "each paces at its share (quota / scheduler_count, less the headroom), the executor's defaults"),
    "share+adaptive": ({"AIRFLOW__AWS_ECS_EXECUTOR__SCHEDULER_COUNT": "2", "AIRFLOW__AWS_ECS_EXECUTOR__API_RETRY_MODE": "adaptive"},
                       "each paces at its share, botocore adaptive retries"),
    "adaptive": ({"AIRFLOW__AWS_ECS_EXECUTOR__SCHEDULER_COUNT": "1", "AIRFLOW__AWS_ECS_EXECUTOR__API_RETRY_MODE": "adaptive"},
                 "each paces at the whole quota, botocore adaptive retries (client-side rate limiter)"),
    "none": ({"AIRFLOW__AWS_ECS_EXECUTOR__SCHEDULER_COUNT": "1", "AIRFLOW__AWS_ECS_EXECUTOR__API_RETRY_MODE": "standard"},
             "each paces at the whole quota, standard retries (two schedulers before scheduler_count)"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=1000, help="workloads queued before the first heartbeat")
    p.add_argument("--latency-ms", type=float, default=300.0, help="injected latency of each admitted RunTask")
    p.add_argument("--other-latency-ms", type=float, default=0.0, help="injected latency of other ECS calls")
    p.add_argument("--task-seconds", type=float, default=60.0, help="how long each task runs once started")
    p.add_argument("--start-seconds", type=float, default=2.0, help="PROVISIONING time before a task runs")
    p.add_argument("--runtask-rate", type=float, default=20.0, help="RunTask calls/s refilled")
    p.add_argument("--runtask-burst", type=float, default=20.0, help="RunTask call bucket size")
    p.add_argument("--launch-rate", type=float, default=20.0, help="task launches/s refilled")
    p.add_argument("--launch-burst", type=float, default=100.0, help="task launch bucket size")
    p.add_argument("--heartbeat-interval", type=float, default=1.0)
    p.add_argument("--only", choices=sorted(EXECUTORS), help="run one side only")
    p.add_argument("--stock-cap-s", type=float, default=120.0,
                   help="stop the stock side after this many seconds and report what it reached (0: no cap)")
    p.add_argument("--ours-cap-s", type=float, default=0.0, help="same for ours (0: no cap)")
    p.add_argument("--lifecycle", action=argparse.BooleanOptionalAction, default=True,
                   help="heartbeat until every task is reported finished (needed for lifecycle API calls/task)")
    p.add_argument("--executor-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for BOTH executors, e.g. AIRFLOW__AWS_ECS_EXECUTOR__...=...")
    p.add_argument("--two-scheduler-tasks", type=int, default=500,
                   help="workloads queued on EACH of the two schedulers of the two-scheduler phase (0: skip it)")
    p.add_argument("--two-scheduler-variants", default="share",
                   help=f"comma-separated variants of the two-scheduler phase: {', '.join(TWO_SCHEDULER_VARIANTS)}")
    p.add_argument("--out", default=str(BENCH_DIR / "results.json"))
    return p.parse_args(argv)


def start_fargate(args, log) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable, "-m", "bench.fake_fargate",
        "--runtask-latency-ms", str(args.latency_ms),
        "--other-latency-ms", str(args.other_latency_ms),
        "--runtask-rate", str(args.runtask_rate),
        "--runtask-burst", str(args.runtask_burst),
        "--launch-rate", str(args.launch_rate),
        "--launch-burst", str(args.launch_burst),
        "--start-seconds", str(args.start_seconds),
        "--task-seconds", str(args.task_seconds),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "READY":
        proc.kill()
        raise RuntimeError(f"emulated Fargate did not start; see {log.name}")
    return proc, f"http://127.0.0.1:{line[1]}"


def set_up_account(endpoint: str) -> dict:
    """What the CDK app would have deployed: a VPC with a subnet and group, a cluster, a task definition."""
    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2 = boto3.client("ec2", **kw)
    ecs = boto3.client("ecs", **kw)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's ENIs need it
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/18")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="workers", Description="workers", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(
        family=TASK_FAMILY,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": CONTAINER, "image": "apache/airflow:3.3.2", "memory": 512, "essential": True}],
    )
    return {"subnet": subnet, "security_group": sg}


def phase_env(args, endpoint: str, ids: dict, side: str, airflow_home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "AIRFLOW_HOME": airflow_home,
            "AIRFLOW__CORE__EXECUTOR": EXECUTORS[side],
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__API_AUTH__JWT_SECRET": "bench-only-not-a-secret-" + "0" * 48,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            # Any boto3 client in the phase process, however it was built, talks to the emulator.
            "AWS_ENDPOINT_URL": endpoint,
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                {"conn_type": "aws", "extra": {"endpoint_url": endpoint, "region_name": REGION}}
            ),
            "AIRFLOW__AWS_ECS_EXECUTOR__CONN_ID": "aws_default",
            "AIRFLOW__AWS_ECS_EXECUTOR__REGION_NAME": REGION,
            "AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER": CLUSTER,
            "AIRFLOW__AWS_ECS_EXECUTOR__CONTAINER_NAME": CONTAINER,
            "AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION": TASK_FAMILY,
            "AIRFLOW__AWS_ECS_EXECUTOR__LAUNCH_TYPE": "FARGATE",
            "AIRFLOW__AWS_ECS_EXECUTOR__SUBNETS": ids["subnet"],
            "AIRFLOW__AWS_ECS_EXECUTOR__SECURITY_GROUPS": ids["security_group"],
            "AIRFLOW__AWS_ECS_EXECUTOR__ASSIGN_PUBLIC_IP": "False",
            "AIRFLOW__AWS_ECS_EXECUTOR__CHECK_HEALTH_ON_STARTUP": "True",
        }
    )
    for item in args.executor_env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def run_side(args, side: str, airflow_home: str, logs: Path) -> dict:
    cap = args.stock_cap_s if side == "stock" else args.ours_cap_s
    with open(logs / f"{side}.fargate.log", "w") as flog, open(logs / f"{side}.executor.log", "w") as elog:
        server, endpoint = start_fargate(args, flog)
        try:
            ids = set_up_account(endpoint)
            out = logs / f"{side}.json"
            out.unlink(missing_ok=True)
            cmd = [
                sys.executable, "-m", "bench.phase",
                "--executor", side,
                "--endpoint", endpoint,
                "--tasks", str(args.tasks),
                "--out", str(out),
                "--heartbeat-interval", str(args.heartbeat_interval),
                "--cap-s", str(cap),
                "--lifecycle" if args.lifecycle else "--no-lifecycle",
            ]
            print(f"bench: running {side} ({EXECUTORS[side]})" + (f", capped at {cap:.0f} s" if cap else ""),
                  file=sys.stderr, flush=True)
            started = time.monotonic()
            proc = subprocess.run(cmd, cwd=REPO, env=phase_env(args, endpoint, ids, side, airflow_home),
                                  stdout=elog, stderr=subprocess.STDOUT, timeout=(cap or 900) + 300)
            if not out.exists():
                return {"error": f"phase exited {proc.returncode} without results; see {elog.name}"}
            result = json.loads(out.read_text())
            result["process_seconds"] = round(time.monotonic() - started, 1)
            return result
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def run_two_schedulers(args, variant: str, airflow_home: str, logs: Path) -> dict:
    """Two of our executors, each in its own process, against ONE emulated account (Fargate's limits).

    Both queue ``--two-scheduler-tasks`` workloads and start heartbeating together; each stops when
    all of its own are launched. Combined launches/s (middle 80 %, as for one scheduler) and the share
    of RunTask requests throttled come from the emulator; heartbeats from each process.
    """
    extra_env, _ = TWO_SCHEDULER_VARIANTS[variant]
    name = f"two-schedulers-{variant}"
    with open(logs / f"{name}.fargate.log", "w") as flog:
        server, endpoint = start_fargate(args, flog)
        go = Path(tempfile.mkdtemp(prefix="bench-go-")) / "go"
        procs, outs, elogs = [], [], []
        try:
            ids = set_up_account(endpoint)
            env = phase_env(args, endpoint, ids, "ours", airflow_home)
            env.update(extra_env)
            print(f"bench: running two schedulers ({variant}), {args.two_scheduler_tasks} tasks each",
                  file=sys.stderr, flush=True)
            for i in (1, 2):
                out = logs / f"{name}.{i}.json"
                out.unlink(missing_ok=True)
                elog = open(logs / f"{name}.{i}.executor.log", "w")
                cmd = [
                    sys.executable, "-m", "bench.phase", "--executor", "ours", "--endpoint", endpoint,
                    "--tasks", str(args.two_scheduler_tasks), "--out", str(out),
                    "--heartbeat-interval", str(args.heartbeat_interval), "--no-lifecycle",
                    "--shared", "--go-file", str(go), "--max-seconds", "600",
                ]
                procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=elog, stderr=subprocess.STDOUT))
                outs.append(out)
                elogs.append(elog)
            deadline = time.monotonic() + 300
            while len(list(go.parent.glob("go.ready-*"))) < 2:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    return {"error": f"a scheduler did not get ready; see {logs}/{name}.*.executor.log"}
                time.sleep(0.05)
            Fargate(endpoint).reset()
            t0 = time.monotonic()
            go.touch()
            for p in procs:
                p.wait(timeout=900)
            stats = Fargate(endpoint).stats(full=True)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for f in elogs:
                f.close()
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    sides = []
    for out in outs:
        if not out.exists():
            return {"error": f"a scheduler exited without results; see {logs}/{name}.*.executor.log"}
        sides.append(json.loads(out.read_text()))
    times = sorted(t - t0 for t in stats["launch_times"])
    run_task = stats["ops"].get("RunTask", {})
    requests = run_task.get("requests", 0)
    rate = sustained_rate(times)
    return {
        "variant": variant,
        "description": TWO_SCHEDULER_VARIANTS[variant][1],
        "executor_env": extra_env,
        "tasks": 2 * args.two_scheduler_tasks,
        "launched": len(times),
        "launches_per_s": round(rate, 2) if rate else None,
        "seconds_to_launch_all": round(times[-1], 2) if times else None,
        "runtask_requests": requests,
        "runtask_throttled": run_task.get("throttled", 0),
        "throttled_share": round(run_task.get("throttled", 0) / requests, 4) if requests else None,
        "max_heartbeat_ms": max(side.get("max_heartbeat_ms", 1e9) for side in sides),
        "per_scheduler": [
            {k: side.get(k) for k in ("launched", "max_heartbeat_ms", "p99_heartbeat_ms", "api_calls", "capped")}
            for side in sides
        ],
    }


def two_scheduler_verdicts(result: dict | None) -> dict:
    if not result or "error" in result:
        return {}
    return {
        "two_schedulers_launches_per_s>=19": (result.get("launches_per_s") or 0) >= TARGETS["two_schedulers_launches_per_s_min"],
        "two_schedulers_throttled<=2%": (result.get("throttled_share") if result.get("throttled_share") is not None else 1)
        <= TARGETS["two_schedulers_throttled_share_max"],
        "two_schedulers_max_heartbeat_ms<=50": result.get("max_heartbeat_ms", 1e9) <= TARGETS["two_schedulers_max_heartbeat_ms_max"],
    }


def fmt_two(r: dict | None) -> str:
    if not r:
        return "two schedulers: not run"
    if "error" in r:
        return f"two schedulers ({r.get('variant', '?')}): ERROR {r['error']}"
    return (f"two schedulers ({r['variant']}) {r['launches_per_s']} launches/s combined, all {r['launched']} in "
            f"{r['seconds_to_launch_all']:.1f} s, {100 * (r['throttled_share'] or 0):.1f} % of "
            f"{r['runtask_requests']} RunTask requests throttled, max heartbeat {r['max_heartbeat_ms']:.0f} ms")


def ratio(a, b):
    return round(a / b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def compare(stock: dict, ours: dict) -> dict:
    both_full = stock.get("tasks_reported_finished") == stock.get("tasks") and ours.get(
        "tasks_reported_finished"
    ) == ours.get("tasks")
    if both_full:
        api_basis, api_key = "full lifecycle on both sides", "api_calls_per_task"
    else:
        # Compare like with like: calls per launched task up to when each side had launched everything
        # (or hit its cap), since the capped side never reached the polling-heavy part of its lifecycle.
        api_basis, api_key = (
            "launch window on both sides (stock did not finish its lifecycle; while its heartbeat is "
            "blocked in serial RunTask calls it polls nothing, so its launch-window count is a floor, not "
            "a virtue: run with --stock-cap-s 0 for the lifecycle comparison)",
            "api_calls_per_task_launch_window",
        )
    non_key = "non_runtask_" + api_key.removeprefix("api_")
    out = {
        "launches_per_s": ratio(ours.get("launches_per_s"), stock.get("launches_per_s")),
        "seconds_to_launch_all": ratio(
            ours.get("seconds_to_launch_all_estimated"), stock.get("seconds_to_launch_all_estimated")
        ),
        "max_heartbeat_ms": ratio(ours.get("max_heartbeat_ms"), stock.get("max_heartbeat_ms")),
        "api_calls_per_task": ratio(ours.get(api_key), stock.get(api_key)),
        "api_calls_basis": api_basis,
        "non_runtask_calls_per_task": ratio(ours.get(non_key), stock.get(non_key)),
        "note": "ours/stock; stock's seconds_to_launch_all is estimated from its rate when it was capped",
    }
    return out


def verdicts(stock: dict | None, ours: dict | None, ratios: dict | None) -> dict:
    v = {}
    if ours and "error" not in ours:
        v["ours_launches_per_s>=19"] = (ours.get("launches_per_s") or 0) >= TARGETS["ours_launches_per_s_min"]
        v["ours_max_heartbeat_ms<=50"] = ours.get("max_heartbeat_ms", 1e9) <= TARGETS["ours_max_heartbeat_ms_max"]
    if ratios:
        v["launch_rate>=4x_stock"] = (ratios.get("launches_per_s") or 0) >= TARGETS["launch_rate_ratio_min"]
        r = ratios.get("api_calls_per_task")
        v["api_calls_per_task<=0.5x_stock"] = r is not None and r <= TARGETS["api_calls_ratio_max"]
    return v


def fmt_side(name: str, r: dict | None) -> str:
    if not r:
        return f"{name}: not run"
    if "error" in r:
        return f"{name}: ERROR {r['error']}"
    if r.get("seconds_to_launch_all") is not None:
        launch = f"all {r['tasks']} in {r['seconds_to_launch_all']:.1f} s"
    else:
        launch = (f"{r['launched']}/{r['tasks']} by {r['wall_seconds']:.0f} s cap "
                  f"(est. {r['seconds_to_launch_all_estimated']} s)")
    hb = (">=" if r.get("max_heartbeat_is_lower_bound") else "") + f"{r['max_heartbeat_ms']:.0f} ms"
    return (f"{name} {r['launches_per_s']} launches/s, {launch}, max heartbeat {hb}, "
            f"{r['api_calls_per_task']} API calls/task ({'full lifecycle' if r['seconds_to_finish_all'] else 'partial'})")


def main(argv=None) -> int:
    args = parse_args(argv)
    sides = [args.only] if args.only else ["stock", "ours"]
    results: dict = {"stock": None, "ours": None}
    ours_missing = importlib.util.find_spec("airflow_ecs_fargate.executor") is None
    logs = BENCH_DIR / "logs"
    logs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-airflow-home-") as airflow_home:
        for side in sides:
            if side == "ours" and ours_missing:
                results["ours"] = {"error": "airflow_ecs_fargate.executor is not there yet (executor/ ... executor.py)"}
                continue
            results[side] = run_side(args, side, airflow_home, logs)
        variants = [v for v in args.two_scheduler_variants.split(",") if v] if args.two_scheduler_tasks else []
        unknown = [v for v in variants if v not in TWO_SCHEDULER_VARIANTS]
        if unknown:
            raise SystemExit(f"--two-scheduler-variants: unknown {unknown}; use {', '.join(TWO_SCHEDULER_VARIANTS)}")
        results["two_schedulers"] = {}
        if not ours_missing and args.only != "stock":
            for variant in variants:
                results["two_schedulers"][variant] = run_two_schedulers(args, variant, airflow_home, logs)

    stock, ours = results["stock"], results["ours"]
    ratios = compare(stock, ours) if stock and ours and "error" not in stock and "error" not in ours else None
    results["ratios_ours_over_stock"] = ratios
    # The targets of the two-scheduler phase apply to its default variant (the others are measurements).
    two = results["two_schedulers"]
    results["targets"] = {
        "thresholds": TARGETS,
        "met": {**verdicts(stock, ours, ratios), **two_scheduler_verdicts(two.get("share"))},
    }
    results["params"] = {
        "tasks": args.tasks,
        "runtask_latency_ms": args.latency_ms,
        "other_ecs_call_latency_ms": args.other_latency_ms,
        "task_seconds": args.task_seconds,
        "provisioning_seconds": args.start_seconds,
        "runtask_calls_per_s": args.runtask_rate,
        "runtask_call_burst": args.runtask_burst,
        "launches_per_s": args.launch_rate,
        "launch_burst": args.launch_burst,
        "heartbeat_interval_s": args.heartbeat_interval,
        "stock_cap_s": args.stock_cap_s or None,
        "ours_cap_s": args.ours_cap_s or None,
        "lifecycle": args.lifecycle,
        "api_calls_coverage": {
            side: (r or {}).get("api_calls_basis") for side, r in (("stock", stock), ("ours", ours))
        },
        "executor_env_extra": args.executor_env,
        "two_scheduler_tasks_each": args.two_scheduler_tasks,
        "harness": (
            "moto 5.2.5 ECS in its own process behind a throttling/latency front door; each side gets a "
            "fresh emulator and its own process; no metadata DB (events drained from the executor's "
            "event buffer, not written to a DB)"
        ),
        "launches_per_s_definition": "launches over the middle 80% of launches / their time span",
        "api_calls_definition": "logical ECS API calls made in the executor's process (botocore "
                                "_make_api_call, all clients and threads), including the start-up health check",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    parts = [fmt_side("ours", ours), fmt_side("stock", stock)] + [fmt_two(r) for r in two.values()]
    if ratios:
        parts.append(
            f"ours/stock: rate {ratios['launches_per_s']}x, API calls/task {ratios['api_calls_per_task']}x "
            f"({'lifecycle' if ratios['api_calls_basis'].startswith('full') else 'launch window'})"
        )
    met = results["targets"]["met"]
    if met:
        parts.append("targets: " + ", ".join(f"{k} {'PASS' if ok else 'MISS'}" for k, ok in met.items()))
    print(f"bench ({args.tasks} tasks, RunTask {args.latency_ms:.0f} ms): " + " | ".join(parts))
    print(f"bench: details in {args.out}", file=sys.stderr)
    return 0 if all(r is None or "error" not in r for r in (stock, ours, *two.values())) else 1


if __name__ == "__main__":
    sys.exit(main())
