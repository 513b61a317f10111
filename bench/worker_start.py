"""The worker's start overhead and image size, before and after a change (docs/worker-start.md).

Builds the worker image twice with the rehearsal's machinery (``local_ecs.images``: the stand-in for
the official Airflow image, then ``docker/Dockerfile`` on top) in this work tree's podman state:
"before" from a git revision's ``docker/``, ``executor/`` and ``dags/`` (default ``main``), "after"
from the work tree. For each image it measures

- the compressed size: what a registry stores, ``podman push`` to an OCI layout with gzip (the
  default of docker and podman pushes) and with zstd layers, split into the base image's layers and
  the project's own;
- the start: ``podman run`` as ECS runs a worker (read-only root filesystem, the image's VOLUMEs as
  fresh volumes, user 50000:0, the workers' environment from ``constructs_lib.airflow_settings``,
  ``python ...`` through the image's entrypoint), timed from the host clock before ``podman run``
  to the container's ``State.StartedAt``, then inside the container (``bench/worker_start_probe.py``)
  python's start, the supervisor's and task runner's imports, ``task_runner.parse`` of
  ``dags/example_pipeline.py`` and the first line of the ``extract`` task.

Each image runs once to warm the page cache (not reported), then ``--runs`` times, alternating
between the images; the report gives the median and the range (min-max) per step, in wall-clock
and in the python process's CPU seconds (which other jobs on the machine change much less), and
the ratio after/before. Results go to
``.rehearsal/worker-start.json`` and a table on stdout. Not part of the test suite.

    make bench-start                                # = python -m bench.worker_start
    python -m bench.worker_start --runs 9 --before 14ae7ef
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cloud_assembly.airflow_image import API_SERVER_PORT, CONTAINER_USER
from local_ecs.images import build_project_image, image_size_mib
from local_ecs.podman import PROJECT_ROOT, PodmanConfig, podman

PROBE = Path(__file__).resolve().parent / "worker_start_probe.py"
RESULTS = PROJECT_ROOT / ".rehearsal" / "worker-start.json"
#: What docker/Dockerfile copies from the build context (constructs_lib/image.py's allowlist).
CONTEXT_DIRS = ("docker", "executor", "dags")
CONTEXT_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
#: The steps of one start, as (name, from mark, to mark); marks are the probe's keys plus
#: ``host_before_run`` and ``container_started``.
STEPS = (
    ("podman run -> container started", "host_before_run", "container_started"),
    ("entrypoint (dumb-init, bash) -> python", "container_started", "process_start"),
    ("python start-up", "process_start", "first_line"),
    ("import airflow", "first_line", "airflow_imported"),
    ("supervisor imports", "airflow_imported", "supervisor_imported"),
    ("task runner import", "supervisor_imported", "task_runner_imported"),
    ("parse the DAG file", "task_runner_imported", "dag_parsed"),
    ("container started -> task code", "container_started", "task_code"),
)
#: CPU seconds (user + system) of the python process per step: (name, from mark or None for the
#: process's start, to mark).
CPU_STEPS = (
    ("python start-up", None, "first_line"),
    ("import airflow", "first_line", "airflow_imported"),
    ("supervisor imports", "airflow_imported", "supervisor_imported"),
    ("task runner import", "supervisor_imported", "task_runner_imported"),
    ("parse the DAG file", "task_runner_imported", "dag_parsed"),
    ("python start -> task code", None, "task_code"),
)
MIB = 2**20


def worker_environment() -> dict[str, str]:
    """The workers' environment as the CDK app writes it (placeholder bucket, region and names)."""
    from constructs_lib.airflow_service import SCRATCH_PATH
    from constructs_lib.airflow_settings import (
        AirflowCommonSettings,
        dag_bundle_config,
        execution_api_url,
        secrets_backend_environment,
    )

    common = AirflowCommonSettings(
        region="us-east-1",
        execution_api_url=execution_api_url("airflow-dev.internal", "api-server", API_SERVER_PORT),
        task_logs_bucket_name="example-task-logs",
        dag_bundle_config_list=dag_bundle_config("image", None),
        secrets_backend=tuple(secrets_backend_environment("airflow", "dev").items()),
    )
    return {**common.worker_environment(), "TMPDIR": SCRATCH_PATH}


