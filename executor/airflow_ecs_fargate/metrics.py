"""Emits the bundled executor's metrics through Airflow's Stats.

They reach the same place as Airflow's metrics (with this project's image: CloudWatch, through
:mod:`airflow_ecs_fargate.emf_stats`). The names, and what each counts, are in
:mod:`airflow_ecs_fargate.metric_names`.
"""

from __future__ import annotations

from typing import Any

try:  # Airflow 3.3: the module has the module-level incr/timing/gauge
    from airflow._shared.observability.metrics import stats as _stats

    if not hasattr(_stats, "incr"):
        # Airflow 3.2.2 has the module without them (seen in the upgrade rehearsal: every launch
        # failed with AttributeError: ... has no attribute 'incr'): use the provider's Stats.
        raise ImportError("airflow._shared.observability.metrics.stats has no incr")
except ImportError:
    from airflow.providers.common.compat.sdk import Stats as _stats  # type: ignore[no-redef]

from airflow_ecs_fargate.errors import SubmitErrorKind
from airflow_ecs_fargate.metric_names import (
    ADOPT_DURATION,
    CAPACITY_FAILURES,
    COUNTERS,
    RUN_TASK_CALLS,
    SPOT_FALLBACKS,
    SUBMIT_FAILURES,
    THROTTLES,
)

__all__ = ["COUNTERS", "adopt_timer", "count_launch_outcome", "count_run_task_call"]


def adopt_timer(team_name: str | None):
    """The stock executor's ``ecs_executor.adopt_task_instances.duration`` timer (a context manager).

    Same name, same tags and the same Stats object as the provider's ``AwsEcsExecutor``
    (``airflow.providers.common.compat.sdk.Stats``; tag ``team_name`` only when set).
    """
    from airflow.providers.common.compat.sdk import Stats

    return Stats.timer(ADOPT_DURATION, tags={"team_name": team_name} if team_name else {})


def count_run_task_call() -> None:
    """One RunTask API call is about to be made."""
    _stats.incr(RUN_TASK_CALLS)


def count_launch_outcome(outcome: Any) -> None:
    """Count what one launch attempt came to (a :class:`~airflow_ecs_fargate.launching.LaunchOutcome`).

    A Spot fallback counts one capacity failure (Spot's) and one fallback; an attempt that
    launched nothing (and was not cancelled) counts one submit failure, plus a throttle or a
    capacity failure by its classified kind.
    """
    if getattr(outcome, "cancelled", False):
        return
    if getattr(outcome, "spot_fallback_reason", ""):
        _stats.incr(SPOT_FALLBACKS)
        _stats.incr(CAPACITY_FAILURES)
    if getattr(outcome, "arn", None):
        return
    _stats.incr(SUBMIT_FAILURES)
    kind = getattr(outcome, "kind", None)
    if kind is SubmitErrorKind.THROTTLED:
        _stats.incr(THROTTLES)
    elif kind is SubmitErrorKind.CAPACITY:
        _stats.incr(CAPACITY_FAILURES)
