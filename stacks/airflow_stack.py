"""Airflow: the scheduler (running the ECS executor), api-server behind a load balancer,
dag-processor and triggerer, all wired from the other stacks' resources."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from app_config.model import DeploymentConfig
from constructs_lib.log_retention import retention_days
from constructs_lib.airflow_service import AirflowService, InitContainer, ServiceSpec, wait_for_migrations
from constructs_lib.airflow_settings import AirflowDbSecrets, EcsExecutorSettings, SsoSettings, git_connection_secret
from constructs_lib.ingress import API_SERVER_KEEP_ALIVE_SECONDS, HEALTH_CHECK_PATH, UiLoadBalancer
from airflow_ecs_fargate.log_config_class import LOGGING_CONFIG_CLASS
from constructs_lib.monitoring import DeploymentMonitoring, MonitoredService, metrics_environment
from constructs_lib.network import API_SERVER_PORT
from cloud_assembly.names import service_name_output
from constructs_lib.service_roles import COMPONENTS as SERVICE_ROLE_IDS
from constructs_lib.workers import WORKER_LOG_STREAM_PREFIX
from constructs_lib.scaling import OfficeHours, ScaledService, api_server_autoscaling, scaled_components
from stacks.cluster_stack import API_SERVER_DISCOVERY_NAME, ClusterProps
from stacks.database_stack import DatabaseProps
from stacks.network_stack import NetworkProps


def jobs_check(job_type: str) -> list[str]:
    """Container health check: the component's job heartbeats in the DB from this host."""
    return ["CMD-SHELL", f"airflow jobs check --job-type {job_type} --local || exit 1"]


def api_server_proxy_settings(trusted_proxy_cidrs: list[str], *, https: bool) -> dict[str, str]:
    """Environment of the api-server behind the load balancer (it runs with ``--proxy-headers``).

    - ``FORWARDED_ALLOW_IPS``: uvicorn trusts ``X-Forwarded-For``/``-Proto`` only from these
      sources (uvicorn's ProxyHeadersMiddleware, networks allowed): the load balancer's subnets,
      never ``*``, so a client elsewhere in the VPC cannot pose as the proxy. With the scheme from
      ``X-Forwarded-Proto``, FAB marks its JWT cookie Secure over HTTPS.
    - ``[fab] cookie_secure``: the FAB session cookie is sent over HTTPS only, when HTTPS is on.
    - ``[api] worker_timeout``: uvicorn's keep-alive (seconds), kept above the ALB idle timeout.

    :param trusted_proxy_cidrs: IPv4 CIDRs of the load balancer's subnets.
    :param https: whether the UI is served over HTTPS.
    """
    return {
        "FORWARDED_ALLOW_IPS": ",".join(trusted_proxy_cidrs),
        "AIRFLOW__FAB__COOKIE_SECURE": str(https),
        "AIRFLOW__API__WORKER_TIMEOUT": str(API_SERVER_KEEP_ALIVE_SECONDS),
    }


#: Attempts of the admin's ``users create`` and seconds between them (see migrate_and_create_admin).
USERS_CREATE_ATTEMPTS = 3
USERS_CREATE_RETRY_SECONDS = 10


