"""Fargate's per-account launch quotas, and one scheduler's share of them. Dependency-free.

Source: "AWS Fargate throttling quotas" in the Amazon ECS developer guide
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/throttling.html), per account and
Region: the RunTask API is throttled at 20 calls/s, burst and sustained; Fargate task launches at
20 tasks/s sustained with a bucket of 100 (both token buckets). Request throttling of the other
ECS APIs: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html.

Every scheduler of a deployment runs its own executor, and they all draw on the same account
buckets: each paces itself at the quota divided by the number of schedulers (:class:`Share`), so
that together they stay within it. The CDK app imports this module (it knows the deployment's
``scheduler_count``); the executor never imports the CDK app.
"""

from __future__ import annotations

from dataclasses import dataclass

#: RunTask API calls per second, sustained (Fargate quota).
RUN_TASK_CALLS_PER_SECOND = 20.0
#: RunTask API calls at once after an idle period (Fargate quota: the same 20).
RUN_TASK_CALL_BURST = 20.0
#: Fargate task launches per second, sustained (quota).
TASK_LAUNCHES_PER_SECOND = 20.0
#: Fargate task launches at once after an idle period (quota).
TASK_LAUNCH_BURST = 100.0
#: Share of the sustained rates each scheduler leaves unused, and share of the RunTask call burst
#: it never takes: when the callers together use exactly the quota, the account's bucket is always
#: empty and any call that arrives a little early (network, a loaded host, another caller) is
#: throttled; with this headroom the account's bucket keeps a reserve. Measured with ``make bench``
#: (bench/README.md, "Two schedulers").
RATE_HEADROOM = 0.02
BURST_RESERVE = 0.5
#: The smallest useful share: one RunTask call per second and one call of burst per scheduler.
#: Below it a scheduler with a backlog launches under one task per second.
MIN_CALLS_PER_SECOND_SHARE = 1.0


def max_scheduler_count(run_task_calls_per_second: float = RUN_TASK_CALLS_PER_SECOND,
                        run_task_call_burst: float = RUN_TASK_CALL_BURST) -> int:
    """The most schedulers that the RunTask rate can usefully be divided among (20 with the quota)."""
    return max(0, int(min(run_task_calls_per_second, run_task_call_burst) // MIN_CALLS_PER_SECOND_SHARE))


def check_scheduler_count(
    count: int,
    *,
    run_task_calls_per_second: float = RUN_TASK_CALLS_PER_SECOND,
    run_task_call_burst: float = RUN_TASK_CALL_BURST,
    key: str = "scheduler_count",
) -> None:
    """Refuse a number of schedulers whose share of the RunTask rate is not useful.

    :param count: schedulers of the deployment.
    :param key: the setting's name for the message (``[aws_ecs_executor] scheduler_count`` in the
        executor, ``scheduler_count`` in the CDK app's configuration).
    :raises ValueError: ``count`` < 1, or each share would be under
        :data:`MIN_CALLS_PER_SECOND_SHARE` calls/s or one call of burst; the message names the
        key and the fix.
    """
    most = max_scheduler_count(run_task_calls_per_second, run_task_call_burst)
    if 1 <= count <= most:
        return
    raise ValueError(
        f"{key} = {count}: the RunTask quota ({run_task_calls_per_second:g} calls/s, burst "
        f"{run_task_call_burst:g}; AWS Fargate throttling quotas) cannot usefully be divided among "
        f"{count} schedulers (each needs at least {MIN_CALLS_PER_SECOND_SHARE:g} call/s). Fix: use 1 to "
        f"{most} schedulers, or raise the quota with AWS and the executor's run_task_calls_per_second "
        "and run_task_call_burst with it."
    )


@dataclass(frozen=True)
class Share:
    """One scheduler's pacing: the deployment's rates and bursts divided by its scheduler count,
    less :data:`RATE_HEADROOM` of each rate and :data:`BURST_RESERVE` of the RunTask call burst.

    Rates in calls/s or tasks/s, bursts in calls or tasks (at least 1 each).
    """

    run_task_calls_per_second: float
    run_task_call_burst: float
    task_launches_per_second: float
    task_launch_burst: float

    @classmethod
    def of(
        cls,
        scheduler_count: int,
        *,
        run_task_calls_per_second: float = RUN_TASK_CALLS_PER_SECOND,
        run_task_call_burst: float = RUN_TASK_CALL_BURST,
        task_launches_per_second: float = TASK_LAUNCHES_PER_SECOND,
        task_launch_burst: float = TASK_LAUNCH_BURST,
    ) -> Share:
        """Divide each rate and burst by ``scheduler_count`` (bursts no lower than 1), less the headroom.

        :raises ValueError: see :func:`check_scheduler_count`.
        """
        check_scheduler_count(
            scheduler_count, run_task_calls_per_second=run_task_calls_per_second, run_task_call_burst=run_task_call_burst
        )
        n = float(scheduler_count)
        used = 1.0 - RATE_HEADROOM
        return cls(
            run_task_calls_per_second * used / n,
            max(1.0, run_task_call_burst * (1.0 - BURST_RESERVE) / n),
            task_launches_per_second * used / n,
            max(1.0, task_launch_burst / n),
        )
