"""A deployment in moto as the CDK app leaves it: the stacks with their outputs, the cluster, the
four services with their task definitions (awslogs, awsvpc), the workers' family, log groups.

moto is made as strict as AWS where the CLI relies on it:
- RunTask's container overrides must name a container of the task definition (AWS:
  InvalidParameterException; moto accepts any name).
- A task RunTask returns is PROVISIONING (moto: RUNNING); the tests move it on.
- FilterLogEvents' ``logStreamNamePrefix`` limits the streams searched (moto ignores it).
- Tasks change state only when a test says so (moto's state manager on "manual").
- ListTasks' ``serviceName`` filter returns only that service's tasks (moto ignores it); a
  service's tasks carry the group ``service:<name>`` as in AWS.
- ListTaskDefinitionFamilies honours ``status`` (ACTIVE, the default: families with an ACTIVE
  revision; INACTIVE: families without one; ALL) and pages by ``maxResults`` (default 100) with a
  ``nextToken`` (moto returns every family in one page, whatever the status).
- DescribeTaskDefinition given a family finds its latest ACTIVE revision (moto: the latest, even
  INACTIVE).
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.backends import get_backend
from moto.core.responses import ActionResult
from moto.ecs.exceptions import TaskDefinitionNotFoundException
from moto.ecs.models import EC2ContainerServiceBackend
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.logs.responses import LogsResponse
from moto.moto_api import state_manager

from airflow_ecs_ops import cli as cli_mod
from airflow_ecs_ops.deployment import REQUIRED_OUTPUTS

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PROJECT, STAGE = "airflow", "dev"
CLUSTER = "airflow-dev-cluster-Cluster1234"
#: The workers' family as stacks/cluster_stack.py names it; a team queue's is ``<family>-<queue>``.
WORKER_FAMILY = "airflow-dev-worker"
SERVICES = {
    "scheduler": "airflow-dev-airflow-SchedulerService1",
    "api-server": "airflow-dev-airflow-ApiServerService1",
    "dag-processor": "airflow-dev-airflow-DagProcessorService1",
    "triggerer": "airflow-dev-airflow-TriggererService1",
}
SERVICE_OUTPUTS = {
    "scheduler": "SchedulerServiceName",
    "api-server": "ApiServerServiceName",
    "dag-processor": "DagProcessorServiceName",
    "triggerer": "TriggererServiceName",
}
ADMIN_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:AdminPassword-abcdef"
UI_URL = "http://airflow-ui-123.eu-west-1.elb.amazonaws.com"
REPOSITORY = "airflow-dev-image-airflowimagerepository1234"
DATABASE = "airflow-dev-database-metadatadb1234"
#: The lean stage's office hours (app_config/loader.py): what the scheduled actions carry.
OFFICE_START, OFFICE_STOP = "cron(0 8 ? * MON-FRI *)", "cron(0 18 ? * MON-FRI *)"
OFFICE_TIMEZONE = "Europe/Berlin"


def log_group(component: str) -> str:
    return f"airflow-dev-{component}-logs"


@dataclass
class MotoDeployment:
    """The moto account holding one deployment."""

    ecs: Any
    logs: Any
    subnet: str
    security_group: str
    exec_enabled: bool

    def backend(self):
        return get_backend("ecs")[ACCOUNT][REGION]

    def task(self, arn: str):
        return self.backend().tasks[CLUSTER.split("/")[-1]][arn]

    def start(self, arn: str) -> None:
        task = self.task(arn)
        task.started_at = datetime.datetime.now(datetime.timezone.utc)
        task.last_status = "RUNNING"

    def stop(self, arn: str, exit_code: int | None, reason: str | None = None) -> None:
        """Finish a task as ECS would (moto never does): a container that never ran has no exit code."""
        task = self.task(arn)
        task.desired_status = task.last_status = "STOPPED"
        task.stopped_reason = reason or "Essential container in task exited"
        for container in task.containers:
            if exit_code is None:
                if hasattr(container, "exitCode"):
                    del container.exitCode
                container.reason = reason
            else:
                container.exitCode = exit_code

    def put_log(self, component: str, stream: str, *lines: str) -> None:
        group = log_group(component)
        if not lines:
            return
        try:
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        now = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
        self.logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
        )

    def run_service_task(self, component: str, healthy: bool = True) -> str:
        """A task of the component's service, as ECS starts it (group ``service:<name>``)."""
        service = self.ecs.describe_services(cluster=CLUSTER, services=[SERVICES[component]])["services"][0]
        arn = self.ecs.run_task(
            cluster=CLUSTER,
            taskDefinition=service["taskDefinition"],
            launchType="FARGATE",
            group=f"service:{SERVICES[component]}",
            startedBy="ecs-svc/1234",
            networkConfiguration={"awsvpcConfiguration": {"subnets": [self.subnet], "securityGroups": [self.security_group]}},
        )["tasks"][0]["taskArn"]
        self.start(arn)
        self.task(arn).health_status = "HEALTHY" if healthy else "UNHEALTHY"
        return arn

    def run_worker(self, queue: str | None = None) -> str:
        """A worker task as the executor starts it: of the default workers' family, or of team
        queue ``queue``'s (``<family>-<queue>``, registered by ``make_deployment(team_queues=...)``)."""
        arn = self.ecs.run_task(
            cluster=CLUSTER,
            taskDefinition=f"{WORKER_FAMILY}-{queue}" if queue else WORKER_FAMILY,
            launchType="FARGATE",
            startedBy="airflow",
            networkConfiguration={"awsvpcConfiguration": {"subnets": [self.subnet], "securityGroups": [self.security_group]}},
        )["tasks"][0]["taskArn"]
        self.start(arn)
        return arn


