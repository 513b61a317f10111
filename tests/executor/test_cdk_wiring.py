"""The executor settings the CDK app gives the scheduler are the ones the executor reads.

The scheduler's environment is taken from the synthesized Airflow stack (the JSON snapshot that
tests/cdk/test_snapshots.py keeps equal to a fresh synthesis); CloudFormation references in it
(cluster, subnets, security groups, region) are filled with the moto resources, as a deployment
fills them with real ones. A renamed setting on either side fails this test.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

from airflow.providers.amazon.aws.executors.ecs.utils import AllEcsConfigKeys
from airflow_ecs_fargate.settings import ExecutorSettings
from tests.executor.conftest import CLUSTER, make_workload

SNAPSHOTS = Path(__file__).resolve().parents[1] / "cdk" / "__snapshots__" / "test_snapshots"
PREFIX = "AIRFLOW__AWS_ECS_EXECUTOR__"


def container_environment(name: str, stack: str = "airflow") -> dict:
    """The environment of container ``name`` in the snapshot of ``stack`` (``airflow``, ``cluster``)."""
    snapshot = SNAPSHOTS / f"test_stack_matches_snapshot[{stack}].json"
    template = json.loads(snapshot.read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            for container in resource["Properties"]["ContainerDefinitions"]:
                if container["Name"] == name:
                    return {e["Name"]: e["Value"] for e in container["Environment"]}
    raise AssertionError(f"no {name} container in {snapshot.name}")


def test_every_synthesized_setting_is_one_the_executor_reads():
    settings = {k.removeprefix(PREFIX).lower() for k in container_environment("scheduler") if k.startswith(PREFIX)}
    stock = {getattr(AllEcsConfigKeys, k) for k in dir(AllEcsConfigKeys) if k.isupper()}
    ours = {f.name for f in dataclasses.fields(ExecutorSettings)}
    assert settings - stock - ours == set()
    assert "spot_fallback_to_on_demand" in settings and "capacity_provider_strategy" in settings


def test_synthesized_scheduler_settings_launch_a_worker(aws, monkeypatch):
    env = container_environment("scheduler")
    deployed = {"CLUSTER": CLUSTER, "SUBNETS": aws.subnet, "SECURITY_GROUPS": aws.security_group, "REGION_NAME": aws.region}
    settings = {k.removeprefix(PREFIX): v for k, v in env.items() if k.startswith(PREFIX)}
    for key, value in settings.items():
        if not isinstance(value, str):  # a CloudFormation reference, resolved at deploy
            value = deployed[key]
        monkeypatch.setenv(PREFIX + key, value)
    monkeypatch.setenv(PREFIX + "CHECK_HEALTH_ON_STARTUP", "False")
    family, container = settings["TASK_DEFINITION"], settings["CONTAINER_NAME"]
    aws.ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[{"name": container, "image": "apache/airflow:3.3.2", "memory": 2048}],
    )

    module, _, name = env["AIRFLOW__CORE__EXECUTOR"].rpartition(".")
    executor_class = getattr(importlib.import_module(module), name)
    executor = executor_class(parallelism=8)
    try:
        assert executor.settings.spot_fallback_to_on_demand is True
        executor.IS_BOTO_CONNECTION_HEALTHY = True
        workload = make_workload("wired")
        executor.queue_workload(workload, session=None)
        executor.heartbeat()
        executor.flush(10)
        assert executor.event_buffer[workload.ti.key][0] == "running"
        tasks = aws.ecs.list_tasks(cluster=CLUSTER)["taskArns"]
        described = aws.ecs.describe_tasks(cluster=CLUSTER, tasks=tasks)["tasks"]
        assert [t["taskDefinitionArn"].split("/")[-1].split(":")[0] for t in described] == [family]
        assert described[0]["capacityProviderName"] == "FARGATE_SPOT"
    finally:
        executor._shutdown()


def test_synthesized_worker_dag_bundle_is_what_airflow_parses(monkeypatch):
    """The workers' ``dag_bundle_config_list`` resolves, in Airflow's own bundle manager, to the
    image's DAG folder (the default ``dag_bundle=image``)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    env = container_environment("worker", stack="cluster")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    bundles = list(DagBundlesManager().get_all_dag_bundles())
    assert [(b.name, type(b).__name__, str(b.path)) for b in bundles] == [("dags-folder", "LocalDagBundle", "/opt/airflow/dags")]

