"""The Airflow metadata database and the secrets that are as stateful as it is."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from constructs_lib import nag

#: PostgreSQL version of the metadata DB (a minor version: cfn-lint W3691 flags a bare "17" and
#: 17.0-17.4 as deprecated for new instances); Airflow 3 supports PostgreSQL 13 to 17
#: (https://airflow.apache.org/docs/apache-airflow/stable/installation/prerequisites.html).
POSTGRES_VERSION = rds.PostgresEngineVersion.VER_17_9
DATABASE_NAME = "airflow"
#: Enhanced Monitoring granularity (seconds; RDS accepts 1, 5, 10, 15, 30, 60).
ENHANCED_MONITORING_INTERVAL_SECONDS = 60
MASTER_USERNAME = "airflow"
#: Construct ID of CDK's LogRetention provider function, a singleton at the stack's root that
#: ``cloudwatch_logs_retention`` creates (aws-cdk-lib's ``aws-logs`` ``LogRetention``, which
#: exposes no handle on it).
LOG_RETENTION_PROVIDER_ID = "LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a"

# Characters left out of the generated DB password: RDS refuses / @ " and space in a master
# password (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html#RDS_Limits.Constraints),
# and ' \ make shell quoting fragile. Anything else, such as : % # ?, may appear; the connection
# URL is built with the password URL-encoded (airflow_ecs_fargate.config_commands).
_RDS_FORBIDDEN_PASSWORD_CHARS = "\"'@/\\ "


class MetadataDatabase(Construct):
    """RDS for PostgreSQL in the private subnets, encrypted with its own KMS key, TLS enforced.

    The credentials are generated into a Secrets Manager secret (fields ``username``,
    ``password``, ``host``, ``port``, ``dbname``).

    :param retain: deletion protection, snapshot on delete, and the key and secret retained.
    :ivar instance: ``rds.DatabaseInstance``
    :ivar secret: ``secretsmanager.ISecret`` with the connection fields (as attached to the
        instance).
    :ivar master_secret: the ``rds.DatabaseSecret`` resource behind ``secret``, retained with
        the DB when ``retain``.
    :ivar key: ``kms.Key`` encrypting storage and Performance Insights.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        instance_type: str,
        allocated_storage_gib: int,
        max_allocated_storage_gib: int,
        multi_az: bool,
        backup_retention_days: int,
        retain: bool,
        log_retention: logs.RetentionDays,
    ):
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        self.key = kms.Key(
            self,
            "Key",
            description="Airflow metadata database: storage and credentials",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        engine = rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION)
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="Airflow metadata DB: TLS only",
            parameters={"rds.force_ssl": "1"},
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=engine,
            instance_type=ec2.InstanceType(instance_type),
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[security_group],
            parameter_group=parameters,
            database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_generated_secret(
                MASTER_USERNAME,
                # The AWS managed key: a customer key's policy would have to name every role of
                # the Airflow stack, making the stateful stack depend on it.
                exclude_characters=_RDS_FORBIDDEN_PASSWORD_CHARS,
            ),
            allocated_storage=allocated_storage_gib,
            max_allocated_storage=max_allocated_storage_gib,
            storage_type=rds.StorageType.GP3,
            storage_encrypted=True,
            storage_encryption_key=self.key,
            multi_az=multi_az,
            backup_retention=Duration.days(backup_retention_days),
            deletion_protection=retain,
            removal_policy=RemovalPolicy.SNAPSHOT if retain else RemovalPolicy.DESTROY,
            delete_automated_backups=not retain,
            auto_minor_version_upgrade=True,
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            cloudwatch_logs_retention=log_retention,
            # Enhanced Monitoring (Security Hub RDS.6): OS metrics every 60 s into the account's
            # RDSOSMetrics log group, billed as CloudWatch Logs ingestion (docs/security.md).
            monitoring_interval=Duration.seconds(ENHANCED_MONITORING_INTERVAL_SECONDS),
            enable_performance_insights=True,
            performance_insight_encryption_key=self.key,
            copy_tags_to_snapshot=True,
        )
        self._acknowledge_findings()
        self._retain_secrets(removal)

    def _acknowledge_findings(self) -> None:
        """cdk-nag findings of the instance, its monitoring role and CDK's LogRetention provider,
        acknowledged with the reason."""
        nag.acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "Port 5432 is reachable only from the Airflow services' security group; a non-default "
            "port adds no protection.",
        )
        # The monitoring role (RDS creates it for monitoring_interval; no public handle on it).
        nag.acknowledge(
            self.instance,
            nag.managed_policy_finding(self, "service-role/AmazonRDSEnhancedMonitoringRole"),
            "RDS Enhanced Monitoring's role: the AWS managed AmazonRDSEnhancedMonitoringRole policy is "
            "what RDS documents for it (it writes only to the RDSOSMetrics log group).",
        )
        log_retention_provider = Stack.of(self).node.find_child(LOG_RETENTION_PROVIDER_ID)
        nag.acknowledge(
            log_retention_provider,
            [
                nag.managed_policy_finding(self, nag.LAMBDA_BASIC_EXECUTION),
                "AwsSolutions-IAM5[Resource::*]",
            ],
            "CDK's LogRetention provider (sets the retention of the RDS log groups) writes its own "
            "logs with the AWS managed AWSLambdaBasicExecutionRole policy.",
        )

    def _retain_secrets(self, removal: RemovalPolicy) -> None:
        """:attr:`secret` and :attr:`master_secret`, with the DB's removal policy."""
        assert self.instance.secret is not None
        #: ``instance.secret`` is the secret as attached to the instance (its ARN is the
        #: ``SecretTargetAttachment``'s): a removal policy set on it reaches only the attachment.
        self.secret: secretsmanager.ISecret = self.instance.secret
        self.secret.apply_removal_policy(removal)
        # The generated ``rds.DatabaseSecret`` itself (construct ID "Secret" under the instance,
        # aws-cdk-lib's ``Credentials.from_generated_secret``) holds the master password: it is
        # retained with the DB.
        self.master_secret: secretsmanager.Secret = self.instance.node.find_child("Secret")
        self.master_secret.apply_removal_policy(removal)
        nag.acknowledge(self.master_secret, "AwsSolutions-SMG4", nag.SMG4)


