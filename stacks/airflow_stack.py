"""Airflow: the scheduler (running the ECS executor), api-server behind a load balancer,
dag-processor and triggerer, all wired from the other stacks' resources."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from app_config.model import DeploymentConfig
from constructs_lib.log_retention import retention_days
from constructs_lib.airflow_service import AirflowService, InitContainer, wait_for_migrations
from constructs_lib.airflow_settings import AirflowCommonSettings, AirflowDbSecrets, EcsExecutorSettings
from constructs_lib.ingress import HEALTH_CHECK_PATH, UiLoadBalancer
from constructs_lib.monitoring import DeploymentMonitoring, MonitoredService, metrics_environment
from constructs_lib.network import API_SERVER_PORT, AirflowSecurityGroups
from constructs_lib.workers import WorkerTaskDefinition
from stacks.cluster_stack import API_SERVER_DISCOVERY_NAME


def jobs_check(job_type: str) -> list[str]:
    """Container health check: the component's job heartbeats in the DB from this host."""
    return ["CMD-SHELL", f"airflow jobs check --job-type {job_type} --local || exit 1"]


def migrate_and_create_admin(admin_username: str, admin_password: secretsmanager.ISecret) -> InitContainer:
    """The api-server's init container: ``airflow db migrate`` (which also migrates the FAB auth
    manager's tables; concurrent runs serialize on Airflow's migration lock), then the admin user
    with the password from Secrets Manager (``users create`` leaves an existing user alone)."""
    script = (
        "set -e; airflow db migrate; "
        f'airflow users create --role Admin --username "{admin_username}" '
        '--password "$ADMIN_PASSWORD" --firstname Airflow --lastname Admin '
        f'--email "{admin_username}@example.invalid"'
    )
    return InitContainer(
        "db-migrate",
        ["bash", "-c", script],
        secrets={"ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(admin_password)},
    )


class AirflowStack(Stack):
    """The four long-running Airflow components as Fargate services.

    :ivar scheduler, api_server, dag_processor, triggerer:
        :class:`~constructs_lib.airflow_service.AirflowService`
    :ivar ui: :class:`~constructs_lib.ingress.UiLoadBalancer`
    :ivar executor_settings: :class:`~constructs_lib.airflow_settings.EcsExecutorSettings`
    :ivar monitoring: :class:`~constructs_lib.monitoring.DeploymentMonitoring` (dashboard,
        alarms, SNS topic), or None when no ``database_instance`` is given
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_groups: AirflowSecurityGroups,
        cluster: ecs.ICluster,
        image: ecs.ContainerImage,
        workers: WorkerTaskDefinition,
        common_settings: AirflowCommonSettings,
        task_roles: dict[str, iam.IRole],
        access_logs_bucket: s3.IBucket,
        database_secret: secretsmanager.ISecret,
        fernet_key: secretsmanager.ISecret,
        jwt_secret: secretsmanager.ISecret,
        api_secret_key: secretsmanager.ISecret,
        admin_password: secretsmanager.ISecret,
        database_instance: rds.IDatabaseInstance | None = None,
        **kwargs,
    ):
        super().__init__(scope, construct_id, **kwargs)
        retention = retention_days(config.log_retention_days)
        db_secrets = AirflowDbSecrets(database_secret, fernet_key, jwt_secret, api_secret_key)
        self.ui = UiLoadBalancer(
            self,
            "Ui",
            vpc=vpc,
            security_group=security_groups.load_balancer,
            internal=config.ingress.private_only,
            certificate_arn=config.ingress.certificate_arn,
            # ELB access logging needs a concrete region (set account and region in the config).
            access_logs_bucket=access_logs_bucket if config.region else None,
            deletion_protection=config.retain_data,
        )
        base_env = {
            **common_settings.environment(),
            **db_secrets.environment(),
            "AIRFLOW__API__BASE_URL": self.ui.url,
        }
        deployment = f"{config.project_name}-{config.stage}"
        if config.monitoring.airflow_metrics:
            base_env.update(metrics_environment(deployment))
        service_kwargs = dict(
            cluster=cluster,
            image=image,
            secrets=db_secrets.secrets(),
            subnets=subnets,
            security_group=security_groups.services,
            log_retention=retention,
            enable_execute_command=config.enable_ecs_exec,
            read_only_root_filesystem=config.read_only_root_filesystem,
            capacity_provider=config.services.capacity_provider,
            assign_public_ip=config.network.task_public_ip,
        )

        self.executor_settings = EcsExecutorSettings(
            executor_class=config.executor.executor_class,
            region=self.region,
            cluster_name=cluster.cluster_name,
            task_definition_family=workers.task_definition.family,
            container_name=config.executor.worker_container_name,
            subnet_ids=vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
            security_group_ids=[security_groups.workers.security_group_id],
            capacity_provider=config.executor.worker_capacity_provider,
            spot_fallback_to_on_demand=config.executor.spot_fallback_to_on_demand,
            assign_public_ip=config.network.task_public_ip,
        )
        self.scheduler = AirflowService(
            self,
            "Scheduler",
            task_role=task_roles["Scheduler"],
            component="scheduler",
            command=["scheduler"],
            size=config.services.scheduler_size,
            desired_count=config.services.scheduler_count,
            environment={**base_env, **self.executor_settings.environment()},
            health_check_command=jobs_check("SchedulerJob"),
            init=wait_for_migrations(),
            **service_kwargs,
        )

        api_init = migrate_and_create_admin(config.admin_username, admin_password)
        self.api_server = AirflowService(
            self,
            "ApiServer",
            task_role=task_roles["ApiServer"],
            component="api-server",
            command=["api-server"],
            size=config.services.api_server_size,
            desired_count=config.services.api_server_count,
            environment={**base_env, "AIRFLOW__API__WORKERS": "2"},
            health_check_command=[
                "CMD-SHELL",
                f"curl --fail --silent http://localhost:{API_SERVER_PORT}{HEALTH_CHECK_PATH} || exit 1",
            ],
            init=api_init,
            port=API_SERVER_PORT,
            health_check_grace=Duration.minutes(10),
            cloud_map_options=ecs.CloudMapOptions(
                name=API_SERVER_DISCOVERY_NAME,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=Duration.seconds(10),
            ),
            **service_kwargs,
        )
        self.ui.attach(self.api_server.service)

        self.dag_processor = AirflowService(
            self,
            "DagProcessor",
            task_role=task_roles["DagProcessor"],
            component="dag-processor",
            command=["dag-processor"],
            size=config.services.dag_processor_size,
            desired_count=1,
            environment=base_env,
            health_check_command=jobs_check("DagProcessorJob"),
            init=wait_for_migrations(),
            **service_kwargs,
        )
        self.triggerer = AirflowService(
            self,
            "Triggerer",
            task_role=task_roles["Triggerer"],
            component="triggerer",
            command=["triggerer"],
            size=config.services.triggerer_size,
            desired_count=1,
            environment=base_env,
            health_check_command=jobs_check("TriggererJob"),
            init=wait_for_migrations(),
            **service_kwargs,
        )

        # Monitoring lives here, beside what it watches: the alarms need the services' and the load
        # balancer's names, which would otherwise become cross-stack exports that block a
        # service replacement.
        self.monitoring: DeploymentMonitoring | None = None
        if database_instance is not None:
            self.monitoring = DeploymentMonitoring(
                self,
                "Monitoring",
                deployment=deployment,
                cluster_name=cluster.cluster_name,
                services=[
                    MonitoredService("Scheduler", self.scheduler.service, config.services.scheduler_count),
                    MonitoredService("ApiServer", self.api_server.service, config.services.api_server_count),
                    MonitoredService("DagProcessor", self.dag_processor.service, 1),
                    MonitoredService("Triggerer", self.triggerer.service, 1),
                ],
                load_balancer=self.ui.load_balancer,
                database=database_instance,
                allocated_storage_gib=config.database.allocated_storage_gib,
                airflow_metrics=config.monitoring.airflow_metrics,
                container_insights=config.monitoring.container_insights,
                alarm_email=config.monitoring.alarm_email,
                dashboard=config.monitoring.dashboard,
            )
            CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn, description="SNS topic of the alarms")

        CfnOutput(self, "AirflowUiUrl", value=self.ui.url, description="Airflow UI")
        CfnOutput(self, "AdminUsername", value=config.admin_username, description="Airflow admin login")
        CfnOutput(
            self,
            "AdminPasswordSecretArn",
            value=admin_password.secret_arn,
            description="Secrets Manager secret holding the admin password "
            "(aws secretsmanager get-secret-value --secret-id <arn> --query SecretString)",
        )
