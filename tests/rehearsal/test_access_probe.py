"""The access probe's set-up and IAM against the AWS stand-in, without containers: the operations
CLI stores the connection, the variable and another deployment's connection; the workers' and a
team queue's principals are allowed and refused as the rehearsal's access probe expects, and
every refusal is one of :func:`local_ecs.access_probe.expected_denials`."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from local_ecs import access_probe


@pytest.fixture()
def deployment(cdk_out, tmp_path):
    from local_ecs.scenario import LocalDeployment

    deployment = LocalDeployment(cdk_out(), tmp_path)
    deployment.aws.start()
    try:
        deployment.aws.provision()
        deployment.aws.enforce_iam()
        deployment.service_specs.update(deployment.service_definitions())
        yield deployment
    finally:
        deployment.aws.stop()


def _denied(call) -> int:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_the_probe_dag_file_holds_the_names_the_harness_reads():
    assert access_probe._dag_constant("NAME") == "rehearsal_probe"
    assert access_probe._dag_constant("TEAM_QUEUE") in access_probe.TEAM_QUEUES


def test_the_default_rehearsal_bakes_the_probe_into_its_image_only(cdk_out, tmp_path):
    from local_ecs.scenario import LocalDeployment

    assert access_probe.in_image(LocalDeployment(cdk_out(), tmp_path / "a"))
    assert not access_probe.in_image(LocalDeployment(cdk_out("s3"), tmp_path / "b"))


def test_cli_stored_secrets_are_reachable_by_their_own_principals_only(deployment):
    set_up = access_probe.store(deployment)
    stored, conf = set_up["stored"], set_up["conf"]
    assert stored["cli"][0] == "created connection rehearsal_probe (airflow/dev/connections/rehearsal_probe)"
    aws = deployment.aws
    workers = next(spec.task_role_arn for spec in [_workers_spec(deployment)])
    worker = aws.principal_of_role(workers)
    team = aws.principal_of_role(stored["team_task_role"])
    assert team.arn == "arn:aws:iam::123456789012:user/airflow-dev-worker-team-a"

    # The workers read their deployment's connection and variable (what the secrets backend asks) ...
    worker_sm = aws.client("secretsmanager", worker)
    uri = worker_sm.get_secret_value(SecretId="airflow/dev/connections/rehearsal_probe")["SecretString"]
    assert uri.startswith("postgres://probe_user:")
    assert worker_sm.get_secret_value(SecretId="airflow/dev/variables/rehearsal_probe")["SecretString"] == \
        stored["variable"]["value"]
    # ... not another deployment's.
    assert _denied(lambda: worker_sm.get_secret_value(SecretId=conf["other_deployment_secret"])) == 403

    # The team's task role: its own prefix and secret, not the other team's.
    s3, team_sm = aws.client("s3", team), aws.client("secretsmanager", team)
    s3.put_object(Bucket=conf["bucket"], Key=f"{conf['own_prefix']}access-probe.txt", Body=b"x")
    assert s3.get_object(Bucket=conf["bucket"], Key=f"{conf['own_prefix']}access-probe.txt")["Body"].read() == b"x"
    assert team_sm.get_secret_value(SecretId=conf["own_secret"])["SecretString"]
    assert _denied(lambda: s3.put_object(Bucket=conf["bucket"], Key=f"{conf['other_prefix']}access-probe.txt",
                                         Body=b"x")) == 403
    assert _denied(lambda: team_sm.get_secret_value(SecretId=conf["other_secret"])) == 403

    probe = {**set_up, "worker_tasks": {"other_deployment": {"principal": worker.arn},
                                        "team": {"principal": team.arn}}}
    assert sorted(d.line() for d in aws.denials) == access_probe.expected_denials(probe)


def _workers_spec(deployment):
    from local_ecs.taskdef import TaskSpec

    environment = access_probe._scheduler_environment(deployment)
    described = deployment.aws.client("ecs").describe_task_definition(
        taskDefinition=environment["AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION"])["taskDefinition"]
    return TaskSpec.parse(described)


def test_a_deployment_without_the_secrets_backend_is_named():
    with pytest.raises(access_probe.ProbeFailed, match="<project>/<stage>/connections"):
        access_probe.project_and_stage({})
    assert access_probe.project_and_stage({"AIRFLOW__SECRETS__BACKEND_KWARGS": '{"connections_prefix": '
                                                                               '"airflow/dev/connections"}'}) == ("airflow", "dev")


def _worker(task_id: str, ti_id: str, family: str, role: str, started: str | None):
    from types import SimpleNamespace

    from local_ecs.taskdef import ContainerSpec

    command = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string",
               '{"ti": {"id": "%s"}}' % ti_id]
    run = SimpleNamespace(spec=ContainerSpec(name="worker", image="i", command=command),
                          inspect=None if started is None else {"Config": {"Cmd": command},
                                                                "State": {"StartedAt": started}})
    return SimpleNamespace(task_id=task_id, containers={"worker": run},
                           spec=SimpleNamespace(family=family, task_role_arn=role))


def test_each_probe_task_is_matched_to_the_ecs_task_that_ran_it_and_its_start_overhead():
    from types import SimpleNamespace

    from local_ecs.scenario import worker_start_overhead

    role = "arn:aws:iam::123456789012:role/{}".format
    finished = [_worker("w8", "ti-team", "airflow-dev-worker-team-a", role("airflow-dev-worker-team-a"),
                        "2026-12-07T04:40:00Z"),
                _worker("w9", "ti-other", "airflow-dev-worker", role("workers"), "2026-12-07T04:40:01Z"),
                _worker("w10", "ti-unknown", "airflow-dev-worker", role("workers"), None)]
    principals = {"airflow-dev-worker-team-a": "arn:aws:iam::123456789012:user/airflow-dev-worker-team-a",
                  "workers": "arn:aws:iam::123456789012:user/workers"}
    aws = SimpleNamespace(principal_of_role=lambda arn: SimpleNamespace(arn=principals[arn.rsplit("/", 1)[-1]]))
    deployment = SimpleNamespace(runner=SimpleNamespace(finished=finished, tasks={}), aws=aws,
                                 ecs=SimpleNamespace(tasks={str(i): t for i, t in enumerate(finished)}))
    instances = [{"id": "ti-team", "task_id": "team", "dag_id": "access_probe", "map_index": -1,
                  "start_date": "2026-12-07T04:40:04.5Z"},
                 {"id": "ti-other", "task_id": "other_deployment", "dag_id": "access_probe", "map_index": -1,
                  "start_date": "2026-12-07T04:40:03Z"}]
    assert access_probe.worker_tasks(deployment, instances) == {
        "team": {"ecs_task": "w8", "family": "airflow-dev-worker-team-a", "task_role": role("airflow-dev-worker-team-a"),
                 "principal": principals["airflow-dev-worker-team-a"]},
        "other_deployment": {"ecs_task": "w9", "family": "airflow-dev-worker", "task_role": role("workers"),
                             "principal": principals["workers"]},
    }
    overhead = worker_start_overhead(deployment, instances)
    assert [(r["task_id"], r["seconds"]) for r in overhead["rows"]] == [("team", 4.5), ("other_deployment", 2.0)]
    # w10 was never inspected: the counts show it, so a test comparing them fails.
    assert (overhead["workers_inspected"], overhead["workers_launched"]) == (2, 3)
    assert overhead["summary"] == {"count": 2, "median": 3.25, "min": 2.0, "max": 4.5}
