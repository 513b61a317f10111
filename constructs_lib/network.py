"""The VPC (created, or an existing one given by its IDs) and the security groups of every Airflow
component.

All security groups live here, with the rules between them, so that no rule crosses a stack
boundary (a cross-stack rule easily makes a dependency cycle between the database and service
stacks).
"""

from __future__ import annotations

from aws_cdk import Annotations, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from cloud_assembly.airflow_image import API_SERVER_PORT
from constructs_lib import nag

POSTGRES_PORT = 5432

#: Interface endpoints that let tasks in isolated subnets work without NAT: image pulls (ECR api
#: and dkr; layers come from S3 through the gateway endpoint), awslogs, ECS secrets injection,
#: the executor's ECS API calls and ECS Exec / credential vending.
NO_NAT_INTERFACE_ENDPOINTS = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "CloudWatchLogs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Ecs": ec2.InterfaceVpcEndpointAwsService.ECS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}
#: With ECS Exec on, the SSM agent in each task opens its session channel to ssmmessages
#: (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-exec.html, "Using ECS Exec
#: with VPC endpoints"); without NAT, only this endpoint gets it there.
ECS_EXEC_INTERFACE_ENDPOINTS = {
    "SsmMessages": ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
}


class AirflowVpc(Construct):
    """A VPC over ``max_azs`` AZs with public and private subnets, flow logs and endpoints.

    With ``nat_gateways == 0`` the private subnets are isolated and the interface endpoints in
    :data:`NO_NAT_INTERFACE_ENDPOINTS` are added (and, with ``ecs_exec``, those in
    :data:`ECS_EXEC_INTERFACE_ENDPOINTS`), unless ``task_public_ip`` puts the tasks in the public
    subnets with public IPs; an S3 gateway endpoint is always added.

    :ivar vpc: the ``ec2.Vpc``.
    :ivar private_subnets: where the DB runs, and every Airflow task unless ``task_public_ip``
        (``ec2.SubnetSelection``).
    :ivar task_subnets: where the Airflow tasks run (public subnets with ``task_public_ip``).
    :ivar endpoint_security_group: the interface endpoints' group (None with NAT).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cidr: str,
        max_azs: int,
        nat_gateways: int,
        availability_zones: tuple[str, ...],
        log_retention: logs.RetentionDays,
        retain: bool,
        task_public_ip: bool = False,
        ecs_exec: bool = False,
    ):
        super().__init__(scope, construct_id)
        private_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=None if availability_zones else max_azs,
            availability_zones=list(availability_zones) or None,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="Private", subnet_type=private_type, cidr_mask=24),
            ],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
            restrict_default_security_group=True,
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=private_type)
        # With task_public_ip the tasks reach AWS APIs through the internet gateway with a public
        # IPv4 address each (no NAT, no interface endpoints); their security groups admit nothing
        # from the internet.
        self.task_subnets = (
            ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC) if task_public_ip else self.private_subnets
        )
        self.task_public_ip = task_public_ip
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.endpoint_security_group: ec2.SecurityGroup | None = None
        if nat_gateways == 0 and not task_public_ip:
            self.endpoint_security_group = ec2.SecurityGroup(
                self,
                "EndpointSecurityGroup",
                vpc=self.vpc,
                description="VPC interface endpoints: HTTPS from inside the VPC",
                allow_all_outbound=False,
            )
            self.endpoint_security_group.add_ingress_rule(
                ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), "HTTPS from the VPC"
            )
            endpoints = {**NO_NAT_INTERFACE_ENDPOINTS, **(ECS_EXEC_INTERFACE_ENDPOINTS if ecs_exec else {})}
            for endpoint_id, service in endpoints.items():
                self.vpc.add_interface_endpoint(
                    endpoint_id,
                    service=service,
                    subnets=self.private_subnets,
                    security_groups=[self.endpoint_security_group],
                    private_dns_enabled=True,
                    open=False,  # the group above already admits HTTPS from the VPC
                )


class ExistingVpc(Construct):
    """A VPC the app does not own, built from its IDs without a lookup (``ec2.Vpc.from_vpc_attributes``):
    no VPC, subnets, NAT gateways, endpoints or flow logs are created; the other stacks write
    the given IDs into their templates.

    Its private subnets are typed ``PRIVATE_WITH_EGRESS`` (their way out, NAT or endpoints, is
    the VPC owner's). No route table IDs are given: the app adds no route and no gateway
    endpoint, the only things that read them, so CDK's warning about them is acknowledged.

    :param vpc_id: ``vpc-...``.
    :param availability_zones: the subnets' AZs; each subnet list follows their order.
    :param private_subnet_ids: one per AZ.
    :param public_subnet_ids: one per AZ, or empty (private UI, no ``task_public_ip``).
    :param private_subnet_cidrs: their IPv4 CIDR blocks, or empty when nothing reads them.
    :param public_subnet_cidrs: likewise.
    :param task_public_ip: the tasks run in the public subnets with public IPs.
    :ivar vpc: ``ec2.IVpc``
    :ivar private_subnets: ``ec2.SubnetSelection`` of the private subnets.
    :ivar task_subnets: ``ec2.SubnetSelection`` where the Airflow tasks run.
    :ivar endpoint_security_group: always None (the app adds no endpoint).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc_id: str,
        availability_zones: tuple[str, ...],
        private_subnet_ids: tuple[str, ...],
        public_subnet_ids: tuple[str, ...],
        private_subnet_cidrs: tuple[str, ...],
        public_subnet_cidrs: tuple[str, ...],
        task_public_ip: bool = False,
    ):
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=vpc_id,
            availability_zones=list(availability_zones),
            private_subnet_ids=list(private_subnet_ids),
            private_subnet_ipv4_cidr_blocks=list(private_subnet_cidrs) or None,
            public_subnet_ids=list(public_subnet_ids) or None,
            public_subnet_ipv4_cidr_blocks=list(public_subnet_cidrs) or None,
        )
        Annotations.of(self).acknowledge_warning(
            "@aws-cdk/aws-ec2:noSubnetRouteTableId",
            "the app adds no route or gateway endpoint to a VPC it does not own, so no route table is read",
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.task_subnets = (
            ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC) if task_public_ip else self.private_subnets
        )
        self.task_public_ip = task_public_ip
        self.endpoint_security_group: ec2.SecurityGroup | None = None


