"""How constructs_lib.nag names a finding: as cdk-nag 3's flattenCfnReference does."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from constructs_lib import nag


def test_flatten_reference_as_cdk_nag_does():
    assert nag.flatten_reference({"Fn::Join": ["", [{"Fn::GetAtt": ["Logs1", "Arn"]}, "/task-logs/*"]]}) == "<Logs1.Arn>/task-logs/*"
    assert nag.flatten_reference({"Fn::Join": [":", ["arn", {"Ref": "AWS::Partition"}, "*"]]}) == "arn:<AWS::Partition>:*"
    assert nag.flatten_reference({"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"}) == "arn:<AWS::Partition>:s3:::b/*"
    assert nag.flatten_reference({"Fn::ImportValue": "Export"}) == "Export"
    # Anything else as JSON.stringify writes it.
    assert nag.flatten_reference({"Fn::Select": [0, ["a*"]]}) == '{"Fn::Select":[0,["a*"]]}'


def test_wildcard_findings_name_wildcard_actions_and_resources_of_allow_statements_only():
    stack = cdk.Stack(cdk.App(), "S")
    statements = [
        iam.PolicyStatement(actions=["s3:GetObject*", "s3:ListBucket"], resources=["arn:aws:s3:::b", "arn:aws:s3:::b/*"]),
        iam.PolicyStatement(effect=iam.Effect.DENY, actions=["s3:*"], resources=["*"]),
    ]
    assert nag.wildcard_findings(stack, statements) == [
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "AwsSolutions-IAM5[Resource::arn:aws:s3:::b/*]",
    ]
