"""Network: the VPC (created, or an existing one by its IDs) and every security group."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack, Token
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from app_config.model import DeploymentConfig
from constructs_lib.log_retention import retention_days
from constructs_lib.network import AirflowSecurityGroups, AirflowVpc, ExistingVpc


@dataclass(frozen=True)
class NetworkProps:
    """What the Network stack hands to the stacks that run in its VPC (as CDK's ``*Props``).

    :ivar vpc: the VPC.
    :ivar private_subnets: where the database runs (and by default every task).
    :ivar task_subnets: where the Airflow tasks and the ECS jobs run (public subnets with
        public IPs with ``task_public_ip``).
    :ivar security_groups: the load balancer's, services', workers', jobs' and database's groups.
    """

    vpc: ec2.IVpc
    private_subnets: ec2.SubnetSelection
    task_subnets: ec2.SubnetSelection
    security_groups: AirflowSecurityGroups


class NetworkStack(Stack):
    """The VPC (public and private subnets over two AZs, NAT or endpoints, flow logs; or, with
    ``vpc_id``, an existing VPC built from the given IDs, adding nothing to it) and the security
    groups of the load balancer, services, workers and database.

    :ivar vpc: ``ec2.IVpc``
    :ivar private_subnets: ``ec2.SubnetSelection`` where the DB (and by default every task) runs
    :ivar task_subnets: ``ec2.SubnetSelection`` where the Airflow tasks run
    :ivar security_groups: :class:`~constructs_lib.network.AirflowSecurityGroups`
    :ivar props: :class:`NetworkProps`, the four above for the other stacks
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs):
        self._given_azs = list(config.network.availability_zones)
        super().__init__(scope, construct_id, **kwargs)
        existing = config.network.existing_vpc
        network: AirflowVpc | ExistingVpc
        if existing is None:
            network = AirflowVpc(
                self,
                "Network",
                cidr=config.network.vpc_cidr,
                max_azs=config.network.max_azs,
                nat_gateways=config.network.nat_gateways,
                availability_zones=config.network.availability_zones,
                log_retention=retention_days(config.log_retention_days),
                retain=config.retain_data,
                task_public_ip=config.network.task_public_ip,
                ecs_exec=config.enable_ecs_exec,
            )
        else:
            network = ExistingVpc(
                self,
                "Network",
                vpc_id=existing.vpc_id,
                availability_zones=config.network.availability_zones,
                private_subnet_ids=existing.private_subnet_ids,
                public_subnet_ids=existing.public_subnet_ids,
                private_subnet_cidrs=existing.private_subnet_cidrs,
                public_subnet_cidrs=existing.public_subnet_cidrs,
                task_public_ip=config.network.task_public_ip,
            )
        self.vpc = network.vpc
        self.private_subnets = network.private_subnets
        self.task_subnets = network.task_subnets
        self.security_groups = AirflowSecurityGroups(
            self, "SecurityGroups", vpc=self.vpc, allowed_cidrs=config.ingress.allowed_cidrs
        )
        self.props = NetworkProps(self.vpc, self.private_subnets, self.task_subnets, self.security_groups)
        self._export_subnets()

    def _export_subnets(self) -> None:
        """Export every subnet's ID and the jobs' security group in every configuration.

        Which subnets the other stacks reference depends on configuration values (the load
        balancer's subnets on ``ui_private_only``, the tasks' on ``task_public_ip``, the jobs'
        security group on ``jobs``). CDK exports
        a value only while a consumer references it, so switching such a value would remove an
        export while the consumer's deployed template still imports it, and CloudFormation stops
        the deploy ("Export ... cannot be deleted as it is in use"). Exported here, the exports
        exist whatever the configuration; ``export_value`` names them as CDK's automatic
        references do, so a consumer's import finds them.

        An existing VPC's subnet IDs (``vpc_id``) are literals that the consumers write into
        their own templates: no consumer imports them, so no configuration switch can remove an
        import, and nothing is exported for them (CDK exports only references).
        """
        for subnet in [*self.vpc.public_subnets, *self.vpc.private_subnets, *self.vpc.isolated_subnets]:
            if Token.is_unresolved(subnet.subnet_id):
                self.export_value(subnet.subnet_id)
        # The ECS jobs' group is referenced by the Cluster stack only while jobs are configured.
        self.export_value(self.security_groups.jobs.security_group_id)

    @property
    def availability_zones(self) -> list[str]:
        """The ``availability_zones`` of the configuration when given, else CDK's (for an
        environment-agnostic stack two tokens; with account and region a context lookup).

        ``ec2.Vpc`` checks its ``availability_zones`` against the stack's, and with an explicit
        account and region the stack's are a context lookup (``availability-zones``) that needs
        credentials at synthesis; answering with the configured zones keeps synthesis offline.
        """
        return self._given_azs or super().availability_zones
