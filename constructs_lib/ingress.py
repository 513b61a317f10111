"""The Application Load Balancer in front of the api-server (UI and REST API)."""

from __future__ import annotations

from aws_cdk import Annotations, CfnRule, CfnRuleAssertion, Duration, Fn, Stack, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cloud_assembly.airflow_image import API_SERVER_PORT
from constructs_lib import nag
from constructs_lib.waf import LoginRateLimit

#: Airflow 3's health endpoint (api-server): https://airflow.apache.org/docs/apache-airflow/stable/administration-and-deployment/logging-monitoring/check-health.html
HEALTH_CHECK_PATH = "/api/v2/monitor/health"
#: The api-server's HTTP keep-alive timeout (seconds): Airflow passes ``[api] worker_timeout``
#: (default 120) to uvicorn as ``timeout_keep_alive``; the stack sets it explicitly.
API_SERVER_KEEP_ALIVE_SECONDS = 120
#: ALB idle timeout (seconds; ALB default 60). Long enough for slow API calls (a large log read
#: from S3, a big DAG listing) and below the api-server's keep-alive, as the ALB docs ask of
#: targets ("configure the idle timeout of your application to be larger than the idle timeout
#: configured for the load balancer"), so the api-server never closes a connection the ALB is
#: about to reuse (a 502).
ALB_IDLE_TIMEOUT_SECONDS = 110
#: Path patterns of Airflow 3's Execution API on the api-server (mounted at ``/execution``,
#: ``airflow/api_fastapi/app.py``): workers reach it through Cloud Map inside the VPC, so the load
#: balancer refuses it. ALB path patterns are case-sensitive, as the api-server's routes are.
EXECUTION_API_PATH_PATTERNS = ["/execution", "/execution/*"]
#: Status the load balancer answers :data:`EXECUTION_API_PATH_PATTERNS` with.
EXECUTION_API_REFUSED_STATUS = 403


def _encoded_path_regex(segment: str) -> str:
    """A regular expression matching ``/<segment>`` and everything under it as a client may send
    it: any letter percent-encoded (``%65`` or ``%6F``/``%6f`` for a hex letter), one or more
    leading slashes, the slash after it as ``/`` or ``%2F``/``%2f``."""
    def letter(c: str) -> str:
        high, low = f"{ord(c):02x}"
        return f"({c}|%{high}{f'[{low}{low.upper()}]' if low.isalpha() else low})"

    return "^/+" + "".join(letter(c) for c in segment) + "(/.*|%2[fF].*)?$"


#: The Execution API's paths as a client may encode them. ALB compares a path pattern with the
#: path as the client sent it, case-sensitively (ELB API reference, PathPatternConditionConfig:
#: "The comparison is case sensitive"; it documents no decoding), while uvicorn percent-decodes
#: the path before the api-server routes it: ``/%65xecution/health`` and ``/execution%2Fhealth``
#: reach the Execution API past :data:`EXECUTION_API_PATH_PATTERNS`. This regex (ALB's
#: ``RegexValues``, at most 128 characters each) closes those; it is anchored at both ends so it
#: means the same whether ALB searches or matches whole. Other spellings do not reach the
#: Execution API: Starlette's routes are case-sensitive (``/EXECUTION/`` gets the UI's page) and
#: ``//execution/`` does not match its mount (tests/rehearsal/test_load_balancer.py sends each to
#: Airflow's own routing).
EXECUTION_API_ENCODED_PATH_REGEX = _encoded_path_regex("execution")


class _RegexPathCondition(elbv2.ListenerCondition):
    """A ``path-pattern`` condition with regular expressions (``RegexValues``), which the CDK's
    ``ListenerCondition.path_patterns`` does not render."""

    def __init__(self, regexes: list[str]):
        super().__init__()
        self._regexes = regexes

    def render_raw_condition(self) -> dict:
        return {"field": "path-pattern", "pathPatternConfig": {"regexValues": self._regexes}}


