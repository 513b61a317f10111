"""Settings of the executor that the stock ``[aws_ecs_executor]`` section does not declare.

Every key is read from the ``[aws_ecs_executor]`` section with a fallback, so it can be set in
``airflow.cfg`` or as ``AIRFLOW__AWS_ECS_EXECUTOR__<KEY>`` without a provider.yaml declaration.
Types, ranges and defaults are declared once, on :class:`ExecutorSettings` (a pydantic v2 model);
the defaults of the rate settings are Fargate's per-account quotas
(:mod:`airflow_ecs_fargate.quota`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic_core import ErrorDetails
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from airflow_ecs_fargate import quota

SECTION = "aws_ecs_executor"


class ExecutorSettings(BaseModel):
    """Typed, validated settings of :class:`~airflow_ecs_fargate.executor.EcsFargateExecutor`.

    Units are in the names: ``*_per_second`` are rates (1/s), ``*_seconds`` are durations (s),
    ``*_burst``, ``*_concurrency`` and ``*_count`` are counts. The four rate settings are for the
    whole deployment; each scheduler paces itself at its share (``scheduler_count``, see
    :meth:`share`).

    :raises pydantic.ValidationError: a value of the wrong type or out of range (use
        :meth:`from_conf` for messages naming the ``[aws_ecs_executor]`` key and the fix).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_task_calls_per_second: float = Field(
        quota.RUN_TASK_CALLS_PER_SECOND, gt=0, description="RunTask API calls per second (sustained), all schedulers together"
    )
    run_task_call_burst: float = Field(
        quota.RUN_TASK_CALL_BURST, ge=1, description="RunTask API calls at once after an idle period, all schedulers together"
    )
    task_launches_per_second: float = Field(
        quota.TASK_LAUNCHES_PER_SECOND, gt=0, description="tasks launched per second (sustained), all schedulers together"
    )
    task_launch_burst: float = Field(
        quota.TASK_LAUNCH_BURST, ge=1, description="tasks launched at once after an idle period, all schedulers together"
    )
    scheduler_count: int = Field(
        1,
        ge=1,
        description="schedulers of the deployment sharing the rates above (each paces at rate / scheduler_count)",
    )
    launch_concurrency: int = Field(10, ge=1, description="worker threads that call RunTask (and StopTask)")
    describe_tasks_interval_seconds: float = Field(10.0, gt=0, description="seconds between two DescribeTasks rounds")
    spot_fallback_to_on_demand: bool = Field(
        True, description="relaunch on the on-demand capacity provider when Fargate Spot has no capacity"
    )
    on_demand_capacity_provider: str = Field("FARGATE", min_length=1, description="capacity provider of that fallback")
    submit_retry_base_seconds: float = Field(
        2.0, ge=0, description="first retry delay (s) after a retryable submit failure; doubles per attempt, with jitter"
    )
    submit_retry_max_seconds: float = Field(60.0, ge=0, description="upper bound (s) of one retry delay")
    missing_task_grace_seconds: float = Field(
        60.0,
        ge=0,
        description="seconds a tracked task may be missing from DescribeTasks (eventually consistent) before it fails",
    )
    shutdown_timeout_seconds: float = Field(
        30.0, ge=0, description="seconds end()/terminate() wait for in-flight AWS calls"
    )
    transient_retry_margin_seconds: float = Field(
        30.0,
        ge=0,
        description="transient RunTask failures are retried until queued time + [scheduler] task_queued_timeout - this margin (s)",
    )
    task_definition_retry_seconds: float = Field(
        600.0, ge=0, description="seconds before a failed DescribeTaskDefinition is tried again"
    )
    #: botocore's retry modes: "Retry behavior" in the AWS SDKs reference guide
    #: (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html). ``standard``
    #: by measurement (bench/README.md, "Two schedulers"): ``adaptive``'s client-side limiter cut a
    #: single scheduler to 18.8 launches/s after a few throttles; the quota headroom
    #: (:mod:`airflow_ecs_fargate.quota`) is what keeps throttling away.
    api_retry_mode: Literal["standard", "adaptive", "legacy"] = Field(
        "standard",
        description="botocore retry mode of the executor's ECS client ('Retry behavior', AWS SDKs reference guide)",
    )
    api_max_attempts: int = Field(
        3, ge=1, description="botocore attempts per ECS call (first call included) before the executor sees the error"
    )
    queue_budget_seconds: float = Field(
        0.02,
        gt=0,
        description="seconds one heartbeat may spend taking queued workloads in; the rest wait in queued_tasks for the next",
    )
    queues: str = Field("", description='JSON object: queue name -> {"cpu", "memory", "capacity_provider"}')
    worker_log_group: str = Field("", description="CloudWatch Logs group of the workers' awslogs output (live logs)")
    worker_log_stream_prefix: str = Field("", description="awslogs stream prefix of the workers")

    @field_validator("queues")
    @classmethod
    def _queues_parse(cls, value: str) -> str:
        from airflow_ecs_fargate.queues import parse_queues

        parse_queues(value)
        return value

    @model_validator(mode="after")
    def _share_is_useful(self) -> ExecutorSettings:
        quota.check_scheduler_count(
            self.scheduler_count,
            run_task_calls_per_second=self.run_task_calls_per_second,
            run_task_call_burst=self.run_task_call_burst,
            key=f"[{SECTION}] scheduler_count",
        )
        return self

    def share(self) -> quota.Share:
        """This scheduler's pacing: every rate and burst divided by ``scheduler_count``."""
        return quota.Share.of(
            self.scheduler_count,
            run_task_calls_per_second=self.run_task_calls_per_second,
            run_task_call_burst=self.run_task_call_burst,
            task_launches_per_second=self.task_launches_per_second,
            task_launch_burst=self.task_launch_burst,
        )

    @classmethod
    def from_conf(cls, conf: Any) -> ExecutorSettings:
        """Read the settings from an Airflow config object (``conf`` or ``ExecutorConf``).

        Unset or empty keys take their default.

        :param conf: object with ``get(section, key, fallback=...)``.
        :raises ValueError: one line per bad key: ``[aws_ecs_executor] <key> must be ...,
            got ...`` and the fix (environment variable or airflow.cfg key, default).
        """
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = conf.get(SECTION, name, fallback=None)
            if raw is None or str(raw).strip() == "":
                continue
            values[name] = str(raw).strip()
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            raise ValueError("\n".join(_explain(error, values) for error in e.errors())) from None


