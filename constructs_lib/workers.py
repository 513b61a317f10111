"""What the ECS executor launches: the workers' task definition and its two IAM roles."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app_config.model import TaskSize
from constructs_lib.airflow_service import add_writable_volumes, hardened_container_options, mount_writable_volumes
from constructs_lib.buckets import grant_task_logs


#: awslogs stream prefix of the workers: streams are ``worker/<container name>/<ECS task id>``.
WORKER_LOG_STREAM_PREFIX = "worker"


class WorkerTaskDefinition(Construct):
    """The Fargate task definition of a worker: one Airflow task per ECS task.

    The executor overrides the container's command with
    ``python -m airflow.sdk.execution_time.execute_workload --json-string ...``; the container
    needs the Execution API URL, remote logging and the DAG bundle, nothing from the DB.

    Roles:

    - task role (``task_role``): reads and writes (never deletes) task logs under ``task-logs/``
      in the log bucket (:func:`~constructs_lib.buckets.grant_task_logs`; one role for every DAG,
      so not per-DAG prefixes) and reads the DAG bucket when given; nothing else by default (grant more with
      ``task_role.add_to_principal_policy`` or ``bucket.grant_read(task_role)``).
    - execution role (``execution_role``): what ECS itself needs to start the task: pull the
      image (ECR) and write the container's stdout to CloudWatch Logs (create log stream, put
      log events), and read the ECS ``secrets`` given (the git bundle's connection,
      ``constructs_lib.airflow_settings.git_connection_secret``).

    The executor runs the family's latest ACTIVE revision, so the family is named per deployment
    (``family``, e.g. ``airflow-dev-worker``): two deployments in one account and region never
    run each other's revisions.

    :ivar task_definition: ``ecs.FargateTaskDefinition``
    :ivar container: ``ecs.ContainerDefinition`` named ``container_name``
    :ivar log_group: ``logs.LogGroup`` of the workers' awslogs output
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ecs.ContainerImage,
        family: str,
        container_name: str,
        size: TaskSize,
        environment: dict[str, str],
        task_logs_bucket: s3.IBucket,
        dags_bucket: s3.IBucket | None,
        log_retention: logs.RetentionDays,
        retain: bool,
        read_only_root_filesystem: bool = True,
        secrets: dict[str, ecs.Secret] | None = None,
    ):
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Airflow worker tasks: what the DAG code may do in AWS",
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="ECS agent for Airflow worker tasks: image pull and CloudWatch Logs",
        )
        self.log_group.grant_write(self.execution_role)
        grant_task_logs(task_logs_bucket, self.task_role, write=True)
        if dags_bucket is not None:
            dags_bucket.grant_read(self.task_role)
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=family,
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            task_role=self.task_role,
            execution_role=self.execution_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.container = self.task_definition.add_container(
            "Worker",
            container_name=container_name,
            image=image,
            essential=True,
            environment=environment,
            secrets=secrets or None,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=WORKER_LOG_STREAM_PREFIX, log_group=self.log_group),
            **hardened_container_options(read_only_root_filesystem),
        )
        add_writable_volumes(self.task_definition)
        mount_writable_volumes(self.container)
        self.container_name = container_name

    def grant_read_live_logs(self, role: iam.IRole) -> None:
        """Let ``role`` (the api-server's) read the workers' log streams, and nothing else.

        ``logs:GetLogEvents`` on ``log-group:<workers' group>:log-stream:worker/<container>/*``
        only: the executor's ``get_task_log`` reads a RUNNING task's awslogs stream so the UI shows
        its lines so far. Resource form: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
        """
        stream_arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self.log_group.log_group_name}:log-stream:{WORKER_LOG_STREAM_PREFIX}/{self.container_name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="ReadWorkerLiveLogs", actions=["logs:GetLogEvents"], resources=[stream_arn])
        )

    def grant_launch(self, role: iam.IRole, cluster: ecs.ICluster) -> None:
        """Let ``role`` (the scheduler's) run and track workers as the ECS executor does.

        RunTask on any revision of this task definition's family in ``cluster`` only;
        DescribeTasks and StopTask on the cluster's tasks; DescribeClusters on the cluster;
        DescribeTaskDefinition on ``*`` (the executor reads which containers of a worker's task
        definition are essential; the action supports no resource-level permission, so ``*`` is
        the narrowest resource IAM accepts); and iam:PassRole on exactly the workers' task and
        execution roles, only to ECS tasks.
        Actions and resources: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
        """
        stack = Stack.of(self)
        family_arn = stack.format_arn(
            service="ecs", resource="task-definition", resource_name=f"{self.task_definition.family}:*"
        )
        task_arn = stack.format_arn(service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RunWorkerTasks",
                actions=["ecs:RunTask"],
                resources=[family_arn],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TrackWorkerTasks", actions=["ecs:DescribeTasks", "ecs:StopTask"], resources=[task_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="DescribeCluster", actions=["ecs:DescribeClusters"], resources=[cluster.cluster_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeWorkerTaskDefinitions", actions=["ecs:DescribeTaskDefinition"], resources=["*"]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassWorkerRoles",
                actions=["iam:PassRole"],
                resources=[self.task_role.role_arn, self.execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