class UiLoadBalancer(Construct):
    """An ALB forwarding to the api-server.

    With ``domain_name`` (and its Route 53 public hosted zone): HTTPS on 443 (TLS 1.2+ policy
    ``RECOMMENDED_TLS``) with ``certificate_arn`` or, without it, an ACM certificate for the
    domain that the app issues and validates by DNS in the zone; HTTP on 80 redirected to
    HTTPS; an A alias record ``domain_name`` -> load balancer. Without a domain: HTTP on 80,
    with a warning annotation. ``internal`` makes it reachable only from inside the VPC.
    Listeners add no ingress rule of their own: the load balancer's security group decides who
    may connect. Idle timeout :data:`ALB_IDLE_TIMEOUT_SECONDS`.

    With ``certificate_arn`` in an environment-agnostic synthesis, a CloudFormation rule stops
    the deployment when the certificate's region is not the stack's (the configuration checks
    this before synthesis when ``region`` is set).

    With ``login_rate_limit`` > 0, an AWS WAF web ACL (:class:`~constructs_lib.waf.LoginRateLimit`)
    limits each client IP to that many requests to the login and token paths per 5 minutes.

    Access logs go to ``access_logs_bucket`` under ``alb/``. CDK needs a concrete region for
    that (the bucket policy names the region's ELB account), so pass None in an
    environment-agnostic synthesis.

    :ivar load_balancer: ``elbv2.ApplicationLoadBalancer``
    :ivar target_group: ``elbv2.ApplicationTargetGroup``
    :ivar url: ``https://<domain_name>`` or ``http://<ALB DNS name>`` (a token)
    :ivar certificate: ``acm.ICertificate`` with a domain, else None
    :ivar https_listener: the port-443 listener with a domain, else None
    :ivar http_listener: the port-80 listener, one logical ID in every configuration: it forwards
        to the api-server without a domain and redirects to HTTPS with one
    :ivar trusted_proxy_cidrs: IPv4 CIDRs of the subnets the load balancer's nodes live in: the
        only sources whose ``X-Forwarded-*`` headers the api-server may trust
    :ivar execution_api_rules: two ``elbv2.ApplicationListenerRule`` per listener (priorities 1
        and 2), answering :data:`EXECUTION_API_PATH_PATTERNS` and
        :data:`EXECUTION_API_ENCODED_PATH_REGEX` with a fixed 403 before any forward
    :ivar login_rate_limit: the :class:`~constructs_lib.waf.LoginRateLimit` web ACL, or None when
        ``login_rate_limit`` is 0
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
        domain_name: str | None = None,
        hosted_zone_id: str | None = None,
        hosted_zone_name: str | None = None,
        login_rate_limit: int = 0,
    ):
        super().__init__(scope, construct_id)
        if certificate_arn and not domain_name:
            raise ValueError("certificate_arn needs domain_name: no certificate covers the ALB's own DNS name")
        if domain_name and not (hosted_zone_id and hosted_zone_name):
            raise ValueError("domain_name needs hosted_zone_id and hosted_zone_name")
        subnets = ec2.SubnetSelection(subnet_group_name="Private" if internal else "Public")
        selected = vpc.select_subnets(subnet_group_name=subnets.subnet_group_name)
        self.trusted_proxy_cidrs = [subnet.ipv4_cidr_block for subnet in selected.subnets]
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=not internal,
            vpc_subnets=subnets,
            security_group=security_group,
            drop_invalid_header_fields=True,
            deletion_protection=deletion_protection,
            idle_timeout=Duration.seconds(ALB_IDLE_TIMEOUT_SECONDS),
        )
        if access_logs_bucket is not None:
            self.load_balancer.log_access_logs(access_logs_bucket, "alb")
        else:
            nag.acknowledge(
                self.load_balancer,
                "AwsSolutions-ELB2",
                "ALB access logs need a concrete region (the bucket policy names the region's ELB "
                "account); set account and region in the configuration to enable them.",
            )
        self.target_group = self._add_target_group(vpc)
        self.certificate: acm.ICertificate | None = None
        self.https_listener: elbv2.ApplicationListener | None = None
        if domain_name:
            http_action = self._serve_https(domain_name, hosted_zone_id, hosted_zone_name, certificate_arn)
            self.url = f"https://{domain_name}"
        else:
            http_action = elbv2.ListenerAction.forward([self.target_group])
            self.url = f"http://{self.load_balancer.load_balancer_dns_name}"
            Annotations.of(self).add_warning_v2(
                "airflow:ui-without-tls",
                "The Airflow UI is served over plain HTTP: set domain_name, hosted_zone_id and "
                "hosted_zone_name to serve it over HTTPS on your domain (prod requires it unless "
                "ui_private_only=true).",
            )
        # One port-80 listener construct in every configuration: only its default action changes
        # with domain_name. A listener under a new logical ID would be created before the old one
        # is deleted, and ELBv2 refuses a second listener on a port (aws/aws-cdk#34235).
        self.http_listener = self.load_balancer.add_listener(
            "Http",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            default_action=http_action,
            open=False,
        )

        self.execution_api_rules = self._refuse_execution_api()
        self.login_rate_limit = (
            LoginRateLimit(self, "Waf", load_balancer=self.load_balancer, limit=login_rate_limit)
            if login_rate_limit else None
        )

    def _add_target_group(self, vpc: ec2.IVpc) -> elbv2.ApplicationTargetGroup:
        """The api-server's target group (port :data:`API_SERVER_PORT`, health check on
        :data:`HEALTH_CHECK_PATH`)."""
        return elbv2.ApplicationTargetGroup(
            self,
            "ApiServer",
            vpc=vpc,
            port=API_SERVER_PORT,
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

    def _serve_https(
        self, domain_name: str, hosted_zone_id: str | None, hosted_zone_name: str | None, certificate_arn: str | None
    ) -> elbv2.ListenerAction:
        """The UI on ``domain_name`` over HTTPS: the certificate (``certificate_arn``, or one
        validated by DNS in the hosted zone), the alias record and the port-443 listener
        (:attr:`certificate`, :attr:`https_listener`); return port 80's redirect to HTTPS."""
        zone = route53.PublicHostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=hosted_zone_id, zone_name=hosted_zone_name
        )
        if certificate_arn:
            self.certificate = acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
            self._assert_certificate_region(certificate_arn)
        else:
            self.certificate = acm.Certificate(
                self,
                "Certificate",
                domain_name=domain_name,
                validation=acm.CertificateValidation.from_dns(zone),
            )
        route53.ARecord(
            self,
            "Alias",
            zone=zone,
            record_name=domain_name + ".",
            target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(self.load_balancer)),
        )
        self.https_listener = self.load_balancer.add_listener(
            "Https",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[elbv2.ListenerCertificate.from_certificate_manager(self.certificate)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            default_target_groups=[self.target_group],
            open=False,
        )
        return elbv2.ListenerAction.redirect(protocol="HTTPS", port="443", permanent=True)

    def _refuse_execution_api(self) -> list[elbv2.ApplicationListenerRule]:
        """On every listener, rules at priorities 1 and 2 (evaluated before the default forward)
        that answer the Execution API's paths, plain and percent-encoded, with a fixed 403: the
        Execution API is for workers, which reach the api-server through Cloud Map. The Execution
        API's own guard stays its JWT (every route needs a task token signed with
        ``[api_auth] jwt_secret``); these rules keep its routes off the load balancer
        (docs/security.md)."""
        refused = elbv2.ListenerAction.fixed_response(
            EXECUTION_API_REFUSED_STATUS,
            content_type="text/plain",
            message_body="The Airflow Execution API is served inside the VPC only.",
        )
        rules = []
        for listener in self.load_balancer.listeners:
            rules.append(
                elbv2.ApplicationListenerRule(
                    listener,
                    "RefuseExecutionApi",
                    listener=listener,
                    priority=1,
                    conditions=[elbv2.ListenerCondition.path_patterns(EXECUTION_API_PATH_PATTERNS)],
                    action=refused,
                )
            )
            rules.append(
                elbv2.ApplicationListenerRule(
                    listener,
                    "RefuseEncodedExecutionApi",
                    listener=listener,
                    priority=2,
                    conditions=[_RegexPathCondition([EXECUTION_API_ENCODED_PATH_REGEX])],
                    action=refused,
                )
            )
        return rules

    def _assert_certificate_region(self, certificate_arn: str) -> None:
        """In an environment-agnostic stack, refuse at deploy time a certificate of another region."""
        stack = Stack.of(self)
        if not Token.is_unresolved(stack.region):
            return
        cert_region = certificate_arn.split(":")[3]
        CfnRule(
            self,
            "CertificateInStackRegion",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_equals(stack.region, cert_region),
                    assert_description=(
                        f"certificate_arn is in {cert_region}; a load balancer uses certificates of "
                        "its own region only: deploy to that region or use a certificate from this one"
                    ),
                )
            ],
        )

    def attach(self, service: ecs.FargateService) -> None:
        """Register ``service``'s tasks as targets (port 8080 of its first container)."""
        service.attach_to_application_target_group(self.target_group)