def _explain(error: ErrorDetails, values: dict[str, Any]) -> str:
    """One pydantic error as ``[aws_ecs_executor] key must be ..., got ...`` plus the fix."""
    key = str(error["loc"][0]) if error.get("loc") else ""
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if key not in ExecutorSettings.model_fields:  # a cross-field rule: its message says it all
        return message
    field = ExecutorSettings.model_fields[key]
    ctx = error.get("ctx") or {}
    bounds = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    constraint = next((f"{sign} {ctx[name]:g}" for name, sign in bounds.items() if name in ctx), "")
    kinds: dict[Any, str] = {float: "a number", int: "a whole number", bool: "true or false", str: "text"}
    kind = kinds.get(
        field.annotation, " or ".join(repr(v) for v in getattr(field.annotation, "__args__", ()))
    )
    expected = f"{constraint} ({kind})" if constraint else kind
    env = f"AIRFLOW__{SECTION.upper()}__{key.upper()}"
    default = f"{field.default:g}" if isinstance(field.default, float) else repr(field.default)
    return (
        f"[{SECTION}] {key} must be {expected}, got {values.get(key)!r}: {message}. Fix: set {env} (or "
        f"[{SECTION}] {key} in airflow.cfg) to {expected}, {field.description}; or unset it for the "
        f"default {default}."
    )
