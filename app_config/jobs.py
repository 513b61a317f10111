"""The ``jobs`` and ``worker_queues`` keys: JSON objects of name -> settings.

``jobs`` declares the container jobs that DAGs run with the amazon provider's
``EcsRunTaskOperator``; each name is a directory ``jobs/<name>/`` holding the job's ``Dockerfile``::

    {"upload-file-to-s3": {"cpu": 256, "memory_mib": 512, "s3_write_prefixes": ["uploads/"]}}

``worker_queues`` names Airflow queues whose tasks run at a worker size of their own::

    {"large": {"cpu": 2048, "memory_mib": 8192, "capacity_provider": "FARGATE"}}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from app_config.fargate import fargate_size_error
from app_config.fields import FARGATE_SIZES_URL, Whole, upper, problem, problems

#: Where job directories live: ``jobs/`` at the repository root.
JOBS_DIR = Path(__file__).resolve().parent.parent / "jobs"
JOBS_EXAMPLE = '{"my-job": {"cpu": 256, "memory_mib": 512, "s3_write_prefixes": ["out/"]}}'
QUEUES_EXAMPLE = '{"large": {"cpu": 2048, "memory_mib": 8192, "capacity_provider": "FARGATE"}}'

_JOB_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
# Relative S3 key prefixes ending in "/": no wildcard, no leading "/", no "." or ".." segment.
_PREFIX_RE = re.compile(r"^(?:(?!\.\.?/)[A-Za-z0-9_.=-]+/)+$")


def job_variable_name(name: str) -> str:
    """Return the Airflow variable that holds job ``name``'s run settings, e.g.
    ``ecs_job_upload_file_to_s3`` for ``upload-file-to-s3``."""
    return "ecs_job_" + name.replace("-", "_")


def job_construct_id(name: str) -> str:
    """Return the construct ID of job ``name``: its hyphen-separated words capitalized, e.g.
    ``UploadFileToS3``. Two names with the same ID (``a-b``, ``a--b``) cannot both be deployed."""
    return "".join(part.capitalize() for part in name.split("-"))


def _job_name(name: str) -> str:
    if not _JOB_NAME_RE.match(name):
        raise problem(f"jobs.{name}: a job name is 1-32 lowercase letters, digits and hyphens, starting with a letter")
    return name


def _queue_name(name: str) -> str:
    if not _QUEUE_NAME_RE.match(name):
        raise problem(f"worker_queues: queue name {name!r}: use 1-256 letters, digits, _ . and -")
    return name


def _prefix_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class JobSpec(BaseModel):
    """One job's settings: its Fargate size (vCPU units, MiB) and the key prefixes of the data
    bucket it may read and write (relative, ending in ``/``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: Whole = 256
    memory_mib: Whole = 512
    s3_read_prefixes: Annotated[tuple[str, ...], BeforeValidator(_prefix_list)] = ()
    s3_write_prefixes: Annotated[tuple[str, ...], BeforeValidator(_prefix_list)] = ()


class QueueSpec(BaseModel):
    """One queue's worker size (vCPU units, MiB) and capacity provider (None: the executor's
    ``worker_capacity_provider``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: Whole
    memory_mib: Whole
    capacity_provider: Annotated[Literal["FARGATE", "FARGATE_SPOT"] | None, BeforeValidator(upper)] = Field(
        None, json_schema_extra={"problem": "{key}={value}: use FARGATE or FARGATE_SPOT"})


JOB_FIELDS = tuple(JobSpec.model_fields)
QUEUE_FIELDS = tuple(QueueSpec.model_fields)


def _size_problem(where: str, cpu: int, memory_mib: int) -> str | None:
    found = fargate_size_error(cpu, memory_mib)
    return f"{where}: {found} (Fargate task sizes: {FARGATE_SIZES_URL})" if found else None


def check_jobs(jobs: dict[str, JobSpec], jobs_dir: Path) -> list[str]:
    """Problems of valid-shaped jobs: Fargate sizes, prefixes, Dockerfiles, colliding names.

    :param jobs_dir: where the job directories are looked up (``jobs/`` of the repository).
    """
    found: list[str | None] = []
    by_id: dict[str, str] = {}
    for name, job in sorted(jobs.items()):
        key = f"jobs.{name}"
        if not (jobs_dir / name / "Dockerfile").is_file():
            found.append(f"{key}: no {jobs_dir.name}/{name}/Dockerfile; create the job's directory with its "
                         "Dockerfile or remove the job")
        found.append(_size_problem(f"{key}.cpu/memory_mib", job.cpu, job.memory_mib))
        for field in ("s3_read_prefixes", "s3_write_prefixes"):
            found += [
                f"{key}.{field}: {prefix!r} is not a key prefix of the data bucket; write it like \"uploads/\" "
                "or \"team/out/\" (relative, ending in /, no wildcard or ..)"
                for prefix in getattr(job, field) if not _PREFIX_RE.match(prefix)
            ]
        other = by_id.setdefault(job_construct_id(name), name)
        if other != name:
            found.append(f"jobs.{name}: jobs {other} and {name} get the same construct ID "
                         f"{job_construct_id(name)} (hyphens are dropped); rename one of them")
    return [p for p in found if p]


def _validate_jobs(jobs: dict[str, JobSpec], info: Any) -> dict[str, JobSpec]:
    jobs_dir = (info.context or {}).get("jobs_dir", JOBS_DIR)
    found = check_jobs(jobs, jobs_dir)
    if found:
        raise problems(found)
    return jobs


def _validate_queues(queues: dict[str, QueueSpec]) -> dict[str, QueueSpec]:
    found = [_size_problem(f"worker_queues: queue {name!r}", q.cpu, q.memory_mib) for name, q in queues.items()]
    if any(found):
        raise problems([p for p in found if p])
    return queues


JobName = Annotated[str, AfterValidator(_job_name)]
QueueName = Annotated[str, AfterValidator(_queue_name)]
#: The ``jobs`` value after its JSON is read: name -> settings, each checked.
Jobs = Annotated[dict[JobName, JobSpec], AfterValidator(_validate_jobs)]
#: The ``worker_queues`` value after its JSON is read.
Queues = Annotated[dict[QueueName, QueueSpec], AfterValidator(_validate_queues)]
