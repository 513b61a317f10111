"""The typed deployment configuration as the stacks read it: frozen dataclasses, grouped by concern.

``app.py`` builds one :class:`DeploymentConfig` with :func:`app_config.loader.load_config` from the
CDK context (``cdk.json`` plus ``-c key=value``); nothing below ``app.py`` reads context or the
environment. The keys, their limits, defaults and stage presets are declared once, in
:mod:`app_config.settings`; these classes hold the validated values and no defaults. Units are in
the field names or docstrings: CPU in vCPU units (1024 = 1 vCPU), memory in MiB, storage in GiB,
durations in days or seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cloud_assembly import names

#: The amazon provider's executor, as shipped (apache-airflow-providers-amazon).
STOCK_ECS_EXECUTOR = "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"
#: The executor this project bundles (``executor/``), installed into the image.
BUNDLED_ECS_EXECUTOR = "airflow_ecs_fargate.executor.EcsFargateExecutor"


class ConfigError(ValueError):
    """Raised when the configuration cannot be deployed.

    ``problems`` holds one sentence per bad key, each naming the key, what is wrong and the fix;
    a sentence given twice (two errors of one key that read alike) is kept once.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(dict.fromkeys(problems))
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            "Invalid deployment configuration (set keys in cdk.json \"context\" or with "
            f"`cdk synth -c key=value`):\n{lines}"
        )


@dataclass(frozen=True)
class TaskSize:
    """A Fargate task size.

    :param cpu: vCPU units (256, 512, 1024, 2048, 4096, 8192 or 16384).
    :param memory_mib: memory in MiB; must be one Fargate accepts with ``cpu``
        (see :mod:`app_config.fargate`).
    """

    cpu: int
    memory_mib: int


@dataclass(frozen=True)
class ExistingVpcConfig:
    """A VPC the app deploys into instead of creating one (``vpc_id``).

    Each subnet list holds one subnet per availability zone, in the order of
    :attr:`NetworkConfig.availability_zones`; a CIDR list is empty where the app needs no CIDR
    (only the load balancer's subnets' CIDRs are read: the api-server's trusted proxies).

    :param vpc_id: ``vpc-`` and 8 or 17 hexadecimal digits.
    :param private_subnet_ids: where the database runs, and every task unless ``task_public_ip``.
    :param public_subnet_ids: where the internet-facing load balancer runs (and the tasks with
        ``task_public_ip``); empty when neither is used.
    :param private_subnet_cidrs: IPv4 CIDR blocks of ``private_subnet_ids``, or empty.
    :param public_subnet_cidrs: IPv4 CIDR blocks of ``public_subnet_ids``, or empty.
    """

    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    public_subnet_ids: tuple[str, ...]
    private_subnet_cidrs: tuple[str, ...]
    public_subnet_cidrs: tuple[str, ...]


@dataclass(frozen=True)
class NetworkConfig:
    """The VPC.

    :param vpc_cidr: IPv4 CIDR of the VPC, /16 to /22 (two public and two private /24 subnets).
    :param max_azs: availability zones used (2).
    :param nat_gateways: NAT gateways, 0 to ``max_azs``. With 0, private subnets are isolated and
        the VPC gets interface endpoints for ECR, CloudWatch Logs, Secrets Manager, ECS and STS.
    :param availability_zones: explicit AZ names; needed only with an explicit account/region,
        so that synthesis makes no AZ lookup.
    :param task_public_ip: run the Airflow tasks in the public subnets with a public IPv4 address
        each (billed hourly) as their way out to AWS APIs, instead of NAT gateways or interface
        endpoints; needs ``nat_gateways == 0``. Security groups admit no inbound traffic from the
        internet; the DB stays in the private subnets.
    :param existing_vpc: deploy into this VPC instead of creating one (``vpc_cidr`` and
        ``nat_gateways`` then unused: 0 NAT gateways), or None.
    """

    vpc_cidr: str
    max_azs: int
    nat_gateways: int
    availability_zones: tuple[str, ...]
    task_public_ip: bool
    existing_vpc: ExistingVpcConfig | None = None


