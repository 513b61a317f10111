"""Build a :class:`~app_config.model.DeploymentConfig` from flat CDK context keys, and validate it.

Every key is a flat ``snake_case`` name so that ``cdk synth -c nat_gateways=0`` works; values
from ``-c`` arrive as strings, values from ``cdk.json`` keep their JSON type. Defaults depend on
the stage (:data:`STAGE_DEFAULTS`); a key given by the user always wins. All problems are
collected and raised together as one :class:`~app_config.model.ConfigError`.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app_config.fargate import fargate_size_error
from app_config.jobs import DEFAULT_JOBS, JOBS_DIR, parse_jobs
from app_config.schedules import cron_error, timezone_error
from app_config.model import (
    ApiServerAutoScalingConfig,
    ConfigError,
    DatabaseConfig,
    DeploymentConfig,
    ExecutorConfig,
    ImageConfig,
    IngressConfig,
    MonitoringConfig,
    NetworkConfig,
    OfficeHoursConfig,
    ServicesConfig,
    TaskSize,
    WorkerQueue,
)
from app_config.model import BUNDLED_ECS_EXECUTOR

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
        # Office hours for the whole environment (README, "Office hours and automatic scaling"):
        # the four services at zero tasks and the DB stopped outside Monday-Friday 08:00-18:00 UTC,
        # 50 hours a week; with the dashboard off ($3 a month, -c dashboard=true brings it back;
        # the alarms stay) what keeps lean at or below $50 a month (README, "Cost").
        "dashboard": False,
        "office_hours_scope": "environment",
        "office_hours_start": "cron(0 8 ? * MON-FRI *)",
        "office_hours_stop": "cron(0 18 ? * MON-FRI *)",
        "office_hours_timezone": "UTC",
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
    "domain_name": None,
    "hosted_zone_id": None,
    "hosted_zone_name": None,
    "worker_queues": None,
    "jobs": DEFAULT_JOBS,
    "office_hours_scope": "none",
    "office_hours_start": "cron(0 7 ? * MON-FRI *)",
    "office_hours_stop": "cron(0 19 ? * MON-FRI *)",
    "office_hours_timezone": "UTC",
    "api_server_scale_on": "none",
    "api_server_min_count": None,
    "api_server_max_count": None,
    "api_server_target_cpu_percent": 60,
    "api_server_target_requests_per_task": 1000,
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
# A DNS host name of lowercase labels (RFC 1123), at least two labels.
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
# Route 53 hosted zone IDs: "Z" and upper-case letters and digits (e.g. Z0123456789ABCDEFGHIJ).
_HOSTED_ZONE_ID_RE = re.compile(r"^Z[A-Z0-9]{1,31}$")
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


def _domain_problems(
    domain: str | None, zone_id: str | None, zone_name: str | None, certificate_arn: str | None, region: str | None
) -> list[str]:
    """Problems of the HTTPS keys: domain_name, hosted_zone_id, hosted_zone_name, certificate_arn."""
    problems = []
    if domain is None:
        if certificate_arn is not None:
            problems.append(
                "certificate_arn: set domain_name (with hosted_zone_id and hosted_zone_name) too; "
                "a certificate cannot cover the load balancer's own *.elb.amazonaws.com name, so "
                "HTTPS needs a domain of yours pointing at it"
            )
        if zone_id is not None or zone_name is not None:
            problems.append("hosted_zone_id/hosted_zone_name: set domain_name too, the UI's name inside that zone")
        return problems
    if not _DOMAIN_RE.match(domain):
        problems.append(f"domain_name={domain!r}: give a host name such as airflow.example.com")
    if zone_id is None or zone_name is None:
        problems.append(
            "domain_name: set hosted_zone_id and hosted_zone_name of the Route 53 public hosted "
            "zone that holds it (aws route53 list-hosted-zones-by-name --dns-name <zone>); the "
            "app validates the certificate and adds the alias record there"
        )
    if zone_id is not None and not _HOSTED_ZONE_ID_RE.match(zone_id.removeprefix("/hostedzone/")):
        problems.append(f"hosted_zone_id={zone_id!r}: a Route 53 zone ID looks like Z0123456789ABCDEFGHIJ")
    if zone_name is not None and domain != zone_name and not domain.endswith("." + zone_name):
        problems.append(
            f"hosted_zone_name={zone_name!r} does not end domain_name={domain!r}: use the zone "
            "that holds the domain (its own name or a parent, e.g. example.com for "
            "airflow.example.com)"
        )
    if certificate_arn is not None and region is not None and _CERT_ARN_RE.match(certificate_arn):
        cert_region = certificate_arn.split(":")[3]
        if cert_region != region:
            problems.append(
                f"certificate_arn is in {cert_region}, the stacks deploy to {region}: a load "
                "balancer uses certificates of its own region only; request or import the "
                f"certificate in {region}, or leave certificate_arn unset to have the app issue one"
            )
    return problems


_QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
_QUEUE_EXAMPLE = '{"large": {"cpu": 2048, "memory_mib": 8192, "capacity_provider": "FARGATE"}}'


def _worker_queues(reader: _Reader, executor_class: str) -> tuple[WorkerQueue, ...]:
    """Read ``worker_queues``: a JSON object (or cdk.json object) of queue name -> size.

    Each size has ``cpu`` and ``memory_mib`` (a Fargate task size) and optionally
    ``capacity_provider`` (FARGATE or FARGATE_SPOT). Problems go to ``reader.problems``.
    """
    value = reader._value("worker_queues")
    if value is None:
        return ()
    fix = f"e.g. -c 'worker_queues={_QUEUE_EXAMPLE}'"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as err:
            reader.problems.append(f"worker_queues is not valid JSON ({err}); {fix}")
            return ()
    if not isinstance(value, dict):
        reader.problems.append(f"worker_queues must be an object of queue name -> size; {fix}")
        return ()
    if value and executor_class != BUNDLED_ECS_EXECUTOR:
        reader.problems.append(
            f"worker_queues needs the bundled executor (executor_class={BUNDLED_ECS_EXECUTOR}); "
            "the stock executor has no per-queue sizes"
        )
    queues = []
    for name, spec in value.items():
        if not _QUEUE_NAME_RE.match(str(name)):
            reader.problems.append(f"worker_queues: queue name {name!r}: use 1-256 letters, digits, _ . -")
            continue
        if not isinstance(spec, dict) or set(spec) - {"cpu", "memory_mib", "capacity_provider"} or not {
            "cpu",
            "memory_mib",
        } <= set(spec):
            reader.problems.append(
                f"worker_queues: queue {name!r} needs cpu and memory_mib (and optionally capacity_provider), "
                f"got {spec!r}; {fix}"
            )
            continue
        try:
            cpu, memory = int(spec["cpu"]), int(spec["memory_mib"])
        except (TypeError, ValueError):
            reader.problems.append(f"worker_queues: queue {name!r}: cpu and memory_mib must be whole numbers")
            continue
        problem = fargate_size_error(cpu, memory)
        if problem:
            reader.problems.append(
                f"worker_queues: queue {name!r}: {problem} (Fargate task sizes: https://docs.aws.amazon.com/"
                "AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size)"
            )
            continue
        provider = spec.get("capacity_provider")
        if provider is not None and str(provider).upper() not in ("FARGATE", "FARGATE_SPOT"):
            reader.problems.append(f"worker_queues: queue {name!r}: capacity_provider={provider!r}: use FARGATE or FARGATE_SPOT")
            continue
        queues.append(WorkerQueue(str(name), TaskSize(cpu, memory), str(provider).upper() if provider else None))
    return tuple(queues)


def load_config(raw: Mapping[str, Any], jobs_dir: Path = JOBS_DIR) -> DeploymentConfig:
    """Build and validate the deployment configuration.

    :param raw: the CDK context as a mapping of key to value (``cdk.json`` values keep their JSON
        type; ``-c key=value`` values are strings). Keys not known to this app that look like
        ours are rejected; CDK's own keys (``@aws-cdk/...``) are ignored.
    :param jobs_dir: where the directories of the ``jobs`` key are looked up (``jobs/``).
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
        _worker_queues(reader, executor_class),
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
    domain_name, zone_id, zone_name = (
        reader.str_("domain_name"), reader.str_("hosted_zone_id"), reader.str_("hosted_zone_name")
    )
    domain_name = domain_name.lower().rstrip(".") if domain_name else None
    zone_name = zone_name.lower().rstrip(".") if zone_name else None
    zone_id = zone_id.removeprefix("/hostedzone/") if zone_id else None
    problems.extend(_domain_problems(domain_name, zone_id, zone_name, certificate_arn, region))
    if stage == "prod" and domain_name is None and not private_only:
        problems.append(
            "domain_name: prod serves the UI over HTTPS only; set domain_name, hosted_zone_id and "
            "hosted_zone_name (a Route 53 public hosted zone; the app issues the certificate), or "
            "set ui_private_only=true to serve it on an internal load balancer reachable only "
            "from the VPC"
        )
    ingress = IngressConfig(cidrs, certificate_arn, private_only, domain_name, zone_id, zone_name)

    retention = reader.int_("log_retention_days")
    if retention not in LOG_RETENTION_DAYS:
        problems.append(
            f"log_retention_days={retention}: CloudWatch Logs accepts only "
            f"{', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    dag_bundle = (reader.str_("dag_bundle") or "").lower()
    if dag_bundle not in ("image", "s3"):
        problems.append(f"dag_bundle={dag_bundle!r}: use image (dags/ baked into the image) or s3")
    # ECS Exec bind-mounts the SSM agent into the container, and the agent creates directories
    # and files on the container's filesystem at start (under /var/lib/amazon/ssm, /var/log/amazon
    # and elsewhere, not a documented contract); AWS's ECS Exec considerations state that a
    # read-only root filesystem is not supported. Volumes at guessed paths would break silently
    # when the agent changes, so the combination is refused.
    if reader.bool_("enable_ecs_exec") and reader.bool_("read_only_root_filesystem"):
        problems.append(
            "enable_ecs_exec: ECS Exec does not work with a read-only root filesystem (the SSM "
            "agent it injects writes to the container's filesystem); also set "
            "read_only_root_filesystem=false while you need exec (-c enable_ecs_exec=true "
            "-c read_only_root_filesystem=false), and turn both back when done"
        )
    admin_username = reader.str_("admin_username") or ""
    if not _USERNAME_RE.match(admin_username):
        problems.append(f"admin_username={admin_username!r}: use 1-64 letters, digits, _ . @ -")

    jobs = parse_jobs(reader._value("jobs"), problems, jobs_dir)
    office_hours = _office_hours(reader)
    api_server_autoscaling = _api_server_autoscaling(reader, counts["api_server_count"])
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
        jobs=jobs,
        office_hours=office_hours,
        api_server_autoscaling=api_server_autoscaling,
        monitoring=monitoring,
    )
    if problems:
        raise ConfigError(problems)
    return config


