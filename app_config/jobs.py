"""Parsing and validation of the ``jobs`` configuration key: the container jobs that DAGs run
with the amazon provider's ``EcsRunTaskOperator``.

The value is a JSON object (in ``cdk.json``, or a JSON string with ``-c jobs='{...}'``) mapping a
job name to its settings::

    {"upload-file-to-s3": {"cpu": 256, "memory_mib": 512, "s3_write_prefixes": ["uploads/"]}}

Each name is a directory ``jobs/<name>/`` holding the job's ``Dockerfile``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from app_config.fargate import fargate_size_error
from app_config.model import JobConfig, TaskSize

#: Where job directories live: ``jobs/`` at the repository root.
JOBS_DIR = Path(__file__).resolve().parent.parent / "jobs"
#: The example job and its DAG (``dags/example_ecs_job.py``) ship with the project.
DEFAULT_JOBS: dict[str, dict[str, Any]] = {
    "upload-file-to-s3": {"cpu": 256, "memory_mib": 512, "s3_write_prefixes": ["uploads/"]},
}
JOB_FIELDS = ("cpu", "memory_mib", "s3_read_prefixes", "s3_write_prefixes")

_JOB_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
# Relative S3 key prefixes ending in "/": no wildcard, no leading "/", no "." or ".." segment.
_PREFIX_RE = re.compile(r"^(?:(?!\.\.?/)[A-Za-z0-9_.=-]+/)+$")
_EXAMPLE = '{"my-job": {"cpu": 256, "memory_mib": 512, "s3_write_prefixes": ["out/"]}}'


def job_variable_name(name: str) -> str:
    """Return the Airflow variable that holds job ``name``'s run settings, e.g.
    ``ecs_job_upload_file_to_s3`` for ``upload-file-to-s3``."""
    return "ecs_job_" + name.replace("-", "_")


def parse_jobs(value: Any, problems: list[str], jobs_dir: Path = JOBS_DIR) -> tuple[JobConfig, ...]:
    """Build the jobs from the ``jobs`` key, appending one sentence per problem to ``problems``.

    :param value: a mapping or its JSON text; ``{}`` (or an empty string) declares no job.
    :param problems: collects problems, each naming ``jobs.<name>.<field>`` and the fix.
    :param jobs_dir: where job directories are looked up (``jobs/`` of the repository).
    :returns: the valid jobs, sorted by name.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as err:
            problems.append(f"jobs: not valid JSON ({err}); write it like {_EXAMPLE}")
            return ()
    if not isinstance(value, dict):
        problems.append(f"jobs: expected a JSON object of job name to settings, like {_EXAMPLE}")
        return ()
    jobs = []
    for name in sorted(value):
        settings = value[name]
        key = f"jobs.{name}"
        if not _JOB_NAME_RE.match(name):
            problems.append(f"{key}: a job name is 1-32 lowercase letters, digits and hyphens, starting with a letter")
            continue
        if not (jobs_dir / name / "Dockerfile").is_file():
            problems.append(
                f"{key}: no {jobs_dir.name}/{name}/Dockerfile; create the job's directory with its "
                f"Dockerfile or remove the job"
            )
        if not isinstance(settings, dict):
            problems.append(f"{key}: expected an object with {', '.join(JOB_FIELDS)}")
            continue
        for unknown in sorted(set(settings) - set(JOB_FIELDS)):
            problems.append(f"{key}.{unknown}: unknown job setting; use {', '.join(JOB_FIELDS)}")
        try:
            size = TaskSize(int(settings.get("cpu", 256)), int(settings.get("memory_mib", 512)))
        except (TypeError, ValueError):
            problems.append(f"{key}.cpu/memory_mib: expected whole numbers, e.g. 256 and 512")
            continue
        size_problem = fargate_size_error(size.cpu, size.memory_mib)
        if size_problem:
            problems.append(
                f"{key}.cpu/memory_mib: {size_problem} (Fargate task sizes: https://docs.aws.amazon.com/"
                "AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size)"
            )
        prefixes = {}
        for field in ("s3_read_prefixes", "s3_write_prefixes"):
            listed = settings.get(field, [])
            if isinstance(listed, str):
                listed = [listed]
            if not isinstance(listed, list):
                problems.append(f"{key}.{field}: expected a list of key prefixes like [\"out/\"]")
                listed = []
            for prefix in listed:
                if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
                    problems.append(
                        f"{key}.{field}: {prefix!r} is not a key prefix of the data bucket; write it "
                        "like \"uploads/\" or \"team/out/\" (relative, ending in /, no wildcard or ..)"
                    )
            prefixes[field] = tuple(p for p in listed if isinstance(p, str))
        jobs.append(JobConfig(name, size, prefixes["s3_read_prefixes"], prefixes["s3_write_prefixes"]))
    return tuple(jobs)
