"""Defect 3: capacity_provider_strategy as JSON; Fargate Spot with on-demand fallback."""

from __future__ import annotations

import json

import pytest

from airflow_ecs_fargate.executor import EcsFargateExecutor
from airflow_ecs_fargate.run_task_config import parse_capacity_provider_strategy
from tests.executor.conftest import BOTH_STOCK_FAILS, make_workload, settle, settle_until, task_events

SPOT_FIRST = json.dumps(
    [{"capacityProvider": "FARGATE_SPOT", "weight": 4}, {"capacityProvider": "FARGATE", "weight": 1, "base": 1}]
)
NO_SPOT = {
    "tasks": [],
    "failures": [
        {
            "arn": "arn:aws:ecs:us-east-1:123456789012:capacity-provider/FARGATE_SPOT",
            "reason": "Capacity is unavailable at this time. Please try again later or in a different availability zone",
        }
    ],
}


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_strategy_from_json_setting_reaches_run_task(cls, aws, make_executor):
    ex = make_executor(cls, launch_type=None, capacity_provider_strategy=SPOT_FIRST)
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    assert ex.event_buffer[w.ti.key][0] == "running"
    sent = ex.ecs.of("run_task")[0]
    assert sent["capacityProviderStrategy"] == json.loads(SPOT_FIRST)
    assert "launchType" not in sent


def test_spot_without_capacity_falls_back_to_on_demand(aws, make_executor):
    ex = make_executor(EcsFargateExecutor, launch_type=None, capacity_provider_strategy=SPOT_FIRST)
    ex.ecs.script["run_task"] = [NO_SPOT]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    assert ex.event_buffer[w.ti.key][0] == "running"
    first, second = ex.ecs.of("run_task")
    assert first["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT"
    assert second["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]
    assert first["clientToken"] != second["clientToken"]
    events = task_events(ex, w.ti.key)
    assert any(e == "ecs fargate spot fallback" and "Capacity is unavailable" in x for e, x in events)


def test_spot_fallback_can_be_disabled(aws, make_executor):
    ex = make_executor(
        EcsFargateExecutor,
        launch_type=None,
        capacity_provider_strategy=SPOT_FIRST,
        spot_fallback_to_on_demand="False",
        max_run_task_attempts=2,
    )
    ex.ecs.script["run_task"] = [NO_SPOT, NO_SPOT]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: w.ti.key in ex.event_buffer)
    state, info = ex.event_buffer[w.ti.key]
    assert state == "failed" and "Capacity is unavailable" in info
    assert all(c["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT" for c in ex.ecs.of("run_task"))


def test_per_task_strategy_in_executor_config_is_honoured(aws, make_executor):
    ex = make_executor(EcsFargateExecutor, launch_type=None, capacity_provider_strategy=SPOT_FIRST)
    w = make_workload(executor_config={"capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]})
    ex.queue_workload(w, session=None)
    settle(ex)
    assert ex.ecs.of("run_task")[0]["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1}]


@pytest.mark.parametrize(
    "value, expected",
    [
        ('[{"capacityProvider": "FARGATE_SPOT", "weight": 1}]', [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]),
        ('{"capacity_provider": "FARGATE", "base": "2"}', [{"capacityProvider": "FARGATE", "base": 2}]),
        # The amazon provider's documented example ([aws_ecs_executor] capacity_provider_strategy in
        # its config reference): a Python literal with single quotes.
        (
            "[{'capacityProvider': 'cp1', 'weight': 5}, {'capacityProvider': 'cp2', 'weight': 1}]",
            [{"capacityProvider": "cp1", "weight": 5}, {"capacityProvider": "cp2", "weight": 1}],
        ),
        (" {'capacity_provider': 'FARGATE', 'base': 1} ", [{"capacityProvider": "FARGATE", "base": 1}]),
    ],
)
def test_parse_strategy_accepts(value, expected):
    assert parse_capacity_provider_strategy(value) == expected


@pytest.mark.parametrize(
    "value, match",
    [
        ("FARGATE_SPOT", "neither JSON .* nor a Python literal"),
        # Not evaluated: ast.literal_eval accepts literals only.
        ("__import__('os').getcwd()", "neither JSON .* nor a Python literal"),
        ("[{'capacityProvider': 'cp1', 'weight': 5}", "neither JSON .* nor a Python literal"),
        ("[]", "non-empty list"),
        ('[{"weight": 1}]', "no capacityProvider"),
        ('[{"capacityProvider": "FARGATE", "wieght": 1}]', "unknown keys"),
        ('[{"capacityProvider": "FARGATE", "weight": 5000}]', "0..1000"),
    ],
)
def test_parse_strategy_rejects_with_a_fix(value, match):
    with pytest.raises(ValueError, match=match) as raised:
        parse_capacity_provider_strategy(value)
    assert "[aws_ecs_executor] capacity_provider_strategy" in str(raised.value)
    assert "Set [aws_ecs_executor] capacity_provider_strategy to a JSON list" in str(raised.value) or "0..1000" in str(raised.value)


def test_the_providers_documented_strategy_example_starts_the_executor(aws, make_executor):
    """A user migrating the provider's documented setting (single quotes) is not stopped at startup."""
    ex = make_executor(
        EcsFargateExecutor,
        launch_type=None,
        capacity_provider_strategy="[{'capacityProvider': 'FARGATE_SPOT', 'weight': 1}]",
    )
    ex.queue_workload(make_workload(), session=None)
    settle(ex)
    assert ex.ecs.of("run_task")[0]["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def test_a_strategy_in_neither_form_is_refused_at_startup(aws, configure):
    configure(launch_type=None, capacity_provider_strategy="FARGATE_SPOT:1,FARGATE:0")
    with pytest.raises(ValueError, match=r"\[aws_ecs_executor\] capacity_provider_strategy .* Set .* to a JSON list"):
        EcsFargateExecutor()


def test_strategy_and_launch_type_together_is_a_config_error(aws, configure):
    configure(capacity_provider_strategy=SPOT_FIRST, launch_type="FARGATE")
    with pytest.raises(ValueError, match="mutually exclusive"):
        EcsFargateExecutor()