@dataclass(frozen=True)
class DatabaseConfig:
    """The RDS PostgreSQL metadata database.

    :param instance_type: RDS instance type without the ``db.`` prefix, e.g. ``t4g.micro``.
    :param allocated_storage_gib: initial storage in GiB (20 to 65536).
    :param max_allocated_storage_gib: storage autoscaling ceiling in GiB.
    :param multi_az: standby in a second AZ.
    :param backup_retention_days: automated backups kept, 1 to 35 days (RDS limit).
    """

    instance_type: str
    allocated_storage_gib: int
    max_allocated_storage_gib: int
    multi_az: bool
    backup_retention_days: int


@dataclass(frozen=True)
class ImageConfig:
    """Where the one Airflow image comes from.

    Exactly one source is used: ``image_uri`` (an existing image anywhere), else ``image_tag`` (a
    tag in the ECR repository this app creates), else the image built from ``docker/`` at deploy.
    """

    image_uri: str | None
    image_tag: str | None
    #: a pip configuration file (private index and its token) for the build secret ``pip_index``.
    pip_index_file: str | None = None
    #: ``--build-arg`` values of the image built from ``docker/`` (``AIRFLOW_VERSION`` when
    #: ``airflow_version`` is not the Dockerfile's default; empty otherwise, so the default's image
    #: asset, and every deployment of it, stays as it was).
    build_args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerQueue:
    """An Airflow queue whose tasks run at their own worker size (``queue="<name>"`` on a task).

    :param name: the Airflow queue name.
    :param size: the workers' task size on this queue (RunTask ``overrides.cpu``/``memory``).
    :param capacity_provider: ``FARGATE`` or ``FARGATE_SPOT`` for this queue, or None for the
        executor's ``worker_capacity_provider``.
    :param s3_prefixes: key prefixes of the jobs' data bucket its tasks read and write.
    :param secrets_prefixes: Secrets Manager name prefixes its tasks may read.
    :param managed_policy_arns: IAM managed policies of its task role.
    :param jobs: names of the ECS jobs its tasks may run.
    """

    name: str
    size: TaskSize
    capacity_provider: str | None
    s3_prefixes: tuple[str, ...] = ()
    secrets_prefixes: tuple[str, ...] = ()
    managed_policy_arns: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()

    @property
    def is_team(self) -> bool:
        """True when the queue's tasks get a task role (and task definition family) of their own."""
        return bool(self.s3_prefixes or self.secrets_prefixes or self.managed_policy_arns or self.jobs)


@dataclass(frozen=True)
class ExecutorConfig:
    """The ECS executor and the workers it launches.

    :param executor_class: import path of the executor the scheduler runs
        (``[core] executor``); the bundled one by default.
    :param worker_container_name: name of the container in the workers' task definition
        (``[aws_ecs_executor] container_name``).
    :param worker_size: task size of each worker (one Airflow task per ECS task).
    :param worker_capacity_provider: ``FARGATE_SPOT`` or ``FARGATE``.
    :param spot_fallback_to_on_demand: relaunch on FARGATE when Spot has no capacity (bundled
        executor only).
    :param worker_queues: queues that pick a worker size (bundled executor only); tasks on any
        other queue run at ``worker_size``.
    """

    executor_class: str
    worker_container_name: str
    worker_size: TaskSize
    worker_capacity_provider: str
    spot_fallback_to_on_demand: bool
    worker_queues: tuple[WorkerQueue, ...]


@dataclass(frozen=True)
class ServicesConfig:
    """The long-running Airflow components, each a Fargate service.

    :param scheduler_count: schedulers (2 or more runs Airflow's scheduler HA mode).
    :param api_server_count: api-server tasks behind the load balancer.
    :param capacity_provider: ``FARGATE`` or ``FARGATE_SPOT`` for the four services (ECS
        replaces a task that Spot interrupts, after a two-minute warning).
    """

    scheduler_count: int
    api_server_count: int
    scheduler_size: TaskSize
    api_server_size: TaskSize
    dag_processor_size: TaskSize
    triggerer_size: TaskSize
    capacity_provider: str


