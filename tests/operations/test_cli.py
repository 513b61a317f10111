"""The ``airflow-ecs`` CLI against a deployment in moto (CloudFormation outputs, ECS, Logs)."""

from __future__ import annotations

import stat

import boto3
import pytest
from click.testing import CliRunner
from moto.backends import get_backend

from airflow_ecs_ops import cli as cli_mod
from airflow_ecs_ops import tasks as tasks_mod
from airflow_ecs_ops.cli import cli

from . import conftest
from .conftest import ACCOUNT, ADMIN_SECRET, CLUSTER, REGION, SERVICES, UI_URL, WORKER_FAMILY, make_deployment


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


class FakeFargate:
    """Plays Fargate for the CLI's one-off task: each of the CLI's sleeps advances the task one
    step (PROVISIONING, RUNNING with log lines, STOPPED with the exit code)."""

    def __init__(self, deployment, exit_code: int | None, lines: list[str], reason: str | None = None):
        self.deployment, self.exit_code, self.lines, self.reason = deployment, exit_code, lines, reason
        self.steps = 0

    def task_arn(self) -> str:
        tasks = get_backend("ecs")[ACCOUNT][REGION].tasks[CLUSTER]
        (arn,) = [a for a, t in tasks.items() if t.started_by == tasks_mod.STARTED_BY]
        return arn

    def __call__(self, seconds: float) -> None:
        self.steps += 1
        arn = self.task_arn()
        if self.steps == 1:
            self.deployment.start(arn)
            stream = f"scheduler/scheduler/{arn.rsplit('/', 1)[-1]}"
            self.deployment.put_log("scheduler", stream, *self.lines)
        elif self.steps == 2:
            self.deployment.stop(arn, self.exit_code, self.reason)


def test_run_returns_the_failing_containers_exit_code_and_streams_its_log(deployment, monkeypatch):
    fargate = FakeFargate(deployment, exit_code=3, lines=["checking the DB", "connection refused"])
    monkeypatch.setattr(tasks_mod, "sleep", fargate)

    result = invoke("run", "--", "db", "check")

    assert result.exit_code == 3, result.output
    assert "checking the DB\nconnection refused\n" in result.stdout
    assert "container scheduler exited 3" in result.stderr
    task = deployment.ecs.describe_tasks(cluster=CLUSTER, tasks=[fargate.task_arn()])["tasks"][0]
    scheduler = deployment.ecs.describe_services(cluster=CLUSTER, services=[SERVICES["scheduler"]])["services"][0]
    # The service's own revision, network and the component's container with the command.
    assert task["taskDefinitionArn"] == scheduler["taskDefinition"]
    assert task["overrides"]["containerOverrides"] == [{"name": "scheduler", "command": ["db", "check"]}]
    assert task["startedBy"] == "airflow-ecs-cli"


@pytest.mark.parametrize("public_ip", ["ENABLED", "DISABLED"])
def test_run_uses_the_services_public_ip_choice(moto_aws, monkeypatch, public_ip):
    """In lean (no NAT, tasks in public subnets) a one-off task without a public IP could reach
    neither ECR nor Secrets Manager: it runs the way the services (and workers) do."""
    deployment = make_deployment(public_ip=public_ip == "ENABLED")
    fargate = FakeFargate(deployment, exit_code=0, lines=[])
    monkeypatch.setattr(tasks_mod, "sleep", fargate)

    result = invoke("run", "--", "db", "check")

    assert result.exit_code == 0, result.output
    network = deployment.task(fargate.task_arn()).network_configuration["awsvpcConfiguration"]
    assert network == {"subnets": [deployment.subnet], "securityGroups": [deployment.security_group],
                       "assignPublicIp": public_ip}


def test_run_succeeds_with_exit_code_zero_and_reports_progress(deployment, monkeypatch):
    monkeypatch.setattr(tasks_mod, "sleep", FakeFargate(deployment, exit_code=0, lines=["admin | Admin"]))

    result = invoke("run", "--component", "triggerer", "--", "users", "list")

    assert result.exit_code == 0, result.output
    assert "PROVISIONING" in result.stderr and "RUNNING" in result.stderr and "STOPPED" in result.stderr


def test_run_of_a_task_that_never_started_exits_126_with_the_reason(deployment, monkeypatch):
    fargate = FakeFargate(deployment, exit_code=None, lines=[], reason="CannotPullContainerError: pull access denied")
    monkeypatch.setattr(tasks_mod, "sleep", fargate)

    result = invoke("run", "--", "db", "check")

    assert result.exit_code == tasks_mod.NO_EXIT_CODE
    assert "CannotPullContainerError" in result.stderr


