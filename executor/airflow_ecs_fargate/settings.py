"""Settings of the executor that the stock ``[aws_ecs_executor]`` section does not declare.

Every key is read from the ``[aws_ecs_executor]`` section with a fallback, so it can be set in
``airflow.cfg`` or as ``AIRFLOW__AWS_ECS_EXECUTOR__<KEY>`` without a provider.yaml declaration.
The defaults of the rate settings are AWS Fargate's per-account, per-Region quotas
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/throttling.html):
RunTask API calls 20/s (burst and sustained); task launches 20/s sustained with a burst of 100.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

SECTION = "aws_ecs_executor"


@dataclass(frozen=True)
class ExecutorSettings:
    """Typed, validated settings of :class:`~airflow_ecs_fargate.executor.EcsFargateExecutor`.

    Units are in the names: ``*_per_second`` are rates (1/s), ``*_seconds`` are durations (s),
    ``*_burst`` and ``*_concurrency`` are counts.
    """

    #: RunTask API calls per second (sustained). Fargate quota: 20/s.
    run_task_calls_per_second: float = 20.0
    #: RunTask API calls that may be made at once after an idle period. Fargate quota: 20.
    run_task_call_burst: int = 20
    #: Tasks launched per second (sustained). Fargate quota: 20/s.
    task_launches_per_second: float = 20.0
    #: Tasks that may be launched at once after an idle period. Fargate quota: 100.
    task_launch_burst: int = 100
    #: Worker threads that call RunTask (and StopTask) off the scheduler's heartbeat.
    launch_concurrency: int = 10
    #: Seconds between two rounds of DescribeTasks over all tracked ECS tasks.
    describe_tasks_interval_seconds: float = 10.0
    #: Relaunch on the on-demand capacity provider when Fargate Spot has no capacity.
    spot_fallback_to_on_demand: bool = True
    #: Capacity provider used for the on-demand fallback.
    on_demand_capacity_provider: str = "FARGATE"
    #: First retry delay (s) after a retryable submit failure; doubles per attempt, with jitter.
    submit_retry_base_seconds: float = 2.0
    #: Upper bound (s) of one retry delay.
    submit_retry_max_seconds: float = 60.0
    #: Seconds a tracked ECS task may be reported MISSING by DescribeTasks before its
    #: Airflow task is failed (DescribeTasks is eventually consistent right after RunTask).
    missing_task_grace_seconds: float = 60.0
    #: Seconds ``end()``/``terminate()`` wait for in-flight AWS calls before returning.
    shutdown_timeout_seconds: float = 30.0
    #: Transient RunTask failures (network, 5xx, credentials) are retried until the workload's
    #: deadline: its queued time + ``[scheduler] task_queued_timeout`` - this margin (s).
    transient_retry_margin_seconds: float = 30.0
    #: Seconds before a failed DescribeTaskDefinition (essential containers) is tried again;
    #: meanwhile its fallback (only the Airflow container is essential) is used.
    task_definition_retry_seconds: float = 600.0
    #: JSON object: Airflow queue name -> {"cpu", "memory", "capacity_provider"}; see queues.py.
    queues: str = ""
    #: CloudWatch Logs group of the workers' awslogs output; enables live logs of running tasks.
    worker_log_group: str = ""
    #: awslogs stream prefix of the workers (streams are <prefix>/<container>/<task id>).
    worker_log_stream_prefix: str = ""

    def __post_init__(self) -> None:
        for name in (
            "run_task_calls_per_second",
            "task_launches_per_second",
            "describe_tasks_interval_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"[{SECTION}] {name} must be > 0, got {getattr(self, name)!r}.")
        for name in ("run_task_call_burst", "task_launch_burst", "launch_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"[{SECTION}] {name} must be >= 1, got {getattr(self, name)!r}.")
        for name in (
            "submit_retry_base_seconds",
            "submit_retry_max_seconds",
            "missing_task_grace_seconds",
            "shutdown_timeout_seconds",
            "transient_retry_margin_seconds",
            "task_definition_retry_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"[{SECTION}] {name} must be >= 0, got {getattr(self, name)!r}.")
        from airflow_ecs_fargate.queues import parse_queues

        parse_queues(self.queues)

    @classmethod
    def from_conf(cls, conf: Any) -> ExecutorSettings:
        """Read the settings from an Airflow config object (``conf`` or ``ExecutorConf``).

        :param conf: object with ``get(section, key, fallback=...)``.
        :raises ValueError: a value cannot be parsed or is out of range; the message names the key.
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = conf.get(SECTION, f.name, fallback=None)
            if raw is None or str(raw).strip() == "":
                continue
            text = str(raw).strip()
            try:
                if f.type in ("float", float):
                    values[f.name] = float(text)
                elif f.type in ("int", int):
                    values[f.name] = int(text)
                elif f.type in ("bool", bool):
                    values[f.name] = _parse_bool(text)
                else:
                    values[f.name] = text
            except ValueError as e:
                raise ValueError(f"[{SECTION}] {f.name} = {text!r} is not a valid {f.type}: {e}") from e
        return cls(**values)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "t", "1", "yes", "y", "on"):
        return True
    if lowered in ("false", "f", "0", "no", "n", "off"):
        return False
    raise ValueError("expected true or false")
