"""Task tracking: the launched (or adopted) ECS tasks the executor follows, by ARN and by Airflow key.

Used on the scheduler thread only (the poll thread gets a copy of the ARNs), so it takes no lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_ecs_fargate.launching import Launch
from airflow_ecs_fargate.polling import PollOutcome
from airflow_ecs_fargate.task_state import TaskJudgement, Verdict


@dataclass
class Tracked:
    """A launched ECS task the executor follows with DescribeTasks.

    :param key: the Airflow task instance (or callback) key.
    :param arn: the ECS task ARN.
    :param launch: the launch it came from; None for an adopted task (no workload token to relaunch with).
    :param launched_at: when it was launched or adopted (monotonic s).
    :param started: ECS reported it started (``startedAt`` or a RUNNING status) at least once.
    """

    key: Any
    arn: str
    launch: Launch | None
    launched_at: float
    started: bool = False


class TaskTracker:
    """The tracked ECS tasks, each reachable by ARN and by Airflow key."""

    def __init__(self) -> None:
        self._by_arn: dict[str, Tracked] = {}
        self._arn_by_key: dict[Any, str] = {}

    def track(self, key: Any, arn: str, launch: Launch | None, *, launched_at: float, started: bool = False) -> Tracked:
        """Follow ECS task ``arn`` for ``key`` (replacing an earlier ARN of the same key)."""
        tracked = Tracked(key, arn, launch, launched_at=launched_at, started=started)
        self._by_arn[arn] = tracked
        self._arn_by_key[key] = arn
        return tracked

    def get(self, arn: str) -> Tracked | None:
        """The tracked task of ECS task ``arn``, or None if it is not tracked."""
        return self._by_arn.get(arn)

    def arn_for(self, key: Any) -> str | None:
        """The ECS task ARN tracked for Airflow key ``key``, or None."""
        return self._arn_by_key.get(key)

    def untrack(self, tracked: Tracked) -> None:
        """Stop following ``tracked`` (its key keeps a newer ARN, if it has one)."""
        self._by_arn.pop(tracked.arn, None)
        if self._arn_by_key.get(tracked.key) == tracked.arn:
            del self._arn_by_key[tracked.key]

    def forget(self, key: Any, fallback_arn: str | None = None) -> str | None:
        """Stop following ``key``'s task; ``fallback_arn`` (e.g. the TI's ``external_executor_id``) if none is tracked.

        :return: the ARN forgotten (tracked or fallback), or None.
        """
        arn = self._arn_by_key.pop(key, None) or fallback_arn
        if arn:
            self._by_arn.pop(arn, None)
        return arn

    def settle_stopped(self, outcome: PollOutcome) -> list[tuple[Tracked, TaskJudgement]]:
        """Apply a DescribeTasks round's judgements; untrack and return the tasks that stopped.

        A returned task's ``started`` flag is updated; one with any verdict but RUNNING is
        untracked. ARNs no longer tracked (revoked, settled earlier) are ignored.

        :return: the stopped tasks with their judgement, in the round's order.
        """
        stopped: list[tuple[Tracked, TaskJudgement]] = []
        for arn, judgement in outcome.judgements.items():
            tracked = self._by_arn.get(arn)
            if tracked is None:
                continue
            tracked.started = tracked.started or judgement.started
            if judgement.verdict is Verdict.RUNNING:
                continue
            self.untrack(tracked)
            stopped.append((tracked, judgement))
        return stopped

    def settle_lost(self, outcome: PollOutcome, *, now: float, grace_seconds: float) -> list[tuple[Tracked, str]]:
        """Untrack and return the tasks of a round ECS did not return, launched ``grace_seconds`` ago or more.

        ECS may not list a task it has just started, hence the grace (``missing_task_grace_seconds``).

        :param now: the current monotonic time (s).
        :return: the lost tasks with ECS's reason, in the round's order.
        """
        lost: list[tuple[Tracked, str]] = []
        for arn, reason in outcome.missing.items():
            tracked = self._by_arn.get(arn)
            if tracked is None or now - tracked.launched_at < grace_seconds:
                continue
            self.untrack(tracked)
            lost.append((tracked, reason))
        return lost

    def arns(self) -> list[str]:
        """The ARNs of every tracked task (a copy)."""
        return list(self._by_arn)
