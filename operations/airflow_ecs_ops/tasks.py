"""ECS work of the CLI: one-off tasks, service status, the executor's worker tasks (every queue's)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from botocore.exceptions import ClientError

from airflow_ecs_ops.deployment import SERVICES, Deployment, OpsError, aws_error
from airflow_ecs_ops.logs import LogStream

#: ``startedBy`` of every task the CLI starts (ECS allows up to 128 characters).
STARTED_BY = "airflow-ecs-cli"
#: Exit status when a one-off task stopped without its container reporting an exit code (it never
#: started: image pull, secrets, capacity...). Follows the shell's "command not executable".
NO_EXIT_CODE = 126
#: Seconds between DescribeTasks calls while waiting (ECS updates task state every few seconds).
POLL_SECONDS = 3.0
#: Seconds between progress lines while a task has not stopped.
PROGRESS_EVERY_SECONDS = 10.0

# Indirection so the tests can advance a fake Fargate instead of sleeping.
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class ServiceTemplate:
    """What a one-off task copies from a running service.

    :param task_definition_arn: the revision the service runs now.
    :param container: the component's container name.
    :param network: the service's ``awsvpcConfiguration`` (subnets, security groups, and
        ``assignPublicIp``: ENABLED where the deployment runs its tasks in public subnets with
        public IPs, ``task_public_ip``, as in the lean stage; the workers run the same way).
    :param log_group, log_stream_prefix: the container's awslogs settings.
    """

    task_definition_arn: str
    container: str
    network: dict
    log_group: str | None
    log_stream_prefix: str | None


def describe_service(ecs, deployment: Deployment, component: str) -> dict:
    """Return DescribeServices' entry for ``component``.

    :raises OpsError: unknown component, or the service does not exist.
    """
    name = deployment.service_name(component)
    try:
        response = ecs.describe_services(cluster=deployment.cluster, services=[name])
    except ClientError as err:
        raise aws_error(err, f"describing service {name}") from err
    services = [s for s in response.get("services", []) if s.get("status") != "INACTIVE"]
    if not services:
        raise OpsError(f"Service {name} not found in cluster {deployment.cluster}: deploy again (make deploy).")
    return services[0]


def awslogs_options(task_definition: dict, container: str) -> tuple[str | None, str | None]:
    """Return (log group, stream prefix) of ``container``'s awslogs driver, or (None, None)."""
    for definition in task_definition["containerDefinitions"]:
        if definition["name"] == container:
            config = definition.get("logConfiguration") or {}
            if config.get("logDriver") == "awslogs":
                options = config.get("options", {})
                return options.get("awslogs-group"), options.get("awslogs-stream-prefix")
            return None, None
    raise OpsError(f"Task definition {task_definition['taskDefinitionArn']} has no container {container!r}.")


def service_template(ecs, deployment: Deployment, component: str) -> ServiceTemplate:
    """Read the task definition and network settings ``component``'s service runs with now."""
    service = describe_service(ecs, deployment, component)
    arn = service["taskDefinition"]
    task_definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    group, prefix = awslogs_options(task_definition, component)
    network = dict(service.get("networkConfiguration", {}).get("awsvpcConfiguration", {}))
    if not network.get("subnets"):
        raise OpsError(f"Service {service['serviceName']} has no awsvpc subnets to run a task in.")
    return ServiceTemplate(arn, component, network, group, prefix)


def run_one_off(ecs, deployment: Deployment, template: ServiceTemplate, command: list[str]) -> str:
    """Start ``command`` (arguments of the image's entrypoint, e.g. ``["db", "check"]``) as a
    one-off Fargate task with the task definition, task role, secrets, subnets and security
    group of a service (``template``, from :func:`service_template`), and its public IP choice:
    in a deployment without NAT whose tasks run in public subnets, a task without a public IP
    could reach neither ECR nor Secrets Manager and would never start.

    Init containers of the task definition run first as in the service (the scheduler's waits for
    the DB migrations). Returns the task ARN.

    :raises OpsError: RunTask refused or reported a failure.
    """
    try:
        response = ecs.run_task(
            cluster=deployment.cluster,
            taskDefinition=template.task_definition_arn,
            count=1,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": network_configuration(template.network)},
            overrides={"containerOverrides": [{"name": template.container, "command": list(command)}]},
            startedBy=STARTED_BY,
            propagateTags="TASK_DEFINITION",
        )
    except ClientError as err:
        raise aws_error(err, "starting the one-off task (RunTask)") from err
    if response.get("failures") or not response.get("tasks"):
        reasons = "; ".join(f"{f.get('arn', '')} {f.get('reason', '')} {f.get('detail', '')}".strip()
                            for f in response.get("failures", []))
        raise OpsError(f"RunTask started no task: {reasons or 'no reason given'}.")
    return response["tasks"][0]["taskArn"]


def network_configuration(service_network: dict) -> dict:
    """The ``awsvpcConfiguration`` of a one-off task: the service's subnets, security groups and
    ``assignPublicIp`` (DISABLED when the service names none, ECS's default)."""
    return {"assignPublicIp": "DISABLED", **service_network}


