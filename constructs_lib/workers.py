"""What the ECS executor launches: the workers' task definition and its two IAM roles."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app_config.model import TaskSize, WorkerQueue
from constructs_lib import nag
from constructs_lib.airflow_service import add_writable_volumes, hardened_container_options, mount_writable_volumes
from constructs_lib.buckets import grant_task_logs
from constructs_lib.service_roles import grant_get_secret_values
from cloud_assembly.names import team_queue_log_stream_prefix


#: awslogs stream prefix of the workers: streams are ``worker/<container name>/<ECS task id>``.
WORKER_LOG_STREAM_PREFIX = "worker"


class WorkerTaskDefinition(Construct):
    """The workers' stateful half (log group, task and execution roles) and their task definition.

    The roles and the log group live where this construct is created (the Cluster stack); the
    task definition itself is created by :meth:`add_task_definition` in the stack of the scheduler
    that launches it (the Airflow stack), and the scheduler names that exact revision
    (``Ref`` = the revision's ARN): every worker runs the image of the scheduler that launched it,
    and a rollback of the Airflow stack brings the workers back with the scheduler (README,
    "Upgrading"). The family stays ``family`` (e.g. ``airflow-dev-worker``, named per deployment:
    two deployments in one account and region never run each other's revisions), so the family
    always has an ACTIVE revision for a scheduler that still launches by family.

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

    Parameters: ``environment`` is the container's environment in every configuration;
    :meth:`add_task_definition` adds the entries that depend on the configuration (the ECS jobs'
    Airflow variables), rendered in the task definition's own stack from physical names and from
    resources that exist in every configuration (:mod:`constructs_lib.ecs_jobs`): no export comes
    and goes with a job, and a changed job changes the task definition, so the next deploy
    registers a revision with it.

    Team queues (``worker_queues`` entries that name ``s3_prefixes``, ``secrets_prefixes``,
    ``managed_policy_arns`` or ``jobs``; issue 19 item 4) get a task role of their own here
    (``queue_roles``), named ``<family>-<queue>`` (e.g. ``airflow-dev-worker-team-a``), and a task
    definition of that family in the scheduler's stack (:meth:`add_queue_task_definitions`), which
    names the role by that physical name: no export comes and goes with a queue. A team role gets
    what the workers' role gets from this construct (task logs, the DAG bucket) plus its own:
    read and put (never delete) under its prefixes of ``data_bucket``, ``secretsmanager:GetSecretValue``
    on its Secrets Manager prefixes, its managed policies; the ECS jobs it names are granted where
    the jobs are (:meth:`~constructs_lib.ecs_jobs.EcsJobs.grant_run`). The execution role and the
    log group (stream prefix ``worker``) are shared: the executor reads a running task's log the
    same way for every queue.

    :ivar family: ``str``, the task definition family
    :ivar environment: ``dict[str, str]``, the worker container's environment
    :ivar log_group: ``logs.LogGroup`` of the workers' awslogs output
    :ivar task_definition: ``ecs.FargateTaskDefinition`` once :meth:`add_task_definition` ran
    :ivar container: ``ecs.ContainerDefinition`` named ``container_name``, idem
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
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
        team_queues: tuple[WorkerQueue, ...] = (),
        data_bucket: s3.IBucket | None = None,
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
        nag.acknowledge(self.execution_role, "AwsSolutions-IAM5[Resource::*]", nag.ECR_AUTH)
        grant_task_logs(task_logs_bucket, self.task_role, write=True)
        if dags_bucket is not None:
            nag.acknowledge_statements(self.task_role, dags_bucket.grant_read(self.task_role).principal_statements, nag.DAG_BUCKET_READ)
        self.family = family
        self.team_queues = {queue.name: queue for queue in team_queues if queue.is_team}
        self.queue_roles: dict[str, iam.Role] = {}
        if self.team_queues:
            queues_scope = Construct(self, "Queues")
            for name, queue in self.team_queues.items():
                self.queue_roles[name] = self._team_role(
                    queues_scope, queue, task_logs_bucket=task_logs_bucket, dags_bucket=dags_bucket, data_bucket=data_bucket
                )
        self.container_name = container_name
        self.size = size
        self.environment = environment
        self.secrets = secrets
        self.read_only_root_filesystem = read_only_root_filesystem
        self.task_definition: ecs.FargateTaskDefinition | None = None
        self.container: ecs.ContainerDefinition | None = None

    def queue_family(self, queue: str) -> str:
        """The task definition family and task role name of team queue ``queue``: ``<family>-<queue>``."""
        return f"{self.family}-{queue}"

    def _team_role(
        self,
        scope: Construct,
        queue: WorkerQueue,
        *,
        task_logs_bucket: s3.IBucket,
        dags_bucket: s3.IBucket | None,
        data_bucket: s3.IBucket | None,
    ) -> iam.Role:
        role = iam.Role(
            scope,
            queue.name,
            role_name=self.queue_family(queue.name),
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"Airflow worker tasks of queue {queue.name}: what its DAG code may do in AWS",
        )
        grant_task_logs(task_logs_bucket, role, write=True)
        if dags_bucket is not None:
            nag.acknowledge_statements(role, dags_bucket.grant_read(role).principal_statements, nag.DAG_BUCKET_READ)
        if queue.s3_prefixes and data_bucket is None:
            raise ValueError(f"worker_queues: queue {queue.name!r}: s3_prefixes need the data bucket")
        for prefix in queue.s3_prefixes:
            grants = [data_bucket.grant_read(role, f"{prefix}*"), data_bucket.grant_put(role, f"{prefix}*")]
            nag.acknowledge_statements(
                role,
                [statement for grant in grants for statement in grant.principal_statements],
                "A team queue's role reads and puts (never deletes) under the data bucket prefixes its "
                "worker_queues entry names; object keys below a prefix are the DAGs' own.",
            )
        if queue.secrets_prefixes:
            grant_get_secret_values(
                role,
                "ReadTeamSecrets",
                list(queue.secrets_prefixes),
                "A team queue's role reads (GetSecretValue) the Secrets Manager names under the prefixes "
                "its worker_queues entry names; every secret ARN ends in a random suffix.",
            )
        for index, arn in enumerate(queue.managed_policy_arns):
            policy = iam.ManagedPolicy.from_managed_policy_arn(role, f"ManagedPolicy{index}", arn)
            role.add_managed_policy(policy)
            if ":iam::aws:policy/" in arn:  # AwsSolutions-IAM4 names AWS managed policies only
                nag.acknowledge(
                    role,
                    nag.managed_policy_finding(role, policy),
                    "An AWS managed policy the deployment's operator attached to a team queue's role by "
                    "naming it in worker_queues (managed_policy_arns).",
                )
        return role

    def add_queue_task_definitions(
        self,
        scope: Construct,
        *,
        image: ecs.ContainerImage,
        configured_environment: dict[str, str] | None = None,
    ) -> dict[str, ecs.FargateTaskDefinition]:
        """Create each team queue's task definition in ``scope`` (the scheduler's stack): family and
        task role ``<family>-<queue>`` (the role by its physical name, no cross-stack reference),
        the queue's size, the same container, environment, execution role and log group as
        :meth:`add_task_definition` (log streams under the queue's own prefix,
        :func:`~cloud_assembly.names.team_queue_log_stream_prefix`), retained for the same reason.

        :returns: queue name -> task definition (its ``Ref`` is the revision the executor launches
            for the queue: ``[aws_ecs_executor] queues``, ``task_definition``).
        """
        if not self.team_queues:
            return {}
        environment = {**self.environment, **(configured_environment or {})}
        holder = Construct(scope, "QueueWorkers")
        stack = Stack.of(scope)
        definitions = {}
        for name, queue in self.team_queues.items():
            role = iam.Role.from_role_arn(
                holder,
                f"{name}Role",
                stack.format_arn(service="iam", region="", resource="role", resource_name=self.queue_family(name)),
                mutable=False,
            )
            definitions[name], _ = self._task_definition(
                holder, name, image, environment, family=self.queue_family(name), task_role=role, size=queue.size,
                stream_prefix=team_queue_log_stream_prefix(name),
            )
        return definitions

    def add_task_definition(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ecs.ContainerImage,
        configured_environment: dict[str, str] | None = None,
    ) -> ecs.FargateTaskDefinition:
        """Create the workers' task definition in ``scope`` (the scheduler's stack) and return it.

        Its ``Ref`` is the revision's ARN (``...:task-definition/<family>:<revision>``), which
        changes on every image or setting change: reference it only from the same stack (a
        cross-stack export of it would change value on every deploy and be refused while
        imported). ``DeletionPolicy: Retain``: CloudFormation replaces the task definition on
        every change and would deregister the old revision in its cleanup, while a task launched
        from it may still be queued for a retry by an old scheduler; a retained revision stays
        ACTIVE (ECS keeps ACTIVE revisions at no cost).

        :param configured_environment: entries added to ``environment`` that exist only under
            some configurations (the ECS jobs' variables, rendered for ``scope``'s stack by
            :meth:`~constructs_lib.ecs_jobs.EcsJobs.airflow_variables`).
        :raises ValueError: called twice.
        """
        if self.task_definition is not None:
            raise ValueError("the workers' task definition is already created")
        environment = {**self.environment, **(configured_environment or {})}
        self.task_definition, self.container = self._task_definition(scope, construct_id, image, environment)
        return self.task_definition

    def add_transition_task_definition(
        self, *, image: ecs.ContainerImage, configured_environment: dict[str, str] | None = None
    ) -> ecs.FargateTaskDefinition:
        """Keep the task definition this construct used to hold (``<this>/TaskDefinition``), retained.

        Before the task definition moved to the scheduler's stack, the scheduler launched the
        family's latest ACTIVE revision, and the executor fails a task whose RunTask finds the
        family INACTIVE. Deleting this one in the Cluster stack's update would leave the family
        without an ACTIVE revision until the Airflow stack registers its own; kept (same logical
        ID, ``DeletionPolicy: Retain``), an old scheduler always finds one. Remove the call in the
        next release: the retained revision then stays ACTIVE, nothing is deregistered.
        """
        task_definition, _ = self._task_definition(
            self, "TaskDefinition", image, {**self.environment, **(configured_environment or {})}
        )
        return task_definition

    def _task_definition(
        self,
        scope: Construct,
        construct_id: str,
        image: ecs.ContainerImage,
        environment: dict[str, str],
        *,
        family: str | None = None,
        task_role: iam.IRole | None = None,
        size: TaskSize | None = None,
        stream_prefix: str = WORKER_LOG_STREAM_PREFIX,
    ) -> tuple[ecs.FargateTaskDefinition, ecs.ContainerDefinition]:
        size = size or self.size
        task_definition = ecs.FargateTaskDefinition(
            scope,
            construct_id,
            family=family or self.family,
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            task_role=task_role or self.task_role,
            execution_role=self.execution_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        task_definition.apply_removal_policy(RemovalPolicy.RETAIN)
        container = task_definition.add_container(
            "Worker",
            container_name=self.container_name,
            image=image,
            essential=True,
            environment=environment,
            secrets=self.secrets or None,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=stream_prefix, log_group=self.log_group),
            **hardened_container_options(self.read_only_root_filesystem),
        )
        nag.acknowledge(task_definition, "AwsSolutions-ECS2", nag.ECS2_SETTINGS)
        add_writable_volumes(task_definition)
        mount_writable_volumes(container)
        return task_definition, container

    def grant_read_live_logs(self, role: iam.IRole) -> None:
        """Let ``role`` (the api-server's) read the workers' log streams, and nothing else.

        ``logs:GetLogEvents`` on ``log-group:<workers' group>:log-stream:worker/<container>/*`` (and
        each team queue's ``worker-<queue>/<container>/*``) only: the executor's ``get_task_log``
        reads a RUNNING task's awslogs stream so the UI shows its lines so far. Resource form: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
        """
        prefixes = [WORKER_LOG_STREAM_PREFIX, *map(team_queue_log_stream_prefix, self.team_queues)]
        stream_arns = [
            Stack.of(self).format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{self.log_group.log_group_name}:log-stream:{prefix}/{self.container_name}/*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for prefix in prefixes
        ]
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(sid="ReadWorkerLiveLogs", actions=["logs:GetLogEvents"], resources=stream_arns),
            "The api-server reads a running task's log from its worker's awslogs stream; stream names "
            "end in the ECS task ID, unknown until RunTask, so the grant is every stream under the "
            "workers' prefix (and each team queue's worker-<queue> prefix) in the workers' log group, "
            "and only logs:GetLogEvents.",
        )

    def grant_launch(self, role: iam.IRole, cluster: ecs.ICluster) -> None:
        """Let ``role`` (the scheduler's) run and track workers as the ECS executor does.

        RunTask on any revision of this task definition's family (and of each team queue's) in
        ``cluster`` only;
        DescribeTasks and StopTask on the cluster's tasks; DescribeClusters on the cluster;
        DescribeTaskDefinition on ``*`` (the executor reads which containers of a worker's task
        definition are essential; the action supports no resource-level permission, so ``*`` is
        the narrowest resource IAM accepts); and iam:PassRole on exactly the workers' task and
        execution roles (and the team queues' task roles), only to ECS tasks.
        Actions and resources: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
        """
        stack = Stack.of(self)
        family_arns = [
            stack.format_arn(service="ecs", resource="task-definition", resource_name=f"{family}:*")
            for family in (self.family, *(self.queue_family(name) for name in self.team_queues))
        ]
        task_arn = stack.format_arn(service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*")
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(
                sid="RunWorkerTasks",
                actions=["ecs:RunTask"],
                resources=family_arns,
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            ),
            "RunTask on any revision of the workers' task definition family: the executor names the "
            "family, so a new revision deploys without changing a cross-stack export.",
        )
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(sid="TrackWorkerTasks", actions=["ecs:DescribeTasks", "ecs:StopTask"], resources=[task_arn]),
            "DescribeTasks and StopTask act on task ARNs that exist only after RunTask; the resource "
            "is limited to this cluster's tasks.",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="DescribeCluster", actions=["ecs:DescribeClusters"], resources=[cluster.cluster_arn])
        )
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(sid="DescribeWorkerTaskDefinitions", actions=["ecs:DescribeTaskDefinition"], resources=["*"]),
            "ecs:DescribeTaskDefinition supports no resource-level permission (Service Authorization "
            "Reference, Amazon ECS); the scheduler's executor reads which containers of a worker's "
            "task definition are essential. The statement grants that one read-only action.",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassWorkerRoles",
                actions=["iam:PassRole"],
                resources=[
                    self.task_role.role_arn,
                    self.execution_role.role_arn,
                    *(role.role_arn for role in self.queue_roles.values()),
                ],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
