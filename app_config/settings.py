"""The configuration keys, declared once: :class:`Settings`, a pydantic model with one field per
CDK context key (type, range or choices, default, description), the stages as presets of those
defaults (:data:`STAGE_PRESETS`), and the rules between keys (:data:`RULES`).

Values come from ``cdk.json`` (JSON types) or ``-c key=value`` (strings) and are read alike.
The README's configuration table is generated from this module (``python -m app_config.reference``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationInfo, model_validator

from app_config.executors import executor_class_error
from app_config.fargate import fargate_size_error
from app_config.fields import (
    FARGATE_SIZES_URL, CommaList, Whole, json_object, lower, problems, setting, upper,
)
from app_config.jobs import JOBS_EXAMPLE, QUEUES_EXAMPLE, ROLE_NAME_MAX, Jobs, Queues
from app_config.model import BUNDLED_ECS_EXECUTOR
from app_config.schedules import CronError, awake_hours_per_week, cron_error, timezone_error
from app_config.sso import GROUPS_EXAMPLE, GroupsToRoles, issuer_problem, secret_reference_problem

#: Defaults per stage, over the fields' defaults (which are dev's). prod retains data and runs HA.
STAGE_PRESETS: dict[str, dict[str, Any]] = {
    "dev": {},
    "prod": {
        "nat_gateways": 2,
        "db_instance_type": "t4g.medium",
        "db_multi_az": True,
        "db_backup_retention_days": 7,
        "retain_data": True,
        "scheduler_count": 2,
        "api_server_count": 2,
        "log_retention_days": 365,
        "login_rate_limit": 100,
    },
    # The least money that still runs every component (README, "Cost"): the services on Fargate
    # Spot at small sizes, public IPs as the way out to AWS APIs instead of NAT or endpoints,
    # no Container Insights, no dashboard ($3 a month; the alarms stay), and the whole
    # environment asleep outside Monday-Friday 08:00-18:00 UTC (50 hours a week): what keeps lean
    # at or below $50 a month. Like dev, destroyable.
    "lean": {
        "nat_gateways": 0,
        "task_public_ip": True,
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
        "dashboard": False,
        "office_hours_scope": "environment",
        "office_hours_start": "cron(0 8 ? * MON-FRI *)",
        "office_hours_stop": "cron(0 18 ? * MON-FRI *)",
    },
}

def _dockerfile_airflow_version(dockerfile: Path = Path(__file__).resolve().parent.parent / "docker" / "Dockerfile") -> str:
    """``ARG AIRFLOW_VERSION=<version>`` of ``dockerfile``.

    :raises RuntimeError: the Dockerfile has no such line (it is the one home of the version).
    """
    found = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", dockerfile.read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"{dockerfile} has no 'ARG AIRFLOW_VERSION=<version>' line")
    return found.group(1)


#: The Airflow version ``docker/Dockerfile`` builds the image with (its ``ARG AIRFLOW_VERSION``
#: default, the one home of that fact): the default of ``airflow_version``.
IMAGE_AIRFLOW_VERSION = _dockerfile_airflow_version()
#: The previous Airflow minor's last patch release (PyPI's apache-airflow release history): the
#: version an upgrade to ``IMAGE_AIRFLOW_VERSION`` starts from, and the one a rollback returns to.
#: The offline rehearsal has a stand-in image of each (local_ecs/base_image/, docs/rehearsal.md).
PREVIOUS_AIRFLOW_VERSION = "3.2.2"
AIRFLOW_VERSIONS = (PREVIOUS_AIRFLOW_VERSION, IMAGE_AIRFLOW_VERSION)

#: CloudWatch Logs accepts only these retention periods (days). Source: PutRetentionPolicy,
#: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)
#: Largest gp3 volume RDS for PostgreSQL accepts: 64 TiB = 65536 GiB. Source: "Amazon RDS DB
#: instance storage", General Purpose SSD storage,
#: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Storage.html
RDS_GP3_MAX_GIB = 65536
#: Inbound rules per security group. Source: "Amazon VPC quotas", security groups,
#: https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html#vpc-limits-security-groups
SECURITY_GROUP_INBOUND_RULES = 60
#: Inbound rules the load balancer's group spends on each ``ui_allowed_cidrs`` entry (HTTP 80 and
#: HTTPS 443; tests/config/test_bad_input.py counts them in the synthesized template).
RULES_PER_UI_CIDR = 2
MAX_UI_CIDRS = SECURITY_GROUP_INBOUND_RULES // RULES_PER_UI_CIDR
#: The limits AWS WAF accepts for a rate-based rule (requests per evaluation window). Source: AWS WAF
#: Developer Guide, "Rate-based rule statement",
#: https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based.html
WAF_RATE_LIMIT_RANGE = (10, 2_000_000_000)
#: How many availability zones the VPC spans.
MAX_AZS = 2
#: Keys that shape the VPC the app creates, refused with ``vpc_id`` (an existing VPC).
CREATED_VPC_KEYS = ("vpc_cidr", "nat_gateways")

# A git remote the bundle may fetch: https:// or ssh:// (no user:password@ in an https URL: the token
# belongs in the secret), or scp-like user@host:path. http://, git:// and file:// are refused.
_GIT_URL_RE = (r"^(?:https://[A-Za-z0-9.-]+(?::\d+)?/\S+"
               r"|ssh://(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(?::\d+)?/\S+"
               r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/\s]\S*)$")
# A branch name (git check-ref-format --branch, simplified): no space, ~^:?*[\ or "..", not starting
# with "-" or "/", not ending with "/", ".lock" or ".".
_GIT_BRANCH_RE = r"^(?!-)(?!/)(?!.*\.\.)(?!.*//)(?!.*@\{)(?!.*\.lock$)(?!.*[/.]$)[^\s~^:?*\[\\]+$"
# A Secrets Manager secret name (1-512 of letters, digits and /_+=.@-) or a secret ARN.
_SECRET_RE = r"^(?:arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]{1,512})$"
_FARGATE_CPU = "vCPU units (1024 = 1 vCPU), a Fargate pair with {memory}"
_PROVIDER = "{key}={value}: use FARGATE or FARGATE_SPOT"
_CERT_ARN_RE = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
# A DNS host name of lowercase labels (RFC 1123), at least two labels.
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
# name-components[:tag][@digest] with an optional registry host[:port]; see the OCI distribution
# spec's reference grammar (https://github.com/distribution/reference/blob/main/reference.go).
_IMAGE_URI_RE = (
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::\d+)?)/)?"
    r"(?P<repo>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
# EC2 resource IDs: the prefix and 8 hexadecimal digits, or 17 for IDs created since 2018
# ("Resource IDs", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html).
_VPC_ID_RE = r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$"
_SUBNET_ID_RE = r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$"
_EMAIL_RE = (r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
             r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
# An RDS DB instance class, db.<family>.<size> (the db. prefix optional): family letters, a
# generation digit, options (t4g, m7g, r6gd, x2iedn); size micro to 32xlarge.
_DB_CLASS_RE = r"^(db\.)?[a-z]+[0-9]+[a-z-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal)$"
# Airflow's CLI (argparse) reads a value that begins with "-" as an option: `airflow users create
# --username -admin` fails; FAB stores up to 512 characters (ab_user.username). The app passes the
# name to bash in double quotes and makes "<name>@example.invalid" the admin's e-mail.
_USERNAME_RE = r"^[A-Za-z0-9_.@][A-Za-z0-9_.@-]{0,63}$"


def _cidr_problem(key: str, value: str, min_prefix: int = 0, max_prefix: int = 32) -> str | None:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        return f"{key}={value!r} is not an IPv4 CIDR block ({err}); write it like 10.0.0.0/16"
    if not min_prefix <= network.prefixlen <= max_prefix:
        return f"{key}={value!r}: the prefix must be /{min_prefix} to /{max_prefix}; for example 10.0.0.0/16"
    return None


def _vpc_cidr_problem(value: str) -> str | None:
    found = _cidr_problem("vpc_cidr", value, 16, 22)
    if found is None and not any(ipaddress.IPv4Network(value).subnet_of(ipaddress.IPv4Network(private))
                                 for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")):
        found = (f"vpc_cidr={value!r} is a public range; use a private (RFC 1918) range inside 10.0.0.0/8, "
                 "172.16.0.0/12 or 192.168.0.0/16, e.g. 10.0.0.0/16")
    return found


def _subnet_ids_problem(key: str, ids: tuple[str, ...]) -> str | None:
    bad = [i for i in ids if not re.fullmatch(_SUBNET_ID_RE, i)]
    if bad:
        return (f"{key}: {', '.join(bad)} not a subnet ID; a subnet ID is subnet- and 8 or 17 hexadecimal digits, "
                "e.g. subnet-0123456789abcdef0 (aws ec2 describe-subnets --filters Name=vpc-id,Values=<vpc_id>)")
    if len(set(ids)) != len(ids):
        return f"{key}: a subnet is listed twice; give one subnet per availability zone, {MAX_AZS} different ones"
    return None


def _subnet_cidrs_problem(key: str, cidrs: tuple[str, ...]) -> str | None:
    found = [p for p in (_cidr_problem(key, cidr, 16, 28) for cidr in cidrs) if p]
    if found:
        return found[0] + " (a subnet's CIDR block, /16 to /28)"
    return None


def _airflow_version_problem(key: str, value: Any) -> str | None:
    if value not in AIRFLOW_VERSIONS:
        return (f"{key}={value}: this app builds Airflow {' or '.join(AIRFLOW_VERSIONS)} (docker/Dockerfile's "
                f"AIRFLOW_VERSION and the previous minor's last patch); for another version build an image yourself "
                "and set image_uri")
    return None


def _sentence(find: Callable[[str, Any], str | None]) -> AfterValidator:
    """An after-validator refusing a value about which ``find(key, value)`` has a sentence."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        found = find(info.field_name or "", value) if value is not None else None
        if found:
            raise problems([found])
        return value

    return AfterValidator(validate)


