"""Parse a DAG folder with Airflow's ``DagBag`` and report what would break on the deployment.

``DagBag`` is the parser the dag-processor runs: it honours ``.airflowignore`` and
``[core] dag_discovery_safe_mode``, runs the cluster policies of the installed packages (the
bundled executor's ``executor_config`` policy among them), and records cycles
(``DAG.check_cycle``) and duplicate DAG IDs as import errors of the file. The tasks of the DAGs
it loads are then checked against the pools and queues of
:class:`dag_checks.deployment.Deployment`, and their files' references to job variables against
the jobs it configures.

Airflow reads its configuration once, at import: :func:`airflow_environment` must be applied to
``os.environ`` before Airflow is imported (``python -m dag_checks`` does so), so that nothing is
read from or written to the user's ``~/airflow``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dag_checks.deployment import Deployment

#: Frames kept in an import error's traceback: enough to reach the DAG file's own frame when the
#: error is raised deep inside a library (Airflow's default, 2, often is not).
TRACEBACK_DEPTH = 50
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)', re.M)
#: A reference to an Airflow variable in a DAG file: a template's ``var.json.NAME`` /
#: ``var.value.NAME``, or ``Variable.get("NAME"``.
_VARIABLE_REFERENCE = re.compile(r"""var\.(?:json|value)\.(?P<template>\w+)|Variable\.get\(\s*["'](?P<call>\w+)["']""")


def airflow_environment(dag_folder: Path, home: Path, deployment: Deployment) -> dict[str, str]:
    """The environment variables the parse runs with.

    :param dag_folder: the folder to parse (``[core] dags_folder``).
    :param home: a scratch ``AIRFLOW_HOME`` (Airflow writes ``airflow.cfg`` and logs there).
    :param deployment: the executor of the deployment (its cluster policy depends on it).
    """
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(dag_folder).resolve()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "True",
        "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACK_DEPTH": str(TRACEBACK_DEPTH),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{Path(home) / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "CRITICAL",
    }
    if deployment.executor:
        env["AIRFLOW__CORE__EXECUTOR"] = deployment.executor
    return env


@dataclass(frozen=True)
class Finding:
    """One problem: the file (relative to the DAG folder), the line when known, what is wrong."""

    file: str
    line: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class Report:
    """The outcome of a parse: DAG IDs by file, and the findings (empty when the folder is fine)."""

    dags: dict[str, list[str]]
    findings: list[Finding]


def import_error_location(path: str, stacktrace: str, dag_folder: Path) -> tuple[int | None, str]:
    """The line and the one-line error of an import error's traceback.

    The line is that of the last frame in the failing file itself (for a ``SyntaxError``, the
    offending line), else of the last frame inside the DAG folder (a helper module it imports).
    """
    lines = [line for line in stacktrace.strip().splitlines() if line.strip()]
    message = lines[-1].strip() if lines else "(no message)"
    target = str((Path(dag_folder) / path).resolve()) if not os.path.isabs(path) else str(Path(path).resolve())
    folder = str(Path(dag_folder).resolve())
    own, inside = None, None
    for frame in _FRAME.finditer(stacktrace):
        file = str(Path(frame["file"]).resolve()) if frame["file"].startswith("/") else frame["file"]
        if file == target:
            own = int(frame["line"])
        if file.startswith(folder + os.sep):
            inside = int(frame["line"])
    return own or inside, message


def _relative(path: str, dag_folder: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(dag_folder).resolve()))
    except ValueError:
        return path


def parse(dag_folder: Path, deployment: Deployment) -> Report:
    """Parse every DAG file of ``dag_folder`` with ``DagBag`` and check its tasks' pools and queues.

    :returns: the DAGs found and one :class:`Finding` per import error (cycles, duplicate DAG IDs
        and cluster-policy violations included), per DAG with an unknown pool and per task on an
        unknown queue.
    """
    from airflow.dag_processing.dagbag import DagBag

    folder = Path(dag_folder).resolve()
    bag = DagBag(dag_folder=str(folder))
    findings: list[Finding] = []
    for path, text in sorted(bag.import_errors.items()):
        line, message = import_error_location(path, text, folder)
        kind = "cycle" if "AirflowDagCycleException" in text else "import error"
        findings.append(Finding(_relative(str(folder / path), folder), line, kind, message))
    dags: dict[str, list[str]] = {}
    for dag_id, dag in sorted(bag.dags.items()):
        file = _relative(dag.fileloc, folder)
        dags.setdefault(file, []).append(dag_id)
        unknown_pools = sorted({t.pool for t in dag.tasks} - deployment.pools)
        if unknown_pools:
            findings.append(Finding(file, None, "unknown pool",
                                    f"DAG {dag_id!r} uses pool(s) {unknown_pools} (tasks "
                                    f"{sorted(t.task_id for t in dag.tasks if t.pool in unknown_pools)}); "
                                    f"this deployment has {sorted(deployment.pools)}: create the pool "
                                    "(airflow pools set NAME SLOTS DESCRIPTION) and pass --pool NAME, or use one of these"))
        for task in sorted(dag.tasks, key=lambda t: t.task_id):
            if task.queue not in deployment.queues:
                findings.append(Finding(file, None, "unknown queue",
                                        f"DAG {dag_id!r} task {task.task_id!r} uses queue {task.queue!r}; "
                                        f"this deployment has {sorted(deployment.queues)} ({deployment.source}): "
                                        f"add {task.queue!r} to worker_queues or use one of these"))
    for file in sorted(dags):
        findings.extend(job_variable_findings(folder / file, file, deployment))
    return Report(dags, findings)


def job_variable_findings(path: Path, file: str, deployment: Deployment) -> list[Finding]:
    """One finding per reference in ``path``'s source to an ``ecs_job_*`` variable the deployment
    does not set (a job that is not configured): the task would fail at run time on a missing
    variable. Other variables may be created in the metadata database and are not checked.
    """
    from dag_checks.deployment import JOB_VARIABLE_PREFIX

    findings = []
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        for match in _VARIABLE_REFERENCE.finditer(line):
            name = match["template"] or match["call"]
            if name.startswith(JOB_VARIABLE_PREFIX) and name not in deployment.job_variables:
                findings.append(Finding(file, number, "unknown variable",
                                        f"Airflow variable {name!r} is not set by this deployment, which sets "
                                        f"{sorted(deployment.job_variables)} for its ECS jobs ({deployment.source}): "
                                        "add the job to the jobs key (README, ECS jobs from DAGs) or fix the name"))
    return findings

