"""The task roles of the long-running Airflow components.

They live beside the cluster, the buckets and the workers' task definition, so that every grant
between them is written in one stack, with no cross-stack reference inside a policy.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.buckets import grant_task_logs

#: Construct IDs of the components, as used by ``stacks.airflow_stack``.
COMPONENTS = ("Scheduler", "ApiServer", "DagProcessor", "Triggerer")
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
                dags_bucket.grant_read(role)
            self.roles[component] = role