def _host_name(value: Any) -> Any:
    """``Airflow.Example.com.`` -> ``airflow.example.com``."""
    return value.strip().lower().rstrip(".") if isinstance(value, str) else value


def _zone_id(value: Any) -> Any:
    """``/hostedzone/Z123`` (as the Route 53 API prints it) -> ``Z123``."""
    return value.strip().removeprefix("/hostedzone/") if isinstance(value, str) else value


def _pip_index_file_problem(key: str, value: str) -> str | None:
    """A pip configuration file the build can read, kept out of the repository (and so out of the
    build context, ``cdk.out`` and git)."""
    path = Path(value).expanduser()
    if not path.is_file():
        return (f"{key}={value}: no such file; write the pip configuration with your index URL and token there "
                f"(README, Writing DAGs), or leave {key} out")
    repository = Path(__file__).resolve().parents[1]
    if path.resolve().is_relative_to(repository):
        return (f"{key}={value} is inside the repository, where a token may be committed or copied into cdk.out; "
                "keep it outside, e.g. ~/.config/pip/private-index.conf")
    return None


def _retention_problem(key: str, value: int) -> str | None:
    if value in LOG_RETENTION_DAYS:
        return None
    return f"{key}={value}: CloudWatch Logs accepts only {', '.join(map(str, LOG_RETENTION_DAYS))}"


def _login_rate_problem(key: str, value: int) -> str | None:
    low, high = WAF_RATE_LIMIT_RANGE
    if value != 0 and not low <= value <= high:
        return (f"{key}={value}: AWS WAF's rate limit is {low} to {high} requests per 5 minutes; give e.g. "
                f"{key}=100, or {key}=0 for no web ACL")
    return None


def _cron_problem(key: str, value: str) -> str | None:
    found = cron_error(value)
    return f"{key}={value!r}: {found}" if found else None


def _timezone_problem(key: str, value: str) -> str | None:
    found = timezone_error(value)
    return f"{key}: {found}" if found else None


