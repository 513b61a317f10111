"""Task definitions as the runner reads them, and the podman arguments of a container."""

from __future__ import annotations

import pytest

from local_ecs.taskdef import ContainerSpec, TaskSpec, from_cloudformation, podman_run_args, split_environment

CFN = {
    "Family": "svc", "Cpu": "512", "Memory": "1024", "TaskRoleArn": "arn:aws:iam::1:role/task",
    "Volumes": [{"Name": "tmp"}],
    "ContainerDefinitions": [
        {"Name": "main", "Image": "img", "Essential": True, "Command": ["scheduler"], "User": "50000:0",
         "ReadonlyRootFilesystem": True, "Environment": [{"Name": "A", "Value": "1"}],
         "Secrets": [{"Name": "S", "ValueFrom": "arn:secret:x"}],
         "MountPoints": [{"SourceVolume": "tmp", "ContainerPath": "/tmp", "ReadOnly": False}],
         "DependsOn": [{"ContainerName": "init", "Condition": "SUCCESS"}],
         "HealthCheck": {"Command": ["CMD-SHELL", "check || exit 1"], "Interval": 60, "Timeout": 30,
                         "Retries": 3, "StartPeriod": 180},
         "PortMappings": [{"ContainerPort": 8080}],
         "LogConfiguration": {"LogDriver": "awslogs", "Options": {"awslogs-group": "G"}}},
        {"Name": "init", "Image": "img", "Essential": False, "Command": ["db", "migrate"]},
    ],
}


def test_cloudformation_properties_parse_as_the_ecs_api_form():
    api = from_cloudformation(CFN)
    assert api["containerDefinitions"][0]["logConfiguration"]["options"] == {"awslogs-group": "G"}
    task = TaskSpec.parse(api)
    main = task.containers[0]
    assert main.read_only_root and main.user == "50000:0" and main.secrets == {"S": "arn:secret:x"}
    assert main.health_check.start_period == 180 and main.health_check.podman_command() == "check || exit 1"
    assert [c.name for c in task.start_order()] == ["init", "main"]


def test_overrides_replace_command_and_merge_environment():
    task = TaskSpec.parse(from_cloudformation(CFN)).with_overrides(
        {"containerOverrides": [{"name": "main", "command": ["x"], "environment": [{"name": "B", "value": "2"}],
                                 "memory": 512}], "cpu": "1024"})
    main = task.containers[0]
    assert main.command == ["x"] and main.environment == {"A": "1", "B": "2"} and main.memory == 512
    assert task.cpu == 1024


def test_podman_args_follow_the_container_definition():
    task = TaskSpec.parse(from_cloudformation(CFN))
    args = podman_run_args(task.containers[0], task, name="r-t-main", image="localhost/img", volume_names={"tmp": "r-t-tmp"},
                           hosts={"api-server.ns.internal": "127.0.0.1"}, env_names=["A", "S"], labels={"l": "v"})
    joined = " ".join(args)
    assert "--read-only --read-only-tmpfs=false" in joined
    assert "--user 50000:0" in joined and "--volume r-t-tmp:/tmp" in joined
    assert "--env A --env S" in joined and "arn:secret" not in joined  # values come from the environment
    assert "--add-host api-server.ns.internal:127.0.0.1" in joined
    assert "--cpus 0.5 --memory 1024m" in joined and "--stop-timeout 30" in joined
    assert "--health-cmd" in args and args[args.index("--health-timeout") + 1] == "30s"
    assert args[-2:] == ["localhost/img", "scheduler"]


def test_invalid_dependencies_and_mounts_are_refused():
    bad = from_cloudformation(CFN)
    bad["containerDefinitions"][0]["dependsOn"] = [{"containerName": "ghost", "condition": "SUCCESS"}]
    with pytest.raises(ValueError, match="ghost"):
        TaskSpec.parse(bad)
    bad = from_cloudformation(CFN)
    bad["volumes"] = []
    with pytest.raises(ValueError, match="mounts volume tmp"):
        TaskSpec.parse(bad)


def test_cmd_form_health_check_is_a_json_array():
    spec = ContainerSpec.parse({"name": "c", "image": "i", "healthCheck": {"command": ["CMD", "curl", "-f", "x"]}})
    assert spec.health_check.podman_command() == '["curl", "-f", "x"]'
    assert (spec.health_check.interval, spec.health_check.timeout, spec.health_check.retries) == (30, 5, 3)


def test_variables_podman_reads_itself_go_inline_not_through_its_environment():
    """A container's ``TMPDIR`` in the podman process's environment made podman fail with
    ``open /opt/airflow/tmp/...: no such file or directory``: it is passed on the command line."""
    inline, inherited = split_environment({"TMPDIR": "/opt/airflow/tmp", "PATH": "/x", "DB_PASSWORD": "s3cr3t"})
    assert inline == {"TMPDIR": "/opt/airflow/tmp", "PATH": "/x"} and inherited == {"DB_PASSWORD": "s3cr3t"}
    task = TaskSpec.parse(from_cloudformation(CFN))
    args = podman_run_args(task.containers[0], task, name="r-t-main", image="localhost/img", volume_names={"tmp": "r-t-tmp"},
                           hosts={}, env_names=sorted(inherited), labels={}, env_inline=inline)
    joined = " ".join(args)
    assert "--env DB_PASSWORD --env PATH=/x --env TMPDIR=/opt/airflow/tmp" in joined and "s3cr3t" not in joined
