"""Build a :class:`~app_config.model.DeploymentConfig` from the CDK context.

Every key is a flat ``snake_case`` name so that ``cdk synth -c nat_gateways=0`` works; values
from ``-c`` arrive as strings, values from ``cdk.json`` keep their JSON type. The keys, their
types, limits, defaults and stage presets are declared once in :mod:`app_config.settings`; this
module reads the context (unknown keys in any spelling are refused, with "did you mean"), turns
pydantic's errors into one sentence per bad key, and shapes the result for the stacks. All
problems are raised together as one :class:`~app_config.model.ConfigError`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from app_config.fields import show
from app_config.jobs import JOB_FIELDS, JOBS_DIR, QUEUE_FIELDS, JobSpec, QueueSpec
from app_config.model import (
    ApiServerAutoScalingConfig,
    ConfigError,
    DatabaseConfig,
    DeploymentConfig,
    ExecutorConfig,
    ExistingVpcConfig,
    GitBundleConfig,
    ImageConfig,
    IngressConfig,
    JobConfig,
    MonitoringConfig,
    NetworkConfig,
    OfficeHoursConfig,
    ServicesConfig,
    SsoConfig,
    TaskSize,
    WorkerQueue,
)
from app_config.settings import IMAGE_AIRFLOW_VERSION, MAX_AZS, Settings

#: Context keys of the CDK CLI itself that have neither ``@`` nor ``:`` in their name.
CDK_CLI_KEYS = frozenset({"acknowledged-issue-numbers", "cli-telemetry"})
KEYS = tuple(Settings.model_fields)
_EMPTY_HINTS = {
    "jobs": "; for no job write jobs={}",
    "ui_allowed_cidrs": "; give the IPv4 CIDRs that may reach the UI, e.g. 203.0.113.0/24",
    "worker_queues": "; for no queue write worker_queues={}",
}
_WHOLE = "expected a whole number, e.g. -c {key}=2"
_TYPE_ERRORS = {
    **dict.fromkeys(("int_parsing", "int_type", "int_from_float", "int_parsing_size"), _WHOLE),
    **dict.fromkeys(("bool_parsing", "bool_type"), "expected true or false, e.g. -c {key}=true"),
    "string_type": "expected text",
    **dict.fromkeys(("tuple_type", "list_type"), "expected a list or comma-separated text"),
    **dict.fromkeys(("dict_type", "model_type", "model_attributes_type"), "expected an object"),
}


def is_cdk_key(key: str) -> bool:
    """Whether ``key`` belongs to CDK: feature flags (``@aws-cdk/...``), lookups
    (``availability-zones:account=...``), ``aws:cdk:...`` and the CLI's own keys."""
    return key.startswith(("@", "$")) or ":" in key or key in CDK_CLI_KEYS


def _unknown(key: str) -> str:
    normal = re.sub(r"[\s-]+", "_", key.strip()).lower()
    if normal in KEYS:
        return f"{key}: unknown configuration key; did you mean {normal}? (keys are lowercase with underscores)"
    close = difflib.get_close_matches(normal, KEYS, n=1)
    hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(sorted(KEYS))}"
    return f"{key}: unknown configuration key; {hint}"


