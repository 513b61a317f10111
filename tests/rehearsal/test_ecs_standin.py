"""The ECS stand-in and the task runner against a scripted podman (no containers): RunTask as
the scheduler's principal starts the worker task definition with the executor's overrides;
DescribeTasks/StopTask follow the container, as ECS reports them."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from local_ecs.assembly import CloudAssembly, StandIns
from local_ecs.aws import AwsStandIn
from local_ecs.runner import EcsStandIn, LocalTask, Runner, TaskFailed
from local_ecs.taskdef import TaskSpec, from_cloudformation


class ScriptedPodman:
    """Just enough of podman's CLI: run/ps/stop/rm/logs/healthcheck/volume, containers exit when told."""

    def __init__(self):
        self.containers: dict[str, dict] = {}
        self.calls: list[list[str]] = []
        self.health: dict[str, int] = {}

    def exit(self, name: str, code: int) -> None:
        self.containers[name].update(State="exited", ExitCode=code)

    def __call__(self, *args, env=None, check=True, timeout=None):
        self.calls.append(list(args))
        out, rc = "", 0
        if args[0] == "run":
            name = args[args.index("--name") + 1]
            labels = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--label")
            envs = {args[i + 1]: (env or {}).get(args[i + 1]) for i, a in enumerate(args) if a == "--env"}
            self.containers[name] = {"Names": [name], "State": "running", "ExitCode": 0, "Labels": labels,
                                     "args": list(args), "env": envs}
        elif args[0] == "ps":
            out = json.dumps([c for c in self.containers.values()])
        elif args[0] == "stop":
            self.exit(args[-1], 143)
        elif args[0] == "healthcheck":
            rc = self.health.get(args[-1], 0)
        elif args[0] == "volume" and args[1] == "ls":
            out = ""
        elif args[0] == "inspect":
            out = json.dumps([{"Name": name, "Config": {"Cmd": self.containers[name]["args"][-5:]},
                               "State": {"StartedAt": "2026-12-07T04:40:00.5Z", "FinishedAt": "2026-12-07T04:40:09Z"}}
                              for name in args[1:] if name in self.containers])
        elif args[0] == "rm":
            self.containers.pop(args[-1], None)
        return subprocess.CompletedProcess(list(args), rc, out, "")


@pytest.fixture()
def stack(cdk_out, tmp_path):
    aws = AwsStandIn(CloudAssembly(cdk_out()), StandIns())
    aws.start()
    podman = ScriptedPodman()
    runner = Runner("rt", tmp_path, podman=podman, base_env={}, tick_seconds=0.1)
    try:
        aws.provision()
        aws.enforce_iam()
        yield aws, podman, runner
    finally:
        runner.cleanup()
        aws.stop()


def _env(aws):
    def environment_for(task: TaskSpec, container) -> dict:
        execution = aws.principal_of_role(task.execution_role_arn) if task.execution_role_arn else None
        env = dict(container.environment)
        env.update({name: aws.read_secret(ref, execution) for name, ref in container.secrets.items()})
        if task.task_role_arn:
            env.update(aws.principal_of_role(task.task_role_arn).environment())
        return env
    return environment_for


def _scheduler_env(aws) -> tuple[dict, object]:
    (logical_id,) = [k for k in aws.assembly.stack("Airflow").of_type("AWS::ECS::TaskDefinition") if k.startswith("Scheduler")]
    definition = aws.resolver.properties("Airflow", logical_id)
    env = {e["Name"]: e["Value"] for e in definition["ContainerDefinitions"][0]["Environment"]}
    return env, aws.client("ecs", aws.principal_of_role(definition["TaskRoleArn"]))


