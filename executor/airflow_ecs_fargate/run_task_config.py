"""Build the RunTask keyword arguments from ``[aws_ecs_executor]``.

Same keys and precedence as the stock provider's ``build_task_kwargs`` (``run_task_kwargs``
JSON overrides the individual keys), with two fixes:

* ``capacity_provider_strategy`` is parsed (JSON, or the Python literal with single quotes of the
  provider's documented example) into a list of ``{"capacityProvider": str, "weight": int,
  "base": int}`` (snake_case keys accepted) instead of being handed to boto3 as a raw string,
  which failed every RunTask with ParamValidationError.
* No AWS call is made here. When neither ``launch_type`` nor a strategy is set, the caller
  looks the cluster up later, with the executor's own client (configured ``conn_id`` and
  ``region_name``), instead of a bare ``EcsHook()``.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from airflow.providers.amazon.aws.executors.ecs.utils import (
    CONFIG_DEFAULTS,
    CONFIG_GROUP_NAME,
    ECS_LAUNCH_TYPE_EC2,
    AllEcsConfigKeys,
    RunTaskKwargsConfigKeys,
    camelize_dict_keys,
    parse_assign_public_ip,
)
from airflow.utils.helpers import prune_dict

FARGATE_SPOT = "FARGATE_SPOT"

_STRATEGY_KEYS = {
    "capacityProvider": "capacityProvider",
    "capacity_provider": "capacityProvider",
    "weight": "weight",
    "base": "base",
}


def parse_capacity_provider_strategy(value: Any) -> list[dict[str, Any]]:
    """Parse and validate a capacity provider strategy.

    :param value: text or an already-decoded list of objects with ``capacityProvider`` (str,
        required), ``weight`` (int 0..1000, optional) and ``base`` (int 0..100000, optional).
        Text is read as JSON, else as a Python literal (``ast.literal_eval``, which evaluates no
        code): the amazon provider's config reference documents the example
        ``[{'capacityProvider': 'cp1', 'weight': 5}, {'capacityProvider': 'cp2', 'weight': 1}]``.
        Limits from https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CapacityProviderStrategyItem.html
    :return: list of dicts with camelCase keys, ready for boto3.
    :raises ValueError: the text is neither JSON nor a Python literal, or not a non-empty list of
        such objects; the message names ``[aws_ecs_executor] capacity_provider_strategy`` and the fix.
    """
    fix = (
        "Set [aws_ecs_executor] capacity_provider_strategy to a JSON list such as "
        '[{"capacityProvider": "FARGATE_SPOT", "weight": 1}, {"capacityProvider": "FARGATE", "base": 0, "weight": 0}] '
        "(or the same as a Python literal with single quotes)."
    )
    if isinstance(value, str):
        value = _decode_strategy(value, fix)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"[aws_ecs_executor] capacity_provider_strategy must be a non-empty list, got {value!r}. {fix}")
    items = []
    for item in value:
        if not isinstance(item, dict):
            raise ValueError(f"[aws_ecs_executor] capacity_provider_strategy item {item!r} is not an object. {fix}")
        unknown = set(item) - set(_STRATEGY_KEYS)
        if unknown:
            raise ValueError(f"[aws_ecs_executor] capacity_provider_strategy item has unknown keys {sorted(unknown)}. {fix}")
        out = {_STRATEGY_KEYS[k]: v for k, v in item.items()}
        if not isinstance(out.get("capacityProvider"), str) or not out["capacityProvider"]:
            raise ValueError(f"[aws_ecs_executor] capacity_provider_strategy item {item!r} has no capacityProvider. {fix}")
        for key, upper in (("weight", 1000), ("base", 100000)):
            if key in out:
                try:
                    out[key] = int(out[key])
                except (TypeError, ValueError):
                    raise ValueError(
                        f"[aws_ecs_executor] capacity_provider_strategy {key} must be an integer, got {out[key]!r}. {fix}"
                    ) from None
                if not 0 <= out[key] <= upper:
                    raise ValueError(
                        f"[aws_ecs_executor] capacity_provider_strategy {key} must be in 0..{upper}, got {out[key]}. {fix}"
                    )
        items.append(out)
    return items


def _decode_strategy(text: str, fix: str) -> Any:
    """JSON first; then a Python literal (strings, numbers, lists, dicts only: no code is run)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            return ast.literal_eval(text.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ValueError(
                f"[aws_ecs_executor] capacity_provider_strategy = {text!r} is neither JSON ({json_error}) "
                f"nor a Python literal. {fix}"
            ) from None


def uses_fargate_spot(run_task_kwargs: dict[str, Any]) -> bool:
    """Return True when the RunTask kwargs ask for Fargate Spot capacity."""
    return any(
        item.get("capacityProvider") == FARGATE_SPOT for item in run_task_kwargs.get("capacityProviderStrategy") or []
    )


def on_demand_kwargs(run_task_kwargs: dict[str, Any], on_demand_provider: str) -> dict[str, Any]:
    """Copy of the kwargs with every Fargate Spot share moved to ``on_demand_provider``."""
    kwargs = dict(run_task_kwargs)
    kwargs["capacityProviderStrategy"] = [{"capacityProvider": on_demand_provider, "weight": 1, "base": 0}]
    return kwargs


def build_run_task_kwargs(conf: Any) -> tuple[dict[str, Any], bool]:
    """Build the RunTask kwargs from the ``[aws_ecs_executor]`` section.

    :param conf: Airflow config object (``conf`` or the executor's ``ExecutorConf``).
    :return: ``(kwargs, needs_cluster_lookup)``; the second item is True when neither
        ``launchType`` nor ``capacityProviderStrategy`` is set, so the cluster's default strategy
        must be checked before the first launch (no strategy there means launch type FARGATE).
    :raises ValueError: contradictory or malformed settings; the message names the fix.
    """
    task_kwargs: dict[str, Any] = prune_dict(
        {
            key: conf.get(CONFIG_GROUP_NAME, key, fallback=CONFIG_DEFAULTS.get(key, None))
            for key in RunTaskKwargsConfigKeys()
        }
    )
    raw = conf.get(CONFIG_GROUP_NAME, AllEcsConfigKeys.RUN_TASK_KWARGS, fallback=None)
    if raw:
        try:
            task_kwargs.update(json.loads(str(raw)))
        except json.JSONDecodeError as e:
            raise ValueError(f"[aws_ecs_executor] run_task_kwargs is not valid JSON: {e}") from e

    strategy_key = next(
        (k for k in ("capacity_provider_strategy", "capacityProviderStrategy") if k in task_kwargs), None
    )
    launch_key = next((k for k in ("launch_type", "launchType") if k in task_kwargs), None)
    if strategy_key and launch_key:
        raise ValueError(
            "capacity_provider_strategy and launch_type are mutually exclusive; set only one of them."
        )
    strategy = parse_capacity_provider_strategy(task_kwargs.pop(strategy_key)) if strategy_key else None
    is_ec2 = launch_key is not None and task_kwargs.get(launch_key) == ECS_LAUNCH_TYPE_EC2
    if is_ec2:
        task_kwargs.pop(AllEcsConfigKeys.PLATFORM_VERSION, None)
        task_kwargs.pop("platformVersion", None)

    task_kwargs["count"] = 1
    overrides = task_kwargs.setdefault("overrides", {})
    container_overrides = overrides.setdefault("containerOverrides", [{}])
    if not container_overrides:
        container_overrides.append({})
    container_name = task_kwargs.pop(AllEcsConfigKeys.CONTAINER_NAME, None)
    if not container_name:
        raise ValueError("[aws_ecs_executor] container_name is required: the name of the Airflow container.")
    container_overrides[0]["name"] = container_name
    container_overrides[0]["command"] = []

    subnets = task_kwargs.pop(AllEcsConfigKeys.SUBNETS, None)
    security_groups = task_kwargs.pop(AllEcsConfigKeys.SECURITY_GROUPS, None)
    assign_public_ip = task_kwargs.pop(AllEcsConfigKeys.ASSIGN_PUBLIC_IP, None)
    if subnets or security_groups or assign_public_ip != "False":
        network_config = prune_dict(
            {
                "awsvpcConfiguration": {
                    "subnets": [s.strip() for s in str(subnets).split(",") if s.strip()] if subnets else None,
                    "securityGroups": [s.strip() for s in str(security_groups).split(",") if s.strip()]
                    if security_groups
                    else None,
                    "assignPublicIp": parse_assign_public_ip(assign_public_ip, is_ec2),
                }
            }
        )
        if "subnets" not in network_config["awsvpcConfiguration"]:
            raise ValueError("[aws_ecs_executor] subnets: at least one subnet is required to run a task.")
        task_kwargs["networkConfiguration"] = network_config

    task_kwargs = camelize_dict_keys(task_kwargs)
    if strategy is not None:
        task_kwargs["capacityProviderStrategy"] = strategy
    needs_lookup = "launchType" not in task_kwargs and "capacityProviderStrategy" not in task_kwargs
    try:
        json.loads(json.dumps(task_kwargs))
    except (TypeError, ValueError) as e:
        raise ValueError(f"[aws_ecs_executor] settings must be JSON serializable: {e}") from e
    return task_kwargs, needs_lookup
