"""How the CDK app names a deployment's stacks, components and secrets: the one home of those
names, so the app that creates them and the tools that look them up (the operations CLI, the
rehearsal, the cost report) cannot drift apart.

A deployment is ``<project_name>-<stage>`` (``app_config``: ``project_name``, ``stage``), e.g.
``airflow-dev``; its stacks are ``<deployment>-<role>``, e.g. ``airflow-dev-cluster``.
"""

from __future__ import annotations

#: The stacks of a deployment by role, as ``app.build_app`` composes them.
STACK_ROLES: tuple[str, ...] = ("network", "database", "image", "cluster", "airflow")
#: The Airflow components that run as ECS services, in the order they start. The name is the
#: container's name, the ``airflow`` command and the operations CLI's ``--component``.
SERVICE_COMPONENTS: tuple[str, ...] = ("scheduler", "api-server", "dag-processor", "triggerer")
#: The component of the executor's worker tasks (a task per Airflow task, not a service).
WORKER = "worker"
#: Every component (log streams, ``airflow-ecs logs``).
COMPONENTS: tuple[str, ...] = (*SERVICE_COMPONENTS, WORKER)
#: What a deployment keeps in Secrets Manager under its prefix (``airflow-ecs connections|variables``).
SECRET_KINDS: tuple[str, ...] = ("connections", "variables")


def team_queue_log_stream_prefix(queue: str) -> str:
    """The awslogs stream prefix of a team queue's workers, ``worker-<queue>``: their streams are
    ``worker-<queue>/<container>/<task id>`` in the workers' log group, apart from the default
    workers' ``worker/...`` (the executor reads a RUNNING task's live log there, the CDK app grants
    the api-server exactly those streams)."""
    return f"{WORKER}-{queue}"


def deployment_name(project: str, stage: str) -> str:
    """``<project>-<stage>``, e.g. ``airflow-dev``: names what must be unique per deployment
    (metrics namespace dimension, task definition families, the service discovery namespace)."""
    return f"{project}-{stage}"


def stack_name(project: str, stage: str, role: str) -> str:
    """The CloudFormation stack name of ``role`` (one of :data:`STACK_ROLES`), e.g. ``airflow-dev-cluster``."""
    return f"{deployment_name(project, stage)}-{role}"


def construct_id(component: str) -> str:
    """The construct ID of a service component (``api-server`` -> ``ApiServer``): its service, task
    role and stack outputs are named with it."""
    return "".join(part.capitalize() for part in component.split("-"))


def service_name_output(component: str) -> str:
    """The Airflow stack's output holding the ECS service name of ``component``, e.g.
    ``SchedulerServiceName`` (the operations CLI reads it)."""
    return f"{construct_id(component)}ServiceName"


def secrets_prefix(project: str, stage: str, kind: str) -> str:
    """The Secrets Manager name prefix of ``kind`` (one of :data:`SECRET_KINDS`):
    ``<project>/<stage>/<kind>``.

    The amazon provider's ``SecretsManagerBackend`` looks a connection up as
    ``<connections_prefix>/<conn_id>`` (``sep`` defaults to ``/``), a variable as
    ``<variables_prefix>/<key>``; the operations CLI writes the same names.
    """
    return f"{project}/{stage}/{kind}"
