"""Defect 8: adoption after a scheduler restart; never relaunch with an empty token."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from airflow.models.taskinstancekey import TaskInstanceKey
from airflow_ecs_fargate.executor import EcsFargateExecutor
from tests.executor.conftest import BOTH_PASS, BOTH_STOCK_FAILS, CLUSTER, TASK_FAMILY, poll, settle, task_events


def run_ecs_task(aws) -> str:
    """An ECS task that the previous scheduler launched."""
    return aws.ecs.run_task(
        cluster=CLUSTER,
        taskDefinition=TASK_FAMILY,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [aws.subnet], "securityGroups": [aws.security_group]}},
    )["tasks"][0]["taskArn"]


def orphaned_ti(arn: str | None, task_id: str = "t1"):
    """Stand-in for the scheduler's TaskInstance row (the stock code rebuilds a workload from it)."""
    ti = SimpleNamespace(
        id=uuid.uuid4(),
        dag_id="dag",
        task_id=task_id,
        run_id="run",
        try_number=1,
        map_index=-1,
        dag_version_id=uuid.uuid4(),
        hostname=None,
        context_carrier=None,
        queue="default",
        pool_slots=1,
        priority_weight=1,
        executor_config={},
        external_executor_id=arn,
        state="queued",
        logical_date=None,
        dag_model=SimpleNamespace(bundle_name="dags-folder", relative_fileloc="dag.py"),
        dag_run=SimpleNamespace(bundle_version=None),
    )
    ti.key = TaskInstanceKey("dag", task_id, "run", 1, -1)
    return ti


@pytest.mark.parametrize("cls", BOTH_PASS)
def test_adopted_running_task_is_tracked_to_completion(cls, aws, make_executor):
    ex = make_executor(cls)
    arn = run_ecs_task(aws)
    adopted, unknown = orphaned_ti(arn), orphaned_ti(None, "t2")
    gone = orphaned_ti(arn.rsplit("/", 1)[0] + "/" + "f" * 32, "t3")
    not_adopted = ex.try_adopt_task_instances([adopted, unknown, gone])
    assert [ti.task_id for ti in not_adopted] == ["t2", "t3"]
    aws.stop_task(arn, exit_codes={"base": 0})
    poll(ex)
    assert ex.event_buffer[adopted.key][0] == "success"


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_adopted_task_that_never_started_is_not_relaunched_with_empty_token(cls, aws, make_executor):
    ex = make_executor(cls)
    arn = run_ecs_task(aws)
    ti = orphaned_ti(arn)
    assert ex.try_adopt_task_instances([ti]) == []
    aws.stop_task(arn, started=False, exit_codes={}, stopped_reason="ResourceInitializationError: ENI timeout")
    poll(ex)
    for _ in range(3):
        settle(ex)
    # Stock: rebuilt the workload with token "" and relaunches it (a worker that cannot authenticate).
    empty_token_launches = [
        kw
        for kw in ex.ecs.of("run_task")
        if json.loads(kw["overrides"]["containerOverrides"][0]["command"][-1]).get("token") == ""
    ]
    assert empty_token_launches == []
    pending = getattr(ex, "pending_workloads", [])
    assert not any(json.loads(p.command[-1]).get("token") == "" for p in pending)
    state, info = ex.event_buffer[ti.key]
    assert state == "failed" and "ENI timeout" in info and "token" in info
    assert any(e == "ecs task stopped" for e, _ in task_events(ex, ti.key))


def test_adoption_survives_describe_tasks_failure(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    arn = run_ecs_task(aws)
    ex.ecs.script["describe_tasks"] = [ConnectionError("network down")]
    ti = orphaned_ti(arn)
    assert ex.try_adopt_task_instances([ti]) == []
    assert ti.key in ex.running
    aws.stop_task(arn, exit_codes={"base": 0})
    poll(ex)
    assert ex.event_buffer[ti.key][0] == "success"


@pytest.mark.parametrize("team_name", [None, "analytics"])
@pytest.mark.parametrize("cls", BOTH_PASS)
def test_adoption_emits_the_stock_timer_with_its_tags(cls, team_name, aws, make_executor, monkeypatch):
    """Dashboards built on the stock executor read ``ecs_executor.adopt_task_instances.duration``."""
    from contextlib import contextmanager

    from airflow.providers.common.compat.sdk import Stats

    timed = []

    @contextmanager
    def timer(name, *args, **kwargs):
        timed.append((name, kwargs.get("tags")))
        yield

    monkeypatch.setattr(Stats, "timer", timer)
    ex = make_executor(cls)
    monkeypatch.setattr(ex, "team_name", team_name)
    ex.try_adopt_task_instances([orphaned_ti(run_ecs_task(aws))])
    assert timed == [("ecs_executor.adopt_task_instances.duration", {"team_name": team_name} if team_name else {})]