def task_id(task_arn: str) -> str:
    """The task ID, the last part of ``arn:aws:ecs:<region>:<account>:task/<cluster>/<id>``."""
    return task_arn.rsplit("/", 1)[-1]


def wait_for_task(
    ecs,
    cluster: str,
    task_arn: str,
    container: str,
    *,
    log: LogStream | None,
    progress: Callable[[str], None],
    timeout_seconds: float | None = None,
) -> int:
    """Wait until the task stops, copying its container's log lines to ``log`` as they arrive.

    :param progress: called with a line on every status change and every
        :data:`PROGRESS_EVERY_SECONDS` seconds of waiting.
    :param timeout_seconds: give up after this many seconds (the task keeps running); None waits.
    :returns: the container's exit code, or :data:`NO_EXIT_CODE` when it reported none.
    :raises OpsError: the task vanished, or the timeout passed.
    """
    start = clock()
    last_status, last_report = None, start
    while True:
        try:
            tasks = ecs.describe_tasks(cluster=cluster, tasks=[task_arn]).get("tasks", [])
        except ClientError as err:
            raise aws_error(err, "waiting for the task (DescribeTasks)") from err
        if not tasks:
            raise OpsError(f"Task {task_arn} is gone from cluster {cluster}.")
        task = tasks[0]
        status = task.get("lastStatus")
        now = clock()
        if status != last_status:
            progress(f"task {task_id(task_arn)}: {status} after {now - start:.0f} s")
            last_status, last_report = status, now
        elif now - last_report >= PROGRESS_EVERY_SECONDS:
            progress(f"task {task_id(task_arn)}: still {status} after {now - start:.0f} s")
            last_report = now
        if log is not None:
            log.pump()
        if status == "STOPPED":
            if log is not None:
                log.pump()
            return _exit_code(task, container, progress)
        if timeout_seconds is not None and now - start > timeout_seconds:
            raise OpsError(f"Task {task_arn} did not stop within {timeout_seconds:.0f} s; it keeps running.")
        sleep(POLL_SECONDS)


def _exit_code(task: dict, container: str, progress: Callable[[str], None]) -> int:
    for entry in task.get("containers", []):
        if entry.get("name") == container:
            code = entry.get("exitCode")
            if code is not None:
                if code != 0:
                    progress(f"container {container} exited {code}" + (f": {entry['reason']}" if entry.get("reason") else ""))
                return int(code)
            progress(
                f"container {container} reported no exit code: {entry.get('reason') or task.get('stoppedReason') or 'no reason given'}"
            )
            return NO_EXIT_CODE
    progress(f"task stopped without container {container}: {task.get('stoppedReason') or 'no reason given'}")
    return NO_EXIT_CODE


@dataclass(frozen=True)
class ServiceStatus:
    """One service as ``airflow-ecs status`` shows it.

    :param healthy: tasks whose health status is HEALTHY (container health checks).
    :param rollout: the primary deployment's ``rolloutState`` (COMPLETED, IN_PROGRESS, FAILED).
    """

    component: str
    service: str
    desired: int
    running: int
    pending: int
    healthy: int
    rollout: str
    rollout_reason: str


def service_statuses(ecs, deployment: Deployment) -> list[ServiceStatus]:
    """Read every Airflow service's counts, health and primary deployment."""
    names = {deployment.service_name(c): c for c in SERVICES}
    try:
        services = ecs.describe_services(cluster=deployment.cluster, services=list(names))["services"]
    except ClientError as err:
        raise aws_error(err, "describing the services") from err
    result = []
    for service in services:
        arns = list(_list_tasks(ecs, cluster=deployment.cluster, serviceName=service["serviceName"]))
        healthy = sum(1 for t in _describe(ecs, deployment.cluster, arns) if t.get("healthStatus") == "HEALTHY")
        primary: dict[str, Any] = next(
            (d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})
        result.append(
            ServiceStatus(
                component=names.get(service["serviceName"], service["serviceName"]),
                service=service["serviceName"],
                desired=service.get("desiredCount", 0),
                running=service.get("runningCount", 0),
                pending=service.get("pendingCount", 0),
                healthy=healthy,
                rollout=primary.get("rolloutState", "UNKNOWN"),
                rollout_reason=primary.get("rolloutStateReason", ""),
            )
        )
    order = list(SERVICES)
    return sorted(result, key=lambda s: order.index(s.component) if s.component in order else len(order))


@dataclass(frozen=True)
class WorkerTask:
    """One of the executor's worker tasks.

    :param arn: the task ARN.
    :param queue: the team queue whose family the task runs (``<workers' family>-<queue>``,
        ``constructs_lib/workers.py``), or None for the default workers' family.
    """

    arn: str
    queue: str | None