def _strict_list_tasks(original):
    def list_tasks(self, cluster_str=None, container_instance=None, family=None, started_by=None,
                   service_name=None, desiredStatus=None):
        tasks = original(self, cluster_str, container_instance, family, started_by, None, desiredStatus)
        if service_name:
            tasks = [t for t in tasks if getattr(t, "group", None) == f"service:{service_name}"]
        return tasks

    return list_tasks


#: Families per ListTaskDefinitionFamilies page when the caller names no ``maxResults`` (AWS: 100).
FAMILY_PAGE_SIZE = 100


def _strict_list_task_definition_families(self):
    status = self._get_param("status") or "ACTIVE"
    prefix = self._get_param("familyPrefix")
    families = []
    for family in sorted(self.ecs_backend.list_task_definition_families(prefix)):
        active = any(t.status == "ACTIVE" for t in self.ecs_backend.task_definitions[family].values())
        if status == "ALL" or (status == "ACTIVE") == active:
            families.append(family)
    start = int(self._get_param("nextToken") or 0)
    size = int(self._get_param("maxResults") or FAMILY_PAGE_SIZE)
    page: dict[str, Any] = {"families": families[start:start + size]}
    if start + size < len(families):
        page["nextToken"] = str(start + size)
    return ActionResult(page)


def _strict_describe_task_definition(original):
    def describe_task_definition(self, task_definition_str):
        definition = original(self, task_definition_str)
        if ":" not in task_definition_str.split("/")[-1] and definition.status != "ACTIVE":
            family = definition.family
            active = [r for r, t in self.task_definitions[family].items() if t.status == "ACTIVE"]
            if not active:
                raise TaskDefinitionNotFoundException()
            definition = self.task_definitions[family][max(active)]
        return definition

    return describe_task_definition


def _strict_run_task(original):
    def run_task(self, cluster_str, task_definition_str, count, overrides, *args, **kwargs):
        definition = self.describe_task_definition(task_definition_str)
        names = {c["name"] for c in definition.container_definitions}
        for override in (overrides or {}).get("containerOverrides", []):
            if override.get("name") not in names:
                from moto.ecs.exceptions import InvalidParameterException

                raise InvalidParameterException(
                    f"Override for container named {override.get('name')} is not a container in the TaskDefinition."
                )
        tasks = original(self, cluster_str, task_definition_str, count, overrides, *args, **kwargs)
        for task in tasks:
            # A new Fargate task is PROVISIONING and has not started (moto says RUNNING).
            task.last_status, task.started_at = "PROVISIONING", None
        return tasks

    return run_task


