"""Runs INSIDE the worker image (``bench/worker_start.py`` passes this file's text to ``python -c``):
the steps a worker takes between its interpreter starting and the task's own code, timed.

A worker's container command is ``python -m airflow.sdk.execution_time.execute_workload
--json-string …`` (the official image's entrypoint ``exec``s it). That module imports pydantic and
Airflow's workload models, then ``BaseExecutor.run_workload`` starts the task SDK's supervisor,
which forks the task runner; the task runner asks the Execution API for the task's details and calls
``task_runner.parse`` (a ``BundleDagBag`` over the task's DAG file), then runs the task. This probe
does the same imports and calls the same ``parse`` on ``dags/example_pipeline.py``, then calls the
``extract`` task's function. What it leaves out needs the api-server (the supervisor's
``ti/run`` call, XCom pulls, template rendering): the rehearsal's per-task figure
(``local_ecs.start_overhead``) includes those.

Prints one JSON line: wall-clock times (epoch seconds; host and container share the clock) of
``process_start`` (the python process, from /proc, 10 ms resolution), ``first_line``,
``airflow_imported``, ``supervisor_imported``, ``task_runner_imported``, ``dag_parsed``,
``task_code``; under ``cpu`` the process's CPU seconds (user + system) at the same marks, which
a busy machine changes much less than the wall-clock times; plus facts (``dag_pyc_valid``: the
DAG file's cached bytecode matches its source; the modules Python compiled at this start).
"""

import time

first_line, first_line_cpu = time.time(), time.process_time()
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402


def _process_start() -> float:
    """Start of this process (epoch seconds): its age from /proc/self/stat and /proc/uptime."""
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def _pyc_valid(source: str) -> bool:
    """Whether ``source`` has cached bytecode that SourceFileLoader accepts (timestamp pyc whose
    recorded mtime and size are the source's, or a checked hash pyc)."""
    import importlib.util

    try:
        with open(importlib.util.cache_from_source(source), "rb") as f:
            header = f.read(16)
    except OSError:
        return False
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return False
    flags = int.from_bytes(header[4:8], "little")
    if flags & 1:  # hash-based
        return True
    st = os.stat(source)
    return (int.from_bytes(header[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(header[12:16], "little") == st.st_size & 0xFFFFFFFF)


out = {"process_start": _process_start(), "first_line": first_line}
cpu = {"first_line": first_line_cpu}


def mark(name: str) -> None:
    """Record the wall-clock time and this process's CPU seconds (user + system) at ``name``."""
    out[name], cpu[name] = time.time(), time.process_time()


import airflow  # noqa: E402,F401

mark("airflow_imported")
# execute_workload.main() and execute_workload(): the supervisor side.
from pydantic import TypeAdapter  # noqa: E402,F401

from airflow.executors import workloads  # noqa: E402,F401
from airflow.executors.base_executor import BaseExecutor  # noqa: E402,F401
from airflow.sdk.execution_time import supervisor  # noqa: E402,F401
from airflow.sdk.log import configure_logging  # noqa: E402,F401

mark("supervisor_imported")
from airflow.sdk.execution_time import task_runner  # noqa: E402

mark("task_runner_imported")

import uuid  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import structlog  # noqa: E402

from airflow.sdk.api.datamodels._generated import BundleInfo, TaskInstance, TIRunContext  # noqa: E402
from airflow.sdk.execution_time.comms import StartupDetails  # noqa: E402

DAG_FILE = "example_pipeline.py"
details = StartupDetails.model_construct(
    ti=TaskInstance(id=uuid.uuid4(), task_id="extract", dag_id="example_pipeline", run_id="probe",
                    try_number=1, dag_version_id=uuid.uuid4()),
    dag_rel_path=DAG_FILE,
    bundle_info=BundleInfo(name="dags-folder"),
    start_date=datetime.now(timezone.utc),
    ti_context=TIRunContext.model_construct(max_tries=1),
    sentry_integration="",
)
ti = task_runner.parse(details, structlog.get_logger("probe"))
mark("dag_parsed")
mark("task_code")
result = ti.task.python_callable()
out["task_result"] = result
out["dag_pyc_valid"] = _pyc_valid(os.path.join(ti.bundle_instance.path, DAG_FILE))
# Every imported module from a .py file without valid cached bytecode was compiled at this start
# (and will be at every start: the root filesystem is read-only).
sources = sorted({m.__file__ for m in list(sys.modules.values())
                  if isinstance(getattr(m, "__file__", None), str) and m.__file__.endswith(".py")})
uncached = [f for f in sources if not _pyc_valid(f)]
out["modules_from_source"] = len(sources)
out["modules_compiled_at_start"] = uncached[:50]
out["modules_compiled_at_start_count"] = len(uncached)
out["own_modules_imported"] = sorted(m for m in sys.modules if m.startswith("airflow_ecs_fargate"))
out["cpu"] = cpu
print("WORKER_START_PROBE " + json.dumps(out), flush=True)
