"""Cluster: the ECS cluster, the workers' roles and log group (their task definition is in the
Airflow stack, with the scheduler that launches it), and the task-log bucket."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from app_config.model import DeploymentConfig
from constructs_lib.log_retention import retention_days
from constructs_lib.airflow_settings import (
    AirflowCommonSettings,
    dag_bundle_config,
    execution_api_url,
    git_connection_secret,
    secrets_backend_environment,
    secrets_prefixes,
)
from constructs_lib import nag
from constructs_lib.buckets import secure_bucket
from constructs_lib.ecs_jobs import EcsJobs
from constructs_lib.network import API_SERVER_PORT
from constructs_lib.monitoring import metrics_environment
from constructs_lib.service_linked_role import EcsServiceLinkedRole
from constructs_lib.service_roles import AirflowServiceRoles, grant_read_connections_and_variables
from constructs_lib.workers import WorkerTaskDefinition
from stacks.network_stack import NetworkProps

#: Cloud Map name of the api-server; workers reach the Execution API at this private DNS name.
API_SERVER_DISCOVERY_NAME = "api-server"
#: Days before task logs in S3 expire.
TASK_LOG_EXPIRY_DAYS = 90


@dataclass(frozen=True)
class ClusterProps:
    """What the Cluster stack hands to the Airflow stack (as CDK's ``*Props``).

    :ivar cluster: the ECS cluster the services and the workers run in.
    :ivar workers: :class:`~constructs_lib.workers.WorkerTaskDefinition`, the workers' roles and
        log group (their task definitions are the Airflow stack's).
    :ivar jobs: :class:`~constructs_lib.ecs_jobs.EcsJobs`, the ECS jobs DAGs run.
    :ivar common_settings: :class:`~constructs_lib.airflow_settings.AirflowCommonSettings`, the
        settings the services share with the workers.
    :ivar task_roles: construct ID (``Scheduler``, ``ApiServer``, ...) -> the component's task role.
    :ivar access_logs_bucket: the bucket of S3 server access logs and ALB access logs.
    """

    cluster: ecs.ICluster
    workers: WorkerTaskDefinition
    jobs: EcsJobs
    common_settings: AirflowCommonSettings
    task_roles: Mapping[str, iam.IRole]
    access_logs_bucket: s3.IBucket


class ClusterStack(Stack):
    """The ECS cluster (Container Insights, FARGATE and FARGATE_SPOT capacity providers, a private
    Cloud Map namespace) and what the executor launches into it.

    :ivar cluster: ``ecs.Cluster``
    :ivar namespace: ``servicediscovery.PrivateDnsNamespace`` (``<project>-<stage>.internal``)
    :ivar workers: :class:`~constructs_lib.workers.WorkerTaskDefinition`
    :ivar task_logs_bucket: ``s3.Bucket`` of remote task logs (prefix ``task-logs/``)
    :ivar access_logs_bucket: ``s3.Bucket`` of S3 server access logs and ALB access logs
    :ivar dags_bucket: ``s3.Bucket`` of DAGs (prefix ``dags/``) with ``dag_bundle=s3``, else None
        (the bucket exists in every configuration, unused without ``dag_bundle=s3``)
    :ivar service_roles: :class:`~constructs_lib.service_roles.AirflowServiceRoles`, the task
        roles of the Airflow components (the scheduler's may launch workers)
    :ivar common_settings: :class:`~constructs_lib.airflow_settings.AirflowCommonSettings`
        shared with the services
    :ivar jobs: :class:`~constructs_lib.ecs_jobs.EcsJobs`, the ECS jobs DAGs run and their data
        bucket; the workers may run them and find them in Airflow variables
    :ivar props: :class:`ClusterProps`, what the Airflow stack uses of the above
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        network: NetworkProps,
        image: ecs.ContainerImage,
        **kwargs,
    ):
        """:param network: the VPC; the ECS jobs run where the workers run (``network.task_subnets``,
        public subnets with public IPs in lean) in ``network.security_groups.jobs``.
        :param image: the Airflow image (the workers' transitional task definition).
        """
        super().__init__(scope, construct_id, **kwargs)
        retention = retention_days(config.log_retention_days)
        self._add_buckets(config)
        namespace_name = self._add_cluster(config, network.vpc, retention)
        self.common_settings = AirflowCommonSettings(
            region=self.region,
            execution_api_url=execution_api_url(namespace_name, API_SERVER_DISCOVERY_NAME, API_SERVER_PORT),
            task_logs_bucket_name=self.task_logs_bucket.bucket_name,
            dag_bundle_config_list=dag_bundle_config(
                config.dag_bundle, self.dags_bucket.bucket_name if self.dags_bucket else None, config.git_bundle
            ),
            secrets_backend=tuple(secrets_backend_environment(config.project_name, config.stage).items())
            if config.secrets_backend == "secrets-manager" else (),
        )
        self.jobs = self._add_jobs(config, network.vpc, retention)
        self.workers = self._add_workers(config, network, image, retention)
        self.service_roles = AirflowServiceRoles(
            self, "ServiceRoles", task_logs_bucket=self.task_logs_bucket, dags_bucket=self.dags_bucket
        )
        self._grant_services(config)
        self._add_outputs(config)
        self._grant_jobs(config)
        self.props = ClusterProps(
            cluster=self.cluster,
            workers=self.workers,
            jobs=self.jobs,
            common_settings=self.common_settings,
            task_roles=self.service_roles.roles,
            access_logs_bucket=self.access_logs_bucket,
        )

    def _add_buckets(self, config: DeploymentConfig) -> None:
        """The access-log, task-log and DAG buckets (:attr:`access_logs_bucket`,
        :attr:`task_logs_bucket`, :attr:`dags_bucket`)."""
        self.access_logs_bucket = secure_bucket(
            self,
            "AccessLogs",
            retain=config.retain_data,
            expire_after_days=config.log_retention_days,
            server_access_logs=None,
            versioned=False,
        )
        self.task_logs_bucket = secure_bucket(
            self,
            "TaskLogs",
            retain=config.retain_data,
            expire_after_days=TASK_LOG_EXPIRY_DAYS,
            server_access_logs=self.access_logs_bucket,
            server_access_logs_prefix="s3/task-logs/",
        )
        # The DAG bucket exists in every configuration, and its name is always exported: with
        # dag_bundle=s3 the Airflow stack imports it, and a bucket (or export) that came and went
        # with dag_bundle would be deleted, or stop the deploy ("export ... in use"), when a
        # deployment switches back to the image's DAGs. An empty bucket costs nothing.
        dags_bucket = secure_bucket(
            self,
            "Dags",
            retain=config.retain_data,
            expire_after_days=None,
            server_access_logs=self.access_logs_bucket,
            server_access_logs_prefix="s3/dags/",
        )
        self.export_value(dags_bucket.bucket_name)
        self.dags_bucket = dags_bucket if config.dag_bundle == "s3" else None

    def _add_cluster(self, config: DeploymentConfig, vpc: ec2.IVpc, retention: logs.RetentionDays) -> str:
        """The ECS cluster, its ECS Exec log group, ECS's service-linked role and the Cloud Map
        namespace; return the namespace's name (``<project>-<stage>.internal``)."""
        exec_logs = None
        if config.enable_ecs_exec:
            exec_logs = logs.LogGroup(
                self,
                "ExecSessionLogs",
                retention=retention,
                removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
            )
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED
            if config.monitoring.container_insights
            else ecs.ContainerInsights.DISABLED,
            enable_fargate_capacity_providers=True,
            execute_command_configuration=ecs.ExecuteCommandConfiguration(
                logging=ecs.ExecuteCommandLogging.OVERRIDE,
                log_configuration=ecs.ExecuteCommandLogConfiguration(cloud_watch_log_group=exec_logs),
            )
            if exec_logs
            else None,
        )
        if not config.monitoring.container_insights:
            nag.acknowledge(self.cluster, "AwsSolutions-ECS4", nag.ECS4_OFF)
        self.exec_session_logs = exec_logs
        # A brand-new account may not have ECS's service-linked role yet; create it first.
        self.service_linked_role = EcsServiceLinkedRole(
            self, "EcsServiceLinkedRole", log_retention=retention, retain=config.retain_data
        )
        self.cluster.node.add_dependency(self.service_linked_role.resource)
        namespace_name = f"{config.deployment_name}.internal"
        self.namespace = self.cluster.add_default_cloud_map_namespace(
            name=namespace_name, vpc=vpc, type=servicediscovery.NamespaceType.DNS_PRIVATE
        )
        return namespace_name

    def _add_jobs(self, config: DeploymentConfig, vpc: ec2.IVpc, retention: logs.RetentionDays) -> EcsJobs:
        """The ECS jobs DAGs run, their cluster and data bucket (both exported)."""
        jobs = EcsJobs(
            self,
            "Jobs",
            jobs=config.jobs,
            vpc=vpc,
            deployment_name=config.deployment_name,
            access_logs_bucket=self.access_logs_bucket,
            log_retention=retention,
            retain=config.retain_data,
            read_only_root_filesystem=config.read_only_root_filesystem,
            container_insights=config.monitoring.container_insights,
        )
        # The jobs cluster and the data bucket exist in every configuration, and so do their
        # exports: the workers' task definition (Airflow stack) names them while jobs are
        # configured, and an export that came and went with the jobs would stop the deploy that
        # removes the last job ("export ... in use"). Job families and log groups are physical names.
        jobs.cluster.node.add_dependency(self.service_linked_role.resource)
        self.export_value(jobs.cluster.cluster_name)
        self.export_value(jobs.data_bucket.bucket_name)
        return jobs

    def _add_workers(
        self,
        config: DeploymentConfig,
        network: NetworkProps,
        image: ecs.ContainerImage,
        retention: logs.RetentionDays,
    ) -> WorkerTaskDefinition:
        """The workers' roles and log group, and the transitional task definition below."""
        workers = WorkerTaskDefinition(
            self,
            "Workers",
            family=f"{config.deployment_name}-worker",
            container_name=config.executor.worker_container_name,
            size=config.executor.worker_size,
            environment={
                **self.common_settings.worker_environment(),
                **(metrics_environment(config.deployment_name) if config.monitoring.airflow_metrics else {}),
            },
            secrets=git_connection_secret(self, "GitDagsConnection", config.git_bundle),
            task_logs_bucket=self.task_logs_bucket,
            dags_bucket=self.dags_bucket,
            log_retention=retention,
            retain=config.retain_data,
            read_only_root_filesystem=config.read_only_root_filesystem,
            team_queues=config.executor.worker_queues,
            data_bucket=self.jobs.data_bucket,
        )
        # Until the next release: the workers' task definition that used to be here stays, retained,
        # so the family keeps an ACTIVE revision for the schedulers that still launch by family
        # while the first deploy of the new layout runs (README, "Upgrading").
        workers.add_transition_task_definition(
            image=image,
            configured_environment=self.jobs.airflow_variables(
                self,
                subnet_ids=network.vpc.select_subnets(subnet_type=network.task_subnets.subnet_type).subnet_ids
                if config.jobs else [],
                security_group=network.security_groups.jobs,
                assign_public_ip=config.network.task_public_ip,
            ),
        )
        return workers

    def _grant_services(self, config: DeploymentConfig) -> None:
        """What the components' task roles may do with the workers and the secrets backend."""
        self.workers.grant_launch(self.service_roles.roles["Scheduler"], self.cluster)
        self.workers.grant_read_live_logs(self.service_roles.roles["ApiServer"])
        if config.secrets_backend == "secrets-manager":
            prefixes = secrets_prefixes(config.project_name, config.stage)
            for role in (*self.service_roles.roles.values(), self.workers.task_role, *self.workers.queue_roles.values()):
                grant_read_connections_and_variables(role, prefixes)

    def _add_outputs(self, config: DeploymentConfig) -> None:
        """The cluster's name and the workers' family and container name.

        Read by the operations CLI (operations/airflow_ecs_ops/deployment.py, REQUIRED_OUTPUTS).
        """
        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name, description="ECS cluster")
        CfnOutput(
            self,
            "WorkerTaskDefinitionFamily",
            value=self.workers.family,
            description="Task definition family of the executor's worker tasks",
        )
        CfnOutput(
            self,
            "WorkerContainerName",
            value=config.executor.worker_container_name,
            description="Container name in the workers' task definition",
        )

    def _grant_jobs(self, config: DeploymentConfig) -> None:
        """Which worker roles may run which jobs, and the triggerer's wait for deferred jobs.

        PassRole per job where the DAG says which job: a job a team queue names is run by that
        queue's tasks only (their own role); the other jobs by the workers' role.
        """
        claimed = {job for queue in config.executor.worker_queues for job in queue.jobs}
        self.jobs.grant_run(self.workers.task_role, [job.name for job in config.jobs if job.name not in claimed])
        for queue in config.executor.worker_queues:
            if queue.name in self.workers.queue_roles:
                self.jobs.grant_run(self.workers.queue_roles[queue.name], queue.jobs)
        # Deferrable jobs (EcsRunTaskOperator(deferrable=True)): the triggerer waits for them.
        self.jobs.grant_follow_deferred(self.service_roles.roles["Triggerer"])