def test_run_task_starts_a_worker_container_and_describe_tasks_follows_it(stack):
    aws, podman, runner = stack
    env, ecs = _scheduler_env(aws)
    cluster = env["AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"]

    def make_task(task_id, spec):
        return LocalTask(task_id, spec, environment_for=_env(aws), image_for=aws.stand_ins.image,
                         hosts={"api-server.airflow-dev.internal": "127.0.0.1"}, runner=runner)

    ecs_stand_in = EcsStandIn(aws, cluster, make_task, runner)
    ecs_stand_in.start()
    try:
        command = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "{}"]
        arn = ecs.run_task(
            cluster=cluster, taskDefinition=env["AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION"], launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {
                "subnets": env["AIRFLOW__AWS_ECS_EXECUTOR__SUBNETS"].split(","),
                "securityGroups": env["AIRFLOW__AWS_ECS_EXECUTOR__SECURITY_GROUPS"].split(",")}},
            overrides={"containerOverrides": [{"name": "worker", "command": command,
                                               "environment": [{"name": "EXTRA", "value": "1"}]}]},
        )["tasks"][0]["taskArn"]
        runner.tick()
        runner.tick()
        (name,) = [n for n in podman.containers if n.startswith("rt-w1-")]
        started = podman.containers[name]
        assert started["args"][-len(command):] == command
        assert started["env"]["EXTRA"] == "1" and started["env"]["AWS_ACCESS_KEY_ID"].startswith(("AKIA", "ASIA"))
        assert "--read-only" in started["args"] and "api-server.airflow-dev.internal:127.0.0.1" in started["args"]
        admin = aws.client("ecs")
        task = admin.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        assert task["lastStatus"] == "RUNNING"
        assert "exitCode" not in task["containers"][0]  # a running container has none
        podman.exit(name, 3)
        runner.tick()
        runner.tick()
        task = admin.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        assert task["lastStatus"] == "STOPPED" and task["containers"][0]["exitCode"] == 3
        assert task["stoppedReason"] == "Essential container in task exited"
        assert "exited with code 3" in ecs_stand_in.failures[0]
    finally:
        ecs_stand_in.stop()


def test_stop_task_stops_the_container_and_inactive_revisions_are_refused(stack):
    aws, podman, runner = stack
    env, ecs = _scheduler_env(aws)
    cluster = env["AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"]
    make_task = lambda task_id, spec: LocalTask(task_id, spec, environment_for=_env(aws),  # noqa: E731
                                                image_for=aws.stand_ins.image, hosts={}, runner=runner)
    ecs_stand_in = EcsStandIn(aws, cluster, make_task, runner)
    ecs_stand_in.start()
    try:
        network = {"awsvpcConfiguration": {"subnets": env["AIRFLOW__AWS_ECS_EXECUTOR__SUBNETS"].split(","),
                                           "securityGroups": []}}
        family = env["AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION"]
        arn = ecs.run_task(cluster=cluster, taskDefinition=family, networkConfiguration=network,
                           capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])["tasks"][0]["taskArn"]
        runner.tick()
        ecs.stop_task(cluster=cluster, task=arn, reason="revoked")
        runner.tick()
        runner.tick()
        assert any(call[0] == "stop" for call in podman.calls)
        task = aws.client("ecs").describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        assert task["lastStatus"] == "STOPPED" and task["stoppedReason"] == "revoked"
        admin = aws.client("ecs")
        revision = admin.describe_task_definition(taskDefinition=family)["taskDefinition"]["taskDefinitionArn"]
        admin.deregister_task_definition(taskDefinition=revision)
        with pytest.raises(ClientError, match="inactive"):
            ecs.run_task(cluster=cluster, taskDefinition=revision, networkConfiguration=network, launchType="FARGATE")
    finally:
        ecs_stand_in.stop()


def test_init_failure_stops_the_task_with_name_exit_code_and_log(stack, tmp_path):
    aws, podman, runner = stack
    (logical_id,) = [k for k in aws.assembly.stack("Airflow").of_type("AWS::ECS::TaskDefinition") if k.startswith("Scheduler")]
    spec = TaskSpec.parse(from_cloudformation(aws.resolver.properties("Airflow", logical_id)))
    task = runner.add(LocalTask("s", spec, environment_for=_env(aws), image_for=aws.stand_ins.image, hosts={}, runner=runner))
    runner.tick()
    assert list(podman.containers) == ["rt-s-wait-for-migrations"]  # the main container waits for SUCCESS
    podman.exit("rt-s-wait-for-migrations", 1)
    runner.tick()
    assert task.status == "STOPPED"
    assert isinstance(task.failure, TaskFailed) and task.failure.container == "wait-for-migrations"
    assert task.failure.exit_code == 1
    assert "rt-s-scheduler" not in podman.containers


def test_health_checks_follow_ecs_start_period_and_retries(stack):
    aws, podman, runner = stack
    spec = TaskSpec.parse({"family": "f", "containerDefinitions": [{
        "name": "c", "image": "i", "healthCheck": {"command": ["CMD-SHELL", "x"], "interval": 1, "timeout": 5,
                                                   "retries": 2, "startPeriod": 0}}]})
    task = runner.add(LocalTask("h", spec, environment_for=lambda t, c: {}, image_for=str, hosts={}, runner=runner))
    podman.health["rt-h-c"] = 1
    deadline = time.monotonic() + 20
    while task.containers["c"].health != "UNHEALTHY" and time.monotonic() < deadline:
        runner.tick()
        time.sleep(0.2)
        task.containers["c"].next_check_at = 0
    run = task.containers["c"]
    assert run.health == "UNHEALTHY" and run.check_results[:2] == [False, False]
    podman.health["rt-h-c"] = 0
    run.next_check_at = 0
    runner.tick()
    deadline = time.monotonic() + 10
    while run.health != "HEALTHY" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.health == "HEALTHY" and run.check_seconds


