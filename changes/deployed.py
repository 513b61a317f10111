"""The before-side from CloudFormation: the templates of the deployed stacks.

Per stack of the synthesized assembly, ``DescribeStacks`` (is it deployed?) and ``GetTemplate``
(``TemplateStage=Original``, the template as deployed). Every AWS error becomes a
:class:`~changes.check.CheckError` with one line that says what to do.
"""

from __future__ import annotations

import json
from typing import Any

from changes.check import CheckError, StackTemplate, StackTemplates

#: Stack statuses with no deployed template (a change set never executed).
NOT_DEPLOYED_STATUSES = frozenset({"REVIEW_IN_PROGRESS", "DELETE_COMPLETE"})


def cloudformation_client(region: str | None) -> Any:
    """A boto3 CloudFormation client for ``region`` (the default chain's region when None)."""
    import boto3

    return boto3.client("cloudformation", region_name=region)


def _explain(err: Exception, region: str | None, action: str) -> CheckError:
    import botocore.exceptions as bx

    where = region or "the default region"
    if isinstance(err, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return CheckError("no AWS credentials: configure them (aws configure, aws sso login, AWS_PROFILE) and run again")
    if isinstance(err, bx.NoRegionError):
        return CheckError("no AWS region: set region in the configuration (-c region=...) or AWS_REGION and run again")
    if isinstance(err, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return CheckError(f"cannot reach CloudFormation in {where}: check the region name (-c region=...) and the network")
    if isinstance(err, bx.ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", "")
        return CheckError(
            f"CloudFormation {action} in {where} failed ({code}: {message}): renew the credentials or use a "
            "role allowed cloudformation:DescribeStacks and cloudformation:GetTemplate"
        )
    if isinstance(err, bx.BotoCoreError):
        return CheckError(f"CloudFormation {action} in {where} failed ({err}): check credentials and region")
    raise err


def _is_missing(err: Exception) -> bool:
    import botocore.exceptions as bx

    return (
        isinstance(err, bx.ClientError)
        and err.response.get("Error", {}).get("Code") == "ValidationError"
        and "does not exist" in err.response.get("Error", {}).get("Message", "")
    )


def deployed_templates(after: StackTemplates, client: Any = None, region: str | None = None) -> StackTemplates:
    """The deployed templates of ``after``'s stacks (same names), by role; stacks that are not
    deployed are left out (an empty result is a new deployment).

    :param client: a CloudFormation client (``describe_stacks``, ``get_template``); by default
        :func:`cloudformation_client` for the assembly's region (the stacks' own), else ``region``,
        else the profile's.
    :raises CheckError: credentials, region, access or a template CloudFormation cannot return.
    """
    region = next((s.region for s in after.stacks.values() if s.region), None) or region
    try:
        client = client or cloudformation_client(region)
    except Exception as err:  # botocore raises NoRegionError here
        raise _explain(err, region, "client setup") from None
    found = {}
    for role, stack in after.stacks.items():
        try:
            described = client.describe_stacks(StackName=stack.name)["Stacks"]
        except Exception as err:
            if _is_missing(err):
                continue
            raise _explain(err, region, f"DescribeStacks of {stack.name}") from None
        if not described or described[0].get("StackStatus") in NOT_DEPLOYED_STATUSES:
            continue
        try:
            body = client.get_template(StackName=stack.name, TemplateStage="Original")["TemplateBody"]
        except Exception as err:
            raise _explain(err, region, f"GetTemplate of {stack.name}") from None
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                raise CheckError(
                    f"the deployed template of {stack.name} is not JSON, so not this app's: check project_name "
                    "and stage, or compare with python -m changes diff"
                ) from None
        if not isinstance(body, dict):
            raise CheckError(f"CloudFormation returned no template for {stack.name}: run again, or compare with python -m changes diff")
        found[role] = StackTemplate(role=role, name=stack.name, template=body, region=stack.region)
    return StackTemplates(found)
