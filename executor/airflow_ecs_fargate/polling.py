"""Polling: one DescribeTasks round per interval on its own thread, judged by essential containers.

The scheduler thread asks :meth:`Poller.maybe_poll` on every ``sync()``; when a round is due and
none is in flight, the tracked ARNs go to the single poll thread, which calls DescribeTasks (in
batches of :data:`DESCRIBE_TASKS_MAX_ARNS`), judges each task (:func:`~airflow_ecs_fargate.task_state.judge_task`)
and reports one :class:`PollOutcome`. The poller changes no Airflow state; the executor applies
the outcome on the scheduler thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from airflow_ecs_fargate.errors import describe_exception, needs_new_client
from airflow_ecs_fargate.task_state import TaskJudgement, essential_container_names, judge_task

#: DescribeTasks accepts up to 100 task ARNs per call
#: (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html).
DESCRIBE_TASKS_MAX_ARNS = 100


@dataclass
class PollOutcome:
    """What one DescribeTasks round found.

    :param judgements: task ARN -> the judgement of a task ECS returned.
    :param missing: task ARN -> why ECS did not return it (its ``failures`` reason, or "not returned").
    :param error: ``Type: message`` of the call that ended the round early; empty if none did.
    """

    judgements: dict[str, TaskJudgement] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    error: str = ""


def batches(items: list, size: int) -> Iterator[list]:
    """``items`` in consecutive slices of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Poller:
    """The DescribeTasks rounds of one executor: their interval, their thread, the essential-container cache.

    :param client: returns the ECS client to call (the executor's, rebuilt after credential errors).
    :param cluster: the ECS cluster name or ARN (``[aws_ecs_executor] cluster``; None: ECS's default).
    :param container_name: the Airflow container (``[aws_ecs_executor] container_name``), taken as
        the only essential one when a task definition cannot be read.
    :param interval_seconds: seconds between rounds (``describe_tasks_interval_seconds``).
    :param task_definition_retry_seconds: seconds before a failed DescribeTaskDefinition is tried again.
    :param clock: monotonic clock, seconds.
    :param report: called on the poll thread with each round's :class:`PollOutcome`.
    :param client_stale: called on the poll thread after an error that needs a new client.
    :param log: the executor's logger (``logging.Logger``-like), for lookup failures.
    """

    def __init__(
        self,
        *,
        client: Callable[[], Any],
        cluster: str | None,
        container_name: str,
        interval_seconds: float,
        task_definition_retry_seconds: float,
        clock: Callable[[], float],
        report: Callable[[PollOutcome], None],
        client_stale: Callable[[], None],
        log: Any,
    ):
        self._client = client
        self._cluster = cluster
        self._container_name = container_name
        self._interval = interval_seconds
        self._retry_seconds = task_definition_retry_seconds
        self._clock = clock
        self._report = report
        self._client_stale = client_stale
        self._log = log
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecs-fargate-poll")
        self._round: Future | None = None
        self._next_poll_at = clock() + interval_seconds
        self._essential_cache: dict[str, frozenset[str]] = {}
        self._essential_retry_at: dict[str, float] = {}  # task definition ARN -> next lookup (monotonic s)

    @property
    def last_round(self) -> Future | None:
        """The future of the most recent DescribeTasks round (done or not); None before the first."""
        return self._round

    def round_in_flight(self) -> Future | None:
        """The round still running on the poll thread, or None."""
        return self._round if self._round is not None and not self._round.done() else None

    def poll_now(self) -> None:
        """Make the next :meth:`maybe_poll` start a round regardless of the interval."""
        self._next_poll_at = self._clock()

    def maybe_poll(self, arns: Callable[[], list[str]]) -> None:
        """Start a round of ``arns()`` on the poll thread if one is due and none is in flight.

        ``arns`` is called only when a round is due, so a ``sync()`` between rounds costs O(1).
        """
        now = self._clock()
        if now < self._next_poll_at or self.round_in_flight() is not None:
            return
        self._next_poll_at = now + self._interval
        tracked = arns()
        if tracked:
            self._round = self._pool.submit(self._poll_in_worker, tracked)

    def describe_now(self, arns: list[str]) -> dict[str, dict]:
        """DescribeTasks of ``arns`` on the calling thread (adoption), in batches; no judging.

        :return: task ARN -> the task as ECS returned it; ARNs ECS does not know are absent.
        :raises Exception: the first failed call (botocore's errors).
        """
        known: dict[str, dict] = {}
        for batch in batches(arns, DESCRIBE_TASKS_MAX_ARNS):
            response = self._client().describe_tasks(cluster=self._cluster, tasks=batch)
            for task in response.get("tasks") or []:
                known[task["taskArn"]] = task
        return known

    def shutdown(self) -> None:
        """Stop the poll thread without waiting; a round not started yet is cancelled."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _poll_in_worker(self, arns: list[str]) -> None:
        outcome = PollOutcome()
        try:
            for batch in batches(arns, DESCRIBE_TASKS_MAX_ARNS):
                response = self._client().describe_tasks(cluster=self._cluster, tasks=batch)
                for task in response.get("tasks") or []:
                    essential = self.essential_for(task.get("taskDefinitionArn"))
                    outcome.judgements[task["taskArn"]] = judge_task(task, essential)
                for failure in response.get("failures") or []:
                    if failure.get("arn"):
                        outcome.missing[failure["arn"]] = failure.get("reason", "")
                returned = {t["taskArn"] for t in response.get("tasks") or []}
                for arn in batch:
                    if arn not in returned and arn not in outcome.missing:
                        outcome.missing[arn] = "not returned"
        except Exception as e:
            if needs_new_client(e):
                self._client_stale()
            outcome.error = describe_exception(e)
        finally:
            self._report(outcome)

    def essential_for(self, task_definition_arn: str | None) -> frozenset[str] | None:
        """Essential container names of a task definition (DescribeTaskDefinition, cached).

        A failed lookup is cached too, as only ``container_name``, and tried again after
        ``task_definition_retry_seconds``: an ungranted or failing call is not repeated every round.

        :param task_definition_arn: family:revision or ARN; None or empty when ECS gave none.
        :return: the names, or None for no task definition. Never raises.
        """
        if not task_definition_arn:
            return None
        cached = self._essential_cache.get(task_definition_arn)
        if cached is not None and self._clock() < self._essential_retry_at.get(task_definition_arn, float("inf")):
            return cached
        try:
            td = self._client().describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
            self._essential_cache[task_definition_arn] = essential_container_names(td)
            self._essential_retry_at.pop(task_definition_arn, None)
        except Exception as e:
            retry = self._retry_seconds
            self._log.warning(
                "DescribeTaskDefinition %s failed (%s); treating only %r as essential for the next %.0f s",
                task_definition_arn, describe_exception(e), self._container_name, retry,
            )
            self._essential_cache[task_definition_arn] = frozenset({self._container_name})
            self._essential_retry_at[task_definition_arn] = self._clock() + retry
        return self._essential_cache[task_definition_arn]