def worker_queue(family: str, task_definition_arn: str) -> tuple[bool, str | None]:
    """Whether a task of revision ``task_definition_arn`` is a worker of the workers' family
    ``family``, and of which team queue: ``(True, None)`` for ``family`` itself, ``(True, queue)``
    for ``<family>-<queue>`` (a team queue's family), ``(False, None)`` for any other family.

    A revision ARN is ``arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>``.
    """
    task_family = task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    if task_family == family:
        return True, None
    if task_family.startswith(f"{family}-"):
        return True, task_family[len(family) + 1:]
    return False, None


def worker_tasks(ecs, deployment: Deployment, desired_status: str = "RUNNING") -> list[WorkerTask]:
    """The executor's worker tasks in the deployment's cluster: those of the workers' task
    definition family (output ``WorkerTaskDefinitionFamily``) and of every team queue's family
    ``<family>-<queue>``, including a removed queue's (a task keeps running on a deregistered
    revision).

    Lists the cluster's tasks (ListTasks, every page) and reads their revisions (DescribeTasks, 100
    per call) rather than listing by family: a team queue's family is not a stack output, and a
    removed queue's family is no longer ACTIVE. Tasks of the same cluster only: one deployment's
    families never run in another's cluster. Other families of the cluster (the services'
    ``<deployment>-<component>``, the CLI's one-off tasks) never start with ``<family>-``.

    :param desired_status: ListTasks' ``desiredStatus`` (RUNNING: also the tasks still
        provisioning; STOPPED).
    :raises OpsError: ECS refused a call.
    """
    family = deployment.output("cluster", "WorkerTaskDefinitionFamily")
    arns = list(_list_tasks(ecs, cluster=deployment.cluster, desiredStatus=desired_status))
    result = []
    for task in _describe(ecs, deployment.cluster, arns):
        is_worker, queue = worker_queue(family, task.get("taskDefinitionArn", ""))
        if is_worker:
            result.append(WorkerTask(task["taskArn"], queue))
    return result


def count_by_queue(workers: list[WorkerTask]) -> str:
    """``default workers 1, team-a 2``: how many of ``workers`` each queue's family runs (the
    default workers first, then the team queues by name); empty for no task."""
    counts: dict[str | None, int] = {}
    for worker in workers:
        counts[worker.queue] = counts.get(worker.queue, 0) + 1
    parts = [f"default workers {counts.pop(None)}"] if None in counts else []
    parts += [f"{queue} {count}" for queue, count in sorted((q, c) for q, c in counts.items() if q is not None)]
    return ", ".join(parts)


def team_queues(ecs, deployment: Deployment) -> list[str]:
    """The team queues of the deployment: the families ``<workers' family>-<queue>`` with an ACTIVE
    revision (ListTaskDefinitionFamilies, every page), by name. A removed queue's revisions are
    retained (README, "Team queues"), so it stays listed until they are deregistered by hand.

    :raises OpsError: ECS refused the call.
    """
    family = deployment.output("cluster", "WorkerTaskDefinitionFamily")
    families: list[str] = []
    try:
        for page in ecs.get_paginator("list_task_definition_families").paginate(
                familyPrefix=f"{family}-", status="ACTIVE"):
            families.extend(page.get("families", []))
    except ClientError as err:
        raise aws_error(err, "listing the team queues' task definition families") from err
    return sorted(f[len(family) + 1:] for f in families if f.startswith(f"{family}-"))


def stop_workers(ecs, deployment: Deployment, reason: str) -> list[WorkerTask]:
    """Stop every running worker task, the team queues' too (:func:`worker_tasks`). Returns them.

    The executor leaves its tasks running when the scheduler stops (a new scheduler adopts them),
    so they outlive the services and keep their network interfaces in the VPC's subnets.

    :raises OpsError: ECS refused a call.
    """
    stopped = []
    for worker in worker_tasks(ecs, deployment):
        try:
            ecs.stop_task(cluster=deployment.cluster, task=worker.arn, reason=reason)
        except ClientError as err:
            raise aws_error(err, f"stopping worker task {worker.arn}") from err
        stopped.append(worker)
    return stopped


def scale_service(ecs, deployment: Deployment, component: str, desired: int) -> None:
    """Set ``component``'s desired count (e.g. 0 for the scheduler before a destroy)."""
    name = deployment.service_name(component)
    try:
        ecs.update_service(cluster=deployment.cluster, service=name, desiredCount=desired)
    except ClientError as err:
        raise aws_error(err, f"scaling service {name}") from err


def _list_tasks(ecs, **kwargs) -> Iterator[str]:
    try:
        for page in ecs.get_paginator("list_tasks").paginate(**kwargs):
            yield from page.get("taskArns", [])
    except ClientError as err:
        raise aws_error(err, "listing tasks") from err


def _describe(ecs, cluster: str, arns: list[str]) -> list[dict]:
    tasks = []
    for i in range(0, len(arns), 100):  # DescribeTasks takes up to 100 tasks per call.
        try:
            tasks.extend(ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100]).get("tasks", []))
        except ClientError as err:
            raise aws_error(err, "describing tasks") from err
    return tasks
