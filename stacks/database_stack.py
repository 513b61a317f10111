"""Database: the stateful stack. The metadata DB and the secrets as stateful as its data."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from app_config.model import DeploymentConfig
from constructs_lib import nag
from constructs_lib.log_retention import retention_days
from constructs_lib.metadata_db import AirflowSecrets, MetadataDatabase
from stacks.network_stack import NetworkProps


@dataclass(frozen=True)
class DatabaseProps:
    """What the Database stack hands to the Airflow stack (as CDK's ``*Props``).

    :ivar instance: the RDS instance of the metadata database (monitored; stopped and started
        by office hours with ``office_hours_scope=environment``).
    :ivar connection_secret: the database's generated credentials.
    :ivar fernet_key, jwt_secret, api_secret_key, admin_password: the generated Airflow secrets
        (:class:`~constructs_lib.metadata_db.AirflowSecrets`).
    """

    instance: rds.IDatabaseInstance
    connection_secret: secretsmanager.ISecret
    fernet_key: secretsmanager.ISecret
    jwt_secret: secretsmanager.ISecret
    api_secret_key: secretsmanager.ISecret
    admin_password: secretsmanager.ISecret

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
    :ivar props: :class:`DatabaseProps`, what the Airflow stack uses of both
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        network: NetworkProps,
        **kwargs,
    ):
        super().__init__(scope, construct_id, termination_protection=config.retain_data, **kwargs)
        db = config.database
        self.database = MetadataDatabase(
            self,
            "MetadataDb",
            vpc=network.vpc,
            subnets=network.private_subnets,
            security_group=network.security_groups.database,
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
        self.props = DatabaseProps(
            instance=self.database.instance,
            connection_secret=self.database.secret,
            fernet_key=self.secrets.fernet_key,
            jwt_secret=self.secrets.jwt_secret,
            api_secret_key=self.secrets.api_secret_key,
            admin_password=self.secrets.admin_password,
        )
        # Read by the operations CLI (operations/airflow_ecs_ops/deployment.py, REQUIRED_OUTPUTS):
        # wake, sleep and status start, stop and describe this instance as office hours do.
        CfnOutput(
            self,
            "DatabaseInstanceIdentifier",
            value=self.database.instance.instance_identifier,
            description="RDS instance of the Airflow metadata database",
        )