def _office_hours(reader: _Reader) -> OfficeHoursConfig | None:
    """The ``office_hours_*`` keys: None for scope ``none``."""
    scope = (reader.str_("office_hours_scope") or "").lower()
    if scope not in ("none", "ui", "environment"):
        reader.problems.append(
            f"office_hours_scope={scope!r}: use none (always on), ui (api-server to zero outside "
            "office hours) or environment (every service to zero and the database stopped)"
        )
        return None
    start, stop = reader.str_("office_hours_start") or "", reader.str_("office_hours_stop") or ""
    timezone = reader.str_("office_hours_timezone") or ""
    for key, expression in (("office_hours_start", start), ("office_hours_stop", stop)):
        problem = cron_error(expression)
        if problem:
            reader.problems.append(f"{key}={expression!r}: {problem}")
    problem = timezone_error(timezone)
    if problem:
        reader.problems.append(f"office_hours_timezone: {problem}")
    return None if scope == "none" else OfficeHoursConfig(scope, start, stop, timezone)


def _api_server_autoscaling(reader: _Reader, api_server_count: int) -> ApiServerAutoScalingConfig | None:
    """The ``api_server_scale_on`` and bound keys: None for ``none``."""
    metric = (reader.str_("api_server_scale_on") or "").lower()
    if metric not in ("none", "cpu", "requests"):
        reader.problems.append(
            f"api_server_scale_on={metric!r}: use none (fixed api_server_count), cpu (average CPU "
            "utilization) or requests (load balancer requests per task)"
        )
        return None
    if metric == "none":
        return None
    min_count = reader.int_("api_server_min_count") if reader.str_("api_server_min_count") else api_server_count
    max_count = reader.int_("api_server_max_count") if reader.str_("api_server_max_count") else max(4, min_count)
    if not 1 <= min_count <= 20 or not 1 <= max_count <= 20:
        reader.problems.append(
            f"api_server_min_count/api_server_max_count={min_count}/{max_count}: each must be 1 to 20"
        )
    if min_count > max_count:
        reader.problems.append(
            f"api_server_min_count={min_count} is greater than api_server_max_count={max_count}; "
            "raise api_server_max_count or lower api_server_min_count"
        )
    cpu_target = reader.int_("api_server_target_cpu_percent")
    if not 10 <= cpu_target <= 90:
        reader.problems.append(f"api_server_target_cpu_percent={cpu_target}: use 10 to 90 (percent)")
    requests_target = reader.int_("api_server_target_requests_per_task")
    if requests_target < 1:
        reader.problems.append(
            f"api_server_target_requests_per_task={requests_target}: use a positive number of "
            "requests per task per minute, e.g. 1000"
        )
    return ApiServerAutoScalingConfig(metric, min_count, max_count, cpu_target, requests_target)