class AirflowSecrets(Construct):
    """Secrets that every Airflow component must share and that must never change.

    Each is generated once by Secrets Manager and injected into containers as an ECS secret.

    - ``fernet_key``: 43 letters/digits; the container appends ``=`` to make the 44-character
      url-safe base64 of 32 bytes that ``[core] fernet_key`` expects
      (``airflow_ecs_fargate.config_commands fernet_key``). It encrypts connections and
      variables in the DB, so it is retained with the DB.
    - ``jwt_secret``: ``[api_auth] jwt_secret``, signs the task tokens (scheduler) and checks
      them (api-server).
    - ``api_secret_key``: ``[api] secret_key``, identical across api-server replicas.
    - ``admin_password``: the password of the FAB admin user.

    :ivar fernet_key, jwt_secret, api_secret_key, admin_password: ``secretsmanager.Secret``
    """

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool, admin_username: str):
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        self.fernet_key = self._secret(
            "FernetKey", "Airflow [core] fernet_key body (43 url-safe base64 characters)", 43, removal
        )
        self.jwt_secret = self._secret("JwtSecret", "Airflow [api_auth] jwt_secret", 64, removal)
        self.api_secret_key = self._secret("ApiSecretKey", "Airflow [api] secret_key", 64, removal)
        self.admin_password = self._secret(
            "AdminPassword", f"Password of the Airflow admin user '{admin_username}'", 24, removal,
        )
        nag.acknowledge(self, "AwsSolutions-SMG4", nag.SMG4)

    def _secret(self, construct_id: str, description: str, length: int, removal: RemovalPolicy) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            construct_id,
            description=description,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=length, exclude_punctuation=True, include_space=False
            ),
        )
        secret.apply_removal_policy(removal)
        return secret
