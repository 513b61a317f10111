"""Acknowledge a cdk-nag AwsSolutions finding on the construct that writes the permission or
resource, computed from the value the grant uses, so the two cannot drift apart.

A finding ID has the form ``AwsSolutions-<rule>`` or, for IAM findings,
``AwsSolutions-<rule>[<Action|Resource|Policy>::<what>]``, where ``<what>`` is the action, or the
resource or managed policy ARN flattened the way cdk-nag 3 flattens CloudFormation references
(``utils/flatten-cfn-reference`` in the cdk-nag package: ``{"Ref": "X"}`` is ``<X>``,
``{"Fn::GetAtt": ["X", "Arn"]}`` is ``<X.Arn>``, ``Fn::Join`` joins the parts). cdk-nag treats an
acknowledgement on a construct as one on every resource below it. README "Security" lists the
acknowledged findings; ``tests/cdk/test_scanners.py`` fails on a finding nobody acknowledged and on
an acknowledgement whose finding cdk-nag no longer reports.

The reasons shared by several constructs live here; the others are written at their construct.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import IConstruct

ECS2_SETTINGS = (
    "Only non-secret Airflow settings are environment values: the DB credentials and fernet "
    "key are read from Secrets Manager by the _CMD helpers (the environment holds their ARNs), "
    "the JWT secret, API secret key and admin password are ECS secrets (docs/security.md)."
)
ECR_AUTH = (
    "ecr:GetAuthorizationToken supports no resource-level permission; image pulls themselves "
    "are limited to the image's repository."
)
ECS4_OFF = (
    "container_insights=false (the lean default): Container Insights is billed as custom "
    "metrics per cluster and service; the services' CPU and memory still reach CloudWatch "
    "as the standard ECS service metrics."
)
SMG4 = (
    "Generated once and read at container start; rotating it needs Airflow's own procedure "
    "(e.g. airflow rotate-fernet-key, or a coordinated restart), see README Security."
)
DAG_BUCKET_READ = (
    "The DAG bucket (dag_bundle=s3) is read with CDK's grant_read (s3:GetObject*, s3:GetBucket*, "
    "s3:List*), read-only."
)
LAMBDA_BASIC_EXECUTION = "service-role/AWSLambdaBasicExecutionRole"


def acknowledge(construct: IConstruct, findings: str | Iterable[str], reason: str) -> None:
    """Acknowledge ``findings`` (IDs as in the module docstring) on ``construct`` and below it.

    :param construct: the narrowest construct that holds the finding's resources.
    :param findings: one finding ID or several; none is a no-op.
    :param reason: why the finding is accepted (shown in the CDK CLI's validation report).
    """
    for finding in [findings] if isinstance(findings, str) else sorted(set(findings)):
        # The CDK CLI's validation report matches "<plugin>::<rule>"; cdk-nag's validate_scope (the
        # tests) matches the bare rule ID. Both name the same finding.
        cdk.Validations.of(construct).acknowledge(
            cdk.Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason),
            cdk.Acknowledgment(id=finding, reason=reason),
        )


def acknowledge_statements(
    principal: IConstruct, statements: Iterable[iam.PolicyStatement], reason: str
) -> None:
    """Acknowledge the IAM5 (wildcard) findings that ``statements`` raise in ``principal``'s policy.

    :param principal: the role whose policy holds the statements (its ``DefaultPolicy``).
    :param statements: the statements as granted (``iam.PolicyStatement``, or a CDK grant's
        ``principal_statements``); statements without a wildcard add nothing.
    :param reason: why the wildcards are accepted.
    """
    acknowledge(principal, wildcard_findings(cdk.Stack.of(principal), statements), reason)


def add_to_principal_policy(principal: iam.IRole, statement: iam.PolicyStatement, reason: str) -> None:
    """Grant ``statement`` to ``principal`` (``principal.add_to_principal_policy``) and acknowledge
    the wildcards it holds (:func:`acknowledge_statements`) with ``reason``."""
    principal.add_to_principal_policy(statement)
    acknowledge_statements(principal, [statement], reason)


def wildcard_findings(stack: cdk.Stack, statements: Iterable[iam.PolicyStatement]) -> list[str]:
    """The AwsSolutions-IAM5 finding IDs of ``statements`` as cdk-nag 3 names them
    (``rules/iam/IAMNoWildcardPermissions``: every action and every flattened resource of an Allow
    statement that contains ``*``).

    :param stack: the stack whose policy holds the statements (tokens resolve in it).
    """
    findings = []
    for statement in statements:
        document = stack.resolve(statement.to_statement_json())
        if document.get("Effect") != "Allow":
            continue
        findings += [f"AwsSolutions-IAM5[Action::{a}]" for a in _listed(document.get("Action")) if "*" in a]
        resources = (flatten_reference(r) for r in _listed(document.get("Resource")))
        findings += [f"AwsSolutions-IAM5[Resource::{r}]" for r in resources if "*" in r]
    return findings


def iam5_resource(scope: IConstruct, resource: str) -> str:
    """The AwsSolutions-IAM5 finding ID of ``resource`` (an ARN with a ``*``, tokens allowed) in a
    policy of ``scope``'s stack."""
    return f"AwsSolutions-IAM5[Resource::{flatten_reference(cdk.Stack.of(scope).resolve(resource))}]"


def managed_policy_finding(scope: IConstruct, policy: iam.IManagedPolicy | str) -> str:
    """The AwsSolutions-IAM4 finding ID that attaching the AWS managed ``policy`` (or the AWS
    managed policy of that name, e.g. ``service-role/AWSLambdaBasicExecutionRole``) raises in
    ``scope``'s stack."""
    if isinstance(policy, str):
        policy = iam.ManagedPolicy.from_aws_managed_policy_name(policy)
    return f"AwsSolutions-IAM4[Policy::{flatten_reference(cdk.Stack.of(scope).resolve(policy.managed_policy_arn))}]"


def flatten_reference(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag 3 flattens it (``flattenCfnReference``)."""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(flatten_reference(part) for part in parts)
    if isinstance(value, dict) and "Fn::Sub" in value:
        return flatten_reference(value["Fn::Sub"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return flatten_reference(value["Fn::ImportValue"])
    if isinstance(value, dict) and "Ref" in value:
        return f"<{flatten_reference(value['Ref'])}>"
    return json.dumps(value, separators=(",", ":"))  # cdk-nag's fallback: JSON.stringify


def _listed(value: Any) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]