def test_stop_task_of_an_unknown_task_is_invalid_parameter_as_in_ecs(stack):
    """The executors' start-up health check stops a made-up task and expects this error."""
    aws, podman, runner = stack
    env, ecs = _scheduler_env(aws)
    ecs_stand_in = EcsStandIn(aws, env["AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"], None, runner)
    ecs_stand_in.start()
    try:
        with pytest.raises(ClientError) as raised:
            aws.client("ecs").stop_task(cluster=env["AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"], task="fake-task")
        assert raised.value.response["Error"]["Code"] == "InvalidParameterException"
    finally:
        ecs_stand_in.stop()


def test_non_strict_health_timeouts_are_reported_not_failed(stack):
    """On a shared machine the runner may judge a check by its exit code and report its duration;
    podman must then not cut the check at the template's timeout either."""
    aws, podman, runner = stack
    spec = TaskSpec.parse({"family": "f", "containerDefinitions": [{
        "name": "c", "image": "i", "healthCheck": {"command": ["CMD-SHELL", "x"], "interval": 1, "timeout": 0,
                                                   "retries": 1, "startPeriod": 0}}]})
    task = runner.add(LocalTask("n", spec, environment_for=lambda t, c: {}, image_for=str, hosts={}, runner=runner,
                                strict_health_timeouts=False))
    runner.tick()
    args = podman.containers["rt-n-c"]["args"]
    assert args[args.index("--health-timeout") + 1] == "900s"
    deadline = time.monotonic() + 10
    while task.containers["c"].health != "HEALTHY" and time.monotonic() < deadline:
        runner.tick()
        time.sleep(0.2)
    run = task.containers["c"]
    assert run.health == "HEALTHY" and run.over_timeout and run.report()["health_checks_over_timeout"]


def test_a_team_queue_task_runs_with_its_own_family_and_role_and_is_inspected_before_removal(stack):
    """The executor launches a team queue's tasks from the queue's task definition
    ([aws_ecs_executor] queues); the stand-in runs them signed as that queue's role, and keeps
    podman inspect's start time of each container before removing it (the start overhead)."""
    from local_ecs.start_overhead import worker_start_overheads

    aws, podman, runner = stack
    env, ecs = _scheduler_env(aws)
    cluster = env["AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"]
    queues = json.loads(env["AIRFLOW__AWS_ECS_EXECUTOR__QUEUES"])
    launched = []

    def make_task(task_id, spec):
        launched.append(LocalTask(task_id, spec, environment_for=_env(aws), image_for=aws.stand_ins.image,
                                  hosts={}, runner=runner))
        return launched[-1]

    ecs_stand_in = EcsStandIn(aws, cluster, make_task, runner)
    ecs_stand_in.start()
    try:
        workload = json.dumps({"ti": {"id": "0193-team"}})
        command = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", workload]
        ecs.run_task(
            cluster=cluster, taskDefinition=queues["team-a"]["task_definition"], launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {
                "subnets": env["AIRFLOW__AWS_ECS_EXECUTOR__SUBNETS"].split(","),
                "securityGroups": env["AIRFLOW__AWS_ECS_EXECUTOR__SECURITY_GROUPS"].split(",")}},
            overrides={"containerOverrides": [{"name": "worker", "command": command}]})
        runner.tick()
        runner.tick()
        (task,) = launched
        assert (task.spec.family, task.spec.task_role_arn) == (
            "airflow-dev-worker-team-a", "arn:aws:iam::123456789012:role/airflow-dev-worker-team-a")
        (name,) = [n for n in podman.containers if n.startswith("rt-w1-")]
        team = aws.principals["airflow-dev-worker-team-a"]
        assert podman.containers[name]["env"]["AWS_ACCESS_KEY_ID"] == team.access_key_id
        podman.exit(name, 0)
        runner.tick()
        runner.tick()
        assert task in runner.finished and name not in podman.containers  # removed ...
        run = task.containers["worker"]
        assert run.inspect["State"]["StartedAt"] == "2026-12-07T04:40:00.5Z"  # ... after inspect
        (row,) = worker_start_overheads([run.inspect], [{"id": "0193-team", "task_id": "team",
                                                         "start_date": "2026-12-07T04:40:03Z"}])
        assert row["seconds"] == 2.5
    finally:
        ecs_stand_in.stop()