class Settings(BaseModel):
    """Every configuration key with its type, limits, default (dev's; see
    :data:`STAGE_PRESETS`) and meaning. Build it with :func:`app_config.loader.load_config`."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, coerce_numbers_to_str=True, str_strip_whitespace=True, regex_engine="python-re",
        validate_default=True,
    )

    stage: Literal["dev", "prod", "lean"] = setting(
        "dev", "`dev` (cheap, destroyable), `prod` (data retained, Multi-AZ DB, 2 schedulers, 2 api-servers, "
        "HTTPS or private UI and `ui_allowed_cidrs` required) or `lean` (least money, see [Cost](#cost))",
        problem="{key}={value} is not a stage; use one of: dev, prod, lean")
    project_name: str = setting(
        "airflow", "prefix of stack names and of the Cloud Map namespace", pattern=r"^[a-z][a-z0-9-]{0,29}$",
        problem="{key}={value}: use 1-30 lowercase letters, digits and hyphens, starting with a letter")
    account: str | None = setting(
        None, "deploy to one environment (with `region`); unset = environment-agnostic synthesis. "
        "Needed for ALB access logs", pattern=r"^\d{12}$", problem="{key}={value}: an AWS account ID is 12 digits")
    region: str | None = setting(
        None, "the region of `account`", pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$",
        problem="{key}={value} is not an AWS region name such as eu-west-1")
    availability_zones: CommaList = setting(
        (), "two AZ names of `region`, comma-separated; avoids an AZ lookup when `account`/`region` are set")
    vpc_cidr: Annotated[str, _sentence(lambda _, v: _vpc_cidr_problem(v))] = setting(
        "10.0.0.0/16", "VPC CIDR, /16 to /22, a private (RFC 1918) range")
    nat_gateways: Whole = setting(
        1, "0 to 2; 0 adds interface endpoints so tasks work without NAT", ge=0, le=MAX_AZS,
        problem=f"{{key}}={{value}}: must be 0 to {MAX_AZS} (one per availability zone at most); 0 uses VPC "
                "interface endpoints instead of NAT")
    vpc_id: str | None = setting(
        None, "deploy into this existing VPC instead of creating one: the app creates no VPC, subnets, NAT gateways "
        "or endpoints (the tasks need routes or endpoints of yours, see [Existing VPC](#existing-vpc)) and only "
        "its security groups there. Needs `private_subnet_ids` (and `public_subnet_ids` unless `ui_private_only`), "
        "`availability_zones`, `account` and `region`; refuses `vpc_cidr` and `nat_gateways`. Switching to, from "
        "or between VPCs replaces the database (the change check refuses it)", pattern=_VPC_ID_RE,
        problem="{key}={value}: a VPC ID is vpc- and 8 or 17 hexadecimal digits, e.g. vpc-0123456789abcdef0 "
                "(aws ec2 describe-vpcs --query 'Vpcs[].VpcId')")
    private_subnet_ids: Annotated[CommaList, _sentence(_subnet_ids_problem)] = setting(
        (), "with `vpc_id`: its private subnets, one per AZ in the order of `availability_zones`, comma-separated; "
        "the database, the load balancer when `ui_private_only`, and every task unless `task_public_ip` run there")
    public_subnet_ids: Annotated[CommaList, _sentence(_subnet_ids_problem)] = setting(
        (), "with `vpc_id`: its public subnets (routed to an internet gateway), one per AZ in the order of "
        "`availability_zones`; the internet-facing load balancer (needed unless `ui_private_only`) and, with "
        "`task_public_ip`, the tasks run there")
    private_subnet_cidrs: Annotated[CommaList, _sentence(_subnet_cidrs_problem)] = setting(
        (), "with `vpc_id` and `ui_private_only`: the IPv4 CIDR blocks of `private_subnet_ids`, same order (the "
        "load balancer's subnets: the api-server trusts forwarded headers from them only)")
    public_subnet_cidrs: Annotated[CommaList, _sentence(_subnet_cidrs_problem)] = setting(
        (), "with `vpc_id` and a public UI: the IPv4 CIDR blocks of `public_subnet_ids`, same order (the load "
        "balancer's subnets, as above)")
    db_instance_type: str = setting(
        "t4g.micro", "RDS instance class (`db.` prefix optional)", pattern=_DB_CLASS_RE,
        problem="{key}={value}: write it like db.t4g.micro or m7g.large (db.<family>.<size>, an RDS instance class)")
    db_allocated_storage_gib: Whole = setting(
        20, "storage (GiB)", ge=20, le=RDS_GP3_MAX_GIB,
        problem=f"{{key}}={{value}}: RDS gp3 storage is 20 to {RDS_GP3_MAX_GIB} GiB")
    db_max_allocated_storage_gib: Whole = setting(
        100, "storage autoscaling ceiling (GiB)", ge=20, le=RDS_GP3_MAX_GIB,
        problem=f"{{key}}={{value}}: RDS gp3 storage is 20 to {RDS_GP3_MAX_GIB} GiB (64 TiB for PostgreSQL)")
    db_multi_az: bool = setting(False, "standby in a second AZ")
    db_backup_retention_days: Whole = setting(
        1, "1 to 35 days", ge=1, le=35, problem="{key}={value}: RDS keeps automated backups 1 to 35 days")
    retain_data: bool = setting(
        False, "retain DB (snapshot), secrets, buckets, repository; deletion protection; termination "
        "protection of the database stack")
    image_uri: str | None = setting(
        None, "run this image instead of building `docker/`", pattern=_IMAGE_URI_RE,
        problem="{key}={value} is not an image reference; write it like "
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow:3.3.2")
    airflow_version: Annotated[str, _sentence(_airflow_version_problem)] = setting(
        IMAGE_AIRFLOW_VERSION, f"the Airflow version of the image built from `docker/` (its `AIRFLOW_VERSION` build "
        f"argument): `{IMAGE_AIRFLOW_VERSION}` (the Dockerfile's) or `{PREVIOUS_AIRFLOW_VERSION}` (the previous minor's "
        "last patch: what an upgrade starts from and a rollback returns to). Not with `image_uri` or `image_tag` "
        "(that image has its own)")
    image_tag: str | None = setting(
        None, "run this tag from the ECR repository the app creates", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        problem="{key}={value}: tags are 1-128 of A-Z a-z 0-9 _ . - characters")
    pip_index_file: Annotated[str | None, _sentence(_pip_index_file_problem)] = setting(
        None, "a pip configuration file outside the repository naming your private package index with its token, "
        "e.g. `[global]` / `extra-index-url = https://aws:<token>@<domain>-<account>.d.codeartifact.<region>."
        "amazonaws.com/pypi/<repo>/simple/`; the image build (deploy, `make publish`) gets it as the build secret "
        "`pip_index`, so the token ends in no image layer and no `cdk.out` file (see [Writing DAGs](#writing-dags))")
    executor_class: Annotated[str, _sentence(lambda _, v: executor_class_error(v))] = setting(
        BUNDLED_ECS_EXECUTOR, "the scheduler's `[core] executor`; the stock "
        "`airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor` also works (then launch type FARGATE)")
    worker_container_name: str = setting(
        "worker", "container name in the workers' task definition", pattern=r"^[A-Za-z0-9_-]{1,255}$",
        problem="{key}={value}: use up to 255 letters, digits, hyphens and underscores")
    worker_cpu: Whole = setting(1024, "worker task CPU, " + _FARGATE_CPU.format(memory="`worker_memory_mib`"))
    worker_memory_mib: Whole = setting(2048, "worker task memory (MiB)")
    worker_capacity_provider: Annotated[Literal["FARGATE", "FARGATE_SPOT"], BeforeValidator(upper)] = setting(
        "FARGATE_SPOT", "`FARGATE_SPOT` or `FARGATE`", problem=_PROVIDER)
    spot_fallback_to_on_demand: bool = setting(True, "relaunch on FARGATE when Spot has no capacity")
    worker_queues: Annotated[Queues, json_object(QUEUES_EXAMPLE)] = setting(
        {}, "queues that pick a worker size, JSON (cdk.json object or `-c` string): "
        f"`{QUEUES_EXAMPLE}`; a task with `queue=\"large\"` runs at that size (a Fargate size, checked before "
        "synthesis); other queues keep `worker_cpu`/`worker_memory_mib` (bundled executor only). A team queue also "
        "names what its tasks may reach, `s3_prefixes` (of the jobs' data bucket), `secrets_prefixes`, "
        "`managed_policy_arns` and the `jobs` it may run, and gets a task role and task definition family "
        "`<project>-<stage>-worker-<queue>` of its own; a job named by a team queue is run by those queues only "
        "(see [Team queues](#team-queues))", default_text="unset")
    scheduler_count: Whole = setting(1, "schedulers, 1 to 10", ge=1, le=10, problem="{key}={value}: must be 1 to 10")
    api_server_count: Whole = setting(
        1, "api-server tasks, 1 to 10", ge=1, le=10, problem="{key}={value}: must be 1 to 10")
    scheduler_cpu: Whole = setting(1024, "scheduler task CPU, " + _FARGATE_CPU.format(memory="its memory"))
    scheduler_memory_mib: Whole = setting(2048, "scheduler task memory (MiB)")
    api_server_cpu: Whole = setting(1024, "api-server task CPU, " + _FARGATE_CPU.format(memory="its memory"))
    api_server_memory_mib: Whole = setting(2048, "api-server task memory (MiB)")
    dag_processor_cpu: Whole = setting(512, "dag-processor task CPU, " + _FARGATE_CPU.format(memory="its memory"))
    dag_processor_memory_mib: Whole = setting(1024, "dag-processor task memory (MiB)")
    triggerer_cpu: Whole = setting(512, "triggerer task CPU, " + _FARGATE_CPU.format(memory="its memory"))
    triggerer_memory_mib: Whole = setting(1024, "triggerer task memory (MiB)")
    ui_allowed_cidrs: CommaList | None = setting(
        None, f"who may reach the load balancer: IPv4 CIDRs, comma-separated, at most {MAX_UI_CIDRS} "
        f"(each costs {RULES_PER_UI_CIDR} of the security group's {SECURITY_GROUP_INBOUND_RULES} inbound rules); "
        "required in prod unless `ui_private_only`",
        default_text="`0.0.0.0/0` (VPC CIDR when private; prod: required)")
    certificate_arn: str | None = setting(
        None, "an existing ACM certificate for `domain_name`, in the stacks' region; unset = the app issues a "
        "DNS-validated one. Refused without `domain_name` (no certificate can cover the ALB's own "
        "`*.elb.amazonaws.com` name)", pattern=_CERT_ARN_RE.pattern,
        problem="{key}={value} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)")
    domain_name: Annotated[str | None, BeforeValidator(_host_name)] = setting(
        None, "the UI's host name, e.g. `airflow.example.com`: HTTPS on 443 (HTTP redirected), an alias record "
        "to the ALB, `[api] base_url` and `AirflowUiUrl` from it. Needs `hosted_zone_id` and `hosted_zone_name`",
        pattern=_DOMAIN_RE.pattern, problem="{key}={value}: give a host name such as airflow.example.com")
    hosted_zone_id: Annotated[str | None, BeforeValidator(_zone_id)] = setting(
        None, "the Route 53 public hosted zone that holds `domain_name`, where the certificate is validated and "
        "the alias record added", pattern=r"^Z[A-Z0-9]{1,31}$",
        problem="{key}={value}: a Route 53 zone ID looks like Z0123456789ABCDEFGHIJ")
    hosted_zone_name: Annotated[str | None, BeforeValidator(_host_name)] = setting(
        None, "that zone's name: `domain_name` itself or a parent of it")
    ui_private_only: bool = setting(False, "internal load balancer (reach it through a VPN)")
    login_rate_limit: Annotated[Whole, _sentence(_login_rate_problem)] = setting(
        0, "requests a client IP may send to the login and token paths (`/auth/login`, `/auth/token`) in 5 "
        "minutes before an AWS WAF web ACL on the load balancer blocks it there, counted across api-server "
        f"tasks; {WAF_RATE_LIMIT_RANGE[0]} to {WAF_RATE_LIMIT_RANGE[1]}, or 0 for no web ACL (it costs a "
        "web ACL, a rule and every request, see `make cost`)")
    log_retention_days: Annotated[Whole, _sentence(_retention_problem)] = setting(
        30, "CloudWatch Logs retention (an accepted value, e.g. 30, 90, 365)")
    dag_bundle: Annotated[Literal["image", "s3", "git"], BeforeValidator(lower)] = setting(
        "image", "`image` (`dags/` baked into the image), `s3` (a bucket the app creates) or `git` (a branch of a "
        "git repository, see [Writing DAGs](#writing-dags))",
        problem="{key}={value}: use image (dags/ baked into the image), s3 or git")
    dag_bundle_git_url: str | None = setting(
        None, "`dag_bundle=git`: the repository, `https://host/owner/repo.git` or `ssh://git@host/owner/repo.git` "
        "(also `git@host:owner/repo.git`); no user or token in it", pattern=_GIT_URL_RE,
        problem="{key}={value}: give an https:// or ssh:// URL (or git@host:owner/repo.git) with no credentials in "
                "it; the token goes in the secret named by dag_bundle_git_secret")
    dag_bundle_git_branch: str = setting(
        "main", "`dag_bundle=git`: the branch whose head Airflow parses and runs", pattern=_GIT_BRANCH_RE,
        problem="{key}={value} is not a branch name git accepts (git check-ref-format --branch)")
    dag_bundle_git_refresh_seconds: Whole = setting(
        60, "`dag_bundle=git`: seconds between two fetches of the branch by the dag-processor, 5 to 86400 (a push "
            "shows up within this plus the parse time)", ge=5, le=86400,
        problem="{key}={value}: must be 5 to 86400 seconds")
    dag_bundle_git_secret: str | None = setting(
        None, "`dag_bundle=git`: name or ARN of the Secrets Manager secret holding the git connection as JSON: "
        "`{\"conn_type\": \"git\", \"login\": \"x-access-token\", \"password\": \"<token>\"}` (https) or "
        "`{\"conn_type\": \"git\", \"extra\": {\"private_key\": \"<key>\"}}` (ssh); only the dag-processor "
        "and the workers read it. Unset: a public https repository", pattern=_SECRET_RE,
        problem="{key}={value}: give a Secrets Manager secret name (letters, digits, /_+=.@-) or its ARN "
                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>)")
    secrets_backend: Annotated[Literal["secrets-manager", "none"], BeforeValidator(lower)] = setting(
        "secrets-manager", "`secrets-manager`: connections and variables are read from AWS Secrets Manager under "
        "`<project>/<stage>/connections/` and `<project>/<stage>/variables/` before the metadata DB (see "
        "[Connections and variables](#connections-and-variables)); `none`: the UI and the DB only",
        problem="{key}={value}: use secrets-manager (connections and variables from AWS Secrets Manager) or none")
    enable_ecs_exec: bool = setting(
        False, "`aws ecs execute-command` into the services, sessions logged to CloudWatch. Needs "
        "`read_only_root_filesystem=false` (refused otherwise): the SSM agent ECS Exec injects writes to the "
        "container's filesystem, which AWS does not support read-only; its paths are not a documented contract, "
        "so they are not mounted as volumes")
    read_only_root_filesystem: bool = setting(
        True, "every container's root filesystem read-only (writable `/tmp`, `/opt/airflow/logs` and the scratch "
        "directory `/opt/airflow/tmp` = `TMPDIR` only); turn off only for an image of your own that writes "
        "elsewhere, or with `enable_ecs_exec`")
    admin_username: str = setting(
        "admin", "the FAB admin login: 1-64 letters, digits, `_ . @ -`, not starting with `-`", pattern=_USERNAME_RE,
        problem="{key}={value}: use 1-64 letters, digits, _ . @ -, not starting with - (Airflow's CLI would read "
                "it as an option)")
    sso_issuer_url: Annotated[str | None, _sentence(issuer_problem)] = setting(
        None, "single sign-on through OpenID Connect (see [Single sign-on](#single-sign-on)): the identity "
        "provider's issuer, `https://` only, e.g. `https://example.okta.com`; users then sign in there and their "
        "groups pick their Airflow roles. Needs `sso_client_id`, `sso_client_secret`, `sso_groups_to_roles` and "
        "`domain_name` (providers redirect back to `https` only)")
    sso_client_id: str | None = setting(
        None, "with `sso_issuer_url`: the client (application) ID the provider gave Airflow",
        pattern=r"^[\x21-\x7e]{1,255}$", problem="{key}={value}: a client ID is 1-255 printable characters, no spaces")
    sso_client_secret: Annotated[str | None, _sentence(secret_reference_problem)] = setting(
        None, "with `sso_issuer_url`: the Secrets Manager secret (name or complete ARN, in the stacks' account and "
        "region) whose value is the client secret; only the api-server container receives it")
    sso_groups_to_roles: GroupsToRoles = setting(
        {}, f"with `sso_issuer_url`: identity-provider group → Airflow role (`Admin`, `Op`, `User`, `Viewer`), "
        f"JSON, e.g. `{GROUPS_EXAMPLE}`; a role list is allowed. A user's roles are set from their groups at every "
        "sign-in; a user in no listed group is refused", default_text="unset")
    sso_groups_claim: str = setting(
        "groups", "with `sso_issuer_url`: the claim of the ID token (or userinfo) that lists the user's groups, "
        "e.g. `cognito:groups` for Amazon Cognito", pattern=r"^[\x21-\x7e]{1,128}$",
        problem="{key}={value}: a claim name is 1-128 printable characters, no spaces")
    sso_scopes: str = setting(
        "openid email profile", "with `sso_issuer_url`: the scopes requested, space-separated; must include "
        "`openid` (Okta's groups claim also needs `groups`)", pattern=r"^[\x21-\x7e]+( [\x21-\x7e]+)*$",
        problem="{key}={value}: give scopes separated by single spaces, e.g. openid email profile")
    sso_local_admin_login: bool = setting(
        True, "with `sso_issuer_url`: keep the local admin login (`admin_username`, password in Secrets Manager) as "
        "break-glass beside single sign-on; `false` refuses every password login (UI and `/auth/token`) and "
        "creates no admin")
    jobs: Annotated[Jobs, json_object(JOBS_EXAMPLE, "{key}: not valid JSON")] = setting(
        {"upload-file-to-s3": {"cpu": 256, "memory_mib": 512, "s3_write_prefixes": ["uploads/"]}},
        "ECS jobs that DAGs run with `EcsRunTaskOperator` (see [Operating](#ecs-jobs-from-dags)): a JSON object "
        "(in `cdk.json`, or a JSON string with `-c`) of job name → `cpu`/`memory_mib` (a Fargate pair), "
        "`s3_read_prefixes`, `s3_write_prefixes` (key prefixes of the data bucket, ending in `/`); each name is a "
        "directory `jobs/<name>/` with a `Dockerfile`; `{}` for none")
    office_hours_scope: Annotated[Literal["none", "ui", "environment"], BeforeValidator(lower)] = setting(
        "none", "`ui`: the api-server scales to zero outside office hours; `environment`: api-server, scheduler, "
        "dag-processor and triggerer scale to zero and the database is stopped (see "
        "[Operating](#office-hours-and-automatic-scaling))",
        problem="{key}={value}: use none (always on), ui (api-server to zero outside office hours) or environment "
                "(every service to zero and the database stopped)")
    office_hours_start: Annotated[str, _sentence(_cron_problem)] = setting(
        "cron(0 7 ? * MON-FRI *)", "when Airflow wakes up: an AWS cron expression (minutes hours day-of-month "
        "month day-of-week year; one of the two day fields is `?`)")
    office_hours_stop: Annotated[str, _sentence(_cron_problem)] = setting(
        "cron(0 19 ? * MON-FRI *)", "when Airflow goes to sleep, in the same form; never at the minute it starts")
    office_hours_timezone: Annotated[str, _sentence(_timezone_problem)] = setting(
        "UTC", "IANA time zone of those expressions, e.g. `Europe/Berlin` (daylight saving time followed)")
    api_server_scale_on: Annotated[Literal["none", "cpu", "requests"], BeforeValidator(lower)] = setting(
        "none", "`cpu` (average CPU utilization) or `requests` (load balancer requests per task): target tracking "
        "of the api-server's task count",
        problem="{key}={value}: use none (fixed api_server_count), cpu (average CPU utilization) or requests "
                "(load balancer requests per task)")
    api_server_min_count: Whole | None = setting(
        None, "lower bound of that scaling, 1 to 20", ge=1, le=20, default_text="`api_server_count`",
        problem="{key}={value}: must be 1 to 20")
    api_server_max_count: Whole | None = setting(
        None, "upper bound of that scaling, 1 to 20", ge=1, le=20, default_text="`api_server_min_count`, at least 4",
        problem="{key}={value}: must be 1 to 20")
    api_server_target_cpu_percent: Whole = setting(
        60, "CPU utilization to hold (10 to 90 %) with `cpu`", ge=10, le=90,
        problem="{key}={value}: use 10 to 90 (percent)")
    api_server_target_requests_per_task: Whole = setting(
        1000, "requests per task per minute to hold with `requests`", ge=1,
        problem="{key}={value}: use a positive number of requests per task per minute, e.g. 1000")
    task_public_ip: bool = setting(
        False, "run the Airflow tasks in the public subnets with a public IPv4 address each as their way out to "
        "AWS APIs, instead of NAT or interface endpoints; needs `nat_gateways=0`; no inbound rule admits the "
        "internet")
    services_capacity_provider: Annotated[Literal["FARGATE", "FARGATE_SPOT"], BeforeValidator(upper)] = setting(
        "FARGATE", "capacity provider of the four services; ECS replaces a task that Spot interrupts",
        problem=_PROVIDER)
    container_insights: bool = setting(
        True, "ECS Container Insights on the cluster (running vs desired tasks; billed as custom metrics)")
    airflow_metrics: bool = setting(
        True, "Airflow's metrics and the executor's counters as CloudWatch metrics (see [Monitoring](#monitoring))")
    dashboard: bool = setting(True, "one CloudWatch dashboard for the deployment")
    alarm_email: str | None = setting(
        None, "e-mail address subscribed to the alarm topic (confirm the e-mail AWS sends)", pattern=_EMAIL_RE,
        problem="{key}={value} is not an e-mail address; write it like -c alarm_email=ops@example.com, or leave "
                "it unset for no subscription")

    @model_validator(mode="before")
    @classmethod
    def _stage_preset(cls, data: Any) -> Any:
        """The stage's defaults under the keys given."""
        if isinstance(data, dict):
            preset = STAGE_PRESETS.get(str(data.get("stage", "dev")).strip(), {})
            if data.get("vpc_id") is not None:  # no preset of a key an existing VPC refuses
                preset = {k: v for k, v in preset.items() if k not in CREATED_VPC_KEYS}
            return {**preset, **data}
        return data

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Settings:
        """Every rule between keys; those reading a key that was refused are skipped."""
        refused = (info.context or {}).get("refused", frozenset())
        found = [p for keys, rule in RULES if not keys & refused for p in rule(self) if p]
        if found:
            raise problems(found)
        return self

    @property
    def ui_cidrs(self) -> tuple[str, ...]:
        """The CIDRs the load balancer admits: as given, else the VPC (private) or anywhere."""
        if self.ui_allowed_cidrs:
            return self.ui_allowed_cidrs
        return (self.vpc_cidr,) if self.ui_private_only else ("0.0.0.0/0",)


