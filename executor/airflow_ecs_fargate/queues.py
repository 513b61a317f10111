"""Queues that pick a worker size: ``[aws_ecs_executor] queues``.

The setting is a JSON object mapping an Airflow queue name to a worker size and, optionally, a
capacity provider::

    {"large": {"cpu": 2048, "memory": 8192},
     "on-demand": {"capacity_provider": "FARGATE"}}

A task with ``queue="large"`` is launched with RunTask ``overrides.cpu``/``overrides.memory``
(task level, vCPU units and MiB) and, when given, a capacity provider strategy of that one
provider, and ``taskDefinition`` when the queue names one (``"task_definition"``: a family,
``family:revision`` or ARN; a team queue's, whose task role is the team's: its container must
have the executor's ``container_name``), and ``log_stream_prefix`` when that task definition's
awslogs stream prefix is not the executor's ``worker_log_stream_prefix`` (the live log of a
RUNNING task is read from ``<prefix>/<container>/<task id>``). Tasks on any other queue
(Airflow's ``default`` included) keep the task definition's size and the executor's strategy, as
before. The task's own ``executor_config`` is applied on top.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from airflow_ecs_fargate.fargate_sizes import size_error

SETTING = "[aws_ecs_executor] queues"
_EXAMPLE = '{"large": {"cpu": 2048, "memory": 8192, "capacity_provider": "FARGATE"}}'
_KEYS = {"cpu", "memory", "capacity_provider", "task_definition", "log_stream_prefix"}


@dataclass(frozen=True)
class QueueSize:
    """One queue's worker size.

    :param cpu: task CPU in vCPU units (1024 = 1 vCPU), or None for the task definition's.
    :param memory: task memory in MiB, or None for the task definition's.
    :param capacity_provider: e.g. ``FARGATE`` or ``FARGATE_SPOT``; None keeps the executor's.
    :param task_definition: the task definition (family, ``family:revision`` or ARN) of this
        queue's tasks; None keeps the executor's ``task_definition``.
    :param log_stream_prefix: the awslogs stream prefix of that task definition's container; None
        keeps the executor's ``worker_log_stream_prefix``.
    """

    cpu: int | None = None
    memory: int | None = None
    capacity_provider: str | None = None
    task_definition: str | None = None
    log_stream_prefix: str | None = None

    def run_task_kwargs(self) -> dict[str, Any]:
        """The RunTask kwargs this queue adds (merged over the executor's, under executor_config)."""
        kwargs: dict[str, Any] = {}
        overrides = {}
        if self.cpu is not None:
            overrides["cpu"] = str(self.cpu)
        if self.memory is not None:
            overrides["memory"] = str(self.memory)
        if overrides:
            kwargs["overrides"] = overrides
        if self.capacity_provider:
            kwargs["capacityProviderStrategy"] = [{"capacityProvider": self.capacity_provider, "weight": 1, "base": 0}]
        if self.task_definition:
            kwargs["taskDefinition"] = self.task_definition
        return kwargs


def parse_queues(raw: str | None) -> dict[str, QueueSize]:
    """Parse ``[aws_ecs_executor] queues``.

    :param raw: JSON text, or None/empty for no queues.
    :return: queue name -> size.
    :raises ValueError: not JSON, not an object of objects, unknown keys, or a cpu/memory pair that
        is not a Fargate task size; the message names the queue and the fix.
    """
    if raw is None or not str(raw).strip():
        return {}
    try:
        value = json.loads(str(raw))
    except json.JSONDecodeError as e:
        raise ValueError(f"{SETTING} is not valid JSON ({e}); example: {_EXAMPLE}") from e
    if not isinstance(value, dict):
        raise ValueError(f"{SETTING} must be a JSON object of queue name -> size; example: {_EXAMPLE}")
    queues = {}
    for name, spec in value.items():
        if not isinstance(spec, dict) or not spec:
            raise ValueError(f"{SETTING}: queue {name!r} must map to an object with {sorted(_KEYS)}; example: {_EXAMPLE}")
        unknown = set(spec) - _KEYS
        if unknown:
            raise ValueError(f"{SETTING}: queue {name!r} has unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
        problem = size_error(spec.get("cpu"), spec.get("memory"))
        if problem:
            raise ValueError(f"{SETTING}: queue {name!r}: {problem} (Fargate task sizes)")
        provider = spec.get("capacity_provider")
        if provider is not None and (not isinstance(provider, str) or not provider):
            raise ValueError(f"{SETTING}: queue {name!r}: capacity_provider must be a name such as FARGATE")
        task_definition = spec.get("task_definition")
        if task_definition is not None and (not isinstance(task_definition, str) or not task_definition):
            raise ValueError(f"{SETTING}: queue {name!r}: task_definition must be a task definition family, "
                             "family:revision or ARN")
        stream_prefix = spec.get("log_stream_prefix")
        if stream_prefix is not None and (not isinstance(stream_prefix, str) or not stream_prefix
                                          or set(stream_prefix) & {":", "*", "/"}):
            raise ValueError(f"{SETTING}: queue {name!r}: log_stream_prefix must be the awslogs stream prefix of "
                             "the queue's task definition, without ':', '*' or '/'")
        queues[str(name)] = QueueSize(
            cpu=None if spec.get("cpu") is None else int(spec["cpu"]),
            memory=None if spec.get("memory") is None else int(spec["memory"]),
            capacity_provider=provider,
            task_definition=task_definition,
            log_stream_prefix=stream_prefix,
        )
    return queues