def migrate_and_create_admin(admin_username: str, admin_password: secretsmanager.ISecret,
                             create_admin: bool = True) -> InitContainer:
    """The api-server's init container: ``airflow db migrate`` (which also migrates the FAB auth
    manager's tables; concurrent runs serialize on Airflow's migration lock), then the admin user
    with the password from Secrets Manager.

    ``users create`` leaves an existing user alone, but two api-server tasks starting together
    (the first prod deploy) both find no user and both insert it; the loser fails (FAB provider
    3.10.2, ``user_command.users_create``: "Failed to create user"). So a failed ``users create``
    is tried again after :data:`USERS_CREATE_RETRY_SECONDS`, when the winner's user exists, up to
    :data:`USERS_CREATE_ATTEMPTS` times; a lasting failure still fails the container.

    With ``create_admin`` False (single sign-on without the local admin login) only the
    migration runs, and the container gets no admin password."""
    if not create_admin:
        return InitContainer("db-migrate", ["db", "migrate"])
    create = (
        f'airflow users create --role Admin --username "{admin_username}" '
        '--password "$ADMIN_PASSWORD" --firstname Airflow --lastname Admin '
        f'--email "{admin_username}@example.invalid"'
    )
    script = (
        "set -e; airflow db migrate; "
        f"for attempt in {' '.join(str(n) for n in range(1, USERS_CREATE_ATTEMPTS + 1))}; do "
        f"if {create}; then break; fi; "
        f'if [ "$attempt" -eq {USERS_CREATE_ATTEMPTS} ]; then exit 1; fi; '
        f'echo "users create failed (attempt $attempt); trying again in {USERS_CREATE_RETRY_SECONDS} s" >&2; '
        f"sleep {USERS_CREATE_RETRY_SECONDS}; done"
    )
    return InitContainer(
        "db-migrate",
        ["bash", "-c", script],
        secrets={"ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(admin_password)},
    )


def service_specs(
    scope: Construct,
    config: DeploymentConfig,
    *,
    db_secrets: AirflowDbSecrets,
    executor_environment: dict[str, str],
    trusted_proxy_cidrs: list[str],
    admin_password: secretsmanager.ISecret,
) -> tuple[ServiceSpec, ...]:
    """The four long-running Airflow components, in ``cloud_assembly.names.SERVICE_COMPONENTS``
    order: what each runs, its size and count, health check, init container, extra environment,
    secrets and port.

    :param scope: where the git bundle's connection secret is imported (see
        :func:`~constructs_lib.airflow_settings.git_connection_secret`).
    :param executor_environment: the ECS executor's settings (scheduler and api-server).
    :param trusted_proxy_cidrs: the load balancer's subnets (see :func:`api_server_proxy_settings`).
    :param admin_password: the admin's password (see :func:`migrate_and_create_admin`).
    """
    services = config.services
    return (
        ServiceSpec(
            component="scheduler",
            command=("scheduler",),
            size=services.scheduler_size,
            count=services.scheduler_count,
            health_check_command=tuple(jobs_check("SchedulerJob")),
            init=wait_for_migrations(),
            environment=executor_environment,
            secrets=db_secrets.secrets("scheduler"),
        ),
        ServiceSpec(
            component="api-server",
            command=("api-server", "--proxy-headers"),
            size=services.api_server_size,
            count=services.api_server_count,
            health_check_command=(
                "CMD-SHELL",
                f"curl --fail --silent http://localhost:{API_SERVER_PORT}{HEALTH_CHECK_PATH} || exit 1",
            ),
            init=migrate_and_create_admin(config.admin_username, admin_password,
                                          create_admin=config.sso is None or config.sso.local_admin_login),
            environment={
                **executor_environment,
                "AIRFLOW__API__WORKERS": "2",
                # A DEFERRED task's log page: a note instead of a fetch from the triggerer's port.
                "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": LOGGING_CONFIG_CLASS,
                **api_server_proxy_settings(trusted_proxy_cidrs, https=config.ingress.https),
            },
            secrets=db_secrets.secrets("api-server"),
            port=API_SERVER_PORT,
            health_check_grace=Duration.minutes(10),
            cloud_map_options=ecs.CloudMapOptions(
                name=API_SERVER_DISCOVERY_NAME,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=Duration.seconds(10),
            ),
        ),
        ServiceSpec(
            component="dag-processor",
            command=("dag-processor",),
            size=services.dag_processor_size,
            count=1,
            health_check_command=tuple(jobs_check("DagProcessorJob")),
            init=wait_for_migrations(),
            secrets={
                **db_secrets.secrets("dag-processor"),
                **git_connection_secret(scope, "GitDagsConnection", config.git_bundle),
            },
        ),
        ServiceSpec(
            component="triggerer",
            command=("triggerer",),
            size=services.triggerer_size,
            count=1,
            health_check_command=tuple(jobs_check("TriggererJob")),
            init=wait_for_migrations(),
            secrets=db_secrets.secrets("triggerer"),
        ),
    )


class AirflowStack(Stack):
    """The four long-running Airflow components as Fargate services.

    :ivar specs: the services as data (:func:`service_specs`)
    :ivar services: construct ID -> :class:`~constructs_lib.airflow_service.AirflowService`
    :ivar scheduler, api_server, dag_processor, triggerer: the same services by name
    :ivar ui: :class:`~constructs_lib.ingress.UiLoadBalancer`
    :ivar executor_settings: :class:`~constructs_lib.airflow_settings.EcsExecutorSettings`
    :ivar office_hours: :class:`~constructs_lib.scaling.OfficeHours`, or None without
        ``office_hours_scope``
    :ivar monitoring: :class:`~constructs_lib.monitoring.DeploymentMonitoring` (dashboard,
        alarms, SNS topic)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        network: NetworkProps,
        cluster: ClusterProps,
        database: DatabaseProps,
        image: ecs.ContainerImage,
        **kwargs,
    ):
        """:param network: the VPC; the services and workers run in ``network.task_subnets``.
        :param cluster: the ECS cluster, the workers' roles, the jobs, the shared settings, the
            components' task roles and the access-log bucket.
        :param database: the metadata database and the generated secrets.
        :param image: the Airflow image.
        """
        super().__init__(scope, construct_id, **kwargs)
        db_secrets = AirflowDbSecrets(database.connection_secret, database.fernet_key, database.jwt_secret,
                                      database.api_secret_key)
        # The _CMD helpers read the DB and fernet key secrets with the task role (docs/security.md).
        for component in SERVICE_ROLE_IDS:
            db_secrets.grant_read(cluster.task_roles[component])
        self.ui = self._add_load_balancer(config, network, cluster)
        self.executor_settings = self._add_worker_task_definitions(config, network, cluster, image)
        self.specs = service_specs(
            self,
            config,
            db_secrets=db_secrets,
            executor_environment=self.executor_settings.environment(),
            trusted_proxy_cidrs=self.ui.trusted_proxy_cidrs,
            admin_password=database.admin_password,
        )
        self.services = self._add_services(config, network, cluster, image, db_secrets)
        self.scheduler = self.services["Scheduler"]
        self.api_server = self.services["ApiServer"]
        self.dag_processor = self.services["DagProcessor"]
        self.triggerer = self.services["Triggerer"]
        if config.sso is not None:
            SsoSettings(config.sso).apply(self.api_server.container, self)
        self.ui.attach(self.api_server.service)
        self._add_scaling(config, database.instance)
        # Monitoring lives here, beside what it watches: the alarms need the services' and the load
        # balancer's names, which would otherwise become cross-stack exports that block a
        # service replacement.
        self.monitoring = self._add_monitoring(config, cluster.cluster, database.instance)
        self._add_outputs(config, database.admin_password)

    def _add_load_balancer(self, config: DeploymentConfig, network: NetworkProps, cluster: ClusterProps) -> UiLoadBalancer:
        """The api-server's load balancer (its URL is ``[api] base_url``), access logs in the
        cluster's access-log bucket."""
        return UiLoadBalancer(
            self,
            "Ui",
            vpc=network.vpc,
            security_group=network.security_groups.load_balancer,
            internal=config.ingress.private_only,
            certificate_arn=config.ingress.certificate_arn,
            # ELB access logging needs a concrete region (set account and region in the config).
            access_logs_bucket=cluster.access_logs_bucket if config.region else None,
            deletion_protection=config.retain_data,
            domain_name=config.ingress.domain_name,
            hosted_zone_id=config.ingress.hosted_zone_id,
            hosted_zone_name=config.ingress.hosted_zone_name,
            login_rate_limit=config.ingress.login_rate_limit,
        )

    def _add_worker_task_definitions(
        self, config: DeploymentConfig, network: NetworkProps, cluster: ClusterProps, image: ecs.ContainerImage
    ) -> EcsExecutorSettings:
        """The workers' task definitions and the ECS executor's settings that name them.

        The workers' task definition is here, with the scheduler that names its exact revision:
        a rollout or a rollback of this stack changes both together (README, "Upgrading").
        """
        vpc, subnets, workers = network.vpc, network.task_subnets, cluster.workers
        job_variables = cluster.jobs.airflow_variables(
            self,
            subnet_ids=vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
            security_group=network.security_groups.jobs,
            assign_public_ip=config.network.task_public_ip,
        )
        worker_task_definition = workers.add_task_definition(
            self, "WorkerTaskDefinition", image=image, configured_environment=job_variables
        )
        # Team queues: a task definition (and task role) of their own, launched by revision too.
        queue_task_definitions = workers.add_queue_task_definitions(
            self, image=image, configured_environment=job_variables
        )
        return EcsExecutorSettings(
            executor_class=config.executor.executor_class,
            region=self.region,
            cluster_name=cluster.cluster.cluster_name,
            task_definition=worker_task_definition.task_definition_arn,
            container_name=config.executor.worker_container_name,
            subnet_ids=vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
            security_group_ids=[network.security_groups.workers.security_group_id],
            capacity_provider=config.executor.worker_capacity_provider,
            spot_fallback_to_on_demand=config.executor.spot_fallback_to_on_demand,
            worker_queues=config.executor.worker_queues,
            queue_task_definitions={name: td.task_definition_arn for name, td in queue_task_definitions.items()},
            worker_log_group=workers.log_group.log_group_name,
            worker_log_stream_prefix=WORKER_LOG_STREAM_PREFIX,
            assign_public_ip=config.network.task_public_ip,
            scheduler_count=config.services.scheduler_count,
        )

    def _add_services(
        self,
        config: DeploymentConfig,
        network: NetworkProps,
        cluster: ClusterProps,
        image: ecs.ContainerImage,
        db_secrets: AirflowDbSecrets,
    ) -> dict[str, AirflowService]:
        """One service per row of :attr:`specs`, by construct ID."""
        environment = {
            **cluster.common_settings.environment(),
            **db_secrets.environment(),
            "AIRFLOW__API__BASE_URL": self.ui.url,
        }
        if config.monitoring.airflow_metrics:
            environment.update(metrics_environment(config.deployment_name))
        # Every component knows the executor: the dag-processor's cluster policy checks the tasks
        # of the ECS executor, and the api-server asks it for a running task's log (get_task_log).
        environment["AIRFLOW__CORE__EXECUTOR"] = config.executor.executor_class
        # A count that Application Auto Scaling owns is not in the template (see scaled_components).
        scaled = scaled_components(config)
        return {
            spec.construct_id: AirflowService.from_spec(
                self,
                spec,
                deployment=config.deployment_name,
                task_role=cluster.task_roles[spec.construct_id],
                environment=environment,
                desired_count=None if spec.construct_id in scaled else spec.count,
                cluster=cluster.cluster,
                image=image,
                subnets=network.task_subnets,
                security_group=network.security_groups.services,
                log_retention=retention_days(config.log_retention_days),
                enable_execute_command=config.enable_ecs_exec,
                read_only_root_filesystem=config.read_only_root_filesystem,
                capacity_provider=config.services.capacity_provider,
                assign_public_ip=config.network.task_public_ip,
            )
            for spec in self.specs
        }

    def _add_monitoring(
        self, config: DeploymentConfig, cluster: ecs.ICluster, database_instance: rds.IDatabaseInstance
    ) -> DeploymentMonitoring:
        """The dashboard, the alarms and their SNS topic (output ``AlarmTopicArn``)."""
        monitoring = DeploymentMonitoring(
            self,
            "Monitoring",
            deployment=config.deployment_name,
            cluster_name=cluster.cluster_name,
            services=[
                MonitoredService(spec.construct_id, self.services[spec.construct_id].service, spec.count)
                for spec in self.specs
            ],
            load_balancer=self.ui.load_balancer,
            database=database_instance,
            allocated_storage_gib=config.database.allocated_storage_gib,
            airflow_metrics=config.monitoring.airflow_metrics,
            container_insights=config.monitoring.container_insights,
            alarm_email=config.monitoring.alarm_email,
            dashboard=config.monitoring.dashboard,
            office_hours=config.office_hours,
            sleeping=scaled_components(config) if config.office_hours else frozenset(),
        )
        CfnOutput(self, "AlarmTopicArn", value=monitoring.topic.topic_arn, description="SNS topic of the alarms")
        return monitoring

    def _add_outputs(self, config: DeploymentConfig, admin_password: secretsmanager.ISecret) -> None:
        """The UI's address, the admin login and the services' names."""
        CfnOutput(self, "AirflowUiUrl", value=self.ui.url, description="Airflow UI")
        CfnOutput(self, "AdminUsername", value=config.admin_username, description="Airflow admin login")
        CfnOutput(
            self,
            "AdminPasswordSecretArn",
            value=admin_password.secret_arn,
            description="Secrets Manager secret holding the admin password "
            "(aws secretsmanager get-secret-value --secret-id <arn> --query SecretString)",
        )
        # Read by the operations CLI (operations/airflow_ecs_ops/deployment.py, REQUIRED_OUTPUTS).
        for component in self.services.values():
            CfnOutput(
                self,
                service_name_output(component.container.container_name),
                value=component.service.service_name,
                description=f"ECS service of the {component.container.container_name}",
            )

    def _add_scaling(self, config: DeploymentConfig, database_instance: rds.IDatabaseInstance) -> None:
        """Automatic scaling of the api-server and office hours, as configured (README "Operating")."""
        auto, office = config.api_server_autoscaling, config.office_hours
        self.office_hours = None
        scaled: dict[str, tuple[ScaledService, ecs.ScalableTaskCount]] = {}
        if auto or office:
            count = config.services.api_server_count
            bounds = (auto.min_count, auto.max_count) if auto else (count, count)
            scalable = self.api_server.service.auto_scale_task_count(min_capacity=bounds[0], max_capacity=bounds[1])
            if auto:
                api_server_autoscaling(scalable, auto, self.ui.target_group)
            scaled["ApiServer"] = (ScaledService(self.api_server.service, *bounds), scalable)
        if office is None:
            return
        if office.scope == "environment":
            for spec in self.specs:
                if spec.construct_id in scaled:
                    continue  # the api-server, above
                service = self.services[spec.construct_id].service
                scalable = service.auto_scale_task_count(min_capacity=spec.count, max_capacity=spec.count)
                scaled[spec.construct_id] = (ScaledService(service, spec.count, spec.count), scalable)
        self.office_hours = OfficeHours(
            self,
            "OfficeHours",
            config=office,
            services=scaled,
            database=database_instance if office.scope == "environment" else None,
        )
