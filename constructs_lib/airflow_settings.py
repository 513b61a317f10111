"""The Airflow configuration each component receives, as ECS environment values and secrets.

One place decides which component gets what (docs/architecture.md, section 1; docs/security.md):

- every component and worker: the Execution API URL, remote logging to S3, the DAG bundle;
- components that touch the metadata DB (scheduler, api-server, dag-processor, triggerer): the DB
  connection and the fernet key, read from Secrets Manager by the ``_CMD`` helpers with the task
  role (the environment holds the secrets' ARNs only, never their values);
- ``[api_auth] jwt_secret`` (scheduler, api-server) and ``[api] secret_key`` (api-server) as ECS
  secrets, only where Airflow uses them (:data:`COMPONENT_SECRETS`);
- workers: nothing that opens the DB (no DB credentials, fernet key or JWT secret);
- with single sign-on, the api-server's main container only: the OpenID Connect settings and the
  client secret (:class:`SsoSettings`).

Option names are Airflow's (https://airflow.apache.org/docs/apache-airflow/stable/configuration-ref.html)
and the amazon provider's ``[aws_ecs_executor]`` section.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from airflow_ecs_fargate import quota
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from airflow_ecs_fargate import sso
from airflow_ecs_fargate.config_commands import DB_SECRET_ARN_ENV, FERNET_KEY_SECRET_ARN_ENV
from app_config.model import STOCK_ECS_EXECUTOR, GitBundleConfig, SsoConfig, WorkerQueue
from cloud_assembly.names import SECRET_KINDS, secrets_prefix, team_queue_log_stream_prefix

#: Which of the signing secrets each component receives (as ECS secrets), from Airflow 3.3.2's
#: source:
#:
#: - ``[api_auth] jwt_secret``: the scheduler's executor signs each workload's token
#:   (``BaseExecutor.jwt_generator``); the api-server signs and checks UI, REST and Execution API
#:   tokens. The dag-processor and the triggerer serve their subprocesses with
#:   ``InProcessExecutionAPI``, which replaces token checks and is called with an empty token.
#: - ``[api] secret_key``: the api-server (session signing, and the tokens it sends to a log
#:   server). The triggerer's log server (port 8794) checks those tokens, but no security group
#:   lets the api-server reach it, so it gets none; the ECS executor serves no logs from the
#:   scheduler (``serve_logs = False``).
#:
#: The DB credentials and the fernet key (every component opens the DB; the scheduler, triggerer
#: and dag-processor encrypt or decrypt trigger kwargs, variables and connections) are not here:
#: the ``_CMD`` helpers read them (``AirflowDbSecrets.environment``).
COMPONENT_SECRETS: dict[str, tuple[str, ...]] = {
    "scheduler": ("jwt_secret",),
    "api-server": ("jwt_secret", "api_secret_key"),
    "dag-processor": (),
    "triggerer": (),
}
SQL_ALCHEMY_CONN_CMD = "python -m airflow_ecs_fargate.config_commands sql_alchemy_conn"
SQL_ALCHEMY_CONN_ASYNC_CMD = "python -m airflow_ecs_fargate.config_commands sql_alchemy_conn_async"
FERNET_KEY_CMD = "python -m airflow_ecs_fargate.config_commands fernet_key"
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
LOCAL_DAG_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
S3_DAG_BUNDLE = "airflow.providers.amazon.aws.bundles.s3.S3DagBundle"
GIT_DAG_BUNDLE = "airflow.providers.git.bundles.git.GitDagBundle"
#: The git bundle's connection id; its ``AIRFLOW_CONN_*`` variable comes from the secret named by
#: ``dag_bundle_git_secret`` (:func:`git_connection_secret`).
GIT_CONN_ID = "git_dags"
#: Who fetches the git bundle (Airflow 3.3.2 and apache-airflow-providers-git 1.0.1, from their
#: source): the dag-processor clones and refreshes it (``DagFileProcessorManager._refresh_dag_bundles``
#: calls ``initialize()`` and ``refresh()``), and every worker clones the version its task was
#: parsed at (``airflow.sdk.execution_time.task_runner.parse`` calls ``initialize()`` on
#: ``get_bundle(name, version)``, which fetches from the remote). The scheduler only deletes stale
#: local copies, the api-server only builds a link from the URL (the bundle goes on without the
#: connection when ``repo_url`` is given), and the triggerer loads no bundle: none of them gets it.
GIT_BUNDLE_READERS = ("dag-processor", "worker")
#: Where the image keeps the DAGs (docker/Dockerfile copies dags/ there).
IMAGE_DAGS_FOLDER = "/opt/airflow/dags"
SECRETS_MANAGER_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"


#: How long a worker keeps retrying the Execution API (``[workers] execution_api_retries``,
#: ``execution_api_retry_wait_min`` and ``_max``, in seconds; Airflow 3.3.2's defaults are 5, 1 and
#: 90). The task SDK's client (``airflow/sdk/api/client.py``) retries a request that failed to
#: connect or got a 5xx with tenacity's ``wait_random_exponential``: each of the ``retries - 1``
#: waits is drawn between ``wait_min`` and ``min(wait_max, 2 ** n)``. With the defaults a request
#: gives up after about 31 s, and a task whose last state report fails that way is lost; but when
#: the api-server's only task is replaced (a crash, a deploy of dev's single task), ECS must
#: provision, pull and start the new one (the start costs of docs/worker-start.md) and see it pass
#: its health check, often more than a minute. These
#: values ride out an outage of at least 14 x 10 = 140 s and at most about 236 s, which stays under
#: ``[scheduler] task_instance_heartbeat_timeout`` (300 s): a worker cut off for longer is failed by
#: the scheduler, as before, and retried if it has retries left. The cost: a request that fails once
#: waits 10 s before its second try.
WORKER_EXECUTION_API_RETRIES: dict[str, str] = {
    "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "15",
    "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN": "10",
    "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "20",
}


def secrets_prefixes(project_name: str, stage: str) -> dict[str, str]:
    """Return the Secrets Manager name prefixes of a deployment's connections and variables:
    ``{"connections": "<project>/<stage>/connections", "variables": "<project>/<stage>/variables"}``.

    The amazon provider's ``SecretsManagerBackend`` looks a connection up as
    ``<connections_prefix>/<conn_id>`` (``sep`` defaults to ``/``), a variable as
    ``<variables_prefix>/<key>``. The operations CLI (``airflow-ecs connections|variables``) writes
    the same names.
    """
    return {kind: secrets_prefix(project_name, stage, kind) for kind in SECRET_KINDS}


def secrets_backend_environment(project_name: str, stage: str) -> dict[str, str]:
    """Return ``[secrets] backend`` and ``backend_kwargs`` for the amazon provider's
    ``SecretsManagerBackend`` over :func:`secrets_prefixes`.

    ``config_prefix`` is ``null``: the provider's default ``airflow/config`` would make every
    ``*_secret`` option lookup read a name shared by all deployments of the account, outside the
    task roles' grant. Airflow consults this backend before the ``AIRFLOW_CONN_*`` variables and
    the metadata DB; a name that does not exist falls through to them.
    """
    prefixes = secrets_prefixes(project_name, stage)
    kwargs = {
        "connections_prefix": prefixes["connections"],
        "variables_prefix": prefixes["variables"],
        "config_prefix": None,
    }
    return {
        "AIRFLOW__SECRETS__BACKEND": SECRETS_MANAGER_BACKEND,
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(kwargs, separators=(",", ":")),
    }


def execution_api_url(namespace_name: str, service_name: str, port: int) -> str:
    """Return ``[core] execution_api_server_url``: the api-server's private Cloud Map DNS name.

    :param namespace_name: the private DNS namespace, e.g. ``airflow-dev.internal``.
    :param service_name: the api-server's Cloud Map service name, e.g. ``api-server``.
    :param port: the api-server's container port.
    """
    return f"http://{service_name}.{namespace_name}:{port}/execution/"


def dag_bundle_config(bundle: str, dags_bucket_name: str | None, git: GitBundleConfig | None = None) -> str:
    """Return ``[dag_processor] dag_bundle_config_list`` as JSON.

    :param bundle: ``image`` (LocalDagBundle over the image's dags folder), ``s3``
        (S3DagBundle over ``s3://<dags_bucket_name>/dags/``) or ``git`` (GitDagBundle over
        ``git``'s branch, fetched every ``git.refresh_seconds`` seconds; ``refresh_interval`` is a
        kwarg of every bundle, Airflow's ``BaseDagBundle``).
    :raises ValueError: for ``s3`` without a bucket, ``git`` without its repository, or an unknown
        bundle.
    """
    if bundle == "image":
        entry = {"name": "dags-folder", "classpath": LOCAL_DAG_BUNDLE, "kwargs": {"path": IMAGE_DAGS_FOLDER}}
    elif bundle == "s3":
        if not dags_bucket_name:
            raise ValueError("dag_bundle=s3 needs the DAG bucket's name")
        entry = {
            "name": "s3-dags",
            "classpath": S3_DAG_BUNDLE,
            "kwargs": {"aws_conn_id": "aws_default", "bucket_name": dags_bucket_name, "prefix": "dags"},
        }
    elif bundle == "git":
        if git is None:
            raise ValueError("dag_bundle=git needs dag_bundle_git_url")
        kwargs: dict = {"repo_url": git.url, "tracking_ref": git.branch, "refresh_interval": git.refresh_seconds}
        if git.secret:
            kwargs["git_conn_id"] = GIT_CONN_ID
        entry = {"name": "git-dags", "classpath": GIT_DAG_BUNDLE, "kwargs": kwargs}
    else:
        raise ValueError(f"unknown DAG bundle {bundle!r}; use image, s3 or git")
    return json.dumps([entry], separators=(",", ":"))


def git_connection_secret(scope: Construct, construct_id: str, git: GitBundleConfig | None) -> dict[str, ecs.Secret]:
    """Return the ECS secret of the git bundle's connection, for a reader of
    :data:`GIT_BUNDLE_READERS` only: ``AIRFLOW_CONN_GIT_DAGS`` from the whole value of the secret
    ``git.secret`` (a connection as JSON, which Airflow reads from an ``AIRFLOW_CONN_*``
    variable). ECS reads it with the task's execution role when the task starts (CDK grants that
    role ``secretsmanager:GetSecretValue`` on it), so neither the task role nor another
    component's role can read it. Empty without ``dag_bundle=git`` or without a secret.

    :param scope: where the imported secret is declared (one per stack that uses it).
    :param git: the git bundle, or None.
    """
    if git is None or not git.secret:
        return {}
    if git.secret.startswith("arn:") and _full_secret_arn(git.secret):
        secret = secretsmanager.Secret.from_secret_complete_arn(scope, construct_id, git.secret)
    elif git.secret.startswith("arn:"):
        secret = secretsmanager.Secret.from_secret_partial_arn(scope, construct_id, git.secret)
    else:
        secret = secretsmanager.Secret.from_secret_name_v2(scope, construct_id, git.secret)
    return {f"AIRFLOW_CONN_{GIT_CONN_ID.upper()}": ecs.Secret.from_secrets_manager(secret)}


def _full_secret_arn(arn: str) -> bool:
    """Whether a secret ARN ends in the ``-XXXXXX`` suffix Secrets Manager appends (a complete ARN)."""
    name = arn.split(":secret:", 1)[-1]
    return len(name) > 7 and name[-7] == "-" and name[-6:].isalnum()


@dataclass(frozen=True)
class AirflowCommonSettings:
    """Settings every Airflow container gets, workers included.

    :param region: AWS region (a token is fine).
    :param execution_api_url: see :func:`execution_api_url`.
    :param task_logs_bucket_name: bucket of the remote task logs.
    :param dag_bundle_config_list: see :func:`dag_bundle_config`.
    :param secrets_backend: environment of ``[secrets]`` (see :func:`secrets_backend_environment`),
        empty for none.
    """

    region: str
    execution_api_url: str
    task_logs_bucket_name: str
    dag_bundle_config_list: str
    secrets_backend: tuple[tuple[str, str], ...] = ()

    def environment(self) -> dict[str, str]:
        """Return the environment shared by every container (no secrets)."""
        return {
            "AWS_DEFAULT_REGION": self.region,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": self.execution_api_url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": self.dag_bundle_config_list,
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{self.task_logs_bucket_name}/task-logs",
            "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "aws_default",
            "AIRFLOW__LOGGING__ENCRYPT_S3_LOGS": "False",
            # An empty AWS connection: boto3 takes the task role's credentials.
            "AIRFLOW_CONN_AWS_DEFAULT": "aws://",
            **dict(self.secrets_backend),
        }

    def worker_environment(self) -> dict[str, str]:
        """Return a worker's environment: the common settings, no DB check at start (the
        official image's entrypoint runs ``airflow db check`` unless this is 0), and the Execution
        API retries of :data:`WORKER_EXECUTION_API_RETRIES`."""
        return {**self.environment(), "CONNECTION_CHECK_MAX_COUNT": "0", **WORKER_EXECUTION_API_RETRIES}


@dataclass(frozen=True)
class AirflowDbSecrets:
    """The secrets of the components that open the metadata DB.

    :param database: the RDS secret (fields username, password, host, port, dbname).
    :param fernet_key: 43-character fernet key body (see ``AirflowSecrets``).
    :param jwt_secret: ``[api_auth] jwt_secret``.
    :param api_secret_key: ``[api] secret_key``.
    """

    database: secretsmanager.ISecret
    fernet_key: secretsmanager.ISecret
    jwt_secret: secretsmanager.ISecret
    api_secret_key: secretsmanager.ISecret

    def environment(self) -> dict[str, str]:
        """Return the non-secret environment of every component: the ``_CMD`` options and the
        ARNs of the two secrets they read (``airflow_ecs_fargate.config_commands``).

        The async URL is set explicitly: Airflow would derive it from the sync URL and keep
        ``sslmode``, which asyncpg rejects (see ``airflow_ecs_fargate.config_commands``).
        """
        return {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": SQL_ALCHEMY_CONN_CMD,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC_CMD": SQL_ALCHEMY_CONN_ASYNC_CMD,
            "AIRFLOW__CORE__FERNET_KEY_CMD": FERNET_KEY_CMD,
            DB_SECRET_ARN_ENV: self.database.secret_arn,
            FERNET_KEY_SECRET_ARN_ENV: self.fernet_key.secret_arn,
        }

    def secrets(self, component: str) -> dict[str, ecs.Secret]:
        """Return the ECS secrets of ``component`` (a key of :data:`COMPONENT_SECRETS`):
        environment name -> Secrets Manager secret.

        :raises KeyError: an unknown component.
        """
        field = ecs.Secret.from_secrets_manager
        available = {
            "jwt_secret": ("AIRFLOW__API_AUTH__JWT_SECRET", self.jwt_secret),
            "api_secret_key": ("AIRFLOW__API__SECRET_KEY", self.api_secret_key),
        }
        return {available[name][0]: field(available[name][1]) for name in COMPONENT_SECRETS[component]}

    def grant_read(self, role: iam.IRole) -> None:
        """Let ``role`` (a component's task role) read the RDS secret and the fernet key secret,
        as the ``_CMD`` helpers do: ``secretsmanager:GetSecretValue`` on those two ARNs only
        (both encrypted with the AWS managed key, so no KMS grant).
        Actions: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html
        """
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadDbAndFernetSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[self.database.secret_arn, self.fernet_key.secret_arn],
            )
        )


@dataclass(frozen=True)
class EcsExecutorSettings:
    """The ``[aws_ecs_executor]`` options the scheduler receives, all from the other stacks.

    :param executor_class: ``[core] executor`` import path.
    :param region: AWS region.
    :param cluster_name: the ECS cluster the workers run in.
    :param task_definition: the workers' task definition: the revision's ARN (``Ref`` of a task
        definition in the scheduler's own stack, so the scheduler launches exactly the workers
        it was deployed with; README, "Upgrading"), or a family (RunTask then takes the family's
        latest ACTIVE revision).
    :param container_name: the workers' container.
    :param subnet_ids: the private subnets of the workers.
    :param security_group_ids: the workers' security groups.
    :param capacity_provider: ``FARGATE_SPOT`` or ``FARGATE``.
    :param spot_fallback_to_on_demand: relaunch on FARGATE when Spot has no capacity.
    :param worker_queues: queues that pick a worker size (``[aws_ecs_executor] queues``).
    :param queue_task_definitions: team queue name -> the task definition revision (ARN) its
        tasks run with (their own task role); other queues run ``task_definition``.
    :param worker_log_group: the workers' awslogs log group name: the api-server's executor reads
        a running task's log from it (``worker_log_group``).
    :param worker_log_stream_prefix: the workers' awslogs stream prefix.
    :param assign_public_ip: give each worker a public IPv4 address (workers in public subnets).
    :param scheduler_count: the deployment's schedulers: the bundled executor of each paces its
        RunTask calls and launches at Fargate's quota divided by it (``[aws_ecs_executor]
        scheduler_count``; :mod:`airflow_ecs_fargate.quota`). Written only when above 1.
    :raises ValueError: ``scheduler_count`` the quota cannot usefully be divided by (names the key
        and the fix).
    """

    executor_class: str
    region: str
    cluster_name: str
    task_definition: str
    container_name: str
    subnet_ids: list[str]
    security_group_ids: list[str]
    capacity_provider: str
    spot_fallback_to_on_demand: bool
    worker_queues: tuple[WorkerQueue, ...] = ()
    queue_task_definitions: dict[str, str] = field(default_factory=dict)
    worker_log_group: str | None = None
    worker_log_stream_prefix: str | None = None
    assign_public_ip: bool = False
    scheduler_count: int = 1

    def __post_init__(self) -> None:
        quota.check_scheduler_count(self.scheduler_count)

    def environment(self) -> dict[str, str]:
        """Return the scheduler's executor environment.

        The stock executor passes ``capacity_provider_strategy`` to boto as a raw string
        (docs/architecture.md, section 2, defect 3), so with it the launch type FARGATE is used instead.
        """
        prefix = "AIRFLOW__AWS_ECS_EXECUTOR__"
        env = {
            "AIRFLOW__CORE__EXECUTOR": self.executor_class,
            f"{prefix}REGION_NAME": self.region,
            f"{prefix}CLUSTER": self.cluster_name,
            f"{prefix}TASK_DEFINITION": self.task_definition,
            f"{prefix}CONTAINER_NAME": self.container_name,
            f"{prefix}SUBNETS": ",".join(self.subnet_ids),
            f"{prefix}SECURITY_GROUPS": ",".join(self.security_group_ids),
            f"{prefix}ASSIGN_PUBLIC_IP": str(self.assign_public_ip),
            f"{prefix}PLATFORM_VERSION": "LATEST",
        }
        if self.executor_class == STOCK_ECS_EXECUTOR:
            env[f"{prefix}LAUNCH_TYPE"] = "FARGATE"
        else:
            strategy = [{"capacityProvider": self.capacity_provider, "weight": 1}]
            env[f"{prefix}CAPACITY_PROVIDER_STRATEGY"] = json.dumps(strategy, separators=(",", ":"))
            env[f"{prefix}SPOT_FALLBACK_TO_ON_DEMAND"] = str(self.spot_fallback_to_on_demand)
            if self.scheduler_count > 1:
                env[f"{prefix}SCHEDULER_COUNT"] = str(self.scheduler_count)
            if self.worker_queues:
                env[f"{prefix}QUEUES"] = worker_queues_setting(self.worker_queues, self.queue_task_definitions)
            if self.worker_log_group:
                env[f"{prefix}WORKER_LOG_GROUP"] = self.worker_log_group
                env[f"{prefix}WORKER_LOG_STREAM_PREFIX"] = self.worker_log_stream_prefix or ""
        return env


def worker_queues_setting(queues: tuple[WorkerQueue, ...], task_definitions: dict[str, str] | None = None) -> str:
    """``[aws_ecs_executor] queues`` JSON (see executor/README.md, "Queues") from the config;
    ``task_definitions`` (queue -> revision ARN, a CloudFormation token) become each team queue's
    ``task_definition``, with its ``log_stream_prefix``."""
    value = {}
    for queue in queues:
        entry: dict = {"cpu": queue.size.cpu, "memory": queue.size.memory_mib}
        if queue.capacity_provider:
            entry["capacity_provider"] = queue.capacity_provider
        if task_definitions and queue.name in task_definitions:
            entry["task_definition"] = task_definitions[queue.name]
            entry["log_stream_prefix"] = team_queue_log_stream_prefix(queue.name)
        value[queue.name] = entry
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class SsoSettings:
    """Single sign-on of the api-server (README, "Single sign-on"): the FAB auth manager's OAuth
    login against an OpenID Connect provider, configured by ``docker/webserver_config.py`` from the
    ``AIRFLOW_SSO_*`` variables of :mod:`airflow_ecs_fargate.sso`.

    Only the api-server's main container gets them: the client secret as an ECS secret (so only
    the api-server task definition's execution role may read it, and only at task start), the rest
    as plain values. Its init container and the other components keep the FAB defaults.

    :param config: the ``sso_*`` keys (:class:`app_config.model.SsoConfig`).
    """

    config: SsoConfig

    def environment(self) -> dict[str, str]:
        """Return the api-server's variables: ``[fab] config_file`` and the SSO settings."""
        roles = {group: list(roles) for group, roles in self.config.groups_to_roles}
        return {
            "AIRFLOW__FAB__CONFIG_FILE": sso.WEBSERVER_CONFIG_PATH,
            sso.ISSUER_ENV: self.config.issuer_url,
            sso.CLIENT_ID_ENV: self.config.client_id,
            sso.ROLES_ENV: json.dumps(roles, separators=(",", ":"), sort_keys=True),
            sso.GROUPS_CLAIM_ENV: self.config.groups_claim,
            sso.SCOPES_ENV: self.config.scopes,
            sso.LOCAL_LOGIN_ENV: str(self.config.local_admin_login).lower(),
        }

    def client_secret(self, scope: Construct) -> secretsmanager.ISecret:
        """Import the client secret (by complete ARN or by name; the name form makes CDK grant
        ``<name>-??????``, the ARN Secrets Manager gives a secret)."""
        ref = self.config.client_secret
        if ref.startswith("arn:"):
            return secretsmanager.Secret.from_secret_complete_arn(scope, "SsoClientSecret", ref)
        return secretsmanager.Secret.from_secret_name_v2(scope, "SsoClientSecret", ref)

    def apply(self, container: ecs.ContainerDefinition, scope: Construct) -> None:
        """Add the settings and the client secret to ``container`` (the api-server's main one);
        CDK grants ``secretsmanager:GetSecretValue`` on the secret to that task definition's
        execution role."""
        for name, value in self.environment().items():
            container.add_environment(name, value)
        container.add_secret(sso.CLIENT_SECRET_ENV, ecs.Secret.from_secrets_manager(self.client_secret(scope)))