def read_context(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The app's keys of ``raw`` and the problems of the others: unknown keys in any spelling,
    empty values (``-c jobs=`` would otherwise mean the default, not "none")."""
    values, found = {}, []
    for key, value in raw.items():
        if is_cdk_key(key):
            continue
        if key not in KEYS:
            found.append(_unknown(key))
        elif value is None or (isinstance(value, str) and not value.strip()):
            found.append(f"{key} is empty: leave the key out for its default{_EMPTY_HINTS.get(key, '')}")
        else:
            values[key] = value
    return values, found


def _field_extra(loc: tuple) -> dict:
    """The declared extras (``problem``) of the field at ``loc``, a key or a job's/queue's setting."""
    nested: dict[str, type[BaseModel]] = {"jobs": JobSpec, "worker_queues": QueueSpec}
    if len(loc) == 3 and loc[0] in nested:
        field = nested[loc[0]].model_fields.get(str(loc[2]))
    else:
        field = Settings.model_fields.get(str(loc[0])) if len(loc) == 1 else None
    return (field.json_schema_extra or {}) if field is not None and isinstance(field.json_schema_extra, dict) else {}


def _where(loc: tuple) -> str:
    """``jobs.<name>.<setting>`` or ``worker_queues: queue '<name>': <setting>``, else the key."""
    top, *rest = [str(part) for part in loc if part != "[key]"] or ["configuration"]
    if top == "worker_queues" and rest:
        return f"worker_queues: queue {rest[0]!r}" + "".join(f": {part}" for part in rest[1:])
    return ".".join([top, *rest])


def _sentences(error: ErrorDetails) -> list[str]:
    """One sentence per problem pydantic found, naming the key and the fix."""
    loc, kind, value = error["loc"], error["type"], error.get("input")
    if kind == "config":
        return error["ctx"].get("problems") or [error["ctx"]["problem"]]
    where = _where(loc)
    if kind == "extra_forbidden":
        names = JOB_FIELDS if loc[0] == "jobs" else QUEUE_FIELDS
        return [f"{where}: unknown {'job' if loc[0] == 'jobs' else 'queue'} setting; use {', '.join(names)}"]
    if kind == "missing" and loc[0] == "worker_queues":
        return [f"worker_queues: queue {loc[1]!r} needs cpu and memory_mib; e.g. -c 'worker_queues="
                '{"large": {"cpu": 2048, "memory_mib": 8192}}\'']
    hint = _TYPE_ERRORS.get(kind) or (_WHOLE if kind == "value_error" and loc else None)
    template = _field_extra(loc).get("problem")
    if hint is None and template:
        return [template.format(key=where if len(loc) == 1 else f"{_where(loc[:2])}: {loc[-1]}",
                                value=show(_typed(loc, value)))]
    if hint and len(loc) > 1:  # a job's or queue's setting: no -c example for it alone
        hint = hint.split(", e.g.")[0]
    return [f"{where}={show(value)}: " + (hint.format(key=where) if hint else error["msg"])]


def _typed(loc: tuple, value: Any) -> Any:
    """A ``-c`` string shown as the number it was read as, for keys that hold numbers."""
    field = Settings.model_fields.get(str(loc[0])) if len(loc) == 1 else None
    number = field is not None and int in (field.annotation, *get_args(field.annotation))
    if number and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value


def validate(raw: Mapping[str, Any], jobs_dir: Path = JOBS_DIR) -> Settings:
    """Validate the context into :class:`~app_config.settings.Settings`.

    Every key's problem is reported, then every rule between keys that reads only valid keys
    (validated a second time without the refused keys, so no rule reports a consequence).

    :raises ConfigError: listing every problem.
    """
    values, found = read_context(raw)
    try:
        settings = Settings.model_validate(values, context={"jobs_dir": jobs_dir})
    except ValidationError as err:
        errors = err.errors()
        found += [s for e in errors for s in _sentences(e)]
        refused = frozenset(str(e["loc"][0]) for e in errors if e["loc"])
        if refused:
            try:
                Settings.model_validate({k: v for k, v in values.items() if k not in refused},
                                        context={"jobs_dir": jobs_dir, "refused": refused})
            except ValidationError as second:
                found += [s for e in second.errors() if not e["loc"] for s in _sentences(e)]
        raise ConfigError(found) from None
    if found:
        raise ConfigError(found)
    return settings


def load_config(raw: Mapping[str, Any], jobs_dir: Path = JOBS_DIR) -> DeploymentConfig:
    """Build and validate the deployment configuration.

    :param raw: the CDK context as a mapping of key to value (``cdk.json`` values keep their JSON
        type; ``-c key=value`` values are strings). Keys of CDK (``@aws-cdk/...``, lookups with
        ``:``) are ignored; any other key not of this app is refused, in any spelling.
    :param jobs_dir: where the directories of the ``jobs`` key are looked up (``jobs/``).
    :returns: the frozen configuration.
    :raises ConfigError: listing every bad key with what is wrong and how to fix it.
    """
    return to_config(validate(raw, jobs_dir))


def _size(s: Settings, component: str) -> TaskSize:
    return TaskSize(getattr(s, f"{component}_cpu"), getattr(s, f"{component}_memory_mib"))


def _network(s: Settings) -> NetworkConfig:
    if s.vpc_id is None:
        return NetworkConfig(s.vpc_cidr, MAX_AZS, s.nat_gateways, s.availability_zones, s.task_public_ip)
    existing = ExistingVpcConfig(
        s.vpc_id, s.private_subnet_ids, s.public_subnet_ids, s.private_subnet_cidrs, s.public_subnet_cidrs
    )
    return NetworkConfig(s.vpc_cidr, MAX_AZS, 0, s.availability_zones, s.task_public_ip, existing)


def to_config(s: Settings) -> DeploymentConfig:
    """The validated keys in the shape the stacks read."""
    autoscaling = None
    if s.api_server_scale_on != "none":
        low = s.api_server_min_count or s.api_server_count
        autoscaling = ApiServerAutoScalingConfig(
            s.api_server_scale_on, low, s.api_server_max_count or max(4, low),
            s.api_server_target_cpu_percent, s.api_server_target_requests_per_task,
        )
    office_hours = None
    if s.office_hours_scope != "none":
        office_hours = OfficeHoursConfig(
            s.office_hours_scope, s.office_hours_start, s.office_hours_stop, s.office_hours_timezone
        )
    sso = None
    if s.sso_issuer_url is not None:
        sso = SsoConfig(
            s.sso_issuer_url, s.sso_client_id or "", s.sso_client_secret or "",
            tuple(sorted(s.sso_groups_to_roles.items())), s.sso_groups_claim, s.sso_scopes, s.sso_local_admin_login,
        )
    return DeploymentConfig(
        project_name=s.project_name,
        stage=s.stage,
        account=s.account,
        region=s.region,
        retain_data=s.retain_data,
        log_retention_days=s.log_retention_days,
        dag_bundle=s.dag_bundle,
        git_bundle=GitBundleConfig(s.dag_bundle_git_url, s.dag_bundle_git_branch, s.dag_bundle_git_refresh_seconds,
                                   s.dag_bundle_git_secret) if s.dag_bundle == "git" and s.dag_bundle_git_url else None,
        secrets_backend=s.secrets_backend,
        enable_ecs_exec=s.enable_ecs_exec,
        read_only_root_filesystem=s.read_only_root_filesystem,
        admin_username=s.admin_username,
        network=_network(s),
        database=DatabaseConfig(
            s.db_instance_type.removeprefix("db."), s.db_allocated_storage_gib, s.db_max_allocated_storage_gib,
            s.db_multi_az, s.db_backup_retention_days,
        ),
        image=ImageConfig(s.image_uri, s.image_tag,
                          pip_index_file=str(Path(s.pip_index_file).expanduser()) if s.pip_index_file else None,
                          build_args={} if s.airflow_version == IMAGE_AIRFLOW_VERSION else {"AIRFLOW_VERSION": s.airflow_version}),
        executor=ExecutorConfig(
            s.executor_class, s.worker_container_name, _size(s, "worker"), s.worker_capacity_provider,
            s.spot_fallback_to_on_demand,
            tuple(WorkerQueue(name, TaskSize(q.cpu, q.memory_mib), q.capacity_provider, q.s3_prefixes,
                              q.secrets_prefixes, q.managed_policy_arns, q.jobs)
                  for name, q in s.worker_queues.items()),
        ),
        services=ServicesConfig(
            s.scheduler_count, s.api_server_count, _size(s, "scheduler"), _size(s, "api_server"),
            _size(s, "dag_processor"), _size(s, "triggerer"), s.services_capacity_provider,
        ),
        ingress=IngressConfig(
            s.ui_cidrs, s.certificate_arn, s.ui_private_only, s.domain_name, s.hosted_zone_id, s.hosted_zone_name,
            s.login_rate_limit,
        ),
        jobs=tuple(
            JobConfig(name, TaskSize(j.cpu, j.memory_mib), j.s3_read_prefixes, j.s3_write_prefixes)
            for name, j in sorted(s.jobs.items())
        ),
        office_hours=office_hours,
        api_server_autoscaling=autoscaling,
        monitoring=MonitoringConfig(s.alarm_email, s.airflow_metrics, s.dashboard, s.container_insights),
        sso=sso,
    )