#: Rules between keys: (the keys each reads, a function giving its problems).
RULES: list[tuple[frozenset[str], Callable[[Settings], Iterable[str | None]]]] = []


def rule(*keys: str) -> Callable:
    """Register a rule that reads ``keys``."""

    def register(function: Callable[[Settings], Iterable[str | None]]) -> Callable:
        RULES.append((frozenset(keys), function))
        return function

    return register


@rule("account", "region", "availability_zones")
def _environment(s: Settings) -> Iterable[str | None]:
    if (s.account is None) != (s.region is None):
        yield "account/region: set both (to deploy to one environment) or neither"
    azs = s.availability_zones
    if not azs:
        return
    example = f"{s.region or 'eu-west-1'}a,{s.region or 'eu-west-1'}b"
    if s.account is None:
        yield ("availability_zones: set account and region too (AZ names belong to one account and region), "
               "or leave availability_zones out")
    elif len(azs) != MAX_AZS:
        yield f"availability_zones: give exactly {MAX_AZS} names, e.g. {example}"
    if len(set(azs)) != len(azs):
        yield f"availability_zones={','.join(azs)}: an AZ is listed twice; give {MAX_AZS} different ones, e.g. {example}"
    if s.region is not None:
        foreign = [az for az in azs if not re.fullmatch(re.escape(s.region) + "[a-z]", az)]
        if foreign:
            yield (f"availability_zones: {', '.join(foreign)} not in region {s.region}; use AZ names of "
                   f"{s.region}, e.g. {example}")


