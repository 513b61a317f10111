"""Issue 9.6: the harnesses (tests/e2e, bench) are as strict as ECS where moto 5.2.5 is not."""

from __future__ import annotations

import inspect

import pytest
from botocore.exceptions import ClientError
from moto.ecs.models import EC2ContainerServiceBackend

from standins.moto_ecs import strict_run_task
from tests.executor.conftest import CLUSTER, CONTAINER, TASK_FAMILY


# moto's own run_task, even while the session-scoped e2e harness has wrapped it.
MOTO_RUN_TASK = inspect.unwrap(EC2ContainerServiceBackend.run_task)


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setattr(EC2ContainerServiceBackend, "run_task", MOTO_RUN_TASK)


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setattr(EC2ContainerServiceBackend, "run_task", strict_run_task(MOTO_RUN_TASK))


def run(aws, task_definition):
    return aws.ecs.run_task(
        cluster=CLUSTER, taskDefinition=task_definition, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [aws.subnet], "securityGroups": [aws.security_group]}},
    )


def test_moto_alone_runs_an_inactive_family_and_reports_exit_code_0_while_running(aws, lenient):
    """What the harness corrects: if moto changes, this fails and the correction can go."""
    aws.ecs.deregister_task_definition(taskDefinition=aws.task_definition_arn)
    (task,) = run(aws, TASK_FAMILY)["tasks"]
    assert task["containers"][0]["exitCode"] == 0 and task["lastStatus"] != "STOPPED"


def test_inactive_task_definition_is_refused(aws, strict):
    aws.ecs.deregister_task_definition(taskDefinition=aws.task_definition_arn)
    for ref in (TASK_FAMILY, aws.task_definition_arn):
        with pytest.raises(ClientError) as caught:
            run(aws, ref)
        assert caught.value.response["Error"]["Code"] == "ClientException"


def test_family_runs_its_latest_active_revision(aws, strict):
    newer = aws.ecs.register_task_definition(
        family=TASK_FAMILY, containerDefinitions=[{"name": CONTAINER, "image": "x", "memory": 512}],
        networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    aws.ecs.deregister_task_definition(taskDefinition=newer)
    (task,) = run(aws, TASK_FAMILY)["tasks"]
    assert task["taskDefinitionArn"] == aws.task_definition_arn


def test_container_has_no_exit_code_until_it_exits(aws, strict):
    (task,) = run(aws, TASK_FAMILY)["tasks"]
    (described,) = aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"]
    assert all("exitCode" not in c for c in described["containers"])
    aws.stop_task(task["taskArn"], exit_codes={CONTAINER: 137})
    (described,) = aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"]
    assert [c.get("exitCode") for c in described["containers"] if c["name"] == CONTAINER] == [137]
