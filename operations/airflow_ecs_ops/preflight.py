"""What ``make deploy`` checks before CDK starts: credentials, region, the CDK bootstrap, and
whether the database that office hours stopped can take the change (:func:`check_database`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from airflow_ecs_ops.deployment import OpsError, aws_error, stack_name
from airflow_ecs_ops.office_hours import DATABASE_OUTPUT, database_status
from cloud_assembly import AssemblyError, CloudAssembly, MissingAssembly

#: The stack ``cdk bootstrap`` creates (default qualifier).
BOOTSTRAP_STACK = "CDKToolkit"


def check_deploy_prerequisites(session, account: str | None = None) -> tuple[str, str]:
    """Check that ``session`` has working credentials and a region, that they belong to
    ``account`` when given, and that the region is bootstrapped for CDK.

    :returns: (account, region).
    :raises OpsError: naming the fix (credentials, region, ``npx cdk bootstrap aws://<account>/<region>``).
    """
    if not session.region_name:
        raise OpsError("No AWS region: set AWS_REGION (or a profile's region), or pass -c region=... in CDK_ARGS.")
    try:
        identity = session.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as err:
        raise aws_error(err, "checking the AWS credentials (sts get-caller-identity)") from err
    caller_account = identity["Account"]
    if account and account != caller_account:
        raise OpsError(
            f"The credentials are for account {caller_account}, but the configuration deploys to "
            f"account {account}: use that account's credentials or fix -c account=."
        )
    region = session.region_name
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]
    except ClientError as err:
        if "does not exist" in err.response.get("Error", {}).get("Message", ""):
            raise OpsError(
                f"Account {caller_account} is not bootstrapped for CDK in {region} (no {BOOTSTRAP_STACK} "
                f"stack): run npx cdk bootstrap aws://{caller_account}/{region} once, then make deploy."
            ) from err
        raise aws_error(err, f"reading the {BOOTSTRAP_STACK} stack") from err
    except BotoCoreError as err:
        raise aws_error(err, f"reading the {BOOTSTRAP_STACK} stack") from err
    status = stacks[0]["StackStatus"]
    if not status.endswith("_COMPLETE") or status.startswith(("ROLLBACK", "DELETE")):
        raise OpsError(
            f"The {BOOTSTRAP_STACK} stack in {region} is {status}: fix it, then run "
            f"npx cdk bootstrap aws://{caller_account}/{region} again."
        )
    return caller_account, region


#: A stopped RDS instance refuses ModifyDBInstance (InvalidDBInstanceState): any change to the
#: resource's properties in the template is a modification CloudFormation sends.
DB_INSTANCE_TYPE = "AWS::RDS::DBInstance"


@dataclass(frozen=True)
class DatabaseCheck:
    """What a deploy means for the database while office hours may have stopped it.

    :param identifier: the RDS instance, or None on a first deploy (no database stack yet).
    :param status: its ``DBInstanceStatus``, or None.
    :param changes: logical ID -> changed properties of every RDS instance this deploy modifies
        (empty when none, or when no assembly was given).
    """

    identifier: str | None
    status: str | None
    changes: dict[str, list[str]]

    @property
    def blocked(self) -> bool:
        """The database is stopped (or stopping) and the deploy would modify it."""
        return self.status in ("stopped", "stopping") and bool(self.changes)


def assembly_template(assembly_dir: Path, stack: str) -> dict | None:
    """The template of the stack named ``stack`` in the cloud assembly, or None without it.

    :raises OpsError: ``assembly_dir`` holds no cloud assembly (run ``make synth``).
    """
    try:
        found = CloudAssembly(assembly_dir).stack_named(stack)
    except MissingAssembly:
        raise OpsError(f"No cloud assembly at {assembly_dir}: run make synth first (with the same CDK_ARGS).") from None
    except AssemblyError as err:
        raise OpsError(str(err)) from None
    return found.template if found is not None else None


def deployed_template(cfn, stack: str) -> dict:
    """The stack's deployed template (GetTemplate, as last deployed).

    :raises OpsError: an AWS error, or a template that is not JSON (CDK writes JSON).
    """
    try:
        body = cfn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
    except (ClientError, BotoCoreError) as err:
        raise aws_error(err, f"reading the deployed template of {stack} (GetTemplate)") from err
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            raise OpsError(f"The deployed template of {stack} is not JSON; deploy it with this app (make deploy).") from None
    return body


def changed_db_instances(before: dict, after: dict) -> dict[str, list[str]]:
    """Logical ID -> names of the properties that differ, for every RDS instance in both
    templates whose properties differ (a new or removed instance is not a modification)."""
    def instances(template: dict) -> dict[str, dict]:
        return {k: r.get("Properties", {}) for k, r in template.get("Resources", {}).items() if r.get("Type") == DB_INSTANCE_TYPE}

    old, new = instances(before), instances(after)
    changes = {}
    for logical_id in old.keys() & new.keys():
        names = sorted(k for k in old[logical_id].keys() | new[logical_id].keys() if old[logical_id].get(k) != new[logical_id].get(k))
        if names:
            changes[logical_id] = names
    return changes


def check_database(session, project: str, stage: str, assembly_dir: Path | None) -> DatabaseCheck:
    """Read the database's state and, with ``assembly_dir``, what the deploy changes in it.

    :raises OpsError: an AWS error, or no assembly at ``assembly_dir``.
    """
    stack = stack_name(project, stage, "database")
    cfn = session.client("cloudformation")
    try:
        stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as err:
        if "does not exist" in err.response.get("Error", {}).get("Message", ""):
            return DatabaseCheck(None, None, {})  # a first deploy
        raise aws_error(err, f"reading stack {stack}") from err
    except BotoCoreError as err:
        raise aws_error(err, f"reading stack {stack}") from err
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    identifier = outputs.get(DATABASE_OUTPUT)
    if identifier is None:  # deployed before the output existed: this deploy adds it
        return DatabaseCheck(None, None, {})
    status = database_status(session.client("rds"), identifier)
    changes: dict[str, list[str]] = {}
    if assembly_dir is not None and status in ("stopped", "stopping"):
        new = assembly_template(assembly_dir, stack)
        if new is not None:
            changes = changed_db_instances(deployed_template(cfn, stack), new)
    return DatabaseCheck(identifier, status, changes)
