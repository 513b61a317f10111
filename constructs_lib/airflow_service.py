"""One long-running Airflow component (scheduler, api-server, dag-processor, triggerer) as a
Fargate service, with the init container that migrates the DB or waits for the migration."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from app_config.model import TaskSize
from cloud_assembly.airflow_image import CONTAINER_USER
from cloud_assembly.names import construct_id as component_construct_id
from constructs_lib import nag

#: Scratch directory of every Airflow container (``TMPDIR``): created by ``docker/Dockerfile`` as
#: the airflow user, so the volume's root is airflow-owned. Python's ``tempfile`` and most tools
#: honour ``TMPDIR`` first, so nothing depends on the mode Fargate gives ``/tmp`` (1777 is needed
#: there for a non-root user, and that is the one mode a volume copy might not keep).
SCRATCH_PATH = "/opt/airflow/tmp"
#: Writable paths of an otherwise read-only root filesystem. ``docker/Dockerfile`` declares them
#: as VOLUMEs owned by the airflow user, so Fargate copies them, with their ownership, into the
#: task's ephemeral storage (ECS bind mounts, "expose a path and its contents from a Dockerfile").
#: ``/tmp`` stays mounted for tools that ignore ``TMPDIR``.
WRITABLE_PATHS = {"tmp": "/tmp", "airflow-logs": "/opt/airflow/logs", "scratch": SCRATCH_PATH}
#: How long a component waits for ``airflow db migrate`` to finish (seconds).
MIGRATION_WAIT_SECONDS = 900

#: CPU time (user + sys, seconds, the ``_CMD`` helper processes included) of one
#: ``airflow jobs check --job-type SchedulerJob --local`` with the task definitions' environment
#: (``_CMD`` DB URLs and fernet key, TLS PostgreSQL), measured on this project's machine on one
#: core with ``/usr/bin/time`` on 2026-11-25: 2.93 to 3.33 s over 6 runs. Wall time on that
#: machine, whose 2 cores were shared at load average 15, was 8 to 45 s: CPU starvation, not
#: work, is what makes the check slow, so the timeout has a wide margin.
HEALTH_CHECK_MEASURED_CPU_SECONDS = 3.33
#: Container health check limits (seconds; ECS: timeout 2-120, interval 5-300, retries 1-10,
#: start period 0-300). Three failures in a row mark a container unhealthy. Start period 240 s:
#: the component's own start (imports, DB connection, the first heartbeat) on 0.5 vCPU, after its
#: init container.
HEALTH_CHECK_RETRIES = 3
HEALTH_CHECK_START_PERIOD_SECONDS = 240


def health_check_timing(cpu_units: int) -> tuple[int, int]:
    """Return ``(timeout, interval)`` in seconds for ``airflow jobs check`` on a task of ``cpu_units``.

    The check takes about ``HEALTH_CHECK_MEASURED_CPU_SECONDS * 1024 / cpu_units`` seconds of wall
    time on an idle task (6.7 s at 512 CPU units, 13.3 s at 256). The timeout is 5x that and at
    least 60 s (above the worst wall time seen under CPU starvation, 45 s); the interval is 10x
    that (the check takes at most 10 % of the task's CPU) and at least 90 s and 30 s more than the
    timeout. Both are clamped to ECS's limits (timeout <= 120 s, interval <= 300 s; ECS
    HealthCheck in the task definition reference).

    :param cpu_units: the task's CPU units (256 = 0.25 vCPU).
    """
    estimate = HEALTH_CHECK_MEASURED_CPU_SECONDS * 1024 / cpu_units
    timeout = min(120, max(60, math.ceil(5 * estimate)))
    interval = min(300, max(90, math.ceil(10 * estimate), timeout + 30))
    return timeout, interval


def container_health_check(command: list[str] | None, cpu_units: int) -> ecs.HealthCheck | None:
    """The container health check running ``command`` on a task of ``cpu_units``, timed by
    :func:`health_check_timing`; None without a command."""
    if not command:
        return None
    timeout, interval = health_check_timing(cpu_units)
    return ecs.HealthCheck(
        command=command,
        interval=Duration.seconds(interval),
        timeout=Duration.seconds(timeout),
        retries=HEALTH_CHECK_RETRIES,
        start_period=Duration.seconds(HEALTH_CHECK_START_PERIOD_SECONDS),
    )


@dataclass(frozen=True)
class InitContainer:
    """A non-essential container that must exit 0 before the main container starts.

    :param name: container name, e.g. ``db-migrate``.
    :param command: the command (the image's entrypoint runs ``airflow`` sub-commands and
        ``bash -c``).
    :param secrets: extra ECS secrets for this container only.
    """

    name: str
    command: list[str]
    secrets: dict[str, ecs.Secret] = field(default_factory=dict)


def wait_for_migrations() -> InitContainer:
    """Return the init container that blocks until the DB schema is current (``airflow db
    check-migrations``), so no component runs against a half-migrated DB."""
    return InitContainer(
        "wait-for-migrations",
        ["db", "check-migrations", "--migration-wait-timeout", str(MIGRATION_WAIT_SECONDS)],
    )


@dataclass(frozen=True)
class ServiceSpec:
    """What sets one long-running Airflow component apart from the others: a row of the Airflow
    stack's table of services (``stacks.airflow_stack.service_specs``), built by
    :meth:`AirflowService.from_spec`.

    :param component: the container's name, e.g. ``api-server`` (one of
        ``cloud_assembly.names.SERVICE_COMPONENTS``); the construct ID derives from it.
    :param command: the component's command, e.g. ``("scheduler",)``.
    :param size: the task's Fargate size (CPU units, MiB).
    :param count: tasks as configured: the service's ``DesiredCount`` unless Application Auto
        Scaling owns it, and the count that monitoring and office hours work from.
    :param health_check_command: the container health check.
    :param init: the container that must succeed before the component starts.
    :param environment: added to the environment every component shares (and overriding it).
    :param secrets: the component's ECS secrets (environment name -> secret).
    :param port: container port to expose, or None.
    :param health_check_grace: the load balancer's health check grace period (with ``port``).
    :param cloud_map_options: the service's Cloud Map registration, or None.
    """

    component: str
    command: tuple[str, ...]
    size: TaskSize
    count: int
    health_check_command: tuple[str, ...]
    init: InitContainer
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, ecs.Secret] = field(default_factory=dict)
    port: int | None = None
    health_check_grace: Duration | None = None
    cloud_map_options: ecs.CloudMapOptions | None = None

    @property
    def construct_id(self) -> str:
        """The construct ID of the component's service, e.g. ``ApiServer``."""
        return component_construct_id(self.component)


