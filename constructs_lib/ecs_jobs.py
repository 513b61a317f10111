"""Container jobs that DAGs run with the amazon provider's ``EcsRunTaskOperator``.

Each job (``jobs/<name>/Dockerfile``, declared in the ``jobs`` configuration key) gets its own
image, task definition, least-privilege task role, execution role and log group. The jobs run in
an ECS cluster of their own (the jobs cluster), never in the cluster of the Airflow services and
workers: a DAG that may follow and stop its jobs reaches no other task. The Airflow workers,
where the operator runs, get exactly the calls the operator makes (provider 9.39.0,
``airflow/providers/amazon/aws/operators/ecs.py``, ``EcsRunTaskOperator``), each limited to the
jobs cluster:

- ``ecs:RunTask`` (``_start_task``) on the jobs' task definition families, in the jobs cluster
  only (``ecs:cluster`` condition);
- ``ecs:DescribeTasks`` (the ``tasks_stopped`` waiter and ``_check_success_task``) and
  ``ecs:StopTask`` (``on_kill``, and cleanup when waiting fails) on the jobs cluster's tasks
  (resource ``task/<jobs cluster>/*`` and the ``ecs:cluster`` condition): never the scheduler's,
  api-server's, dag-processor's, triggerer's or workers' tasks, whose overrides carry each
  worker's Execution API token (DescribeTasks returns a task's overrides);
- ``ecs:ListTasks`` (``_try_reattach_task``, with ``reattach=True``) in the jobs cluster only;
- ``iam:PassRole`` on the jobs' task and execution roles only, only to ECS tasks (RunTask passes
  the roles of the task definition);
- ``logs:GetLogEvents`` (``AwsTaskLogFetcher``, with ``awslogs_group``) on the jobs' log streams.

With ``deferrable=True`` the operator hands the wait to the triggerer (``TaskDoneTrigger``), whose
task role gets only ``ecs:DescribeTasks`` on the jobs cluster's tasks and ``logs:GetLogEvents`` on
the jobs' log streams (:meth:`EcsJobs.grant_follow_deferred`).

Condition keys each action honours (Service Authorization Reference, Amazon ECS,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html):
RunTask (resource ``task-definition``) and DescribeTasks/StopTask (resource ``task``) take
``ecs:cluster``, ``aws:ResourceTag/*`` and ``ecs:ResourceTag/*``; ListTasks names no task
(resource ``container-instance``, none on Fargate) and takes ``ecs:cluster``. The shared workers
have one task role, so IAM cannot tell which of their DAGs calls; a job that a team queue names
(``worker_queues``, ``jobs``) is granted to that queue's own task role only, the other jobs to the
shared workers' (:meth:`EcsJobs.grant_run` with ``names``; docs/security.md).

How a DAG finds a job: the workers' environment holds one Airflow variable per job,
``AIRFLOW_VAR_ECS_JOB_<NAME>`` (see :func:`app_config.jobs.job_variable_name`), a JSON object
with everything ``EcsRunTaskOperator`` needs; see :meth:`EcsJobs.airflow_variables`. The workers'
task definition is in another stack (the scheduler's) than the jobs, and a cross-stack reference
must exist in every configuration or in none (one that comes and goes with a job stops the deploy
that removes it: "Export ... in use"). So what the variables name is either a physical name known
at synthesis (:func:`job_names`: the family and the log group of a job) or a resource that exists
in every configuration, jobs or not (the jobs cluster and the data bucket).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import ArnFormat, CfnDeletionPolicy, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app_config.jobs import JOBS_DIR, job_construct_id, job_variable_name
from app_config.model import JobConfig
from cloud_assembly.airflow_image import CONTAINER_USER
from constructs_lib import nag
from constructs_lib.buckets import secure_bucket

#: Container name in every job's task definition.
JOB_CONTAINER_NAME = "job"
#: The user every job container runs as: non-root, like the Airflow containers.
JOB_USER = CONTAINER_USER
#: awslogs stream prefix: a job's log stream is ``job/job/<task id>``.
JOB_LOG_STREAM_PREFIX = "job"
#: Why the job log readers' ``log-stream:job/*`` is accepted (cdk-nag AwsSolutions-IAM5).
JOB_LOGS = (
    "EcsRunTaskOperator reads the job's log stream, whose name ends in the task ID known only "
    "after RunTask; limited to the jobs' log groups and the job/ stream prefix."
)


@dataclass(frozen=True)
class JobNames:
    """A job's physical names, the ones DAGs and the workers' task definition use.

    :ivar family: task definition family, ``<deployment>-job-<job>`` (e.g. ``airflow-dev-job-upload-file-to-s3``)
    :ivar log_group: CloudWatch Logs group, ``/<deployment>/jobs/<job>`` (e.g. ``/airflow-dev/jobs/upload-file-to-s3``)
    """

    family: str
    log_group: str


def job_names(deployment_name: str, job_name: str) -> JobNames:
    """Return the physical names of job ``job_name`` in deployment ``deployment_name``
    (``<project>-<stage>``): unique per deployment, known at synthesis, so that the stack of the
    workers' task definition names them without a cross-stack reference.

    Limits: a family is up to 255 letters, digits, ``-`` and ``_``; a log group name up to 512 of
    ``[.-_/#A-Za-z0-9]`` (ECS ``RegisterTaskDefinition``, CloudWatch Logs ``CreateLogGroup`` API
    references); job names are 1-32 lowercase letters, digits and hyphens (:mod:`app_config.jobs`).
    """
    return JobNames(family=f"{deployment_name}-job-{job_name}", log_group=f"/{deployment_name}/jobs/{job_name}")


class EcsJob(Construct):
    """One job: image (built from ``jobs/<name>/`` at deploy), task definition, roles, log group.

    The container runs as UID 50000 with a read-only root filesystem unless
    ``read_only_root_filesystem`` is False (the deployment-wide key of that name); its only
    environment value is ``DATA_BUCKET``.

    :ivar names: :class:`JobNames`, the job's physical names
    :ivar task_definition: ``ecs.FargateTaskDefinition`` of family ``names.family``
        (named per deployment: DAGs run a family's latest ACTIVE revision)
    :ivar task_role: ``iam.Role``: only the data bucket's prefixes of the job's configuration
    :ivar execution_role: ``iam.Role``: image pull and the job's log group
    :ivar log_group: ``logs.LogGroup`` named ``names.log_group``, of the container's awslogs
        output. ``UpdateReplacePolicy: Retain``: when its name changes (it had a generated one
        before), the old group and its logs stay, and expire by their own retention.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job: JobConfig,
        deployment_name: str,
        data_bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
        retain: bool,
        read_only_root_filesystem: bool = True,
    ):
        super().__init__(scope, construct_id)
        self.name = job.name
        self.names = job_names(deployment_name, job.name)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=self.names.log_group,
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        # A replacement (a new name) never deletes the logs the group holds, whatever ``retain``.
        self.log_group.node.default_child.cfn_options.update_replace_policy = CfnDeletionPolicy.RETAIN
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"ECS job {job.name}: its data bucket prefixes only",
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"ECS agent for job {job.name}: image pull and CloudWatch Logs",
        )
        grants = [data_bucket.grant_read(self.task_role, f"{prefix}*") for prefix in job.s3_read_prefixes]
        grants += [data_bucket.grant_put(self.task_role, f"{prefix}*") for prefix in job.s3_write_prefixes]
        nag.acknowledge_statements(
            self.task_role,
            [statement for grant in grants for statement in grant.principal_statements],
            "An ECS job's task role gets CDK's bucket grant (s3:Abort* is part of grant_put) on exactly "
            "the data-bucket prefixes its configuration lists (jobs.<name>.s3_*_prefixes).",
        )
        self.image = ecr_assets.DockerImageAsset(
            self, "Image", directory=str(JOBS_DIR / job.name), platform=ecr_assets.Platform.LINUX_AMD64
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=self.names.family,
            cpu=job.size.cpu,
            memory_limit_mib=job.size.memory_mib,
            task_role=self.task_role,
            execution_role=self.execution_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.container = self.task_definition.add_container(
            "Job",
            container_name=JOB_CONTAINER_NAME,
            image=ecs.ContainerImage.from_docker_image_asset(self.image),
            essential=True,
            environment={"DATA_BUCKET": data_bucket.bucket_name},
            logging=ecs.LogDrivers.aws_logs(stream_prefix=JOB_LOG_STREAM_PREFIX, log_group=self.log_group),
            # Non-root whatever the job's Dockerfile says (the example's creates UID 50000).
            user=JOB_USER,
            readonly_root_filesystem=read_only_root_filesystem,
            privileged=False,
        )
        nag.acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "A job's only environment value is the data bucket's name; jobs get no secret.",
        )
        nag.acknowledge(self.execution_role, "AwsSolutions-IAM5[Resource::*]", nag.ECR_AUTH)