class AirflowSecurityGroups(Construct):
    """The security groups of the load balancer, the Airflow services, the workers and the DB.

    Rules, and nothing else:

    - load balancer: 80/443 from ``allowed_cidrs``; out to the services on 8080;
    - services (scheduler, api-server, dag-processor, triggerer): 8080 from the load balancer,
      the workers (Execution API) and each other; out anywhere (AWS APIs, the DB);
    - workers: no inbound; out to the services on 8080 and to HTTPS (AWS endpoints);
    - database: 5432 from the services only, never from the workers;
    - jobs (the ECS jobs DAGs run, ``constructs_lib/ecs_jobs.py``): no inbound; out to HTTPS only.

    :ivar load_balancer: ``ec2.SecurityGroup``
    :ivar services: ``ec2.SecurityGroup``
    :ivar workers: ``ec2.SecurityGroup``
    :ivar database: ``ec2.SecurityGroup``
    :ivar jobs: ``ec2.SecurityGroup``
    """

    def __init__(self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc, allowed_cidrs: tuple[str, ...]):
        super().__init__(scope, construct_id)
        self.load_balancer = ec2.SecurityGroup(
            self, "LoadBalancer", vpc=vpc, description="Airflow UI load balancer", allow_all_outbound=False
        )
        self.services = ec2.SecurityGroup(
            self,
            "Services",
            vpc=vpc,
            description="Airflow scheduler, api-server, dag-processor and triggerer",
            allow_all_outbound=True,
        )
        self.workers = ec2.SecurityGroup(
            self, "Workers", vpc=vpc, description="Airflow worker tasks launched by the ECS executor",
            allow_all_outbound=False,
        )
        self.database = ec2.SecurityGroup(
            self, "Database", vpc=vpc, description="Airflow metadata database", allow_all_outbound=False
        )
        self.jobs = ec2.SecurityGroup(
            self, "Jobs", vpc=vpc, description="ECS jobs run from DAGs (EcsRunTaskOperator)",
            allow_all_outbound=False,
        )
        self.jobs.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS endpoints")
        api = ec2.Port.tcp(API_SERVER_PORT)
        for cidr in allowed_cidrs:
            for port in (80, 443):
                self.load_balancer.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), f"UI from {cidr}")
            if cidr == "0.0.0.0/0":
                nag.acknowledge(
                    self.load_balancer,
                    "AwsSolutions-EC23",
                    "The UI load balancer accepts exactly the CIDRs in ui_allowed_cidrs, set to 0.0.0.0/0 by "
                    "the operator; the UI requires a login.",
                )
        self.load_balancer.add_egress_rule(self.services, api, "To the api-server")
        self.services.add_ingress_rule(self.load_balancer, api, "UI and REST API from the load balancer")
        self.services.add_ingress_rule(self.workers, api, "Execution API from worker tasks")
        self.services.add_ingress_rule(self.services, api, "api-server from the other components")
        self.workers.add_egress_rule(self.services, api, "Execution API on the api-server")
        self.workers.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS endpoints")
        self.database.add_ingress_rule(
            self.services, ec2.Port.tcp(POSTGRES_PORT), "PostgreSQL from the Airflow services"
        )
