"""The bundled executor's own counters, emitted through Airflow's Stats.

They reach the same place as Airflow's metrics (with this project's image: CloudWatch, through
:mod:`airflow_ecs_fargate.emf_stats`). Names (StatsD, before ``[metrics] statsd_prefix``):

- ``ecs_fargate.run_task_calls``: RunTask API calls made (retries and Spot fallbacks included);
- ``ecs_fargate.throttles``: RunTask attempts throttled by ECS (ThrottlingException);
- ``ecs_fargate.capacity_failures``: RunTask attempts with no Fargate (or Fargate Spot) capacity;
- ``ecs_fargate.spot_fallbacks``: launches that Spot could not place and on-demand took;
- ``ecs_fargate.submit_failures``: RunTask attempts that launched nothing, whatever the reason.
"""

from __future__ import annotations

from typing import Any

try:  # Airflow 3.2+
    from airflow._shared.observability.metrics import stats as _stats
except ImportError:  # pragma: no cover - older Airflow 3 releases
    from airflow.stats import Stats as _stats  # type: ignore[no-redef]

from airflow_ecs_fargate.errors import SubmitErrorKind

RUN_TASK_CALLS = "ecs_fargate.run_task_calls"
THROTTLES = "ecs_fargate.throttles"
CAPACITY_FAILURES = "ecs_fargate.capacity_failures"
SPOT_FALLBACKS = "ecs_fargate.spot_fallbacks"
SUBMIT_FAILURES = "ecs_fargate.submit_failures"
#: Every counter above, for allow lists and dashboards.
COUNTERS = (RUN_TASK_CALLS, THROTTLES, CAPACITY_FAILURES, SPOT_FALLBACKS, SUBMIT_FAILURES)


def count_run_task_call() -> None:
    """One RunTask API call is about to be made."""
    _stats.incr(RUN_TASK_CALLS)


def count_launch_outcome(outcome: Any) -> None:
    """Count what one launch attempt came to (an ``executor._LaunchOutcome``).

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
