"""The executor settings the CDK app gives the scheduler are the ones the executor reads.

The scheduler's environment is taken from the synthesized Airflow stack (the JSON snapshot that
tests/cdk/test_snapshots.py keeps equal to a fresh synthesis); CloudFormation references in it
(cluster, subnets, security groups, region) are filled with the moto resources, as a deployment
fills them with real ones. A renamed setting on either side fails this test.
"""

from __future__ import annotations

import importlib
import json
import time
import uuid
from pathlib import Path

from airflow.providers.amazon.aws.executors.ecs.utils import AllEcsConfigKeys
from airflow_ecs_fargate.settings import ExecutorSettings
from tests.executor.conftest import CLUSTER, make_workload

SNAPSHOTS = Path(__file__).resolve().parents[1] / "cdk" / "__snapshots__" / "test_snapshots"
LOG_GROUP = f"/airflow/workers-{uuid.uuid4().hex[:8]}"
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
    ours = set(ExecutorSettings.model_fields)
    assert settings - stock - ours == set()
    assert "spot_fallback_to_on_demand" in settings and "capacity_provider_strategy" in settings


def test_synthesized_scheduler_settings_launch_a_worker(aws, monkeypatch):
    env = container_environment("scheduler")
    deployed = {"CLUSTER": CLUSTER, "SUBNETS": aws.subnet, "SECURITY_GROUPS": aws.security_group, "REGION_NAME": aws.region,
                "WORKER_LOG_GROUP": LOG_GROUP}
    settings = {k.removeprefix(PREFIX): v for k, v in env.items() if k.startswith(PREFIX)}
    # The scheduler names the workers' revision (a Ref in its own stack): its ARN with revision.
    assert set(settings["TASK_DEFINITION"]) == {"Ref"}
    container = settings["CONTAINER_NAME"]
    registered = aws.ecs.register_task_definition(
        family="airflow-dev-worker",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[{"name": container, "image": "apache/airflow:3.3.2", "memory": 2048}],
    )["taskDefinition"]
    deployed["TASK_DEFINITION"] = registered["taskDefinitionArn"]
    assert deployed["TASK_DEFINITION"].endswith(":task-definition/airflow-dev-worker:1")
    # A newer revision of the family (a rollout's): the scheduler still launches its own.
    aws.ecs.register_task_definition(
        family="airflow-dev-worker", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="1024",
        memory="2048", containerDefinitions=[{"name": container, "image": "apache/airflow:3.3.3", "memory": 2048}],
    )
    for key, value in settings.items():
        if not isinstance(value, str):  # a CloudFormation reference, resolved at deploy
            value = deployed[key]
        monkeypatch.setenv(PREFIX + key, value)
    monkeypatch.setenv(PREFIX + "CHECK_HEALTH_ON_STARTUP", "False")

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
        assert [t["taskDefinitionArn"] for t in described] == [registered["taskDefinitionArn"]]
        # DescribeTaskDefinition (the executor's essential-containers check) takes the revision ARN too.
        assert executor.poller.essential_for(registered["taskDefinitionArn"]) == frozenset({container})
        assert described[0]["capacityProviderName"] == "FARGATE_SPOT"
    finally:
        executor.close()


def test_synthesized_api_server_settings_read_a_running_workers_log(aws, monkeypatch):
    """8.7: with the api-server's synthesized settings, the executor Airflow's log reader loads
    reads the stream the workers' awslogs driver writes (its prefix from the cluster stack)."""
    import boto3

    env = container_environment("api-server")
    worker = json.loads((SNAPSHOTS / "test_stack_matches_snapshot[cluster].json").read_text())
    (prefix,) = {
        c["LogConfiguration"]["Options"]["awslogs-stream-prefix"]
        for r in worker["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"
        for c in r["Properties"]["ContainerDefinitions"] if c["Name"] == "worker"
    }
    deployed = {"CLUSTER": CLUSTER, "SUBNETS": aws.subnet, "SECURITY_GROUPS": aws.security_group, "REGION_NAME": aws.region,
                "WORKER_LOG_GROUP": LOG_GROUP,
                "TASK_DEFINITION": f"arn:aws:ecs:{aws.region}:123456789012:task-definition/airflow-dev-worker:1"}
    for key, value in env.items():
        if key.startswith(PREFIX):
            monkeypatch.setenv(key, value if isinstance(value, str) else deployed[key.removeprefix(PREFIX)])
    task_id = "0123456789abcdef0123456789abcdef"
    logs = boto3.client("logs", region_name=aws.region)
    logs.create_log_group(logGroupName=LOG_GROUP)
    stream = f"{prefix}/worker/{task_id}"
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "hello from the worker"}])
    module, _, name = env["AIRFLOW__CORE__EXECUTOR"].rpartition(".")
    executor = getattr(importlib.import_module(module), name)(parallelism=1)
    try:
        ti = type("Ti", (), {"external_executor_id": f"arn:aws:ecs:{aws.region}:123456789012:task/{CLUSTER}/{task_id}",
                             "try_number": 1})()
        sources, texts = executor.get_task_log(ti, 1)
        assert texts == ["hello from the worker\n"] and stream in sources[0]
    finally:
        executor.close()


def test_synthesized_worker_dag_bundle_is_what_airflow_parses(monkeypatch):
    """The workers' ``dag_bundle_config_list`` resolves, in Airflow's own bundle manager, to the
    image's DAG folder (the default ``dag_bundle=image``)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    env = container_environment("worker", stack="cluster")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    bundles = list(DagBundlesManager().get_all_dag_bundles())
    assert [(b.name, type(b).__name__, str(b.path)) for b in bundles] == [("dags-folder", "LocalDagBundle", "/opt/airflow/dags")]

