"""What the executor needs from the CDK app: queues that pick a worker size (issue 9.3) and live
logs of running tasks read by the api-server from the workers' CloudWatch streams (issue 8.7)."""

from __future__ import annotations

import json

import pytest
from app_config import ConfigError, load_config
from app_config.model import STOCK_ECS_EXECUTOR
from constructs_lib.airflow_settings import EcsExecutorSettings

PREFIX = "AIRFLOW__AWS_ECS_EXECUTOR__"
QUEUES = {"large": {"cpu": 2048, "memory_mib": 8192}, "on-demand": {"cpu": 1024, "memory_mib": 2048, "capacity_provider": "fargate"}}


def container_env(template, name: str) -> dict:
    for resource in template.find_resources("AWS::ECS::TaskDefinition").values():
        for container in resource["Properties"]["ContainerDefinitions"]:
            if container["Name"] == name:
                return {e["Name"]: e["Value"] for e in container.get("Environment", [])}
    raise AssertionError(f"no container {name}")


class TestQueues:
    def test_queues_from_cdk_json_and_cli_string_reach_the_executor_setting(self):
        from airflow_ecs_fargate.queues import QueueSize, parse_queues

        for raw in (QUEUES, json.dumps(QUEUES)):
            config = load_config({"worker_queues": raw})
            settings = EcsExecutorSettings(
                executor_class=config.executor.executor_class, region="eu-west-1", cluster_name="c",
                task_definition="f", container_name="worker", subnet_ids=["s"], security_group_ids=["g"],
                capacity_provider="FARGATE_SPOT", spot_fallback_to_on_demand=True,
                worker_queues=config.executor.worker_queues,
            )
            parsed = parse_queues(settings.environment()[PREFIX + "QUEUES"])
            assert parsed == {
                "large": QueueSize(2048, 8192, None),
                "on-demand": QueueSize(1024, 2048, "FARGATE"),
            }

    def test_no_queues_keeps_todays_settings(self):
        config = load_config({})
        assert config.executor.worker_queues == ()

    @pytest.mark.parametrize(
        "raw, words",
        [
            ({"worker_queues": {"large": {"cpu": 2048, "memory_mib": 1024}}}, ["worker_queues", "large", "memory=1024"]),
            ({"worker_queues": {"large": {"cpu": 2048}}}, ["worker_queues", "needs cpu and memory_mib"]),
            ({"worker_queues": {"large": {"cpu": 1024, "memory_mib": 2048, "capacity_provider": "EC2"}}},
             ["capacity_provider='EC2'", "FARGATE or FARGATE_SPOT"]),
            ({"worker_queues": "{not json"}, ["worker_queues is not valid JSON"]),
            ({"worker_queues": {"bad name!": {"cpu": 1024, "memory_mib": 2048}}}, ["queue name 'bad name!'"]),
            ({"worker_queues": QUEUES, "executor_class": STOCK_ECS_EXECUTOR}, ["needs the bundled executor"]),
        ],
    )
    def test_bad_queues_are_refused_before_synthesis(self, raw, words):
        with pytest.raises(ConfigError) as info:
            load_config(raw)
        assert all(w in str(info.value) for w in words), str(info.value)

    def test_a_queue_missing_both_sizes_is_reported_once(self):
        """pydantic reports cpu and memory_mib missing as two errors; the user reads one sentence."""
        with pytest.raises(ConfigError) as info:
            load_config({"worker_queues": {"team-a": {"s3_prefixes": ["team-a/"]}}})
        assert str(info.value).count("needs cpu and memory_mib") == 1, str(info.value)


