"""What ``make deploy`` checks before CDK starts: credentials, region, the CDK bootstrap."""

from __future__ import annotations

from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from airflow_ecs_ops.deployment import OpsError, aws_error

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
    except (ClientError, NoCredentialsError, NoRegionError) as err:
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
    status = stacks[0]["StackStatus"]
    if not status.endswith("_COMPLETE") or status.startswith(("ROLLBACK", "DELETE")):
        raise OpsError(
            f"The {BOOTSTRAP_STACK} stack in {region} is {status}: fix it, then run "
            f"npx cdk bootstrap aws://{caller_account}/{region} again."
        )
    return caller_account, region
