"""How the state of an ECS task (a DescribeTasks ``Task``) maps onto the Airflow task.

The rule, in order (see README.md, "Stopped tasks"):

1. Not stopped (``lastStatus`` != STOPPED and not every essential container has exited):
   still running; ``started`` tells whether the task ever reached RUNNING (``startedAt`` set).
2. Stopped and never started (no ``startedAt``): RELAUNCH. Nothing of the Airflow task ran
   (image pull error, ENI failure, Spot capacity reclaimed while provisioning).
3. Stopped after it started: only ESSENTIAL containers count (the task definition's
   ``essential`` flag, default true; non-essential sidecars are ignored).
   a. an essential container exited non-zero: FAILED, with stoppedReason, container reason
      and exit code (e.g. ``OutOfMemoryError``, 137);
   b. every essential container exited 0: SUCCESS (the real task state travels through the
      Execution API; ``execute_workload`` exits 0 even when the Airflow task failed);
   c. an essential container has no exit code (killed by StopTask, Spot interruption, host
      failure): FAILED with stoppedReason. If the worker had already reported success through
      the Execution API, the scheduler keeps that success; otherwise the task fails and
      Airflow's own retries apply. Such a task is never left RUNNING.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class Verdict(str, enum.Enum):
    """Outcome of :func:`judge_task` for one ECS task."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    RELAUNCH = "relaunch"


@dataclass(frozen=True)
class TaskJudgement:
    """Verdict on one ECS task.

    :ivar verdict: what to do with the Airflow task.
    :ivar started: the ECS task reached RUNNING at some point (``startedAt`` is set).
    :ivar reason: human-readable reason for a terminal verdict ("" while running).
    """

    verdict: Verdict
    started: bool
    reason: str = ""


def _container_summary(container: dict[str, Any]) -> str:
    parts = [f"container {container.get('name', '?')!r}"]
    if "exitCode" in container and container["exitCode"] is not None:
        parts.append(f"exit code {container['exitCode']}")
    else:
        parts.append("no exit code")
    if container.get("reason"):
        parts.append(f"reason: {container['reason']}")
    return " ".join(parts[:1]) + " (" + "; ".join(parts[1:]) + ")"


def judge_task(task: dict[str, Any], essential_containers: Iterable[str] | None = None) -> TaskJudgement:
    """Decide what a described ECS task means for its Airflow task.

    :param task: one element of ``DescribeTasks`` ``tasks`` (boto3 camelCase dict).
    :param essential_containers: names of the essential containers of the task's definition;
        ``None`` or a set that matches no container of the task means "all containers".
    :return: the judgement; never raises on missing keys.
    """
    containers: list[dict[str, Any]] = list(task.get("containers") or [])
    names = set(essential_containers or ())
    essential = [c for c in containers if c.get("name") in names] or containers
    started = bool(task.get("startedAt"))
    last_status = task.get("lastStatus")
    desired_status = task.get("desiredStatus")

    def has_exit(c: dict[str, Any]) -> bool:
        return c.get("exitCode") is not None

    essentials_exited = bool(essential) and all(has_exit(c) for c in essential)
    stopped = last_status == "STOPPED" or (desired_status == "STOPPED" and essentials_exited and started)
    if not stopped:
        return TaskJudgement(Verdict.RUNNING, started)

    stopped_reason = task.get("stoppedReason") or "no stoppedReason given"
    stop_code = task.get("stopCode")
    prefix = f"ECS task {task.get('taskArn', '?')} stopped"
    if stop_code:
        prefix += f" ({stop_code})"
    prefix += f": {stopped_reason}"

    if not started:
        details = "; ".join(_container_summary(c) for c in containers if c.get("reason"))
        return TaskJudgement(
            Verdict.RELAUNCH,
            False,
            f"{prefix}. The task never started" + (f"; {details}" if details else "") + ".",
        )

    failed = [c for c in essential if has_exit(c) and c["exitCode"] != 0]
    if failed:
        return TaskJudgement(
            Verdict.FAILED,
            True,
            f"{prefix}. Essential " + "; ".join(_container_summary(c) for c in failed) + ".",
        )
    no_exit = [c for c in essential if not has_exit(c)]
    if no_exit:
        return TaskJudgement(
            Verdict.FAILED,
            True,
            f"{prefix}. Essential " + "; ".join(_container_summary(c) for c in no_exit)
            + ". A stopped task without an exit code is settled as failed.",
        )
    return TaskJudgement(Verdict.SUCCESS, True, f"{prefix}. All essential containers exited 0.")


def essential_container_names(task_definition: dict[str, Any]) -> frozenset[str]:
    """Names of the essential containers of a ``DescribeTaskDefinition`` ``taskDefinition``.

    ECS treats a container as essential unless ``essential`` is explicitly false
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html).
    """
    return frozenset(
        c["name"]
        for c in task_definition.get("containerDefinitions") or []
        if c.get("name") and c.get("essential", True) is not False
    )