@dataclass(frozen=True)
class IngressConfig:
    """How people reach the UI.

    :param allowed_cidrs: IPv4 CIDRs the load balancer accepts.
    :param certificate_arn: an existing ACM certificate (in the stack's region) covering
        ``domain_name``; without it, the app issues a DNS-validated one. Needs ``domain_name``:
        no certificate can cover the load balancer's own ``*.elb.amazonaws.com`` name.
    :param private_only: internal load balancer, reachable only from the VPC (and what is
        connected to it, e.g. a VPN).
    :param domain_name: the UI's host name, e.g. ``airflow.example.com``: HTTPS on 443 (HTTP
        redirects), an alias record to the load balancer, ``[api] base_url`` from it.
    :param hosted_zone_id: the Route 53 public hosted zone that holds ``domain_name``.
    :param hosted_zone_name: that zone's name, ``domain_name`` itself or a parent of it.
    :param login_rate_limit: requests per client IP per 5 minutes to the login and token paths
        before AWS WAF blocks them; 0 = no web ACL.
    """

    allowed_cidrs: tuple[str, ...]
    certificate_arn: str | None
    private_only: bool
    domain_name: str | None
    hosted_zone_id: str | None
    hosted_zone_name: str | None
    login_rate_limit: int = 0

    @property
    def https(self) -> bool:
        """Whether the UI is served over HTTPS (on ``domain_name``)."""
        return self.domain_name is not None


@dataclass(frozen=True)
class JobConfig:
    """A container job that DAGs run with ``EcsRunTaskOperator`` (one ECS task per run).

    :param name: the job's directory under ``jobs/`` (holding its ``Dockerfile``), also the
        suffix of its Airflow variable ``ecs_job_<name with _>``.
    :param size: the job task's Fargate size.
    :param s3_read_prefixes: key prefixes of the data bucket the job may read, e.g. ``("raw/",)``.
    :param s3_write_prefixes: key prefixes of the data bucket the job may write, e.g.
        ``("uploads/",)``.
    """

    name: str
    size: TaskSize
    s3_read_prefixes: tuple[str, ...] = ()
    s3_write_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class OfficeHoursConfig:
    """Scheduled scaling: Airflow runs between ``start`` and ``stop`` and sleeps otherwise.

    :param scope: ``ui`` (only the api-server goes to zero tasks) or ``environment`` (api-server,
        scheduler, dag-processor and triggerer go to zero and the RDS instance is stopped).
    :param start: AWS cron expression of the wake-up, e.g. ``cron(0 7 ? * MON-FRI *)``.
    :param stop: AWS cron expression of the shutdown, e.g. ``cron(0 19 ? * MON-FRI *)``.
    :param timezone: IANA time zone the cron expressions are read in, e.g. ``Europe/Berlin``.
    """

    scope: str
    start: str
    stop: str
    timezone: str


@dataclass(frozen=True)
class ApiServerAutoScalingConfig:
    """Target tracking of the api-server's task count (Application Auto Scaling).

    :param metric: ``cpu`` (average CPU utilization of the service, percent) or ``requests``
        (ALB requests per target per minute).
    :param min_count: fewest tasks.
    :param max_count: most tasks.
    :param target_cpu_percent: CPU utilization to hold (percent), for ``cpu``.
    :param target_requests_per_task: requests per task per minute to hold, for ``requests``.
    """

    metric: str
    min_count: int
    max_count: int
    target_cpu_percent: int
    target_requests_per_task: int


@dataclass(frozen=True)
class MonitoringConfig:
    """Metrics, dashboard and alarms.

    :param alarm_email: address subscribed to the alarm topic (SNS e-mail), or None.
    :param airflow_metrics: Airflow's StatsD metrics (and the bundled executor's counters) as
        CloudWatch metrics (embedded metric format in the containers' logs).
    :param dashboard: one CloudWatch dashboard for the deployment.
    :param container_insights: ECS Container Insights on the cluster (per-task CPU and memory
        metrics, billed as custom metrics).
    """

    alarm_email: str | None
    airflow_metrics: bool
    dashboard: bool
    container_insights: bool


@dataclass(frozen=True)
class SsoConfig:
    """Single sign-on to the Airflow UI through OpenID Connect (the FAB auth manager's OAuth login).

    :param issuer_url: the identity provider's issuer (``https://``); its discovery document is
        ``<issuer_url>/.well-known/openid-configuration``.
    :param client_id: the client (application) ID the provider gave Airflow.
    :param client_secret: name or complete ARN of the Secrets Manager secret holding the client
        secret (same account and region as the stacks).
    :param groups_to_roles: (group, Airflow roles) pairs; a user in none of the groups is refused.
    :param groups_claim: the claim listing a user's groups (``groups``, ``cognito:groups``).
    :param scopes: the scopes requested, space-separated (``openid`` among them).
    :param local_admin_login: keep the local admin's password login as break-glass.
    """

    issuer_url: str
    client_id: str
    client_secret: str
    groups_to_roles: tuple[tuple[str, tuple[str, ...]], ...]
    groups_claim: str
    scopes: str
    local_admin_login: bool


