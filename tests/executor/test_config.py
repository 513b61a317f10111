"""Settings from env vars, per-task executor_config, and the stock keys kept as they were."""

from __future__ import annotations


import pytest

from airflow_ecs_fargate.executor import EcsFargateExecutor
from airflow_ecs_fargate.settings import ExecutorSettings
from tests.executor.conftest import BOTH_PASS, make_workload, settle


@pytest.mark.parametrize("cls", BOTH_PASS)
def test_executor_config_is_merged_over_run_task_kwargs(cls, aws, make_executor):
    ex = make_executor(cls)
    w = make_workload(
        executor_config={
            "overrides": {"cpu": "1024", "memory": "2048", "containerOverrides": [{"name": "base", "memory": 1800}]},
            "tags": [{"key": "team", "value": "data"}],
        }
    )
    ex.queue_workload(w, session=None)
    settle(ex)
    sent = ex.ecs.of("run_task")[0]
    assert sent["overrides"]["cpu"] == "1024" and sent["overrides"]["memory"] == "2048"
    (container,) = sent["overrides"]["containerOverrides"]
    assert container["memory"] == 1800
    assert container["command"][:3] == ["python", "-m", "airflow.sdk.execution_time.execute_workload"]
    assert {"name": "AIRFLOW_IS_EXECUTOR_CONTAINER", "value": "true"} in container["environment"]
    assert sent["tags"] == [{"key": "team", "value": "data"}]
    assert sent["cluster"] == "airflow" and sent["launchType"] == "FARGATE"
    assert sent["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == [aws.subnet]


def test_defaults_match_fargate_quotas():
    s = ExecutorSettings()
    assert (s.run_task_calls_per_second, s.run_task_call_burst) == (20.0, 20)
    assert (s.task_launches_per_second, s.task_launch_burst) == (20.0, 100)
    assert s.describe_tasks_interval_seconds == 10.0
    assert s.spot_fallback_to_on_demand is True


def test_every_setting_is_read_from_its_env_var(aws, configure, monkeypatch):
    values = {
        "run_task_calls_per_second": "7.5",
        "run_task_call_burst": "3",
        "task_launches_per_second": "9",
        "task_launch_burst": "11",
        "launch_concurrency": "4",
        "describe_tasks_interval_seconds": "2.5",
        "spot_fallback_to_on_demand": "false",
        "on_demand_capacity_provider": "MY_PROVIDER",
        "submit_retry_base_seconds": "0.5",
        "submit_retry_max_seconds": "9",
        "missing_task_grace_seconds": "12",
        "shutdown_timeout_seconds": "3",
        "transient_retry_margin_seconds": "45",
        "task_definition_retry_seconds": "120",
        "queues": '{"large": {"cpu": 2048, "memory": 8192}}',
        "worker_log_group": "/airflow/workers",
        "worker_log_stream_prefix": "worker",
        "scheduler_count": "1",
        "api_retry_mode": "adaptive",
        "api_max_attempts": "4",
        "queue_budget_seconds": "0.5",
    }
    assert set(values) == set(ExecutorSettings.model_fields)
    configure(**values)
    ex = EcsFargateExecutor()
    try:
        for name, raw in values.items():
            got = getattr(ex.settings, name)
            expected = type(got)(raw) if not isinstance(got, bool) else False
            assert got == expected, name
        assert ex.launch_queue.launch_bucket.capacity == 11
        assert ex.launch_queue.call_bucket.rate == pytest.approx(7.5 * 0.98)
        assert ex.launch_queue.thread_count == 4
    finally:
        ex.close()


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("task_launches_per_second", "0", "task_launches_per_second must be > 0"),
        ("launch_concurrency", "zero", "launch_concurrency"),
        ("spot_fallback_to_on_demand", "maybe", "spot_fallback_to_on_demand"),
    ],
)
def test_bad_setting_is_rejected_with_its_name(aws, configure, key, value, match):
    configure(**{key: value})
    with pytest.raises(ValueError, match=match):
        EcsFargateExecutor()


def test_a_bad_setting_names_its_key_and_the_fix(aws, configure):
    configure(task_launch_burst="0", launch_concurrency="many")
    with pytest.raises(ValueError) as raised:
        EcsFargateExecutor()
    lines = str(raised.value).splitlines()
    assert len(lines) == 2  # every bad key at once
    assert any(line.startswith("[aws_ecs_executor] launch_concurrency must be a whole number, got 'many'") for line in lines)
    assert any(
        line.startswith("[aws_ecs_executor] task_launch_burst must be >= 1 (a number), got '0'")
        and "Fix: set AIRFLOW__AWS_ECS_EXECUTOR__TASK_LAUNCH_BURST" in line
        and "default 100." in line
        for line in lines
    )


def test_an_unknown_retry_mode_is_refused_with_the_choices(aws, configure):
    configure(api_retry_mode="fast")
    with pytest.raises(ValueError, match=r"\[aws_ecs_executor\] api_retry_mode must be 'standard' or 'adaptive' or 'legacy'"):
        EcsFargateExecutor()


@pytest.mark.parametrize("count", [1, 2, 4])
def test_each_scheduler_paces_at_its_share_of_the_quota_less_the_headroom(count):
    """Together the schedulers use 98 % of each rate and half the RunTask call burst: the account's
    buckets keep a reserve for jitter and other callers (bench/README.md, "Two schedulers")."""
    share = ExecutorSettings(scheduler_count=count).share()
    assert count * share.run_task_calls_per_second == pytest.approx(19.6)
    assert count * share.task_launches_per_second == pytest.approx(19.6)
    assert count * share.run_task_call_burst == pytest.approx(10)
    assert count * share.task_launch_burst == pytest.approx(100)


def test_the_executor_reads_scheduler_count_and_paces_at_its_share(aws, configure):
    configure(scheduler_count="2")
    ex = EcsFargateExecutor()
    try:
        assert ex.share.run_task_calls_per_second == pytest.approx(9.8) and ex.share.task_launch_burst == 50
    finally:
        ex.close()


@pytest.mark.parametrize("count", ["0", "21"])
def test_a_scheduler_count_the_quota_cannot_be_divided_by_is_refused(aws, configure, count):
    configure(scheduler_count=count)
    with pytest.raises(ValueError, match=r"\[aws_ecs_executor\] scheduler_count") as raised:
        EcsFargateExecutor()
    assert "Fix:" in str(raised.value)


@pytest.mark.parametrize(
    "settings, retries",
    [
        ({}, {"mode": "standard", "total_max_attempts": 3}),
        ({"api_retry_mode": "adaptive", "api_max_attempts": "2"}, {"mode": "adaptive", "total_max_attempts": 2}),
    ],
)
def test_the_ecs_client_retry_mode_is_explicit(aws, configure, monkeypatch, settings, retries):
    """Not botocore's implicit default (legacy, 5 attempts), nor whatever AWS_RETRY_MODE says."""
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    configure(**settings)
    ex = EcsFargateExecutor()
    try:
        assert ex.ecs.meta.config.retries == retries
    finally:
        ex.close()