def _strict_filter_log_events(original):
    def filter_log_events(self):
        prefix = self._get_param("logStreamNamePrefix")
        if prefix:
            group = self.logs_backend.groups[self._get_param("logGroupName")]
            # A name no stream has: an empty selection must find nothing, not everything.
            names = [n for n in group.streams if n.startswith(prefix)] or ["\0none"]
            get = self._get_param
            self._get_param = lambda key, default=None: names if key == "logStreamNames" else get(key, default)
        return original(self)

    return filter_log_events


#: Awake task counts per component in the moto deployment's office hours.
AWAKE_COUNTS = {"scheduler": 2, "api-server": 1, "dag-processor": 1, "triggerer": 1}


def _office_hours(scope: str) -> None:
    """Scalable targets and scheduled actions as ``constructs_lib/scaling.py`` makes them."""
    if scope == "none":
        return
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    components = list(SERVICES) if scope == "environment" else ["api-server"]
    for component in components:
        rid = f"service/{CLUSTER}/{SERVICES[component]}"
        count = AWAKE_COUNTS[component]
        common = dict(ServiceNamespace="ecs", ResourceId=rid, ScalableDimension="ecs:service:DesiredCount")
        scaling.register_scalable_target(**common, MinCapacity=count, MaxCapacity=count)
        for name, schedule, bounds in (("Stop", OFFICE_STOP, 0), ("Start", OFFICE_START, count)):
            scaling.put_scheduled_action(
                **common, ScheduledActionName=f"{component}{name}", Schedule=schedule, Timezone=OFFICE_TIMEZONE,
                ScalableTargetAction={"MinCapacity": bounds, "MaxCapacity": bounds},
            )


def _stack_template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