@rule("task_public_ip", "nat_gateways", "vpc_id")
def _way_out(s: Settings) -> Iterable[str | None]:
    if s.task_public_ip and s.nat_gateways and s.vpc_id is None:
        yield (f"task_public_ip=true with nat_gateways={s.nat_gateways}: public IPs replace the NAT gateways as "
               "the way out; set nat_gateways=0 or task_public_ip=false")


@rule("vpc_id", "private_subnet_ids", "public_subnet_ids", "private_subnet_cidrs", "public_subnet_cidrs",
      "availability_zones", "account", "region", "ui_private_only", "ui_allowed_cidrs", "task_public_ip",
      *CREATED_VPC_KEYS)
def _existing_vpc(s: Settings) -> Iterable[str | None]:
    subnet_keys = ("private_subnet_ids", "public_subnet_ids", "private_subnet_cidrs", "public_subnet_cidrs")
    if s.vpc_id is None:
        for key in subnet_keys:
            if getattr(s, key):
                yield (f"{key}: set vpc_id too (the existing VPC the subnets belong to), or leave {key} out to have "
                       "the app create a VPC")
        return
    for key in CREATED_VPC_KEYS:
        if key in s.model_fields_set:
            yield (f"{key}: the app creates no VPC with vpc_id (an existing VPC keeps its own CIDR and routes); leave "
                   f"{key} out, and give the tasks a way to AWS APIs in your network (README, \"Existing VPC\")")
    if s.account is None or s.region is None:
        yield ("vpc_id: set account and region too: a VPC belongs to one account and region (and synthesis needs "
               "its availability zones without a lookup)")
    azs = s.availability_zones
    example = f"{s.region or 'eu-west-1'}a,{s.region or 'eu-west-1'}b"
    if not azs:
        yield (f"availability_zones: with vpc_id give the {MAX_AZS} AZs of the subnets, in the order of the subnet "
               f"lists, e.g. {example} (aws ec2 describe-subnets --subnet-ids <ids> --query "
               "'Subnets[].[SubnetId,AvailabilityZone]')")
    needed = {
        "private_subnet_ids": True,
        "public_subnet_ids": not s.ui_private_only or s.task_public_ip,
        "private_subnet_cidrs": s.ui_private_only,
        "public_subnet_cidrs": not s.ui_private_only,
    }
    why = {
        "private_subnet_ids": "the database and the tasks run there",
        "public_subnet_ids": ("the tasks run there with task_public_ip, or set task_public_ip=false"
                              if s.ui_private_only else
                              "the internet-facing load balancer runs there, or set ui_private_only=true"),
        "private_subnet_cidrs": "the internal load balancer's subnets, whose addresses the api-server trusts",
        "public_subnet_cidrs": "the load balancer's subnets, whose addresses the api-server trusts",
    }
    for key in subnet_keys:
        given = getattr(s, key)
        if needed[key] and not given:
            yield (f"{key}: with vpc_id give {MAX_AZS}, one per availability zone in the order of availability_zones; "
                   f"{why[key]}")
        elif given and len(azs) == MAX_AZS and len(given) != len(azs):
            yield (f"{key}: {len(given)} given for the {len(azs)} availability zones {','.join(azs)}; give one per AZ, "
                   "in that order")
        elif given and len(given) != MAX_AZS:
            yield (f"{key}: {len(given)} given; give {MAX_AZS}, one per availability zone in the order of "
                   "availability_zones (RDS and the load balancer need subnets in two AZs)")
    both = set(s.private_subnet_ids) & set(s.public_subnet_ids)
    if both:
        yield (f"private_subnet_ids/public_subnet_ids: {', '.join(sorted(both))} in both lists; a subnet is private "
               "(no route to an internet gateway) or public, give each in its own list")
    cidrs = [ipaddress.IPv4Network(c) for c in (*s.private_subnet_cidrs, *s.public_subnet_cidrs)]
    for i, a in enumerate(cidrs):
        for b in cidrs[i + 1:]:
            if a.overlaps(b):
                yield (f"private_subnet_cidrs/public_subnet_cidrs: {a} and {b} overlap; subnets of one VPC never do, "
                       "copy each subnet's CIDR block (aws ec2 describe-subnets --query "
                       "'Subnets[].[SubnetId,CidrBlock]')")
    if s.ui_private_only and s.ui_allowed_cidrs is None:
        yield ("ui_allowed_cidrs: with vpc_id and ui_private_only give the IPv4 CIDRs that may reach the internal "
               "load balancer (your VPC's CIDR, your VPN's ranges), e.g. -c ui_allowed_cidrs=10.20.0.0/16; the app "
               "does not know the existing VPC's CIDR")