class TestLiveTaskLogs:
    def test_api_server_reads_only_the_workers_log_streams(self, synth):
        template = synth("dev").template("cluster")
        policies = template.find_resources("AWS::IAM::Policy")
        api = [p for lid, p in policies.items() if "ApiServer" in lid]
        assert len(api) == 1
        statements = api[0]["Properties"]["PolicyDocument"]["Statement"]
        logs = [s for s in statements if any(str(a).startswith("logs:") for a in _list(s["Action"]))]
        assert len(logs) == 1 and logs[0]["Action"] == "logs:GetLogEvents" and logs[0]["Effect"] == "Allow"
        resource = json.dumps(logs[0]["Resource"])
        assert ":log-group:" in resource and ":log-stream:worker/worker/*" in resource
        (group_id,) = [k for k in template.find_resources("AWS::Logs::LogGroup") if k.startswith("Workers")]
        assert group_id in resource  # the workers' group, not any group
        # No other role reads the workers' logs (the workers themselves read their ECS jobs' logs).
        others = [
            lid
            for lid, p in policies.items()
            if "ApiServer" not in lid
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if "logs:GetLogEvents" in _list(s["Action"]) and group_id in json.dumps(s["Resource"])
        ]
        assert others == []

    def test_worker_log_group_keeps_logs_for_the_configured_retention(self, synth):
        template = synth("dev").template("cluster")
        groups = {k: v for k, v in template.find_resources("AWS::Logs::LogGroup").items() if k.startswith("Workers")}
        (group,) = groups.values()
        assert group["Properties"]["RetentionInDays"] == synth("dev").config.log_retention_days

    def test_api_server_knows_the_executor_and_the_worker_log_group(self, synth):
        template = synth("dev").template("airflow")
        api = container_env(template, "api-server")
        assert api["AIRFLOW__CORE__EXECUTOR"] == "airflow_ecs_fargate.executor.EcsFargateExecutor"
        assert api[PREFIX + "WORKER_LOG_STREAM_PREFIX"] == "worker"
        assert "Fn::ImportValue" in json.dumps(api[PREFIX + "WORKER_LOG_GROUP"])
        assert api[PREFIX + "CONTAINER_NAME"] == "worker"
        # The dag-processor runs the cluster policy for the ECS executor's tasks.
        assert container_env(template, "dag-processor")["AIRFLOW__CORE__EXECUTOR"] == api["AIRFLOW__CORE__EXECUTOR"]

    def test_only_the_api_server_reads_logs_with_the_deferred_aware_handler(self, synth):
        """The api-server serves log pages (a DEFERRED task's: tests/executor/test_log_reader.py);
        every other component logs with Airflow's default configuration."""
        from airflow_ecs_fargate.log_config_class import LOGGING_CONFIG_CLASS

        template = synth("dev").template("airflow")
        key = "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS"
        assert container_env(template, "api-server")[key] == LOGGING_CONFIG_CLASS
        for name in ("scheduler", "dag-processor", "triggerer"):
            assert key not in container_env(template, name)


def _list(value):
    return value if isinstance(value, list) else [value]


class TestSharedQuota:
    """Issue 21 item 2: each scheduler of a deployment paces at Fargate's quota / scheduler_count."""

    def test_prod_schedulers_pace_at_half_the_quota_each(self, prod, dev):
        from airflow_ecs_fargate.settings import ExecutorSettings

        env = container_env(prod.template("airflow"), "scheduler")
        assert env[PREFIX + "SCHEDULER_COUNT"] == "2"
        settings = ExecutorSettings.from_conf(_EnvConf(env))
        assert settings.share().run_task_calls_per_second == pytest.approx(9.8) and settings.share().task_launch_burst == 50.0
        # One scheduler: nothing written, the executor's default (1) applies; the template is unchanged.
        assert PREFIX + "SCHEDULER_COUNT" not in container_env(dev.template("airflow"), "scheduler")

    def test_a_scheduler_count_the_quota_cannot_be_divided_by_is_refused_at_synthesis(self):
        with pytest.raises(ValueError, match=r"scheduler_count = 21: .* Fix: use 1 to 20 schedulers"):
            EcsExecutorSettings(
                executor_class="airflow_ecs_fargate.executor.EcsFargateExecutor", region="eu-west-1", cluster_name="c",
                task_definition="f", container_name="worker", subnet_ids=["s"], security_group_ids=["g"],
                capacity_provider="FARGATE_SPOT", spot_fallback_to_on_demand=True, scheduler_count=21,
            )


class _EnvConf:
    """``conf.get(section, key)`` over a container's ``AIRFLOW__SECTION__KEY`` environment."""

    def __init__(self, env: dict):
        self._env = env

    def get(self, section: str, key: str, fallback=None):
        value = self._env.get(f"AIRFLOW__{section.upper()}__{key.upper()}", fallback)
        return value if isinstance(value, str) else fallback
