"""The Application Load Balancer in front of the api-server (UI and REST API)."""

from __future__ import annotations

from aws_cdk import Annotations, Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_s3 as s3
from constructs import Construct

#: Airflow 3's health endpoint (api-server): https://airflow.apache.org/docs/apache-airflow/stable/administration-and-deployment/logging-monitoring/check-health.html
HEALTH_CHECK_PATH = "/api/v2/monitor/health"


class UiLoadBalancer(Construct):
    """An ALB forwarding to the api-server.

    With ``certificate_arn``: HTTPS on 443 (TLS 1.2+ policy ``RECOMMENDED_TLS``) and HTTP on 80
    redirected to HTTPS. Without: HTTP on 80, with a warning annotation. ``internal`` makes it
    reachable only from inside the VPC. Listeners add no ingress rule of their own: the load
    balancer's security group decides who may connect.

    Access logs go to ``access_logs_bucket`` under ``alb/``. CDK needs a concrete region for
    that (the bucket policy names the region's ELB account), so pass None in an
    environment-agnostic synthesis.

    :ivar load_balancer: ``elbv2.ApplicationLoadBalancer``
    :ivar target_group: ``elbv2.ApplicationTargetGroup``
    :ivar url: ``https://`` or ``http://`` URL of the UI (a token)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        internal: bool,
        certificate_arn: str | None,
        access_logs_bucket: s3.IBucket | None,
        deletion_protection: bool,
    ):
        super().__init__(scope, construct_id)
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=not internal,
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="Private" if internal else "Public"),
            security_group=security_group,
            drop_invalid_header_fields=True,
            deletion_protection=deletion_protection,
        )
        if access_logs_bucket is not None:
            self.load_balancer.log_access_logs(access_logs_bucket, "alb")
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "ApiServer",
            vpc=vpc,
            port=8080,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            health_check=elbv2.HealthCheck(
                path=HEALTH_CHECK_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(30),
                timeout=Duration.seconds(10),
                healthy_threshold_count=2,
                unhealthy_threshold_count=5,
            ),
            deregistration_delay=Duration.seconds(30),
        )
        dns = self.load_balancer.load_balancer_dns_name
        if certificate_arn:
            self.load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_target_groups=[self.target_group],
                open=False,
            )
            self.load_balancer.add_redirect(source_port=80, target_port=443, open=False)
            self.url = f"https://{dns}"
        else:
            self.load_balancer.add_listener(
                "Http",
                port=80,
                protocol=elbv2.ApplicationProtocol.HTTP,
                default_target_groups=[self.target_group],
                open=False,
            )
            self.url = f"http://{dns}"
            Annotations.of(self).add_warning_v2(
                "airflow:ui-without-tls",
                "The Airflow UI is served over plain HTTP: set certificate_arn to an ACM certificate "
                "to serve it over HTTPS (prod requires it unless ui_private_only=true).",
            )

    def attach(self, service: ecs.FargateService) -> None:
        """Register ``service``'s tasks as targets (port 8080 of its first container)."""
        service.attach_to_application_target_group(self.target_group)