@rule("db_allocated_storage_gib", "db_max_allocated_storage_gib")
def _storage(s: Settings) -> Iterable[str | None]:
    if s.db_max_allocated_storage_gib < s.db_allocated_storage_gib:
        yield (f"db_max_allocated_storage_gib={s.db_max_allocated_storage_gib}: must be at least "
               f"db_allocated_storage_gib ({s.db_allocated_storage_gib})")


@rule("dag_bundle", "dag_bundle_git_url", "dag_bundle_git_secret")
def _git_bundle(s: Settings) -> Iterable[str | None]:
    if s.dag_bundle != "git":
        return
    if s.dag_bundle_git_url is None:
        yield ("dag_bundle=git: set dag_bundle_git_url to the repository (https://host/owner/repo.git or "
               "ssh://git@host/owner/repo.git), e.g. -c dag_bundle_git_url=https://github.com/example/dags.git")
    elif not s.dag_bundle_git_url.startswith("https://") and s.dag_bundle_git_secret is None:
        yield (f"dag_bundle_git_url={s.dag_bundle_git_url}: an ssh URL needs a private key; set dag_bundle_git_secret "
               "to the secret holding the git connection with extra.private_key (README, Writing DAGs)")


@rule("image_uri", "image_tag", "airflow_version")
def _image(s: Settings) -> Iterable[str | None]:
    if s.image_uri is not None and s.image_tag is not None:
        yield "image_uri and image_tag: set at most one of them"
    if s.airflow_version != IMAGE_AIRFLOW_VERSION and (s.image_uri is not None or s.image_tag is not None):
        yield (f"airflow_version={s.airflow_version} with {'image_uri' if s.image_uri else 'image_tag'}: "
               "airflow_version picks the version of the image built from docker/; the image you name has its own. "
               "Unset one of them")


