"""The ECS service-linked role, created before the cluster when the account has none yet."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from constructs_lib import nag

#: The role ECS uses to manage ENIs, load balancer targets and Cloud Map for services.
ECS_SERVICE_LINKED_ROLE = "AWSServiceRoleForECS"
#: IAM's error code when the role already exists ("Service role name ... has been taken").
ROLE_EXISTS_ERROR = "InvalidInput"
#: Construct ID of AwsCustomResource's provider function, a singleton at the stack's root:
#: aws-cdk-lib's ``SingletonFunction`` names it ``<lambdaPurpose><uuid without dashes>``, and
#: ``AwsCustomResource`` passes the purpose ``AWS`` and its public ``PROVIDER_FUNCTION_UUID``.
PROVIDER_FUNCTION_ID = "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")


class EcsServiceLinkedRole(Construct):
    """Makes sure ``AWSServiceRoleForECS`` exists before anything depends on it.

    ECS creates the role itself on first use, but in a brand-new account ``CreateCluster`` and
    ``CreateService`` can run before it exists and fail. A plain ``AWS::IAM::ServiceLinkedRole``
    resource fails in every account that already has the role (most), so a custom resource calls
    ``iam:CreateServiceLinkedRole`` on create and treats "already exists" (``InvalidInput``) as
    success. On delete it does nothing: the role belongs to the account, not to this app.
    Source: IAM User Guide, "Using service-linked roles"; Amazon ECS Developer Guide,
    "Using service-linked roles for Amazon ECS".

    :param log_retention: retention of the provider function's log group.
    :param retain: keep that log group when the stack is deleted.
    :ivar resource: ``cr.AwsCustomResource``; make the cluster depend on it.
    """

    def __init__(self, scope: Construct, construct_id: str, *, log_retention: logs.RetentionDays, retain: bool):
        super().__init__(scope, construct_id)
        # The app's retention and removal policy, not the provider's defaults (731 days, retained).
        log_group = logs.LogGroup(
            self,
            "ProviderLogs",
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        role_arn = Stack.of(self).format_arn(
            service="iam",
            region="",
            resource="role",
            resource_name=f"aws-service-role/ecs.amazonaws.com/{ECS_SERVICE_LINKED_ROLE}",
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Create",
            on_create=cr.AwsSdkCall(
                service="IAM",
                action="createServiceLinkedRole",
                parameters={"AWSServiceName": "ecs.amazonaws.com"},
                physical_resource_id=cr.PhysicalResourceId.of(ECS_SERVICE_LINKED_ROLE),
                ignore_error_codes_matching=ROLE_EXISTS_ERROR,
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["iam:CreateServiceLinkedRole"],
                        resources=[role_arn],
                        conditions={"StringEquals": {"iam:AWSServiceName": "ecs.amazonaws.com"}},
                    )
                ]
            ),
            install_latest_aws_sdk=False,
            log_group=log_group,
        )
        nag.acknowledge(
            Stack.of(self).node.find_child(PROVIDER_FUNCTION_ID),
            nag.managed_policy_finding(self, nag.LAMBDA_BASIC_EXECUTION),
            "CDK's AwsCustomResource provider (creates the ECS service-linked role when the account "
            "has none) writes its own logs with the AWS managed AWSLambdaBasicExecutionRole policy.",
        )