def stage_context(dest: Path, revision: str | None) -> Path:
    """Copy the build context (docker/, executor/, dags/) of ``revision`` (a git revision) or of the
    work tree (None) to ``dest``; returns ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if revision is None:
        for name in CONTEXT_DIRS:
            shutil.copytree(PROJECT_ROOT / name, dest / name, ignore=CONTEXT_IGNORE)
    else:
        archive = subprocess.run(["git", "-C", str(PROJECT_ROOT), "archive", revision, *CONTEXT_DIRS],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run_once(image: str, env: dict[str, str], config: PodmanConfig) -> dict[str, float]:
    """One worker start; returns the marks (epoch seconds) and the probe's facts."""
    name = f"worker-start-{uuid.uuid4().hex[:8]}"
    args = ["run", "--name", name, "--pull=never", "--network=host", "--read-only", "--read-only-tmpfs=false",
            "--user", CONTAINER_USER]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    host_before = time.time()
    proc = podman(*args, image, "python", "-c", PROBE.read_text(), config=config, check=False, timeout=600)
    try:
        started_ns = podman("inspect", "--format", "{{.State.StartedAt.UnixNano}}", name, config=config).stdout
    finally:
        podman("rm", "--volumes", "--force", name, config=config, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("WORKER_START_PROBE ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the probe failed in {image} (exit {proc.returncode}):\n{proc.stdout[-3000:]}"
                           f"\n{proc.stderr[-3000:]}")
    marks = json.loads(lines[-1].split(" ", 1)[1])
    marks.update(host_before_run=host_before, container_started=int(started_ns.strip()) / 1e9)
    return marks


def step_seconds(marks: dict[str, float]) -> dict[str, float]:
    """Seconds of each of :data:`STEPS` in one run's marks."""
    return {name: marks[end] - marks[start] for name, start, end in STEPS}


def cpu_seconds(marks: dict) -> dict[str, float]:
    """CPU seconds of each of :data:`CPU_STEPS` in one run's marks."""
    cpu = marks["cpu"]
    return {name: cpu[end] - (cpu[start] if start else 0.0) for name, start, end in CPU_STEPS}


def _stats(per_run: list[dict[str, float]], names) -> dict[str, dict[str, float]]:
    return {name: {"median": round(statistics.median(r[name] for r in per_run), 3),
                   "min": round(min(r[name] for r in per_run), 3),
                   "max": round(max(r[name] for r in per_run), 3)}
            for name in names}


def summarize(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per step: median, min and max seconds over the runs."""
    return _stats([step_seconds(m) for m in runs], [name for name, _, _ in STEPS])


def summarize_cpu(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Per CPU step: median, min and max CPU seconds over the runs."""
    return _stats([cpu_seconds(m) for m in runs], [name for name, _, _ in CPU_STEPS])


def compressed_sizes(image: str, base_layers: int, work: Path, config: PodmanConfig) -> dict[str, dict[str, float]]:
    """Compressed size (MiB) of ``image`` as a registry stores it, per compression (gzip, zstd):
    ``podman push`` to an OCI layout, then the layer blobs of its manifest; ``base`` = the first
    ``base_layers`` layers (the base image's), ``own`` = the rest."""
    sizes = {}
    for fmt in ("gzip", "zstd"):
        dest = work / f"oci-{fmt}"
        if dest.exists():
            shutil.rmtree(dest)
        podman("push", "--compression-format", fmt, image, f"oci:{dest}", config=config,
               timeout=1800)
        index = json.loads((dest / "index.json").read_text())
        digest = index["manifests"][0]["digest"].split(":", 1)[1]
        manifest = json.loads((dest / "blobs" / "sha256" / digest).read_text())
        layers = [layer["size"] for layer in manifest["layers"]]
        sizes[fmt] = {"total": round(sum(layers) / MIB, 1), "base": round(sum(layers[:base_layers]) / MIB, 1),
                      "own": round(sum(layers[base_layers:]) / MIB, 1), "layers": len(layers)}
        shutil.rmtree(dest)
    return sizes


def build(label: str, revision: str | None, config: PodmanConfig) -> dict:
    """Build one variant; returns its section of the results (image, sizes uncompressed)."""
    from local_ecs.images import base_image_tag

    work = PROJECT_ROOT / ".rehearsal" / "build" / f"worker-start-{label}"
    context = stage_context(work / "context", revision)
    started = time.monotonic()
    image = build_project_image(context, "docker/Dockerfile", config=config)
    print(f"{label}: {image} built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    base_tag = base_image_tag(context / "docker" / "Dockerfile")
    base_layers = int(podman("image", "inspect", "--format", "{{len .RootFS.Layers}}", base_tag,
                             config=config).stdout)
    return {"revision": revision or "work tree", "image": image, "base_image": base_tag,
            "base_layers": base_layers, "uncompressed_mib": round(image_size_mib(image, config), 1),
            "work": str(work), "runs": []}


def measure(variants: dict[str, dict], runs: int, env: dict[str, str], config: PodmanConfig, sizes: bool) -> None:
    """Start each variant's image ``runs`` times, alternating between the variants so that a change
    of the machine's load hits all of them alike (after one warm-up start each), then push them."""
    for variant in variants.values():
        run_once(variant["image"], env, config)  # warm-up: page cache, podman's first use of the image
    for i in range(runs):
        for label, variant in variants.items():
            variant["runs"].append(run_once(variant["image"], env, config))
            print(f"{label} run {i + 1}/{runs}: "
                  f"{step_seconds(variant['runs'][-1])['container started -> task code']:.2f} s", file=sys.stderr)
    for variant in variants.values():
        variant["steps"] = summarize(variant["runs"])
        variant["cpu_steps"] = summarize_cpu(variant["runs"])
        variant["dag_pyc_valid"] = all(m["dag_pyc_valid"] for m in variant["runs"])
        variant["modules_compiled_at_start"] = variant["runs"][-1]["modules_compiled_at_start"]
        variant["own_modules_imported"] = variant["runs"][-1]["own_modules_imported"]
    if sizes:
        for label, variant in variants.items():
            variant["compressed_mib"] = compressed_sizes(variant["image"], variant["base_layers"],
                                                         Path(variant["work"]), config)
            print(f"{label}: {variant['compressed_mib']}", file=sys.stderr)


def table(results: dict) -> str:
    """The before/after table (medians, range, ratio) as Markdown."""
    before, after = results.get("before"), results["after"]
    rows = ["| step | before s (min-max) | after s (min-max) | after/before |", "|---|---|---|---|"]

    def step_rows(key: str, steps, label: str) -> None:
        for name, _, _ in steps:
            a = after[key][name]
            cell_a = f"{a['median']:.3f} ({a['min']:.3f}-{a['max']:.3f})"
            if before:
                b = before[key][name]
                ratio = f"{a['median'] / b['median']:.2f}" if b["median"] > 0 else "-"
                rows.append(f"| {label}{name} | {b['median']:.3f} ({b['min']:.3f}-{b['max']:.3f}) | {cell_a} | {ratio} |")
            else:
                rows.append(f"| {label}{name} | - | {cell_a} | - |")

    step_rows("steps", STEPS, "")
    if "cpu_steps" in after:
        step_rows("cpu_steps", CPU_STEPS, "CPU s: ")
    for fmt in ("gzip", "zstd"):
        if "compressed_mib" not in after:
            break
        for part in ("total", "base", "own"):
            a = after["compressed_mib"][fmt][part]
            b = before["compressed_mib"][fmt][part] if before else None
            ratio = f"{a / b:.2f}" if b else "-"
            rows.append(f"| image, {fmt}, {part} (MiB) | {b if b is not None else '-'} | {a} | {ratio} |")
    b_unc = before["uncompressed_mib"] if before else "-"
    rows.append(f"| image, uncompressed (MiB) | {b_unc} | {after['uncompressed_mib']} | "
                f"{after['uncompressed_mib'] / before['uncompressed_mib']:.2f} |" if before else
                f"| image, uncompressed (MiB) | - | {after['uncompressed_mib']} | - |")
    rows.append(f"| DAG bytecode cached and valid | {before['dag_pyc_valid'] if before else '-'} | "
                f"{after['dag_pyc_valid']} | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured starts per image (after one warm-up)")
    parser.add_argument("--before", default="main", help="git revision of the 'before' image; '' skips it")
    parser.add_argument("--no-sizes", action="store_true", help="skip the compressed sizes (two pushes per image)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    config = PodmanConfig()
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    env = worker_environment()
    results: dict = {"runs": args.runs, "load_average": list(os.getloadavg()),
                     "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    variants = {}
    if args.before:
        variants["before"] = build("before", args.before, config)
    variants["after"] = build("after", None, config)
    try:
        measure(variants, args.runs, env, config, not args.no_sizes)
    finally:
        results.update(variants)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\n{RESULTS.relative_to(PROJECT_ROOT)}; load average at start {results['load_average'][0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