@rule("executor_class", "worker_queues")
def _executor(s: Settings) -> Iterable[str | None]:
    if s.worker_queues and s.executor_class != BUNDLED_ECS_EXECUTOR:
        yield (f"worker_queues needs the bundled executor (executor_class={BUNDLED_ECS_EXECUTOR}); "
               "the stock executor runs every task at worker_cpu/worker_memory_mib")


@rule("worker_queues", "jobs")
def _queue_jobs(s: Settings) -> Iterable[str | None]:
    for name, queue in s.worker_queues.items():
        for job in queue.jobs:
            if job not in s.jobs:
                known = ", ".join(sorted(s.jobs)) or "none"
                yield (f"worker_queues: queue {name!r}: jobs: {job!r} is not a job of the jobs key (jobs: {known}); "
                       "add it to jobs or remove it from the queue")


@rule("worker_queues", "project_name", "stage")
def _queue_role_names(s: Settings) -> Iterable[str | None]:
    for name, queue in s.worker_queues.items():
        role = f"{s.project_name}-{s.stage}-worker-{name}"
        if queue.is_team and len(role) > ROLE_NAME_MAX:
            yield (f"worker_queues: queue {name!r}: its task role {role} would be {len(role)} characters, over IAM's "
                   f"{ROLE_NAME_MAX}; shorten the queue name (or project_name)")


def _size_rule(component: str) -> None:
    cpu, memory = f"{component}_cpu", f"{component}_memory_mib"

    @rule(cpu, memory)
    def size(s: Settings) -> Iterable[str | None]:
        found = fargate_size_error(getattr(s, cpu), getattr(s, memory))
        if found:
            yield f"{cpu}/{memory}: {found} (Fargate task sizes: {FARGATE_SIZES_URL})"


for _component in ("worker", "scheduler", "api_server", "dag_processor", "triggerer"):
    _size_rule(_component)


