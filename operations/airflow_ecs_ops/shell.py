"""ECS Exec into a running task of a service (``airflow-ecs shell``)."""

from __future__ import annotations

import json
import shutil
import subprocess

from botocore.exceptions import ClientError

from airflow_ecs_ops.deployment import Deployment, OpsError, aws_error
from airflow_ecs_ops.tasks import _describe, _list_tasks, describe_service

#: The binary the AWS CLI hands an ECS Exec session to (Session Manager plugin).
PLUGIN = "session-manager-plugin"
PLUGIN_INSTALL_URL = (
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"
)


def open_shell(profile: str | None, ecs, deployment: Deployment, component: str, command: str) -> int:
    """Run ``command`` interactively in the component's container of one running task of its
    service, as ``aws ecs execute-command --interactive`` does, and return the plugin's exit status.

    :param profile: the AWS profile given to the CLI, or None (the plugin then uses the default chain).
    :raises OpsError: ECS Exec is off for the service or the task (names the config key to set),
        the Session Manager plugin is not on PATH (names where to get it), no task is running.
    """
    service = describe_service(ecs, deployment, component)
    if not service.get("enableExecuteCommand"):
        raise OpsError(
            f"ECS Exec is off for service {service['serviceName']}: deploy with -c enable_ecs_exec=true "
            "(make deploy CDK_ARGS='-c enable_ecs_exec=true'), then open the shell again."
        )
    plugin = shutil.which(PLUGIN)
    if plugin is None:
        raise OpsError(f"The Session Manager plugin ({PLUGIN}) is not on PATH; install it: {PLUGIN_INSTALL_URL}")
    arns = list(_list_tasks(ecs, cluster=deployment.cluster, serviceName=service["serviceName"], desiredStatus="RUNNING"))
    tasks = [t for t in _describe(ecs, deployment.cluster, arns) if t.get("lastStatus") == "RUNNING"]
    if not tasks:
        raise OpsError(f"No running task of service {service['serviceName']} to open a shell in.")
    task = tasks[0]
    if not task.get("enableExecuteCommand"):
        raise OpsError(
            f"Task {task['taskArn']} was started before ECS Exec was enabled: wait for the service's new "
            "deployment to replace it (airflow-ecs status)."
        )
    container = next((c for c in task.get("containers", []) if c.get("name") == component), None)
    if container is None or not container.get("runtimeId"):
        raise OpsError(f"Container {component} of task {task['taskArn']} is not running yet.")
    try:
        response = ecs.execute_command(
            cluster=deployment.cluster, task=task["taskArn"], container=component, interactive=True, command=command
        )
    except ClientError as err:
        raise aws_error(err, "starting the ECS Exec session (ExecuteCommand)") from err
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    # What the AWS CLI passes to the plugin: the session, region, operation, profile, the
    # Session Manager target ecs:<cluster>_<task id>_<container runtime id>, and the endpoint.
    target = {"Target": f"ecs:{deployment.cluster}_{task_id}_{container['runtimeId']}"}
    return subprocess.call(
        [
            plugin,
            json.dumps(response["session"]),
            deployment.region,
            "StartSession",
            profile or "",
            json.dumps(target),
            ecs.meta.endpoint_url,
        ]
    )