def test_run_override_names_a_container_of_the_task_definition(deployment):
    """The strict harness refuses what AWS refuses: a container override of another name."""
    scheduler = deployment.ecs.describe_services(cluster=CLUSTER, services=[SERVICES["scheduler"]])["services"][0]
    with pytest.raises(deployment.ecs.exceptions.InvalidParameterException):
        deployment.ecs.run_task(
            cluster=CLUSTER, taskDefinition=scheduler["taskDefinition"], launchType="FARGATE",
            overrides={"containerOverrides": [{"name": "airflow", "command": ["db", "check"]}]},
            networkConfiguration={"awsvpcConfiguration": {"subnets": [deployment.subnet], "securityGroups": []}},
        )


def test_no_deployment_names_the_stacks_looked_for(moto_aws):
    make_deployment()

    result = invoke("--stage", "prod", "status")

    assert result.exit_code == 1
    assert "airflow-prod-cluster" in result.stderr and "airflow-prod-airflow" in result.stderr
    assert "--stage" in result.stderr


def test_partial_deployment_names_the_missing_stack(moto_aws):
    make_deployment(missing_roles=("airflow",))

    result = invoke("status")

    assert result.exit_code == 1
    assert "missing stack(s) airflow-dev-airflow " in result.stderr


def test_no_credentials_says_how_to_configure_them(aws_env, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    result = invoke("status")

    assert result.exit_code == 1
    assert "No AWS credentials" in result.stderr and "AWS_PROFILE" in result.stderr


@pytest.mark.parametrize("command", [["logs", "webserver"], ["shell", "webserver"], ["shell", "worker"]])
def test_unknown_component_lists_the_valid_ones(deployment, command):
    result = invoke(*command)

    assert result.exit_code == 1
    assert "Unknown component" in result.stderr
    assert "scheduler, api-server, dag-processor, triggerer" in result.stderr
    assert ("worker" in result.stderr.split("use one of")[1]) == (command[0] == "logs")


def test_logs_prints_only_the_components_streams_since_the_given_time(deployment):
    deployment.put_log("scheduler", "scheduler/scheduler/task1", "scheduler line")
    deployment.put_log("scheduler", "other/scheduler/task2", "not the component")
    deployment.put_log("worker", "worker/worker/abcdef1234", "worker line")

    scheduler = invoke("logs", "scheduler", "--since", "5m")
    worker = invoke("logs", "worker")

    assert scheduler.exit_code == 0, scheduler.output
    assert "scheduler line" in scheduler.stdout and "not the component" not in scheduler.stdout
    assert "worker line" in worker.stdout and "abcdef12" in worker.stdout


def test_logs_rejects_a_bad_since(deployment):
    result = invoke("logs", "scheduler", "--since", "yesterday")

    assert result.exit_code == 1 and "30s, 10m, 2h or 1d" in result.stderr


def test_status_shows_counts_health_workers_url_and_login(deployment):
    deployment.run_service_task("scheduler", healthy=True)
    deployment.run_service_task("api-server", healthy=False)
    deployment.run_worker()
    deployment.run_worker()

    result = invoke("status")

    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    assert lines["scheduler"][1:5] == ["1", lines["scheduler"][2], lines["scheduler"][3], "1"]
    assert lines["api-server"][4] == "0"  # running but not healthy
    assert lines["triggerer"][4] == "0"
    assert "worker tasks running: 2" in result.stdout
    assert f"UI: {UI_URL}" in result.stdout
    assert "admin login: admin" in result.stdout
    assert f"aws secretsmanager get-secret-value --region {REGION} --secret-id {ADMIN_SECRET}" in result.stdout


def test_stop_workers_stops_worker_tasks_only_and_the_scheduler_first(deployment):
    service_task = deployment.run_service_task("scheduler")
    workers = {deployment.run_worker(), deployment.run_worker()}

    result = invoke("stop-workers", "--stop-scheduler")

    assert result.exit_code == 0, result.output
    assert "stopped 2 worker task(s)" in result.stdout
    described = deployment.ecs.describe_tasks(cluster=CLUSTER, tasks=[*workers, service_task])["tasks"]
    desired = {t["taskArn"]: t["desiredStatus"] for t in described}
    assert all(desired[arn] == "STOPPED" for arn in workers)
    assert desired[service_task] == "RUNNING"
    scheduler = deployment.ecs.describe_services(cluster=CLUSTER, services=[SERVICES["scheduler"]])["services"][0]
    assert scheduler["desiredCount"] == 0
    assert deployment.ecs.list_tasks(cluster=CLUSTER, family=WORKER_FAMILY, desiredStatus="RUNNING")["taskArns"] == []


def test_stop_workers_missing_ok_when_nothing_is_deployed(moto_aws):
    assert invoke("stop-workers", "--missing-ok").exit_code == 0
    assert invoke("stop-workers").exit_code == 1


def test_shell_says_when_ecs_exec_is_off(deployment):
    result = invoke("shell", "scheduler")

    assert result.exit_code == 1
    assert "ECS Exec is off" in result.stderr and "enable_ecs_exec=true" in result.stderr


def test_shell_says_when_the_session_manager_plugin_is_missing(moto_aws, monkeypatch, tmp_path):
    make_deployment(exec_enabled=True)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    result = invoke("shell", "api-server")

    assert result.exit_code == 1
    assert "session-manager-plugin" in result.stderr and "install" in result.stderr


def test_shell_hands_the_session_to_the_plugin(moto_aws, monkeypatch, tmp_path):
    """ExecuteCommand is not in moto: answer it the way ECS does and check what reaches the plugin."""
    deployment = make_deployment(exec_enabled=True)
    arn = deployment.run_service_task("api-server")
    task = deployment.task(arn)
    task.enable_execute_command = True
    for container in task.containers:
        container.runtime_id = "runtime-123"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    plugin = bin_dir / "session-manager-plugin"
    plugin.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/plugin-args\n')
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    calls = []
    original_session = cli_mod.boto3.Session

    def session(*args, **kwargs):
        s = original_session(*args, **kwargs)
        s.events.register("provide-client-params.ecs.ExecuteCommand", lambda params, **kw: calls.append(params))
        s.events.register(
            "before-call.ecs.ExecuteCommand",
            lambda **kw: (type("R", (), {"status_code": 200, "headers": {}})(),
                          {"session": {"sessionId": "s-1", "streamUrl": "wss://example", "tokenValue": "t"}}),
        )
        return s

    monkeypatch.setattr(cli_mod.boto3, "Session", session)

    result = invoke("shell", "api-server")

    assert result.exit_code == 0, result.output
    assert calls[0]["container"] == "api-server" and calls[0]["interactive"] is True
    args = (tmp_path / "plugin-args").read_text().splitlines()
    assert args[1:4] == [REGION, "StartSession", ""]
    assert '"sessionId": "s-1"' in args[0]
    assert args[4] == f'{{"Target": "ecs:{CLUSTER}_{arn.rsplit("/", 1)[-1]}_runtime-123"}}'


def test_project_and_stage_default_to_cdk_json(moto_aws, tmp_path):
    make_deployment()
    (tmp_path / "cdk.json").write_text('{"app": "x", "context": {"stage": "prod", "project_name": "airflow"}}')

    result = invoke("status")

    assert result.exit_code == 1 and "airflow-prod-cluster" in result.stderr


def test_console_script_is_installed():
    import importlib.metadata

    (script,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "airflow-ecs"]
    assert script.value == "airflow_ecs_ops.cli:main"
    assert boto3  # the CLI's only AWS dependency


def test_a_rolled_back_stack_is_not_a_deployment(moto_aws):
    make_deployment()
    stacks = get_backend("cloudformation")[ACCOUNT][REGION].stacks.values()
    (cluster,) = [stack for stack in stacks if stack.name == "airflow-dev-cluster"]
    cluster.status = "ROLLBACK_COMPLETE"

    result = invoke("status")

    assert result.exit_code == 1
    assert "airflow-dev-cluster is ROLLBACK_COMPLETE" in result.stderr and "make deploy" in result.stderr


def test_logs_follow_prints_new_lines_once(deployment, monkeypatch):
    deployment.put_log("triggerer", "triggerer/triggerer/task1", "first")
    polls = []

    def sleep(seconds):
        polls.append(seconds)
        if len(polls) == 1:
            deployment.put_log("triggerer", "triggerer/triggerer/task1", "second")
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(tasks_mod, "sleep", sleep)

    result = invoke("logs", "triggerer", "--follow")

    assert [line.split(" ", 2)[2] for line in result.stdout.splitlines()] == ["first", "second"]
    assert len(polls) == 2


def team_deployment():
    """A deployment with the team queue ``team-a``, tasks of a removed team queue ``team-old``
    still running on its deregistered definition, and a family that only looks like the workers'."""
    deployment = make_deployment(team_queues=("team-a", "team-old"))
    old = deployment.run_worker("team-old")
    for definition in deployment.ecs.list_task_definitions(familyPrefix=f"{WORKER_FAMILY}-team-old")["taskDefinitionArns"]:
        deployment.ecs.deregister_task_definition(taskDefinition=definition)
    lookalike = deployment.ecs.register_task_definition(
        family=f"{WORKER_FAMILY}s-backfill", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[{"name": "backfill", "image": "x", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    deployment.ecs.run_task(cluster=CLUSTER, taskDefinition=lookalike, launchType="FARGATE", networkConfiguration={
        "awsvpcConfiguration": {"subnets": [deployment.subnet], "securityGroups": [deployment.security_group]}})
    return deployment, old


def test_status_counts_the_team_queues_worker_tasks(moto_aws):
    """Team queues run their own family (<workers' family>-<queue>); a removed queue's task keeps
    running on its deregistered revision and still counts; a family that merely starts with the
    same letters does not."""
    deployment, _ = team_deployment()
    deployment.run_service_task("scheduler")
    deployment.run_worker()
    deployment.run_worker("team-a")
    deployment.run_worker("team-a")

    result = invoke("status")

    assert result.exit_code == 0, result.output
    assert "worker tasks running: 4 (default workers 1, team-a 2, team-old 1)" in result.stdout


def test_stop_workers_stops_the_team_queues_tasks_too(moto_aws):
    deployment, old = team_deployment()
    workers = {deployment.run_worker(), deployment.run_worker("team-a"), old}

    result = invoke("stop-workers")

    assert result.exit_code == 0, result.output
    assert "stopped 3 worker task(s)" in result.stdout
    running = deployment.ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
    assert workers.isdisjoint(running) and len(running) == 1  # the look-alike family's task
    assert "(queue team-a)" in result.stdout


def test_logs_worker_queue_prints_the_team_queues_streams_only(moto_aws):
    deployment = make_deployment(team_queues=("team-a",))
    deployment.put_log("worker", "worker/worker/default1234", "default worker line")
    deployment.put_log("worker", "worker-team-a/worker/teama5678", "team-a line")

    team = invoke("logs", "worker", "--queue", "team-a")
    default = invoke("logs", "worker")

    assert team.exit_code == 0, team.output
    assert "team-a line" in team.stdout and "teama567" in team.stdout
    assert "default worker line" not in team.stdout
    assert "default worker line" in default.stdout and "team-a line" not in default.stdout


def test_logs_queue_is_only_for_the_workers(deployment):
    result = invoke("logs", "scheduler", "--queue", "team-a")

    assert result.exit_code == 1
    assert "--queue" in result.stderr and "airflow-ecs logs worker --queue team-a" in result.stderr


def test_logs_of_an_unknown_queue_names_the_team_queues_there_are(moto_aws, monkeypatch):
    team_deployment()
    make_families = ("team-b", "team-c")
    for queue in make_families:
        conftest._task_definition(boto3.client("ecs", region_name=REGION), f"{WORKER_FAMILY}-{queue}", "worker",
                                  stream_prefix=f"worker-{queue}")
    monkeypatch.setattr(conftest, "FAMILY_PAGE_SIZE", 1)  # the CLI must read every page

    result = invoke("logs", "worker", "--queue", "team-z")

    assert result.exit_code == 1
    assert "No team queue 'team-z'" in result.stderr
    # team-old was removed (no ACTIVE revision): not a queue any more.
    assert "team queues with a task definition there: team-a, team-b, team-c." in result.stderr
    assert "airflow-ecs logs worker" in result.stderr


def test_logs_of_a_queue_when_the_deployment_has_no_team_queue(deployment):
    result = invoke("logs", "worker", "--queue", "gpu")

    assert result.exit_code == 1
    assert "No team queue 'gpu'" in result.stderr and "has no team queue" in result.stderr


def test_no_service_family_reads_as_a_worker_family():
    """The services' families are ``<deployment>-<component>`` (constructs_lib/airflow_service.py)
    in the workers' cluster: no component may be named so that its family reads as a team queue's
    (``<deployment>-worker-<queue>``), else stop-workers would stop it."""
    from cloud_assembly.names import SERVICE_COMPONENTS, WORKER

    for component in SERVICE_COMPONENTS:
        assert tasks_mod.worker_queue("airflow-dev-worker", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/"
                                      f"airflow-dev-{component}:3") == (False, None)
    assert WORKER not in SERVICE_COMPONENTS
