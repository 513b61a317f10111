"""The task roles of the long-running Airflow components.

They live beside the cluster, the buckets and the workers' task definition, so that every grant
between them is written in one stack, with no cross-stack reference inside a policy.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cloud_assembly.names import SERVICE_COMPONENTS, construct_id
from constructs_lib import nag
from constructs_lib.buckets import grant_task_logs

#: Construct IDs of the service components (``cloud_assembly.names``), as ``stacks.airflow_stack`` uses them.
COMPONENTS = tuple(construct_id(c) for c in SERVICE_COMPONENTS)
#: Task-log access per component (Airflow 3.3.2): the api-server reads task logs to serve them;
#: the triggerer uploads the log of each trigger it ran (``TriggerLoggingFactory.upload_to_remote``
#: in ``airflow/jobs/triggerer_job_runner.py``); the scheduler and the dag-processor upload no task
#: log (the dag-processor's parse logs stay local) and read none.
TASK_LOGS_ACCESS = {"Scheduler": None, "ApiServer": "read", "DagProcessor": None, "Triggerer": "write"}
#: Components that read the DAG bucket (``dag_bundle=s3``): the dag-processor parses the DAG files
#: (and the workers run them, see ``constructs_lib.workers``). The scheduler, api-server and
#: triggerer work from the serialized DAGs in the metadata DB.
READS_DAG_BUCKET = ("DagProcessor",)


class AirflowServiceRoles(Construct):
    """One task role per component, each with only the S3 access it uses: see
    :data:`TASK_LOGS_ACCESS` and :data:`READS_DAG_BUCKET`. Nobody deletes a task log (the
    bucket's lifecycle rule expires them).

    :ivar roles: component construct ID (see :data:`COMPONENTS`) -> ``iam.Role``
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task_logs_bucket: s3.IBucket,
        dags_bucket: s3.IBucket | None,
    ):
        super().__init__(scope, construct_id)
        self.roles: dict[str, iam.Role] = {}
        for component in COMPONENTS:
            role = iam.Role(
                self,
                component,
                assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                description=f"Airflow {component} task role",
            )
            access = TASK_LOGS_ACCESS[component]
            if access is not None:
                grant_task_logs(task_logs_bucket, role, write=access == "write")
            if dags_bucket is not None and component in READS_DAG_BUCKET:
                nag.acknowledge_statements(role, dags_bucket.grant_read(role).principal_statements, nag.DAG_BUCKET_READ)
            self.roles[component] = role


def grant_read_connections_and_variables(role: iam.IRole, prefixes: dict[str, str]) -> None:
    """Let ``role`` read the deployment's connections and variables in Secrets Manager, and nothing
    else: ``secretsmanager:GetSecretValue`` (the only call ``SecretsManagerBackend._get_secret_value``
    of the amazon provider makes) on ``arn:<partition>:secretsmanager:<region>:<account>:secret:<prefix>/*``.

    The trailing ``*`` stands for the connection id or variable key and for the ``-XXXXXX`` suffix
    Secrets Manager appends to every secret's ARN; a ``-??????`` pattern would also need a wildcard
    for the id, so it would not be narrower. The ``/`` before the ``*`` keeps another deployment's
    names (``<project>/<stage>x/...``) out. No ``kms:Decrypt``: secrets the CLI writes use the AWS
    managed key ``aws/secretsmanager``, whose key policy lets the account's principals decrypt through
    Secrets Manager. Actions:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html

    Who needs it (Airflow 3.3.2, ``ensure_secrets_backend_loaded`` in
    ``airflow/sdk/execution_time/supervisor.py`` and ``Connection.get_connection_from_secrets``):
    every process that resolves a connection or variable consults the configured backend first. The
    workers (the task runner, and its supervisor for the remote-logging connection), the api-server
    (the Execution API's ``/connections`` and ``/variables`` routes), the triggerer (its trigger
    runner and supervisor), the dag-processor (top-level ``Variable.get`` while parsing, and the DAG
    bundles) and the scheduler (the executor's ``aws_default`` connection).

    :param role: a task role.
    :param prefixes: ``{"connections": ..., "variables": ...}`` from
        ``constructs_lib.airflow_settings.secrets_prefixes``.
    """
    grant_get_secret_values(
        role,
        "ReadConnectionsAndVariables",
        [f"{prefixes['connections']}/", f"{prefixes['variables']}/"],
        "Airflow's SecretsManagerBackend reads <project>/<stage>/connections/<conn_id> and "
        "/variables/<key>: the names are the DAGs' connection ids and variable keys, and every "
        "secret ARN ends in a random suffix; GetSecretValue only, on the deployment's two prefixes.",
    )


def grant_get_secret_values(role: iam.IRole, sid: str, name_prefixes: list[str], reason: str) -> None:
    """Add to ``role``'s policy the statement ``sid``: ``secretsmanager:GetSecretValue`` on the
    secrets whose names start with one of ``name_prefixes``
    (``arn:<partition>:secretsmanager:<region>:<account>:secret:<prefix>*``; the ``*`` also stands
    for the ``-XXXXXX`` suffix Secrets Manager appends to every secret's ARN), its cdk-nag
    wildcard findings acknowledged with ``reason`` (:func:`constructs_lib.nag.add_to_principal_policy`).

    Actions: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html
    """
    stack = Stack.of(role)
    resources = [
        stack.format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{prefix}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for prefix in name_prefixes
    ]
    nag.add_to_principal_policy(
        role, iam.PolicyStatement(sid=sid, actions=["secretsmanager:GetSecretValue"], resources=resources), reason
    )