@rule("ui_allowed_cidrs", "ui_private_only", "stage")
def _ui_cidrs(s: Settings) -> Iterable[str | None]:
    cidrs = s.ui_allowed_cidrs
    if cidrs is not None and not cidrs:
        yield ("ui_allowed_cidrs is empty: give the IPv4 CIDRs that may reach the UI, e.g. 203.0.113.0/24, "
               "or leave the key out")
    for cidr in cidrs or ():
        yield _cidr_problem("ui_allowed_cidrs", cidr)
    if cidrs and len(cidrs) > MAX_UI_CIDRS:
        yield (f"ui_allowed_cidrs: {len(cidrs)} CIDRs need {len(cidrs) * RULES_PER_UI_CIDR} inbound rules of the "
               f"load balancer's security group, which holds {SECURITY_GROUP_INBOUND_RULES}; give at most "
               f"{MAX_UI_CIDRS} (merge neighbouring ranges into a wider prefix)")
    if cidrs and len(set(cidrs)) != len(cidrs):
        yield "ui_allowed_cidrs: a CIDR is listed twice; list each once"
    if s.stage == "prod" and cidrs is None and not s.ui_private_only:
        yield ("ui_allowed_cidrs: prod admits nobody by default; give the IPv4 CIDRs that may reach the UI "
               "(e.g. -c ui_allowed_cidrs=203.0.113.0/24, or 0.0.0.0/0 for anyone), or set ui_private_only=true")


@rule("domain_name", "hosted_zone_id", "hosted_zone_name", "certificate_arn", "region", "stage", "ui_private_only")
def _https(s: Settings) -> Iterable[str | None]:
    domain, zone_id, zone_name, certificate = s.domain_name, s.hosted_zone_id, s.hosted_zone_name, s.certificate_arn
    if domain is None:
        if certificate is not None:
            yield ("certificate_arn: set domain_name (with hosted_zone_id and hosted_zone_name) too; a certificate "
                   "cannot cover the load balancer's own *.elb.amazonaws.com name, so HTTPS needs a domain of yours "
                   "pointing at it")
        if zone_id is not None or zone_name is not None:
            yield "hosted_zone_id/hosted_zone_name: set domain_name too, the UI's name inside that zone"
        if s.stage == "prod" and not s.ui_private_only:
            yield ("domain_name: prod serves the UI over HTTPS only; set domain_name, hosted_zone_id and "
                   "hosted_zone_name (a Route 53 public hosted zone; the app issues the certificate), or set "
                   "ui_private_only=true to serve it on an internal load balancer reachable only from the VPC")
        return
    if zone_id is None or zone_name is None:
        yield ("domain_name: set hosted_zone_id and hosted_zone_name of the Route 53 public hosted zone that holds "
               "it (aws route53 list-hosted-zones-by-name --dns-name <zone>); the app validates the certificate and "
               "adds the alias record there")
    if zone_name is not None and domain != zone_name and not domain.endswith("." + zone_name):
        yield (f"hosted_zone_name={zone_name!r} does not end domain_name={domain!r}: use the zone that holds the "
               "domain (its own name or a parent, e.g. example.com for airflow.example.com)")
    if certificate is not None and s.region is not None and certificate.split(":")[3] != s.region:
        cert_region = certificate.split(":")[3]
        yield (f"certificate_arn is in {cert_region}, the stacks deploy to {s.region}: a load balancer uses "
               f"certificates of its own region only; request or import the certificate in {s.region}, or leave "
               "certificate_arn unset to have the app issue one")


@rule("sso_issuer_url", "sso_client_id", "sso_client_secret", "sso_groups_to_roles", "sso_groups_claim", "sso_scopes",
      "sso_local_admin_login", "domain_name")
def _sso(s: Settings) -> Iterable[str | None]:
    others = ("sso_client_id", "sso_client_secret", "sso_groups_to_roles", "sso_groups_claim", "sso_scopes",
              "sso_local_admin_login")
    if s.sso_issuer_url is None:
        for key in others:
            if key in s.model_fields_set:
                yield (f"{key}: set sso_issuer_url too (single sign-on is off without it), or leave {key} out; the "
                       "local admin login is then the way in")
        return
    if s.sso_client_id is None:
        yield ("sso_client_id: with sso_issuer_url give the client (application) ID the identity provider gave "
               "Airflow, e.g. -c sso_client_id=0oa1b2c3d4 (README, \"Single sign-on\")")
    if s.sso_client_secret is None:
        yield ("sso_client_secret: with sso_issuer_url give the name or ARN of the Secrets Manager secret holding the "
               "client secret, e.g. aws secretsmanager create-secret --name airflow/sso-client-secret "
               "--secret-string <secret>, then -c sso_client_secret=airflow/sso-client-secret")
    if not s.sso_groups_to_roles:
        yield (f"sso_groups_to_roles: with sso_issuer_url map at least one group to an Airflow role, e.g. "
               f"-c 'sso_groups_to_roles={GROUPS_EXAMPLE}'; without it nobody could sign in")
    if "openid" not in s.sso_scopes.split():
        yield f"sso_scopes={s.sso_scopes!r}: add openid (OpenID Connect returns no ID token without it)"
    if s.domain_name is None:
        yield ("sso_issuer_url: set domain_name (with hosted_zone_id and hosted_zone_name) too: the identity provider "
               "sends users back to https://<domain_name>/auth/oauth-authorized/oidc, and providers accept only https "
               "redirect URIs")


# ECS Exec bind-mounts the SSM agent into the container, and the agent creates directories and
# files on the container's filesystem at start (under /var/lib/amazon/ssm, /var/log/amazon and
# elsewhere, not a documented contract); AWS's ECS Exec considerations state that a read-only
# root filesystem is not supported. Volumes at guessed paths would break silently when the agent
# changes, so the combination is refused.
@rule("enable_ecs_exec", "read_only_root_filesystem")
def _ecs_exec(s: Settings) -> Iterable[str | None]:
    if s.enable_ecs_exec and s.read_only_root_filesystem:
        yield ("enable_ecs_exec: ECS Exec does not work with a read-only root filesystem (the SSM agent it injects "
               "writes to the container's filesystem); also set read_only_root_filesystem=false while you need "
               "exec (-c enable_ecs_exec=true -c read_only_root_filesystem=false), and turn both back when done")


@rule("office_hours_scope", "office_hours_start", "office_hours_stop")
def _office_hours(s: Settings) -> Iterable[str | None]:
    if s.office_hours_scope == "none":
        return
    try:
        awake_hours_per_week([s.office_hours_start], [s.office_hours_stop])
    except CronError as err:
        yield f"office_hours_start/office_hours_stop: {err}; give a start and a stop that each fire, at different minutes"


@rule("api_server_scale_on", "api_server_count", "api_server_min_count", "api_server_max_count")
def _api_server_scaling(s: Settings) -> Iterable[str | None]:
    if s.api_server_scale_on == "none":
        return
    low = s.api_server_min_count or s.api_server_count
    high = s.api_server_max_count or max(4, low)
    if low > high:
        yield (f"api_server_min_count={low} is greater than api_server_max_count={high}; raise "
               "api_server_max_count or lower api_server_min_count")
