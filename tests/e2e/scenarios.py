"""The end-to-end scenarios: the executor under test, the moto ECS account it talks to, and the
faults each scenario DAG meets (an OOM kill, RunTask throttling, an ECS outage)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.fargate import Container, Kill

# The executor under test. The stock one is
# "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor".
EXECUTOR_CLASS = "airflow_ecs_fargate.executor.EcsFargateExecutor"
STOCK_EXECUTOR_CLASS = "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"

DAGS_FOLDER = Path(__file__).parent / "dags"
E2E_DAG_IDS = sorted(p.stem for p in DAGS_FOLDER.glob("e2e_*.py"))
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
CLUSTER = "airflow-e2e"
WORKER_CONTAINER = "worker"
WORKER_TASK_FAMILY = "airflow-worker"
# Two cores: each execute_workload costs 3-5 s of CPU, beside scheduler, api-server and PostgreSQL.
MAX_CONTAINERS = int(os.environ.get("E2E_MAX_CONTAINERS", "4"))
# The OOM scenario: the container of this task is killed while the task's own code runs (a moment
# after the task runner logs the end of its pre-execute group).
OOM_TASK = ("e2e_oom", "hog_memory")
OOM_KILL = dict(after_output='"event":"::endgroup::"', after_seconds=1.0, deadline_seconds=90.0)
# The throttling scenario: the first THROTTLES_PER_TASK RunTask requests for each task of this DAG
# answer ThrottlingException. That is more than botocore's own retries absorb (the executor's client:
# [aws_ecs_executor] api_retry_mode standard, api_max_attempts 3), so the executor itself sees
# throttling at least once per task.
THROTTLED_DAG = "e2e_burst"
THROTTLES_PER_TASK = 6
# The outage scenario: from the first RunTask for a task of this DAG, every RunTask for its tasks
# answers HTTP 503 ServiceUnavailableException for OUTAGE_SECONDS (botocore's own retries included).
OUTAGE_DAG = "e2e_outage"
OUTAGE_SECONDS = 60.0
# Where the workers' awslogs driver writes (the task definition's logConfiguration).
WORKER_LOG_GROUP = "/e2e/airflow-workers"
WORKER_LOG_STREAM_PREFIX = "worker"
TERMINAL_TI_STATES = {"success", "failed", "skipped", "upstream_failed", "removed"}


def chaos(container: Container) -> Kill | None:
    ti = (container.workload or {}).get("ti") or {}
    if (ti.get("dag_id"), ti.get("task_id")) == OOM_TASK:
        return Kill(**OOM_KILL)
    return None



def is_stock_executor() -> bool:
    return EXECUTOR_CLASS == STOCK_EXECUTOR_CLASS
