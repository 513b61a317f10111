"""Validation of a task's ``executor_config`` for this executor (parse time and launch time).

``executor_config`` is merged recursively over the RunTask keyword arguments, so its keys are
RunTask request parameters (camelCase, as boto3 takes them). The executor owns the container's
``name`` and ``command``, the idempotency ``clientToken`` and ``count`` (one task per Airflow
task). Task-level ``overrides.cpu`` / ``overrides.memory`` must be a Fargate task size
(:mod:`airflow_ecs_fargate.fargate_sizes`).

The parameter names come from botocore's own ECS service model (``RunTask`` input shape), so they
follow the installed boto3 rather than a list kept here.
"""

from __future__ import annotations

import functools
from typing import Any

#: Keys the executor sets itself; a task may not set them.
OWNED_KEYS = frozenset({"name", "command", "clientToken", "count"})

FIX = (
    'Set executor_config to a dict of RunTask parameters, e.g. '
    'executor_config={"overrides": {"cpu": "1024", "memory": "4096"}}, or use queue="<queue>" '
    "for a configured worker size (executor/README.md, \"Queues\")."
)


@functools.cache
def run_task_parameters() -> frozenset[str]:
    """RunTask's request parameters (camelCase), from botocore's ECS service model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecs")
    return frozenset(model.operation_model("RunTask").input_shape.members)


@functools.cache
def task_override_parameters() -> frozenset[str]:
    """The keys of RunTask's ``overrides`` (``TaskOverride``), from botocore's ECS service model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecs")
    return frozenset(model.operation_model("RunTask").input_shape.members["overrides"].members)


def executor_config_errors(executor_config: Any) -> list[str]:
    """Return what is wrong with a task's ``executor_config`` (empty list when it is usable).

    :param executor_config: the task's ``executor_config`` (None or {} means "nothing to add").
    :return: sentences, each naming the offending key; never raises.
    """
    if executor_config is None:
        return []
    if not isinstance(executor_config, dict):
        return [f"executor_config must be a dict, got {type(executor_config).__name__} {executor_config!r:.80}"]
    if not executor_config:
        # The common case, checked in the scheduler's heartbeat: no botocore model needed
        # (loading it the first time costs 0.1-1 s).
        return []
    errors = []
    owned = sorted(OWNED_KEYS & set(executor_config))
    if owned:
        errors.append(f"executor_config must not set {owned}: the executor owns the container name, command, "
                      "clientToken and count")
    unknown = sorted(set(executor_config) - run_task_parameters() - OWNED_KEYS)
    if unknown:
        errors.append(f"executor_config has keys {unknown} that are not RunTask parameters "
                      f"(known: {', '.join(sorted(run_task_parameters() - OWNED_KEYS))})")
    overrides = executor_config.get("overrides")
    if overrides is not None:
        if not isinstance(overrides, dict):
            errors.append(f"executor_config overrides must be a dict, got {type(overrides).__name__}")
        else:
            bad = sorted(set(overrides) - task_override_parameters())
            if bad:
                errors.append(f"executor_config overrides has unknown keys {bad} "
                              f"(known: {', '.join(sorted(task_override_parameters()))})")
            if "cpu" in overrides or "memory" in overrides:
                from airflow_ecs_fargate.fargate_sizes import size_error

                problem = size_error(overrides.get("cpu"), overrides.get("memory"))
                if problem:
                    errors.append(f"executor_config overrides: {problem} (Fargate task sizes)")
    return errors