@dataclass(frozen=True)
class GitBundleConfig:
    """The git DAG bundle (``dag_bundle=git``): Airflow's ``GitDagBundle`` of the git provider.

    :param url: the repository, ``https://`` or ``ssh://`` (or ``user@host:path``), no credentials.
    :param branch: the branch the dag-processor follows (``tracking_ref``).
    :param refresh_seconds: seconds between two fetches (the bundle's ``refresh_interval``).
    :param secret: name or ARN of the Secrets Manager secret holding the git connection as JSON,
        or None for a public https repository.
    """

    url: str
    branch: str
    refresh_seconds: int
    secret: str | None


@dataclass(frozen=True)
class DeploymentConfig:
    """Everything ``app.py`` needs to compose the stacks.

    :param project_name: prefix of the stack names, e.g. ``airflow`` gives ``airflow-dev-network``.
    :param stage: ``dev`` (cheap, destroyable), ``prod`` (data retained, Multi-AZ, HA) or
        ``lean`` (the least money: Spot, small tasks, public IPs instead of NAT).
    :param account: AWS account ID, or None for an environment-agnostic synthesis.
    :param region: AWS region, or None for an environment-agnostic synthesis.
    :param retain_data: keep the database, its secrets and the log bucket when a stack is
        deleted; deletion protection and snapshot-on-delete on the database.
    :param log_retention_days: CloudWatch Logs retention of every log group.
    :param dag_bundle: ``image`` (the ``dags/`` folder baked into the image), ``s3`` (an S3
        bucket this app creates, read through the amazon provider's S3DagBundle) or ``git``.
    :param git_bundle: the repository of ``dag_bundle=git`` (None otherwise).
    :param enable_ecs_exec: allow ``aws ecs execute-command`` into the services (sessions logged
        to CloudWatch). Needs ``read_only_root_filesystem=False``: the SSM agent ECS Exec injects
        writes to the container's filesystem (the loader refuses the combination).
    :param read_only_root_filesystem: run every container with a read-only root filesystem
        (writable task volumes only at /tmp, /opt/airflow/logs and /opt/airflow/tmp = TMPDIR). Turn off only if an image of your
        own writes elsewhere.
    :param admin_username: login of the admin user created for the FAB auth manager.
    :param jobs: container jobs DAGs run with ``EcsRunTaskOperator`` (see :class:`JobConfig`).
    :param office_hours: scheduled scaling to zero outside office hours, or None (always on).
    :param api_server_autoscaling: automatic scaling of the api-server, or None (fixed count).
    :param secrets_backend: ``secrets-manager`` (connections and variables read from AWS Secrets
        Manager under ``<project>/<stage>/connections|variables/``) or ``none``.
    :param sso: single sign-on through OpenID Connect, or None (local logins only).
    """

    project_name: str
    stage: str
    account: str | None
    region: str | None
    retain_data: bool
    log_retention_days: int
    dag_bundle: str
    enable_ecs_exec: bool
    read_only_root_filesystem: bool
    admin_username: str
    network: NetworkConfig
    database: DatabaseConfig
    image: ImageConfig
    executor: ExecutorConfig
    services: ServicesConfig
    ingress: IngressConfig
    jobs: tuple[JobConfig, ...]
    office_hours: OfficeHoursConfig | None
    api_server_autoscaling: ApiServerAutoScalingConfig | None
    monitoring: MonitoringConfig
    secrets_backend: str = "secrets-manager"
    sso: SsoConfig | None = None
    git_bundle: GitBundleConfig | None = None

    @property
    def deployment_name(self) -> str:
        """``<project_name>-<stage>``, e.g. ``airflow-dev``: names what must be unique per deployment."""
        return names.deployment_name(self.project_name, self.stage)

    def stack_name(self, part: str) -> str:
        """Return the CloudFormation stack name for ``part``, e.g. ``airflow-dev-network``."""
        return names.stack_name(self.project_name, self.stage, part)