def hardened_container_options(read_only_root_filesystem: bool = True) -> dict:
    """Settings every Airflow container shares: the image's non-root user, a read-only root
    filesystem (writable paths come from :func:`mount_writable_volumes`), never privileged."""
    return {"user": CONTAINER_USER, "readonly_root_filesystem": read_only_root_filesystem, "privileged": False}


def add_writable_volumes(task_definition: ecs.TaskDefinition) -> None:
    """Add the task-scoped scratch volumes of :data:`WRITABLE_PATHS` to ``task_definition``."""
    for name in WRITABLE_PATHS:
        task_definition.add_volume(name=name)


def mount_writable_volumes(container: ecs.ContainerDefinition) -> None:
    """Mount the scratch volumes (see :func:`add_writable_volumes`) in ``container`` and point
    its ``TMPDIR`` at :data:`SCRATCH_PATH`."""
    for name, path in WRITABLE_PATHS.items():
        container.add_mount_points(ecs.MountPoint(source_volume=name, container_path=path, read_only=False))
    container.add_environment("TMPDIR", SCRATCH_PATH)


class AirflowService(Construct):
    """A Fargate service running one Airflow component from the shared image.

    Every container logs through awslogs to the component's log group, runs as the image's
    non-root user with a read-only root filesystem, and the service rolls back a failed
    deployment (deployment circuit breaker).

    :param task_role: the component's task role (what its code may do in AWS).
    :param command: the component's command, e.g. ``["scheduler"]``.
    :param health_check_command: container health check, e.g.
        ``["CMD-SHELL", "airflow jobs check --job-type SchedulerJob --local"]``; None for none.
    :param init: a container that must succeed before the component starts.
    :param port: container port to expose, or None.
    :param desired_count: tasks (spread across AZs by ECS); None for a service whose count
        Application Auto Scaling owns (see :func:`constructs_lib.scaling.scaled_components`): the
        template then has no ``DesiredCount`` that a deploy would re-apply.
    :param read_only_root_filesystem: see ``DeploymentConfig.read_only_root_filesystem``.
    :param capacity_provider: ``FARGATE`` or ``FARGATE_SPOT`` (ECS replaces an interrupted task).
    :param assign_public_ip: give each task a public IPv4 address (its way out to AWS APIs in a
        public subnet; inbound traffic is still only what ``security_group`` admits).
    :param family: the task definition family, named per deployment (e.g.
        ``airflow-dev-scheduler``) so that running a family's latest revision never picks
        another deployment's; None lets CDK derive one from the construct path (the same in
        every deployment).
    :ivar task_definition: ``ecs.FargateTaskDefinition``
    :ivar container: the component's ``ecs.ContainerDefinition``
    :ivar service: ``ecs.FargateService``
    :ivar log_group: ``logs.LogGroup``
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        image: ecs.ContainerImage,
        component: str,
        task_role: iam.IRole,
        command: list[str],
        size: TaskSize,
        desired_count: int | None,
        environment: dict[str, str],
        secrets: dict[str, ecs.Secret],
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        log_retention: logs.RetentionDays,
        health_check_command: list[str] | None,
        init: InitContainer | None = None,
        port: int | None = None,
        health_check_grace: Duration | None = None,
        cloud_map_options: ecs.CloudMapOptions | None = None,
        enable_execute_command: bool = False,
        min_healthy_percent: int = 100,
        read_only_root_filesystem: bool = True,
        capacity_provider: str = "FARGATE",
        assign_public_ip: bool = False,
        family: str | None = None,
    ):
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=family,
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            task_role=task_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        logging = ecs.LogDrivers.aws_logs(stream_prefix=component, log_group=self.log_group)
        self.container = self.task_definition.add_container(
            "Main",
            container_name=component,
            image=image,
            command=command,
            environment=environment,
            secrets=secrets,
            logging=logging,
            essential=True,
            health_check=container_health_check(health_check_command, size.cpu),
            **hardened_container_options(read_only_root_filesystem),
            port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
        )
        nag.acknowledge(self.task_definition, "AwsSolutions-ECS2", nag.ECS2_SETTINGS)
        nag.acknowledge(self.task_definition.execution_role, "AwsSolutions-IAM5[Resource::*]", nag.ECR_AUTH)
        add_writable_volumes(self.task_definition)
        mount_writable_volumes(self.container)
        self.init_container: ecs.ContainerDefinition | None = None
        if init is not None:
            self.init_container = self._add_init_container(
                init, image=image, environment=environment, secrets=secrets, logging=logging,
                read_only_root_filesystem=read_only_root_filesystem,
            )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=desired_count,
            vpc_subnets=subnets,
            security_groups=[security_group],
            assign_public_ip=assign_public_ip,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=min_healthy_percent,
            max_healthy_percent=200,
            health_check_grace_period=(health_check_grace or Duration.minutes(5)) if port else None,
            cloud_map_options=cloud_map_options,
            enable_execute_command=enable_execute_command,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            capacity_provider_strategies=[ecs.CapacityProviderStrategy(capacity_provider=capacity_provider, weight=1)],
        )
        if enable_execute_command:
            acknowledge_ecs_exec(self.service, task_role)

    def _add_init_container(
        self,
        init: InitContainer,
        *,
        image: ecs.ContainerImage,
        environment: dict[str, str],
        secrets: dict[str, ecs.Secret],
        logging: ecs.LogDriver,
        read_only_root_filesystem: bool,
    ) -> ecs.ContainerDefinition:
        """Add ``init`` (the main container's environment and secrets, and its own secrets) and
        make the main container wait for it to exit 0."""
        container = self.task_definition.add_container(
            "Init",
            container_name=init.name,
            image=image,
            command=init.command,
            environment=environment,
            secrets={**secrets, **init.secrets},
            logging=logging,
            essential=False,
            **hardened_container_options(read_only_root_filesystem),
        )
        mount_writable_volumes(container)
        self.container.add_container_dependencies(
            ecs.ContainerDependency(container=container, condition=ecs.ContainerDependencyCondition.SUCCESS)
        )
        return container

    @classmethod
    def from_spec(
        cls,
        scope: Construct,
        spec: ServiceSpec,
        *,
        deployment: str,
        task_role: iam.IRole,
        environment: Mapping[str, str],
        desired_count: int | None,
        **shared: Any,
    ) -> AirflowService:
        """Build the service of ``spec`` under its construct ID (``spec.construct_id``).

        :param deployment: ``<project>-<stage>``: the task definition family is
            ``<deployment>-<component>``.
        :param task_role: the component's task role.
        :param environment: the environment every component shares; ``spec.environment`` is
            added to it.
        :param desired_count: see the class; None where Application Auto Scaling owns the count.
        :param shared: the other keyword arguments of the class, the same for every component
            (cluster, image, subnets, security group, ...).
        """
        return cls(
            scope,
            spec.construct_id,
            component=spec.component,
            task_role=task_role,
            family=f"{deployment}-{spec.component}",
            command=list(spec.command),
            size=spec.size,
            desired_count=desired_count,
            environment={**environment, **spec.environment},
            secrets=dict(spec.secrets),
            health_check_command=list(spec.health_check_command),
            init=spec.init,
            port=spec.port,
            health_check_grace=spec.health_check_grace,
            cloud_map_options=spec.cloud_map_options,
            **shared,
        )


def acknowledge_ecs_exec(service: ecs.BaseService, task_role: iam.IRole) -> None:
    """Acknowledge, on ``task_role``, the wildcards of the statements that ``enable_execute_command``
    makes CDK add to it (``BaseService.enableExecuteCommand`` in aws-cdk-lib's aws-ecs): the
    ``ssmmessages`` channel actions and ``logs:DescribeLogGroups`` on ``*``, and the session log
    writes on ``log-group:<the cluster's exec log group>:*``. CDK holds no handle on those
    statements, so the resources are written out as CDK writes them; the cdk-nag tests fail if
    they drift apart.
    """
    findings = [nag.iam5_resource(task_role, "*")]
    configuration = service.cluster.execute_command_configuration
    log_configuration = configuration.log_configuration if configuration else None
    if log_configuration and log_configuration.cloud_watch_log_group:
        log_group_arn = Stack.of(service).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{log_configuration.cloud_watch_log_group.log_group_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        findings.append(nag.iam5_resource(task_role, log_group_arn))
    nag.acknowledge(
        task_role,
        findings,
        "ECS Exec (enable_ecs_exec): the ssmmessages channel actions support no resource-level "
        "permission, and session logs go to the exec log group's streams.",
    )
