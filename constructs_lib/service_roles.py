"""The task roles of the long-running Airflow components.

They live beside the cluster, the buckets and the workers' task definition, so that every grant
between them is written in one stack, with no cross-stack reference inside a policy.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

#: Construct IDs of the components, as used by ``stacks.airflow_stack``.
COMPONENTS = ("Scheduler", "ApiServer", "DagProcessor", "Triggerer")


class AirflowServiceRoles(Construct):
    """One task role per component; each reads and writes task logs (the api-server serves them,
    the others write their own) and reads the DAG bucket when there is one.

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
            task_logs_bucket.grant_read_write(role, "task-logs/*")
            if dags_bucket is not None:
                dags_bucket.grant_read(role)
            self.roles[component] = role
