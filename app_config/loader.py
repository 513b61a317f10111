"""Build a :class:`~app_config.model.DeploymentConfig` from flat CDK context keys, and validate it.

Every key is a flat ``snake_case`` name so that ``cdk synth -c nat_gateways=0`` works; values
from ``-c`` arrive as strings, values from ``cdk.json`` keep their JSON type. Defaults depend on
the stage (:data:`STAGE_DEFAULTS`); a key given by the user always wins. All problems are
collected and raised together as one :class:`~app_config.model.ConfigError`.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from app_config.fargate import fargate_size_error
from app_config.model import (
    ConfigError,
    DatabaseConfig,
    DeploymentConfig,
    ExecutorConfig,
    ImageConfig,
    IngressConfig,
    MonitoringConfig,
    NetworkConfig,
    ServicesConfig,
    TaskSize,
)

STAGES = ("dev", "prod", "lean")

#: Defaults per stage. dev is cheap and destroyable; prod retains data and runs HA.
STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {
        "nat_gateways": 1,
        "db_instance_type": "t4g.micro",
        "db_multi_az": False,
        "db_backup_retention_days": 1,
        "retain_data": False,
        "scheduler_count": 1,
        "api_server_count": 1,
        "log_retention_days": 30,
    },
    "prod": {
        "nat_gateways": 2,
        "db_instance_type": "t4g.medium",
        "db_multi_az": True,
        "db_backup_retention_days": 7,
        "retain_data": True,
        "scheduler_count": 2,
        "api_server_count": 2,
        "log_retention_days": 365,
    },
    # The least money that still runs every component (README, "Cost"): the services on Fargate
    # Spot at small sizes, public IPs as the way out to AWS APIs instead of NAT or endpoints,
    # no Container Insights. Like dev, destroyable.
    "lean": {
        "nat_gateways": 0,
        "task_public_ip": True,
        "db_instance_type": "t4g.micro",
        "db_multi_az": False,
        "db_backup_retention_days": 1,
        "retain_data": False,
        "scheduler_count": 1,
        "api_server_count": 1,
        "log_retention_days": 14,
        "services_capacity_provider": "FARGATE_SPOT",
        "scheduler_cpu": 512,
        "scheduler_memory_mib": 1024,
        "api_server_cpu": 512,
        "api_server_memory_mib": 2048,
        "dag_processor_cpu": 256,
        "dag_processor_memory_mib": 1024,
        "triggerer_cpu": 256,
        "triggerer_memory_mib": 512,
        "worker_cpu": 512,
        "worker_memory_mib": 1024,
        "container_insights": False,
    },
}

#: Every key this app reads from the context, with its stage-independent default.
KEYS: dict[str, Any] = {
    "stage": "dev",
    "project_name": "airflow",
    "account": None,
    "region": None,
    "availability_zones": "",
    "vpc_cidr": "10.0.0.0/16",
    "nat_gateways": None,
    "db_instance_type": None,
    "db_allocated_storage_gib": 20,
    "db_max_allocated_storage_gib": 100,
    "db_multi_az": None,
    "db_backup_retention_days": None,
    "retain_data": None,
    "image_uri": None,
    "image_tag": None,
    "executor_class": ExecutorConfig.executor_class,
    "worker_container_name": "worker",
    "worker_cpu": 1024,
    "worker_memory_mib": 2048,
    "worker_capacity_provider": "FARGATE_SPOT",
    "spot_fallback_to_on_demand": True,
    "scheduler_count": None,
    "api_server_count": None,
    "scheduler_cpu": 1024,
    "scheduler_memory_mib": 2048,
    "api_server_cpu": 1024,
    "api_server_memory_mib": 2048,
    "dag_processor_cpu": 512,
    "dag_processor_memory_mib": 1024,
    "triggerer_cpu": 512,
    "triggerer_memory_mib": 1024,
    "ui_allowed_cidrs": None,
    "certificate_arn": None,
    "ui_private_only": False,
    "log_retention_days": None,
    "dag_bundle": "image",
    "enable_ecs_exec": False,
    "read_only_root_filesystem": True,
    "admin_username": "admin",
    "task_public_ip": False,
    "services_capacity_provider": "FARGATE",
    "container_insights": True,
    "airflow_metrics": True,
    "dashboard": True,
    "alarm_email": None,
}

#: CloudWatch Logs accepts only these retention periods (days). Source: PutRetentionPolicy,
#: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
_CONTAINER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_DB_INSTANCE_RE = re.compile(r"^[a-z][a-z0-9]*\.[a-z0-9]+$")
_CERT_ARN_RE = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
_IMPORT_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# name-components[:tag][@digest] with an optional registry host[:port]; see the OCI distribution
# spec's reference grammar (https://github.com/distribution/reference/blob/main/reference.go).
_IMAGE_URI_RE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::\d+)?)/)?"
    r"(?P<repo>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class _Reader:
    """Reads typed values from the raw context and records a problem per bad key."""

    def __init__(self, raw: Mapping[str, Any], defaults: Mapping[str, Any]):
        self.raw = raw
        self.defaults = defaults
        self.problems: list[str] = []

    def _value(self, key: str) -> Any:
        if key in self.raw and self.raw[key] is not None and self.raw[key] != "":
            return self.raw[key]
        return self.defaults.get(key)

    def str_(self, key: str) -> str | None:
        value = self._value(key)
        return None if value is None else str(value).strip()

    def int_(self, key: str) -> int:
        value = self._value(key)
        if isinstance(value, bool):
            self.problems.append(f"{key}={value!r}: expected a whole number")
            return 0
        try:
            return int(str(value).strip())
        except (TypeError, ValueError):
            self.problems.append(f"{key}={value!r}: expected a whole number, e.g. -c {key}=2")
            return 0

    def bool_(self, key: str) -> bool:
        value = self._value(key)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.problems.append(f"{key}={value!r}: expected true or false, e.g. -c {key}=true")
        return False

    def list_(self, key: str) -> tuple[str, ...]:
        value = self._value(key)
        if value is None:
            return ()
        if isinstance(value, (list, tuple)):
            items = [str(v).strip() for v in value]
        else:
            items = [part.strip() for part in str(value).split(",")]
        return tuple(item for item in items if item)


def _unknown_keys(raw: Mapping[str, Any]) -> list[str]:
    """Flag context keys that look like ours (plain snake_case) but are not, with a suggestion.

    CDK's own context (feature flags ``@aws-cdk/...``, lookups ``availability-zones:...``,
    ``aws:cdk:...``) never matches the plain snake_case form and is left alone.
    """
    problems = []
    for key in raw:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key) or key in KEYS:
            continue
        close = difflib.get_close_matches(key, list(KEYS), n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(sorted(KEYS))}"
        problems.append(f"{key}: unknown configuration key; {hint}")
    return problems


def _cidr_problem(key: str, value: str, min_prefix: int = 0, max_prefix: int = 32) -> str | None:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        return f"{key}={value!r} is not an IPv4 CIDR block ({err}); write it like 10.0.0.0/16"
    if not min_prefix <= network.prefixlen <= max_prefix:
        return (
            f"{key}={value!r}: the prefix must be /{min_prefix} to /{max_prefix}; "
            f"for example 10.0.0.0/16"
        )
    return None


def _size(reader: _Reader, component: str) -> TaskSize:
    cpu = reader.int_(f"{component}_cpu")
    memory = reader.int_(f"{component}_memory_mib")
    problem = fargate_size_error(cpu, memory)
    if problem:
        reader.problems.append(
            f"{component}_cpu/{component}_memory_mib: {problem} "
            "(Fargate task sizes: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/"
            "fargate-tasks-services.html#fargate-tasks-size)"
        )
    return TaskSize(cpu, memory)


def load_config(raw: Mapping[str, Any]) -> DeploymentConfig:
    """Build and validate the deployment configuration.

    :param raw: the CDK context as a mapping of key to value (``cdk.json`` values keep their JSON
        type; ``-c key=value`` values are strings). Keys not known to this app that look like
        ours are rejected; CDK's own keys (``@aws-cdk/...``) are ignored.
    :returns: the frozen configuration.
    :raises ConfigError: listing every bad key with what is wrong and how to fix it.
    """
    stage = str(raw.get("stage") or "dev").strip()
    if stage not in STAGES:
        raise ConfigError([f"stage={stage!r} is not a stage; use one of: {', '.join(STAGES)}"])
    reader = _Reader(raw, {**KEYS, **STAGE_DEFAULTS[stage]})
    problems = reader.problems
    problems.extend(_unknown_keys(raw))

    project_name = reader.str_("project_name") or ""
    if not _NAME_RE.match(project_name):
        problems.append(
            f"project_name={project_name!r}: use 1-30 lowercase letters, digits and hyphens, "
            "starting with a letter"
        )

    account, region = reader.str_("account"), reader.str_("region")
    if account is not None and not _ACCOUNT_RE.match(account):
        problems.append(f"account={account!r}: an AWS account ID is 12 digits")
    if region is not None and not _REGION_RE.match(region):
        problems.append(f"region={region!r} is not an AWS region name such as eu-west-1")
    if (account is None) != (region is None):
        problems.append("account/region: set both (to deploy to one environment) or neither")

    azs = reader.list_("availability_zones")
    vpc_cidr = reader.str_("vpc_cidr") or ""
    problem = _cidr_problem("vpc_cidr", vpc_cidr, 16, 22)
    if problem:
        problems.append(problem)
    max_azs = 2
    nat_gateways = reader.int_("nat_gateways")
    if not 0 <= nat_gateways <= max_azs:
        problems.append(
            f"nat_gateways={nat_gateways}: must be 0 to {max_azs} (one per availability zone at "
            "most); 0 uses VPC interface endpoints instead of NAT"
        )
    if account is not None and len(azs) not in (0, max_azs):
        problems.append(f"availability_zones: give exactly {max_azs} names, e.g. eu-west-1a,eu-west-1b")
    task_public_ip = reader.bool_("task_public_ip")
    if task_public_ip and nat_gateways:
        problems.append(
            f"task_public_ip=true with nat_gateways={nat_gateways}: public IPs replace the NAT "
            "gateways as the way out; set nat_gateways=0 or task_public_ip=false"
        )
    network = NetworkConfig(vpc_cidr, max_azs, nat_gateways, azs, task_public_ip)

    db_instance_type = reader.str_("db_instance_type") or ""
    if db_instance_type.startswith("db."):
        db_instance_type = db_instance_type[3:]
    if not _DB_INSTANCE_RE.match(db_instance_type):
        problems.append(f"db_instance_type={db_instance_type!r}: write it like t4g.micro or m7g.large")
    storage = reader.int_("db_allocated_storage_gib")
    max_storage = reader.int_("db_max_allocated_storage_gib")
    if not 20 <= storage <= 65536:
        problems.append(f"db_allocated_storage_gib={storage}: RDS gp3 storage is 20 to 65536 GiB")
    if max_storage < storage:
        problems.append(
            f"db_max_allocated_storage_gib={max_storage}: must be at least "
            f"db_allocated_storage_gib ({storage})"
        )
    backups = reader.int_("db_backup_retention_days")
    if not 1 <= backups <= 35:
        problems.append(f"db_backup_retention_days={backups}: RDS keeps automated backups 1 to 35 days")
    database = DatabaseConfig(
        db_instance_type, storage, max_storage, reader.bool_("db_multi_az"), backups
    )

    image_uri, image_tag = reader.str_("image_uri"), reader.str_("image_tag")
    if image_uri is not None and not _IMAGE_URI_RE.match(image_uri):
        problems.append(
            f"image_uri={image_uri!r} is not an image reference; write it like "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow:3.3.2"
        )
    if image_tag is not None and not _IMAGE_TAG_RE.match(image_tag):
        problems.append(f"image_tag={image_tag!r}: tags are 1-128 of A-Z a-z 0-9 _ . - characters")
    if image_uri is not None and image_tag is not None:
        problems.append("image_uri and image_tag: set at most one of them")
    image = ImageConfig(image_uri, image_tag)

    executor_class = reader.str_("executor_class") or ""
    if not _IMPORT_PATH_RE.match(executor_class):
        problems.append(
            f"executor_class={executor_class!r}: give the executor's import path, e.g. "
            f"{ExecutorConfig.executor_class}"
        )
    container_name = reader.str_("worker_container_name") or ""
    if not _CONTAINER_NAME_RE.match(container_name):
        problems.append(
            f"worker_container_name={container_name!r}: use up to 255 letters, digits, "
            "hyphens and underscores"
        )
    capacity = (reader.str_("worker_capacity_provider") or "").upper()
    if capacity not in ("FARGATE", "FARGATE_SPOT"):
        problems.append(f"worker_capacity_provider={capacity!r}: use FARGATE or FARGATE_SPOT")
    executor = ExecutorConfig(
        executor_class,
        container_name,
        _size(reader, "worker"),
        capacity,
        reader.bool_("spot_fallback_to_on_demand"),
    )

    counts = {key: reader.int_(key) for key in ("scheduler_count", "api_server_count")}
    for key, count in counts.items():
        if not 1 <= count <= 10:
            problems.append(f"{key}={count}: must be 1 to 10")
    services_capacity = (reader.str_("services_capacity_provider") or "").upper()
    if services_capacity not in ("FARGATE", "FARGATE_SPOT"):
        problems.append(
            f"services_capacity_provider={services_capacity!r}: use FARGATE or FARGATE_SPOT"
        )
    services = ServicesConfig(
        counts["scheduler_count"],
        counts["api_server_count"],
        _size(reader, "scheduler"),
        _size(reader, "api_server"),
        _size(reader, "dag_processor"),
        _size(reader, "triggerer"),
        services_capacity,
    )

    private_only = reader.bool_("ui_private_only")
    cidrs = reader.list_("ui_allowed_cidrs") or ((vpc_cidr,) if private_only else ("0.0.0.0/0",))
    for cidr in cidrs:
        problem = _cidr_problem("ui_allowed_cidrs", cidr)
        if problem:
            problems.append(problem)
    certificate_arn = reader.str_("certificate_arn")
    if certificate_arn is not None and not _CERT_ARN_RE.match(certificate_arn):
        problems.append(
            f"certificate_arn={certificate_arn!r} is not an ACM certificate ARN "
            "(arn:aws:acm:<region>:<account>:certificate/<id>)"
        )
    if stage == "prod" and certificate_arn is None and not private_only:
        problems.append(
            "certificate_arn: prod serves the UI over HTTPS only; set certificate_arn to an ACM "
            "certificate ARN, or set ui_private_only=true to serve it on an internal load "
            "balancer reachable only from the VPC"
        )
    ingress = IngressConfig(cidrs, certificate_arn, private_only)

    retention = reader.int_("log_retention_days")
    if retention not in LOG_RETENTION_DAYS:
        problems.append(
            f"log_retention_days={retention}: CloudWatch Logs accepts only "
            f"{', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    dag_bundle = (reader.str_("dag_bundle") or "").lower()
    if dag_bundle not in ("image", "s3"):
        problems.append(f"dag_bundle={dag_bundle!r}: use image (dags/ baked into the image) or s3")
    admin_username = reader.str_("admin_username") or ""
    if not _USERNAME_RE.match(admin_username):
        problems.append(f"admin_username={admin_username!r}: use 1-64 letters, digits, _ . @ -")

    alarm_email = reader.str_("alarm_email")
    if alarm_email is not None and not _EMAIL_RE.match(alarm_email):
        problems.append(
            f"alarm_email={alarm_email!r} is not an e-mail address; write it like "
            "-c alarm_email=ops@example.com, or leave it unset for no subscription"
        )
    monitoring = MonitoringConfig(
        alarm_email=alarm_email,
        airflow_metrics=reader.bool_("airflow_metrics"),
        dashboard=reader.bool_("dashboard"),
        container_insights=reader.bool_("container_insights"),
    )

    config = DeploymentConfig(
        project_name=project_name,
        stage=stage,
        account=account,
        region=region,
        retain_data=reader.bool_("retain_data"),
        log_retention_days=retention,
        dag_bundle=dag_bundle,
        enable_ecs_exec=reader.bool_("enable_ecs_exec"),
        read_only_root_filesystem=reader.bool_("read_only_root_filesystem"),
        admin_username=admin_username,
        network=network,
        database=database,
        image=image,
        executor=executor,
        services=services,
        ingress=ingress,
        monitoring=monitoring,
    )
    if problems:
        raise ConfigError(problems)
    return config