class EcsJobs(Construct):
    """The jobs cluster, the data bucket and every configured job, and the grants to run them.

    :param vpc: the VPC of the jobs cluster.
    :param deployment_name: ``<project>-<stage>``, the base of each job's physical names (:func:`job_names`).
    :param container_insights: Container Insights on the jobs cluster (the deployment's
        ``container_insights``, as on the services' cluster).
    :ivar cluster: ``ecs.Cluster`` the jobs run in (FARGATE and FARGATE_SPOT capacity providers),
        holding no other task; kept in every configuration, also without jobs (an empty cluster
        costs nothing), so that the workers' task definition in another stack may reference it
        whatever the jobs.
    :ivar data_bucket: ``s3.Bucket`` the jobs read and write (each only its own prefixes); kept in
        every configuration, also without jobs, so that ``jobs`` on -> off -> on loses no data
    :ivar jobs: job name -> :class:`EcsJob`
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        jobs: tuple[JobConfig, ...],
        vpc: ec2.IVpc,
        deployment_name: str,
        access_logs_bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
        retain: bool,
        read_only_root_filesystem: bool = True,
        container_insights: bool = True,
    ):
        super().__init__(scope, construct_id)
        self.jobs: dict[str, EcsJob] = {}
        # The data bucket exists in every configuration, jobs or not: removing every job (then
        # adding them back) must not delete the data the jobs wrote (the change check's
        # transition matrix, tests/changes/test_matrix.py).
        self.data_bucket = secure_bucket(
            self,
            "Data",
            retain=retain,
            expire_after_days=None,
            server_access_logs=access_logs_bucket,
            server_access_logs_prefix="s3/data/",
        )
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED if container_insights else ecs.ContainerInsights.DISABLED,
            enable_fargate_capacity_providers=True,
        )
        if not container_insights:
            nag.acknowledge(self.cluster, "AwsSolutions-ECS4", nag.ECS4_OFF)
        self.jobs = {
            job.name: EcsJob(
                self,
                job_construct_id(job.name),
                job=job,
                deployment_name=deployment_name,
                data_bucket=self.data_bucket,
                log_retention=log_retention,
                retain=retain,
                read_only_root_filesystem=read_only_root_filesystem,
            )
            for job in jobs
        }

    def grant_run(self, role: iam.IRole, names: Iterable[str] | None = None) -> None:
        """Let ``role`` (the workers') run, follow and stop the jobs with ``EcsRunTaskOperator``,
        including ``reattach=True``, in the jobs cluster only; see the module docstring for each
        call and the condition keys.

        :param names: the jobs ``role`` may run (RunTask on their families, PassRole on their
            roles, their log streams); None for every job. A team queue's role gets the jobs the
            queue names, the workers' role the jobs no team queue names. Nothing when empty.

        Actions and resources: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
        """
        jobs = list(self.jobs.values()) if names is None else [self.jobs[name] for name in names]
        if not jobs:
            return
        cluster = self.cluster
        stack = Stack.of(self)
        in_cluster = {"ArnEquals": {"ecs:cluster": cluster.cluster_arn}}
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(
                sid="RunJobs",
                actions=["ecs:RunTask"],
                resources=[
                    stack.format_arn(
                        service="ecs", resource="task-definition", resource_name=f"{job.names.family}:*"
                    )
                    for job in jobs
                ],
                conditions=in_cluster,
            ),
            "The workers may RunTask any revision of the configured jobs' task definition families, in "
            "the jobs cluster only, so a new job revision deploys without a policy change.",
        )
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(
                sid="FollowJobs",
                actions=["ecs:DescribeTasks", "ecs:StopTask"],
                resources=[stack.format_arn(service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*")],
                conditions=in_cluster,
            ),
            "EcsRunTaskOperator follows and stops the job it started (DescribeTasks, StopTask); task "
            "ARNs exist only after RunTask, so the resource is the jobs cluster's tasks, a cluster that "
            "holds nothing but jobs (never the services' or workers' tasks).",
        )
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(sid="ReattachJobs", actions=["ecs:ListTasks"], resources=["*"], conditions=in_cluster),
            "EcsRunTaskOperator(reattach=True) calls ListTasks, which names no task; the statement is "
            "limited to the jobs cluster by its ecs:cluster condition.",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassJobRoles",
                actions=["iam:PassRole"],
                resources=[arn for job in jobs for arn in (job.task_role.role_arn, job.execution_role.role_arn)],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(sid="ReadJobLogs", actions=["logs:GetLogEvents"], resources=self._log_stream_arns(jobs)),
            JOB_LOGS,
        )

    def grant_follow_deferred(self, role: iam.IRole) -> None:
        """Let ``role`` (the triggerer's) follow deferred jobs: exactly the calls of the provider's
        ``TaskDoneTrigger`` (amazon provider 9.39.0, ``airflow/providers/amazon/aws/triggers/ecs.py``),
        which ``EcsRunTaskOperator(deferrable=True)`` hands the wait to:

        - ``ecs:DescribeTasks`` (the ``tasks_stopped`` waiter) on the jobs cluster's tasks only
          (resource ``task/<jobs cluster>/*`` and the ``ecs:cluster`` condition, as in
          :meth:`grant_run`);
        - ``logs:GetLogEvents`` (``_forward_logs``, when the operator has ``awslogs_group``) on the
          jobs' log streams only.

        No RunTask, StopTask, ListTasks or PassRole: the worker starts, reattaches and stops the
        job; the trigger only waits. Nothing without jobs.

        Actions and resources: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
        """
        if not self.jobs:
            return
        cluster = self.cluster
        stack = Stack.of(self)
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(
                sid="WaitForDeferredJobs",
                actions=["ecs:DescribeTasks"],
                resources=[stack.format_arn(service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*")],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            ),
            "EcsRunTaskOperator(deferrable=True) hands the wait to the triggerer's TaskDoneTrigger "
            "(DescribeTasks only); task ARNs exist only after RunTask, so the resource is the jobs "
            "cluster's tasks, a cluster that holds nothing but jobs.",
        )
        nag.add_to_principal_policy(
            role,
            iam.PolicyStatement(sid="ForwardDeferredJobLogs", actions=["logs:GetLogEvents"], resources=self._log_stream_arns()),
            JOB_LOGS,
        )

    def _log_stream_arns(self, jobs: list[EcsJob] | None = None) -> list[str]:
        """ARNs of the awslogs streams (``job/*`` in each job's log group) of ``jobs`` (None: every job)."""
        stack = Stack.of(self)
        return [
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{job.names.log_group}:log-stream:{JOB_LOG_STREAM_PREFIX}/*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for job in (self.jobs.values() if jobs is None else jobs)
        ]

    def airflow_variables(
        self,
        scope: Construct,
        *,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
        assign_public_ip: bool = False,
    ) -> dict[str, str]:
        """Return the workers' environment entries ``AIRFLOW_VAR_ECS_JOB_<NAME>``: per job a JSON
        object with ``cluster`` (the jobs cluster), ``task_definition`` (the family: RunTask takes
        its latest revision), ``container_name``, ``subnets``, ``security_groups``,
        ``assign_public_ip`` (``ENABLED`` or ``DISABLED``, RunTask's ``assignPublicIp``), ``log_group``,
        ``log_stream_prefix``, ``data_bucket`` and ``region``.

        :param subnet_ids: the subnets the workers run in; a job pulls its image from ECR the
            same way a worker does.
        :param assign_public_ip: the workers' choice: True where tasks run in public subnets
            without NAT (``task_public_ip``), their only way to ECR.

        :param scope: where the variables are used (the workers' task definition): its stack
            renders the JSON, importing the jobs cluster's and the data bucket's names, which
            exist in every configuration; families and log groups are physical names.

        A DAG reads them with ``render_template_as_native_obj=True`` as
        ``"{{ var.json.ecs_job_<name>.subnets }}"`` (see ``dags/example_ecs_job.py``).
        """
        stack = Stack.of(scope)
        variables = {}
        for job in self.jobs.values():
            settings = {
                "cluster": self.cluster.cluster_name,
                "task_definition": job.names.family,
                "container_name": JOB_CONTAINER_NAME,
                "subnets": subnet_ids,
                "security_groups": [security_group.security_group_id],
                "assign_public_ip": "ENABLED" if assign_public_ip else "DISABLED",
                "log_group": job.names.log_group,
                "log_stream_prefix": JOB_LOG_STREAM_PREFIX,
                "data_bucket": self.data_bucket.bucket_name,
                "region": stack.region,
            }
            variables[f"AIRFLOW_VAR_{job_variable_name(job.name).upper()}"] = stack.to_json_string(settings)
        return variables

