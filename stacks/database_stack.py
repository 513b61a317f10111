"""Database: the stateful stack. The metadata DB and the secrets as stateful as its data."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from app_config.model import DeploymentConfig
from constructs_lib import nag
from constructs_lib.log_retention import retention_days
from constructs_lib.metadata_db import AirflowSecrets, MetadataDatabase

#: Stages whose DB may be single-AZ (AwsSolutions-RDS3) and without deletion protection
#: (AwsSolutions-RDS10), with the reason; prod gets neither.
DESTROYABLE_STAGES = {
    "dev": {
        "AwsSolutions-RDS3": "dev is cheap and destroyable; prod runs the DB Multi-AZ.",
        "AwsSolutions-RDS10": "dev is destroyable by design; prod enables deletion protection.",
    },
    "lean": {
        "AwsSolutions-RDS3": "lean trades the standby for money: one single-AZ DB, destroyable like dev (README, Cost).",
        "AwsSolutions-RDS10": "lean is destroyable by design, like dev; prod enables deletion protection.",
    },
}


class DatabaseStack(Stack):
    """RDS PostgreSQL and the generated secrets (fernet key, JWT secret, API secret key, admin
    password). In prod the stack has termination protection and everything here is retained.

    :ivar database: :class:`~constructs_lib.metadata_db.MetadataDatabase`
    :ivar secrets: :class:`~constructs_lib.metadata_db.AirflowSecrets`
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        **kwargs,
    ):
        super().__init__(scope, construct_id, termination_protection=config.retain_data, **kwargs)
        db = config.database
        self.database = MetadataDatabase(
            self,
            "MetadataDb",
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            instance_type=db.instance_type,
            allocated_storage_gib=db.allocated_storage_gib,
            max_allocated_storage_gib=db.max_allocated_storage_gib,
            multi_az=db.multi_az,
            backup_retention_days=db.backup_retention_days,
            retain=config.retain_data,
            log_retention=retention_days(config.log_retention_days),
        )
        # Single-AZ and deletion protection off are accepted on these stages only (prod fails cdk-nag).
        stage_reasons = DESTROYABLE_STAGES.get(config.stage)
        if stage_reasons and not db.multi_az:
            nag.acknowledge(self.database.instance, "AwsSolutions-RDS3", stage_reasons["AwsSolutions-RDS3"])
        if stage_reasons and not config.retain_data:
            nag.acknowledge(self.database.instance, "AwsSolutions-RDS10", stage_reasons["AwsSolutions-RDS10"])
        self.secrets = AirflowSecrets(
            self, "AirflowSecrets", retain=config.retain_data, admin_username=config.admin_username
        )
        # Read by the operations CLI (operations/airflow_ecs_ops/deployment.py, REQUIRED_OUTPUTS):
        # wake, sleep and status start, stop and describe this instance as office hours do.
        CfnOutput(
            self,
            "DatabaseInstanceIdentifier",
            value=self.database.instance.instance_identifier,
            description="RDS instance of the Airflow metadata database",
        )
