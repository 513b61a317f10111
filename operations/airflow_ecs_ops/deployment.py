"""Find a deployment from its CloudFormation stacks' outputs.

The CDK app names its stacks ``<project>-<stage>-<role>`` with the function this module uses
(``cloud_assembly.names.stack_name``) and writes the outputs listed in :data:`REQUIRED_OUTPUTS`; the test suite checks
that the synthesized templates carry every one of them, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

# COMPONENTS and WORKER: the CLI's modules take the components from here, with SERVICES.
from cloud_assembly.names import COMPONENTS, WORKER  # noqa: F401
from cloud_assembly.names import SERVICE_COMPONENTS, service_name_output, stack_name

#: The Airflow components that run as ECS services: CLI name -> output key of the service name.
#: Each component's container is named after it (``constructs_lib/airflow_service.py``).
SERVICES: dict[str, str] = {c: service_name_output(c) for c in SERVICE_COMPONENTS}

#: Output keys the CLI reads, by stack role.
REQUIRED_OUTPUTS: dict[str, tuple[str, ...]] = {
    "cluster": ("ClusterName", "WorkerTaskDefinitionFamily", "WorkerContainerName"),
    "airflow": (*SERVICES.values(), "AirflowUiUrl", "AdminUsername", "AdminPasswordSecretArn"),
    "image": ("ImageRepositoryUri",),
    # wake, sleep, status, preflight: the RDS instance office hours stop and start.
    "database": ("DatabaseInstanceIdentifier",),
}


#: Stack states in which the stack's resources are not (or no longer) all there.
UNUSABLE_STACK_STATUSES = frozenset({
    "CREATE_IN_PROGRESS", "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
    "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE",
})


class OpsError(click.ClickException):
    """An error the CLI reports as one sentence that names the fix (``Error: ...``, exit status 1)."""


def aws_error(err: Exception, what: str) -> OpsError:
    """Translate a boto error while doing ``what`` into an :class:`OpsError` with the fix."""
    if isinstance(err, NoCredentialsError):
        return OpsError(
            f"No AWS credentials found while {what}. Configure them as for the AWS CLI: "
            "AWS_PROFILE (aws configure / aws sso login) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        )
    if isinstance(err, NoRegionError):
        return OpsError(f"No AWS region while {what}: pass --region or set AWS_REGION (or a profile's region).")
    if isinstance(err, (EndpointConnectionError, ConnectTimeoutError)):
        return OpsError(
            f"Cannot reach AWS while {what} ({err}): check the network connection, proxy and the region's name."
        )
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", str(err))
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
            return OpsError(f"AWS rejected the credentials while {what} ({code}): refresh them (e.g. aws sso login).")
        return OpsError(f"AWS error while {what}: {code}: {message}")
    return OpsError(f"Error while {what}: {err}")


@dataclass(frozen=True)
class Deployment:
    """One deployed environment, as its stacks report it.

    :param project: the ``project_name`` of the CDK app.
    :param stage: ``dev`` or ``prod`` (any stage name the app accepted).
    :param region: AWS region of the stacks.
    :param outputs: stack role (``cluster``, ``airflow``, ``image``) -> output key -> value.
    """

    project: str
    stage: str
    region: str
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def output(self, role: str, key: str) -> str:
        """Return output ``key`` of the ``role`` stack.

        :raises OpsError: the stack lacks the output (deployed from an older version of the app).
        """
        try:
            return self.outputs[role][key]
        except KeyError:
            raise OpsError(
                f"Stack {stack_name(self.project, self.stage, role)} has no output {key}: it was deployed "
                "by an older version of this app; run make deploy again."
            ) from None

    @property
    def cluster(self) -> str:
        """The ECS cluster name."""
        return self.output("cluster", "ClusterName")

    def service_name(self, component: str) -> str:
        """The ECS service name of ``component`` (a key of :data:`SERVICES`).

        :raises OpsError: ``component`` is not a service; the message lists the valid ones.
        """
        check_component(component, tuple(SERVICES))
        return self.output("airflow", SERVICES[component])


def check_component(component: str, valid: tuple[str, ...]) -> None:
    """:raises OpsError: ``component`` is not in ``valid`` (the message lists them)."""
    if component not in valid:
        raise OpsError(f"Unknown component {component!r}: use one of {', '.join(valid)}.")


def find_deployment(session, project: str, stage: str, roles: tuple[str, ...] = ("cluster", "airflow")) -> Deployment:
    """Read the outputs of the ``roles`` stacks of ``project``/``stage`` with DescribeStacks.

    :param session: a ``boto3.Session`` (its region is the deployment's).
    :param roles: the stacks that must exist; ``image`` is read too when present.
    :returns: the :class:`Deployment`.
    :raises OpsError: no credentials or region; a required stack does not exist (the message names
        every stack looked for); a stack is still being created or was rolled back.
    """
    cfn = session.client("cloudformation")
    outputs: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    wanted = tuple(dict.fromkeys((*roles, "image")))
    for role in wanted:
        name = stack_name(project, stage, role)
        try:
            stacks = cfn.describe_stacks(StackName=name)["Stacks"]
        except ClientError as err:
            if "does not exist" in err.response.get("Error", {}).get("Message", ""):
                if role in roles:
                    missing.append(name)
                continue
            raise aws_error(err, f"reading stack {name}") from err
        except BotoCoreError as err:
            raise aws_error(err, f"reading stack {name}") from err
        stack = stacks[0]
        status = stack["StackStatus"]
        if role in roles and status in UNUSABLE_STACK_STATUSES:
            raise OpsError(f"Stack {name} is {status}: wait for it or deploy again (make deploy).")
        outputs[role] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if missing:
        looked_for = ", ".join(stack_name(project, stage, r) for r in roles)
        raise OpsError(
            f"No deployment of project {project!r}, stage {stage!r} in {session.region_name}: "
            f"missing stack(s) {', '.join(missing)} (looked for {looked_for}). "
            "Check --project, --stage and --region (or AWS_REGION), or deploy first (make deploy)."
        )
    return Deployment(project, stage, session.region_name, outputs)