def _task_definition(ecs, family: str, container: str, *, init: str | None = None, exec_enabled=False,
                     stream_prefix: str | None = None) -> str:
    logging = {
        "logDriver": "awslogs",
        "options": {"awslogs-group": log_group(container), "awslogs-stream-prefix": stream_prefix or container,
                    "awslogs-region": REGION},
    }
    containers = [{"name": container, "image": "airflow:test", "memory": 1024, "essential": True, "logConfiguration": logging}]
    if init:
        containers.append({"name": init, "image": "airflow:test", "memory": 1024, "essential": False, "logConfiguration": logging})
    return ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
        containerDefinitions=containers,
    )["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials and region, no profile, no cdk.json in the working directory."""
    for key in list(os.environ):
        if key.startswith("AWS_") or key.startswith("AIRFLOW_ECS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.chdir(tmp_path)
    # The CLI's waits and follow loops must not sleep in tests.
    monkeypatch.setattr(cli_mod.tasks, "sleep", lambda seconds: None)


def make_deployment(
    *,
    exec_enabled: bool = False,
    missing_roles: tuple[str, ...] = (),
    public_ip: bool = False,
    office_hours: str = "none",
    database_status: str = "available",
    team_queues: tuple[str, ...] = (),
) -> MotoDeployment:
    """Create the deployment in moto.

    :param public_ip: the services run with ``assignPublicIp: ENABLED``, as with
        ``task_public_ip`` (the lean stage: public subnets, no NAT, no interface endpoints).
    :param office_hours: ``none``, ``ui`` or ``environment``: the scalable targets and scheduled
        actions ``constructs_lib/scaling.py`` gives the services (the api-server 1-1, the scheduler
        2-2, the others 1-1), at their awake bounds.
    :param database_status: the RDS instance's state (``available`` or ``stopped``).
    :param team_queues: queues with a task definition of their own, as
        ``constructs_lib/workers.py`` registers them: family ``<workers' family>-<queue>``, the
        workers' container and log group, stream prefix ``worker-<queue>``.
    """
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="services", Description="services", VpcId=vpc)["GroupId"]
    ecs = boto3.client("ecs", region_name=REGION)
    logs = boto3.client("logs", region_name=REGION)
    ecs.create_cluster(clusterName=CLUSTER)
    for component in (*SERVICES, "worker"):
        logs.create_log_group(logGroupName=log_group(component))
    _task_definition(ecs, WORKER_FAMILY, "worker")
    for queue in team_queues:
        _task_definition(ecs, f"{WORKER_FAMILY}-{queue}", "worker", stream_prefix=f"worker-{queue}")
    for component, service in SERVICES.items():
        init = {"scheduler": "wait-for-migrations", "api-server": "db-migrate"}.get(component)
        arn = _task_definition(ecs, f"airflowdevairflow{component.replace('-', '')}", component, init=init)
        ecs.create_service(
            cluster=CLUSTER,
            serviceName=service,
            taskDefinition=arn,
            desiredCount=1,
            launchType="FARGATE",
            enableExecuteCommand=exec_enabled,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [subnet],
                    "securityGroups": [sg],
                    "assignPublicIp": "ENABLED" if public_ip else "DISABLED",
                }
            },
        )
        # moto drops enableExecuteCommand; keep it as ECS reports it.
        get_backend("ecs")[ACCOUNT][REGION].services[f"{CLUSTER}:{service}"].enable_execute_command = exec_enabled
    _office_hours(office_hours)
    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_instance(
        DBInstanceIdentifier=DATABASE, DBInstanceClass="db.t4g.micro", Engine="postgres",
        AllocatedStorage=20, MasterUsername="airflow", MasterUserPassword="secret-password",
    )
    if database_status == "stopped":
        rds.stop_db_instance(DBInstanceIdentifier=DATABASE)
    outputs = {
        "database": {"DatabaseInstanceIdentifier": DATABASE},
        "cluster": {"ClusterName": CLUSTER, "WorkerTaskDefinitionFamily": WORKER_FAMILY, "WorkerContainerName": "worker"},
        "airflow": {
            **{SERVICE_OUTPUTS[c]: name for c, name in SERVICES.items()},
            "AirflowUiUrl": UI_URL,
            "AdminUsername": "admin",
            "AdminPasswordSecretArn": ADMIN_SECRET,
        },
        "image": {"ImageRepositoryUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}"},
    }
    assert {role: set(values) for role, values in outputs.items()} == {r: set(v) for r, v in REQUIRED_OUTPUTS.items()}
    cfn = boto3.client("cloudformation", region_name=REGION)
    for role in ("network", "database", "image", "cluster", "airflow"):
        if role in missing_roles:
            continue
        cfn.create_stack(StackName=f"{PROJECT}-{STAGE}-{role}", TemplateBody=_stack_template(outputs.get(role, {})))
    return MotoDeployment(ecs, logs, subnet, sg, exec_enabled)


@pytest.fixture
def moto_aws(aws_env, monkeypatch):
    """An empty moto account (strict where the CLI relies on it)."""
    monkeypatch.setattr(EC2ContainerServiceBackend, "list_tasks", _strict_list_tasks(EC2ContainerServiceBackend.list_tasks))
    monkeypatch.setattr(EC2ContainerServiceBackend, "run_task", _strict_run_task(EC2ContainerServiceBackend.run_task))
    monkeypatch.setattr(EC2ContainerServiceResponse, "list_task_definition_families", _strict_list_task_definition_families)
    monkeypatch.setattr(EC2ContainerServiceBackend, "describe_task_definition",
                        _strict_describe_task_definition(EC2ContainerServiceBackend.describe_task_definition))
    monkeypatch.setattr(LogsResponse, "filter_log_events", _strict_filter_log_events(LogsResponse.filter_log_events))
    previous = state_manager.get_transition("ecs::task")
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    try:
        with mock_aws():
            # A mock that another test module left active keeps its state (moto resets only when
            # the outermost mock starts): start from an empty account anyway.
            for service in ("cloudformation", "ecs", "logs", "ec2", "ecr", "rds", "applicationautoscaling", "secretsmanager"):
                get_backend(service)[ACCOUNT][REGION].reset()
            yield
    finally:
        state_manager.set_transition("ecs::task", previous)


@pytest.fixture
def deployment(moto_aws) -> MotoDeployment:
    """The deployment ``airflow``/``dev`` in moto."""
    return make_deployment()
