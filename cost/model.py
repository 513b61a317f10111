"""The monthly cost of a deployment, computed from its synthesized templates and a price table.

What is priced, per resource found in the templates (CloudFormation types in brackets):

- Fargate services [AWS::ECS::Service + AWS::ECS::TaskDefinition]: desired count x (vCPU x
  vCPU-hour + GB x GB-hour) at the task's architecture and capacity provider (a weighted
  strategy is split by weight), plus a public IPv4 address per task when the service assigns one;
- worker tasks [the task definition no service runs, other than the ECS jobs' that the
  ``AIRFLOW_VAR_ECS_JOB_*`` variables name, which run only when a DAG starts one]: the stated workload of worker
  task-minutes a day at that size, on the capacity provider the scheduler's executor settings
  name, plus a public IPv4 address while they run when the executor assigns one;
- RDS [AWS::RDS::DBInstance]: instance-hours of the class (x2 Multi-AZ) and gp3 storage;
- office hours [scheduled actions of AWS::ApplicationAutoScaling::ScalableTarget, and
  AWS::Scheduler::Schedule targets rds:stopDBInstance / startDBInstance]: a service's task-hours
  and task public IPv4 addresses, and the DB instance-hours, count only the hours a week they are
  awake (``cost/office_hours.py`` says how they are counted); storage, the load balancer and the
  rest are billed always. Every item also carries its always-on figure (no office hours);
- NAT gateways [AWS::EC2::NatGateway] hourly plus processed data; Elastic IPs [AWS::EC2::EIP] as
  public IPv4 addresses;
- load balancers [AWS::ElasticLoadBalancingV2::LoadBalancer]: hourly, LCUs, and one public IPv4
  address per subnet when internet-facing;
- interface endpoints [AWS::EC2::VPCEndpoint, type Interface]: per AZ-hour plus processed data;
- AWS WAF web ACLs [AWS::WAFv2::WebACL]: the web ACL, each of its rules, and the requests it
  inspects (every request the load balancer receives);
- secrets [AWS::SecretsManager::Secret], KMS keys [AWS::KMS::Key], Cloud Map [private DNS
  namespace = a hosted zone; registered instances = desired tasks of registering services];
- CloudWatch: log ingestion [AWS::Logs::LogGroup receivers], Container Insights metrics,
  the Airflow metrics allow-listed in the scheduler's environment, alarms, dashboards;
- ECR storage (assumed image size).

Units: money in USD per month, a month is 730 hours (AWS's pricing convention) and 365/12 days.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from cost.office_hours import read_schedules
from cost.prices import CostError, PriceTable

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 365.0 / 12.0


@dataclass(frozen=True)
class Assumptions:
    """What the templates cannot say, stated and printed with every report.

    :param worker_task_minutes_per_day: the workload: worker task-minutes a day at the worker size.
    :param alb_lcu: average load balancer capacity units (LCU) in use (a small team's UI).
    :param log_gb_per_service_task: CloudWatch Logs ingested per always-on task, GB per month.
    :param flow_log_gb: VPC flow logs ingested, GB per month.
    :param log_mb_per_worker_minute: worker log output, MB per worker task-minute.
    :param nat_gb: data through the NAT gateways, GB per month (image layers come through the
        free S3 gateway endpoint).
    :param endpoint_gb: data through the interface endpoints, GB per month (all endpoints).
    :param ui_million_requests: requests the UI load balancer receives, millions per month (a
        web ACL inspects each; a small team's UI and REST API clients).
    :param ecr_image_gb: image storage in ECR, GB.
    :param container_insights_cluster_metrics: Container Insights metrics per cluster.
    :param container_insights_service_metrics: Container Insights metrics per service.
    :param container_insights_gb_per_task: Container Insights performance events per always-on
        task, GB per month.
    :param awake_hours_per_week: an override of the office hours the templates schedule: hours
        a week every service and the DB instance run (168 = always on), or None to read each
        resource's start/stop schedules from the templates (no schedule = always on). Their
        task-hours, task public IPs and DB instance-hours scale by the awake share of the week;
        storage, load balancer, NAT and the rest do not.
    """

    worker_task_minutes_per_day: float = 600.0
    alb_lcu: float = 0.1
    log_gb_per_service_task: float = 0.5
    flow_log_gb: float = 1.0
    log_mb_per_worker_minute: float = 0.2
    nat_gb: float = 3.0
    endpoint_gb: float = 3.0
    ui_million_requests: float = 1.0
    ecr_image_gb: float = 2.0
    container_insights_cluster_metrics: int = 8
    container_insights_service_metrics: int = 11
    container_insights_gb_per_task: float = 0.1
    awake_hours_per_week: float | None = None


@dataclass(frozen=True)
class Item:
    """One priced line of the report.

    :param resource: what is priced, e.g. ``Fargate service Scheduler``.
    :param stack: the stack it was found in.
    :param quantity: how much, in ``unit``.
    :param idle_usd: USD per month with the deployment idle and always on.
    :param workload_usd: USD per month under the stated workload (idle included).
    :param detail: how the figure was computed.
    :param always_on_usd: USD per month idle without office hours; None = ``idle_usd``.
    """

    resource: str
    stack: str
    quantity: float
    unit: str
    idle_usd: float
    workload_usd: float
    detail: str
    always_on_usd: float | None = None

    @property
    def idle_always_on_usd(self) -> float:
        return self.idle_usd if self.always_on_usd is None else self.always_on_usd


@dataclass
class Report:
    """The cost of one configuration.

    :ivar items: priced lines.
    :ivar region: pricing region.
    :ivar prices_date: date of the price table.
    """

    region: str
    prices_date: str
    assumptions: Assumptions
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def idle_usd(self) -> float:
        return round(sum(i.idle_usd for i in self.items), 2)

    @property
    def workload_usd(self) -> float:
        return round(sum(i.workload_usd for i in self.items), 2)

    @property
    def idle_always_on_usd(self) -> float:
        """USD per month idle with every service and the DB running all week (no office hours)."""
        return round(sum(i.idle_always_on_usd for i in self.items), 2)

    def to_json(self) -> dict:
        """The ``--json`` shape: ``{"monthly_usd": {"idle", "workload", "idle_always_on"},
        "items": [...], "prices_date", "region", "assumptions", "notes"}``."""
        return {
            "monthly_usd": {"idle": self.idle_usd, "workload": self.workload_usd,
                            "idle_always_on": self.idle_always_on_usd},
            "items": [
                {**asdict(i), "idle_usd": round(i.idle_usd, 2), "workload_usd": round(i.workload_usd, 2),
                 "always_on_usd": round(i.idle_always_on_usd, 2)}
                for i in self.items
            ],
            "prices_date": self.prices_date,
            "region": self.region,
            "assumptions": asdict(self.assumptions),
            "notes": list(self.notes),
        }


def _resources(templates: dict[str, dict], type_: str) -> Iterator[tuple[str, str, dict]]:
    for stack, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            if resource.get("Type") == type_:
                yield stack, logical_id, resource.get("Properties", {})


def _construct_name(logical_id: str) -> str:
    """``SchedulerService1A2B3C4D`` -> ``Scheduler`` (drops CDK's hash and role suffixes)."""
    name = logical_id[:-8] if len(logical_id) > 8 and all(c in "0123456789ABCDEF" for c in logical_id[-8:]) else logical_id
    for suffix in ("ServiceService", "Service", "TaskDefinition"):
        if name.endswith(suffix) and name != suffix:
            return name[: -len(suffix)]
    return name


def fargate_hourly(prices: PriceTable, cpu_units: int, memory_mib: int, arch: str, provider: str) -> float:
    """USD per hour of one Fargate task.

    :param cpu_units: vCPU units (1024 = 1 vCPU).
    :param memory_mib: MiB (1024 MiB = 1 GB in Fargate's pricing).
    :param arch: ``X86_64`` or ``ARM64``.
    :param provider: ``FARGATE`` or ``FARGATE_SPOT``.
    :raises CostError: when the table has no price for that architecture and provider.
    """
    tier = "spot" if provider == "FARGATE_SPOT" else "on_demand"
    a = "arm64" if arch.upper() == "ARM64" else "x86_64"
    return cpu_units / 1024 * prices.usd(f"fargate.{tier}.{a}.vcpu_hour") + memory_mib / 1024 * prices.usd(
        f"fargate.{tier}.{a}.gb_hour"
    )


def _strategy_shares(props: dict) -> dict[str, float]:
    strategy = props.get("CapacityProviderStrategy")
    if strategy:
        total = sum(float(s.get("Weight", 0) or 0) for s in strategy) or 1.0
        shares = {s["CapacityProvider"]: float(s.get("Weight", 0) or 0) / total for s in strategy}
        if not any(shares.values()):
            shares = {strategy[0]["CapacityProvider"]: 1.0}
        return shares
    return {"FARGATE_SPOT" if props.get("LaunchType") == "FARGATE_SPOT" else "FARGATE": 1.0}


def _task_definitions(templates: dict[str, dict]) -> dict[tuple[str, str], dict]:
    return {(s, lid): p for s, lid, p in _resources(templates, "AWS::ECS::TaskDefinition")}


def _environment(task_definition: dict) -> dict[str, object]:
    env = {}
    for container in task_definition.get("ContainerDefinitions", []):
        for pair in container.get("Environment", []) or []:
            env[pair["Name"]] = pair.get("Value")
    return env


def _shares_text(shares: dict[str, float]) -> str:
    return " + ".join(f"{p} {w:.0%}" for p, w in shares.items())


def _web_acl_items(templates: dict[str, dict], prices: PriceTable, a: Assumptions) -> list[Item]:
    """One item per AWS WAF web ACL: the web ACL, its rules, the requests it inspects (USD/month).

    :raises CostError: when the table has no AWS WAF price.
    """
    items = []
    for stack, lid, props in _resources(templates, "AWS::WAFv2::WebACL"):
        rules = len(props.get("Rules") or [])
        acl, rule, requests = (prices.usd("waf.web_acl_month"), prices.usd("waf.rule_month"),
                               prices.usd("waf.million_requests"))
        cost = acl + rules * rule + a.ui_million_requests * requests
        items.append(Item(f"AWS WAF web ACL {_construct_name(lid)}", stack, 1, "web ACL", cost, cost,
                          f"${acl}/month + {rules} rules x ${rule}/month + {a.ui_million_requests:g} million "
                          f"requests x ${requests}/million"))
    return items


def _worker_task_definitions(task_defs: dict, used: set, scheduler_env: dict | None) -> tuple[set[str], list]:
    """The ECS jobs' families (from the ``AIRFLOW_VAR_ECS_JOB_*`` variables of any task definition:
    ``{"task_definition": family, ...}``) and the worker task definitions to price: those no
    service runs and no job family names; of them, the revision the scheduler names when it names
    one (constructs_lib/workers.py), not also the Cluster stack's transitional revision of the same
    family, nor the team queues' (``worker_queues``), whose tasks are part of the same stated
    worker workload."""
    job_vars = [v for td in task_defs.values() for k, v in _environment(td).items() if k.startswith("AIRFLOW_VAR_ECS_JOB_")]
    job_families = set(re.findall(r'\\"task_definition\\":\s*\\"([^"\\]+)', json.dumps(job_vars)))
    workers = [(k, td) for k, td in task_defs.items() if k not in used and td.get("Family") not in job_families]
    named = (scheduler_env or {}).get("AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION")
    if isinstance(named, dict) and "Ref" in named:
        workers = [(k, td) for k, td in workers if k[1] == named["Ref"]] or workers
    return job_families, workers


@dataclass
class _Pricing:
    """One pricing pass over ``templates``: what its steps share (the report they add items to,
    the office-hours schedules, and what the services step learns for the later steps)."""

    templates: dict[str, dict]
    prices: PriceTable
    a: Assumptions
    report: Report
    schedules: dict = field(default_factory=dict)
    #: the office-hours notes, one per scheduled resource
    asleep: list[str] = field(default_factory=list)
    task_defs: dict[tuple[str, str], dict] = field(default_factory=dict)
    #: task definitions a service runs
    used: set[tuple[str, str]] = field(default_factory=set)
    service_tasks: int = 0
    #: task-hours a month the services run (office hours counted)
    service_task_hours: float = 0.0
    scheduler_awake: float = HOURS_PER_MONTH
    services: int = 0
    scheduler_env: dict[str, object] = field(default_factory=dict)
    services_stack: str = ""
    cloud_map_instances: int = 0

    @property
    def items(self) -> list[Item]:
        return self.report.items

    @property
    def ip_hour(self) -> float:
        return self.prices.usd("ec2.public_ipv4.hour")

    def awake_hours(self, stack: str, lid: str, label: str) -> float:
        """Hours a month ``lid`` runs: the override, else its schedule, else all month."""
        if self.a.awake_hours_per_week is not None:
            weekly = self.a.awake_hours_per_week
        elif (stack, lid) in self.schedules:
            schedule = self.schedules[(stack, lid)]
            weekly = schedule.awake_hours_per_week
            self.asleep.append(f"{label}: {schedule.describe()} = {weekly:g} h a week")
        else:
            weekly = 168.0
        return HOURS_PER_MONTH * weekly / 168.0


def _price_services(p: _Pricing) -> None:
    """Fargate services: their tasks, public IPv4 addresses, and what later steps need of them."""
    prices, h, ip_hour = p.prices, HOURS_PER_MONTH, p.ip_hour
    for stack, lid, props in _resources(p.templates, "AWS::ECS::Service"):
        ref = props.get("TaskDefinition", {})
        ref_id = ref.get("Ref") if isinstance(ref, dict) else None
        td = p.task_defs.get((stack, str(ref_id))) if ref_id else None
        if td is None:
            raise CostError(f"{stack}/{lid}: cannot find its task definition ({ref!r}) in the same template")
        p.used.add((stack, str(ref_id)))
        count = int(props.get("DesiredCount", 1))
        cpu, mem = int(td["Cpu"]), int(td["Memory"])
        arch = (td.get("RuntimePlatform") or {}).get("CpuArchitecture", "X86_64")
        shares = _strategy_shares(props)
        hourly = sum(w * fargate_hourly(prices, cpu, mem, arch, provider) for provider, w in shares.items())
        name = _construct_name(lid)
        awake = p.awake_hours(stack, lid, f"service {name}")
        monthly = count * hourly * awake
        p.items.append(Item(
            f"Fargate service {name}", stack, count, "tasks", monthly, monthly,
            f"{count} x {cpu / 1024:g} vCPU / {mem / 1024:g} GB {arch} on {_shares_text(shares)} "
            f"= ${hourly:.5f}/task-hour x {awake:.1f} h",
            count * hourly * h,
        ))
        awsvpc = (props.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
        if awsvpc.get("AssignPublicIp") == "ENABLED":
            ip = count * ip_hour * awake
            p.items.append(Item(f"Public IPv4 of {name}", stack, count, "addresses", ip, ip,
                                f"{count} x ${ip_hour}/h x {awake:.1f} h", count * ip_hour * h))
        p.service_tasks += count
        p.service_task_hours += count * awake
        p.services += 1
        p.services_stack = stack
        if props.get("ServiceRegistries"):
            p.cloud_map_instances += count
        env = _environment(td)
        if "AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER" in env:
            p.scheduler_env = env
            p.scheduler_awake = awake


def _price_workers(p: _Pricing) -> None:
    """The worker tasks: the stated workload at the worker size, on the executor's capacity providers."""
    prices, a, ip_hour, scheduler_env = p.prices, p.a, p.ip_hour, p.scheduler_env
    # ECS jobs (AIRFLOW_VAR_ECS_JOB_* of any task definition: {"task_definition": family, ...}) run
    # only when a DAG starts one; they are not the worker workload
    # (a list: the Airflow stack's worker task definitions and the Cluster stack's transitional one hold them)
    job_families, workers = _worker_task_definitions(p.task_defs, p.used, scheduler_env)
    if job_families:
        p.report.notes.append(f"ECS jobs ({', '.join(sorted(job_families))}) run only when a DAG starts one: "
                              "not priced in the workload.")
    minutes = a.worker_task_minutes_per_day * DAYS_PER_MONTH
    for (stack, lid), td in workers:
        cpu, mem = int(td["Cpu"]), int(td["Memory"])
        arch = (td.get("RuntimePlatform") or {}).get("CpuArchitecture", "X86_64")
        strategy = scheduler_env.get("AIRFLOW__AWS_ECS_EXECUTOR__CAPACITY_PROVIDER_STRATEGY")
        if isinstance(strategy, str):
            shares = _strategy_shares({"CapacityProviderStrategy": [
                {"CapacityProvider": s["capacityProvider"], "Weight": s.get("weight", 1)} for s in json.loads(strategy)
            ]})
        else:
            shares = {str(scheduler_env.get("AIRFLOW__AWS_ECS_EXECUTOR__LAUNCH_TYPE") or "FARGATE"): 1.0}
        hourly = sum(w * fargate_hourly(prices, cpu, mem, arch, provider) for provider, w in shares.items())
        monthly = minutes / 60 * hourly
        p.items.append(Item(
            f"Fargate worker tasks ({_construct_name(lid)})", stack, round(minutes / 60, 1), "task-hours",
            0.0, monthly,
            f"{a.worker_task_minutes_per_day:g} task-min/day x {DAYS_PER_MONTH:.2f} days at "
            f"{cpu / 1024:g} vCPU / {mem / 1024:g} GB {arch} on {_shares_text(shares)} = ${hourly:.5f}/task-hour",
        ))
        if str(scheduler_env.get("AIRFLOW__AWS_ECS_EXECUTOR__ASSIGN_PUBLIC_IP", "False")).lower() == "true":
            ip = minutes / 60 * ip_hour
            p.items.append(Item("Public IPv4 of worker tasks", stack, round(minutes / 60, 1), "address-hours", 0.0, ip,
                                f"one address per running worker x ${ip_hour}/h"))
        log_gb = minutes * a.log_mb_per_worker_minute / 1024
        logs = log_gb * prices.usd("logs.ingestion.gb")
        p.items.append(Item("CloudWatch Logs of worker tasks", stack, round(log_gb, 2), "GB", 0.0, logs,
                            f"{a.log_mb_per_worker_minute:g} MB per task-minute x ${prices.usd('logs.ingestion.gb')}/GB"))


def _price_databases(p: _Pricing) -> None:
    """RDS instances (office hours counted) and their gp3 storage."""
    prices, h = p.prices, HOURS_PER_MONTH
    for stack, lid, props in _resources(p.templates, "AWS::RDS::DBInstance"):
        cls = str(props.get("DBInstanceClass"))
        key = f"rds.postgres.{cls}.hour"
        if not prices.has(key):
            known = sorted(k.split(".", 2)[2].rsplit(".", 1)[0] for k in prices.entries
                           if k.startswith("rds.postgres.db.") and k.endswith(".hour"))
            raise CostError(
                f"db_instance_type={cls.removeprefix('db.')!r}: instance class {cls} has no price in "
                f"cost/prices/{prices.path.name}; use one of {', '.join(c.removeprefix('db.') for c in known)} "
                f"(-c db_instance_type=t4g.micro) or add {key!r} with its source page and date"
            )
        multi = str(props.get("MultiAZ", "false")).lower() == "true"
        factor = prices.usd("rds.postgres.multi_az_factor") if multi else 1.0
        awake = p.awake_hours(stack, lid, f"DB instance {lid}")
        instance = prices.usd(key) * factor * awake
        p.items.append(Item(f"RDS {cls}{' Multi-AZ' if multi else ''}", stack, 1, "instance", instance, instance,
                            f"${prices.usd(key)}/h x {factor:g} x {awake:.1f} h", prices.usd(key) * factor * h))
        storage_type = str(props.get("StorageType", "gp2"))
        if storage_type != "gp3":
            raise CostError(f"{stack}/{lid}: storage type {storage_type} is not priced; the model prices gp3")
        gib = float(props.get("AllocatedStorage", 20))
        skey = f"rds.storage.gp3.{'multi_az' if multi else 'single_az'}.gb_month"
        st = gib * prices.usd(skey)
        p.items.append(Item("RDS gp3 storage", stack, gib, "GB-month", st, st, f"{gib:g} GB x ${prices.usd(skey)}"))


def _price_network(p: _Pricing) -> None:
    """NAT gateways, Elastic IPs, load balancers (and their public addresses), interface endpoints,
    AWS WAF web ACLs."""
    templates, prices, a, h, ip_hour, items = p.templates, p.prices, p.a, HOURS_PER_MONTH, p.ip_hour, p.items
    nat = len(list(_resources(templates, "AWS::EC2::NatGateway")))
    if nat:
        cost = nat * prices.usd("ec2.nat_gateway.hour") * h + a.nat_gb * prices.usd("ec2.nat_gateway.gb")
        nat_stack = next(iter(_resources(templates, "AWS::EC2::NatGateway")))[0]
        items.append(Item("NAT gateways", nat_stack, nat, "gateways", cost, cost,
                          f"{nat} x ${prices.usd('ec2.nat_gateway.hour')}/h x {h:g} h + {a.nat_gb:g} GB processed"))
    eips = list(_resources(templates, "AWS::EC2::EIP"))
    if eips:
        cost = len(eips) * ip_hour * h
        items.append(Item("Public IPv4 (Elastic IPs)", eips[0][0], len(eips), "addresses", cost, cost,
                          f"{len(eips)} x ${ip_hour}/h x {h:g} h"))

    for stack, lid, props in _resources(templates, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
        if props.get("Type", "application") != "application":
            raise CostError(f"{stack}/{lid}: load balancer type {props.get('Type')} is not priced")
        cost = prices.usd("elb.application.hour") * h + a.alb_lcu * prices.usd("elb.application.lcu_hour") * h
        items.append(Item("Application Load Balancer", stack, 1, "load balancer", cost, cost,
                          f"${prices.usd('elb.application.hour')}/h + {a.alb_lcu:g} LCU x "
                          f"${prices.usd('elb.application.lcu_hour')}/h, x {h:g} h"))
        if props.get("Scheme", "internet-facing") == "internet-facing" and props.get("IpAddressType") != "dualstack-without-public-ipv4":
            n = len(props.get("Subnets") or props.get("SubnetMappings") or [])
            cost = n * ip_hour * h
            items.append(Item("Public IPv4 of the load balancer", stack, n, "addresses", cost, cost,
                              f"one per subnet: {n} x ${ip_hour}/h x {h:g} h"))

    endpoints = [(s, props) for s, _, props in _resources(templates, "AWS::EC2::VPCEndpoint")
                 if props.get("VpcEndpointType") == "Interface"]
    if endpoints:
        az_hours = sum(len(props.get("SubnetIds") or []) for _, props in endpoints)
        cost = az_hours * prices.usd("vpc.interface_endpoint.az_hour") * h + a.endpoint_gb * prices.usd("vpc.interface_endpoint.gb")
        items.append(Item("VPC interface endpoints", endpoints[0][0], az_hours, "endpoint-AZs", cost, cost,
                          f"{len(endpoints)} endpoints x AZs = {az_hours} x ${prices.usd('vpc.interface_endpoint.az_hour')}/h "
                          f"x {h:g} h + {a.endpoint_gb:g} GB"))

    items.extend(_web_acl_items(templates, prices, a))


def _price_per_month_resources(p: _Pricing) -> None:
    """What is billed per resource and month: secrets, keys, Cloud Map, alarms, dashboards."""
    templates, prices, items = p.templates, p.prices, p.items

    def count_item(type_: str, label: str, price_key: str, unit: str) -> None:
        found = list(_resources(templates, type_))
        if found:
            cost = len(found) * prices.usd(price_key)
            items.append(Item(label, found[0][0], len(found), unit, cost, cost, f"{len(found)} x ${prices.usd(price_key)}/month"))

    count_item("AWS::SecretsManager::Secret", "Secrets Manager secrets", "secretsmanager.secret_month", "secrets")
    count_item("AWS::KMS::Key", "KMS keys", "kms.key_month", "keys")
    count_item("AWS::ServiceDiscovery::PrivateDnsNamespace", "Cloud Map private DNS namespace (hosted zone)",
               "route53.hosted_zone_month", "hosted zones")
    if p.cloud_map_instances:
        cost = p.cloud_map_instances * prices.usd("cloudmap.instance_month")
        items.append(Item("Cloud Map registered instances", p.services_stack, p.cloud_map_instances, "instances", cost, cost,
                          f"{p.cloud_map_instances} x ${prices.usd('cloudmap.instance_month')}/month"))
    alarms = list(_resources(templates, "AWS::CloudWatch::Alarm"))
    if alarms:
        # billed per metric an alarm evaluates (a metric-math alarm over two metrics counts two)
        alarm_metrics = sum(
            len([q for q in props["Metrics"] if "MetricStat" in q]) if props.get("Metrics") else 1 for _, _, props in alarms
        )
        cost = alarm_metrics * prices.usd("cloudwatch.alarm_month")
        items.append(Item("CloudWatch alarms", alarms[0][0], alarm_metrics, "alarm metrics", cost, cost,
                          f"{len(alarms)} alarms over {alarm_metrics} metrics x ${prices.usd('cloudwatch.alarm_month')}/month"))
    count_item("AWS::CloudWatch::Dashboard", "CloudWatch dashboards", "cloudwatch.dashboard_month", "dashboards")


def _price_observability(p: _Pricing) -> None:
    """CloudWatch Logs of the services and flow logs, Container Insights, the Airflow metrics."""
    templates, prices, a, h, items = p.templates, p.prices, p.a, HOURS_PER_MONTH, p.items
    flow_logs = len(list(_resources(templates, "AWS::EC2::FlowLog")))
    # a service logs only while it runs: its GB scale with its awake share of the month
    log_gb = p.service_task_hours / h * a.log_gb_per_service_task + flow_logs * a.flow_log_gb
    always_gb = p.service_tasks * a.log_gb_per_service_task + flow_logs * a.flow_log_gb
    cost = log_gb * prices.usd("logs.ingestion.gb")
    items.append(Item("CloudWatch Logs (services, flow logs)", "(all)", round(log_gb, 2), "GB", cost, cost,
                      f"{p.service_task_hours / h:.2f} always-on task equivalents x {a.log_gb_per_service_task:g} GB + "
                      f"{flow_logs} flow logs x {a.flow_log_gb:g} GB, x ${prices.usd('logs.ingestion.gb')}/GB",
                      always_gb * prices.usd("logs.ingestion.gb")))

    service_clusters = [json.dumps(props.get("Cluster")) for _, _, props in _resources(templates, "AWS::ECS::Service")]
    for stack, lid, props in _resources(templates, "AWS::ECS::Cluster"):
        settings = {s.get("Name"): s.get("Value") for s in props.get("ClusterSettings") or []}
        if settings.get("containerInsights") in ("enabled", "enhanced") and not any(lid in c for c in service_clusters):
            # a cluster without services (the ECS jobs' cluster): its cluster-level metrics only
            metrics = a.container_insights_cluster_metrics
            cost = metrics * prices.usd("cloudwatch.metric_month")
            items.append(Item("Container Insights (cluster without services)", stack, metrics, "metrics", cost, cost,
                              f"{metrics} cluster metrics x ${prices.usd('cloudwatch.metric_month')}"))
        elif settings.get("containerInsights") in ("enabled", "enhanced"):
            metrics = a.container_insights_cluster_metrics + p.services * a.container_insights_service_metrics
            gb = p.service_tasks * a.container_insights_gb_per_task
            cost = metrics * prices.usd("cloudwatch.metric_month") + gb * prices.usd("logs.ingestion.gb")
            items.append(Item("Container Insights", stack, metrics, "metrics", cost, cost,
                              f"{a.container_insights_cluster_metrics} + {p.services} services x "
                              f"{a.container_insights_service_metrics} metrics x ${prices.usd('cloudwatch.metric_month')} "
                              f"+ {gb:g} GB of performance events"))

    allow = p.scheduler_env.get("AIRFLOW__METRICS__METRICS_ALLOW_LIST")
    if isinstance(allow, str) and str(p.scheduler_env.get("AIRFLOW__METRICS__STATSD_ON", "")).lower() == "true":
        names = [n for n in allow.split(",") if n.strip()]
        # custom metrics are "prorated by the hour and metered only when you send metrics to CloudWatch"
        # (https://aws.amazon.com/cloudwatch/pricing/): the scheduler sends them only while it runs
        full = len(names) * prices.usd("cloudwatch.metric_month")
        cost = full * p.scheduler_awake / h
        items.append(Item("Airflow metrics (CloudWatch custom metrics)", p.services_stack, len(names), "metrics", cost, cost,
                          f"one metric per allow-listed name x ${prices.usd('cloudwatch.metric_month')}, sent "
                          f"{p.scheduler_awake:.1f} of {h:g} h", full))


def _price_images(p: _Pricing) -> None:
    """ECR image storage (the assumed image size)."""
    repositories = list(_resources(p.templates, "AWS::ECR::Repository"))
    if repositories:
        cost = p.a.ecr_image_gb * p.prices.usd("ecr.storage.gb_month")
        p.items.append(Item("ECR image storage", repositories[0][0], p.a.ecr_image_gb, "GB", cost, cost,
                            f"{p.a.ecr_image_gb:g} GB x ${p.prices.usd('ecr.storage.gb_month')}"))


def _add_notes(p: _Pricing) -> None:
    """What is not priced, the month, and the office hours the figures count."""
    report, a, h = p.report, p.a, HOURS_PER_MONTH
    report.notes.extend([
        "Not priced: data transfer out to the internet, S3 storage and requests (task logs, a few MB), "
        "CloudWatch Logs storage after ingestion, RDS backups within the free allowance (the DB's size), "
        "Secrets Manager and KMS API calls, SNS e-mail notifications, free tiers and Savings Plans.",
        f"A month is {h:g} hours and {DAYS_PER_MONTH:.2f} days; idle = every always-on resource, no worker task; "
        f"workload = idle + {a.worker_task_minutes_per_day:g} worker task-minutes a day.",
    ])
    if a.awake_hours_per_week is not None and a.awake_hours_per_week < 168:
        report.notes.append(
            f"Office hours (--awake-hours-per-week): services and the DB instance run {a.awake_hours_per_week:g} "
            f"of 168 hours a week ({h * a.awake_hours_per_week / 168:.0f} h a month); outside them the services "
            "are at zero tasks and the DB is stopped."
        )
    elif p.asleep:
        report.notes.append(
            "Office hours from the templates' schedules (wall-clock hours a week between each start and the "
            "next stop); outside them a service is at zero tasks and the DB instance stopped: " + "; ".join(p.asleep)
        )
    if report.idle_always_on_usd != report.idle_usd:
        report.notes.append(f"Idle, always on (no office hours): ${report.idle_always_on_usd:.2f} a month.")


def compute(templates: dict[str, dict], prices: PriceTable, assumptions: Assumptions = Assumptions()) -> Report:
    """Price every resource of ``templates`` (``{stack name: template}``) with ``prices``.

    The steps run in this order (the report lists its items so): services (which also find the
    scheduler's executor settings the workers and metrics steps read), workers, databases, network,
    per-month resources, observability, images; then the notes.

    :raises CostError: when a resource needs a price the table does not hold (named), or the
        templates hold something the model cannot read (named).
    """
    a = assumptions
    if a.awake_hours_per_week is not None and not 0 < a.awake_hours_per_week <= 168:
        raise CostError("awake_hours_per_week: give 1 to 168 hours a week (168 = always on)")
    p = _Pricing(templates, prices, a, Report(prices.region, prices.prices_date, a),
                 schedules=read_schedules(templates), task_defs=_task_definitions(templates))
    for step in (_price_services, _price_workers, _price_databases, _price_network, _price_per_month_resources,
                 _price_observability, _price_images, _add_notes):
        step(p)
    return p.report
