"""The cost model (``cost/``): figures computed by hand from the price table match the report,
and what cannot be priced is refused with the key and the fix, never a silent zero."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cost.cli import main, parse_context, pricing_region, synth_context
from cost.model import Assumptions, compute
from cost.office_hours import awake_hours_per_week, read_schedules
from cost.prices import PRICES_DIR, CostError, load_prices

US = load_prices("us-east-1")


def _templates(synthesized) -> dict[str, dict]:
    return synthesized.assembly.templates()


def _item(report, resource: str):
    matches = [i for i in report.items if i.resource == resource]
    assert len(matches) == 1, [i.resource for i in report.items]
    return matches[0]


def test_every_price_names_its_source_page_and_date():
    for region in ("us-east-1", "eu-west-1"):
        table = load_prices(region)
        assert table.prices_date == "2026-11-25"
        for key, entry in table.entries.items():
            assert entry["source"].startswith("https://aws.amazon.com/"), key
            # read on the table's date, or later for a price added since (AWS WAF's)
            assert table.prices_date <= entry["date"] <= "2026-12-07", key
            assert entry["usd"] > 0 and entry["unit"], key


def test_lean_stage_line_items_match_a_hand_computation(synth):
    """stage=lean in us-east-1 as configured: every line computed by hand from the table's numbers,
    always on, then with lean's default office hours (Monday-Friday 08:00-18:00 UTC = 50 h a week)."""
    report = compute(_templates(synth("lean")), US, Assumptions(worker_task_minutes_per_day=600))
    h = 730
    spot = lambda vcpu, gb: (vcpu * 0.01334053 + gb * 0.00146489) * h  # noqa: E731
    expected_always_on = {
        "Fargate service Scheduler": spot(0.5, 1),
        "Fargate service ApiServer": spot(0.5, 2),
        "Fargate service DagProcessor": spot(0.25, 1),
        "Fargate service Triggerer": spot(0.25, 0.5),
        # task_public_ip: one public IPv4 address per task instead of a NAT gateway
        "Public IPv4 of Scheduler": 0.005 * h,
        "Public IPv4 of ApiServer": 0.005 * h,
        "Public IPv4 of DagProcessor": 0.005 * h,
        "Public IPv4 of Triggerer": 0.005 * h,
        "RDS db.t4g.micro": 0.016 * h,
        "RDS gp3 storage": 20 * 0.115,
        "Application Load Balancer": (0.0225 + 0.1 * 0.008) * h,
        "Public IPv4 of the load balancer": 2 * 0.005 * h,
        "Secrets Manager secrets": 5 * 0.40,
        "KMS keys": 1.00,
        # 9 alarms: 8 on one metric, Alb5xx on two (ELB and target 5xx); billed per alarm metric
        "CloudWatch alarms": 10 * 0.10,
        "Airflow metrics (CloudWatch custom metrics)": 13 * 0.30,
        "Cloud Map private DNS namespace (hosted zone)": 0.50,
        "Cloud Map registered instances": 0.10,
        "CloudWatch Logs (services, flow logs)": (4 * 0.5 + 1 * 1.0) * 0.50,
        "ECR image storage": 2 * 0.10,
    }
    # office hours: 10 h x 5 days = 50 of 168 hours a week for the services, their public IPs and
    # the DB instance; storage, the load balancer and the rest are billed always
    asleep = {name for name in expected_always_on if name.startswith(("Fargate service", "Public IPv4 of ", "RDS db."))}
    asleep.discard("Public IPv4 of the load balancer")
    assert len(asleep) == 9
    # custom metrics are billed by the hour they are sent: the scheduler sends them 50 h a week
    asleep.add("Airflow metrics (CloudWatch custom metrics)")
    expected_idle = {name: usd * (50 / 168 if name in asleep else 1) for name, usd in expected_always_on.items()}
    # the services log only while they run; the VPC flow log always
    expected_idle["CloudWatch Logs (services, flow logs)"] = (4 * 0.5 * 50 / 168 + 1 * 1.0) * 0.50
    for resource, usd in expected_always_on.items():
        assert _item(report, resource).idle_always_on_usd == pytest.approx(usd, abs=0.005), resource
        assert _item(report, resource).idle_usd == pytest.approx(expected_idle[resource], abs=0.005), resource
    # nothing else costs money while idle, and the totals are their sums
    assert {i.resource for i in report.items if i.idle_usd} == set(expected_idle)
    assert report.idle_usd == pytest.approx(sum(expected_idle.values()), abs=0.01)
    assert report.idle_always_on_usd == pytest.approx(sum(expected_always_on.values()), abs=0.01)
    # the target: lean at or below $50 a month in us-east-1 as configured by default
    assert report.idle_usd <= 50.0
    # lean has no dashboard by default (-c dashboard=true: $3 a month more); the alarms stay
    assert "CloudWatch dashboards" not in {i.resource for i in report.items}
    assert report.idle_always_on_usd > 80.0
    # no NAT gateway, no interface endpoint, no Container Insights in lean
    names = {i.resource for i in report.items}
    assert not names & {"NAT gateways", "VPC interface endpoints", "Container Insights"}
    # the example ECS job's task definition runs only when a DAG starts it: not the worker workload
    assert not [n for n in names if "Jobs" in n]
    (jobs_note,) = [note for note in report.notes if note.startswith("ECS jobs (")]
    assert "," not in jobs_note and "not priced in the workload" in jobs_note, "one job family, named"
    # the workload: 600 task-minutes a day of 0.5 vCPU / 1 GB Spot workers with a public IP each
    task_hours = 600 * 365 / 12 / 60
    assert _item(report, "Fargate worker tasks (Worker)").workload_usd == pytest.approx(
        task_hours * (0.5 * 0.01334053 + 1 * 0.00146489), abs=0.005
    )
    assert _item(report, "Public IPv4 of worker tasks").workload_usd == pytest.approx(task_hours * 0.005, abs=0.005)
    assert report.workload_usd > report.idle_usd


def test_dev_stage_prices_on_demand_services_nat_and_container_insights(dev):
    report = compute(_templates(dev), US)
    on_demand = lambda vcpu, gb: (vcpu * 0.04048 + gb * 0.004445) * 730  # noqa: E731
    assert _item(report, "Fargate service Scheduler").idle_usd == pytest.approx(on_demand(1, 2), abs=0.005)
    assert _item(report, "Fargate service DagProcessor").idle_usd == pytest.approx(on_demand(0.5, 1), abs=0.005)
    assert _item(report, "NAT gateways").idle_usd == pytest.approx(0.045 * 730 + 3 * 0.045, abs=0.005)
    assert _item(report, "Public IPv4 (Elastic IPs)").quantity == 1
    assert _item(report, "Container Insights").quantity == 8 + 4 * 11
    assert report.idle_usd == pytest.approx(sum(i.idle_usd for i in report.items), abs=0.01)


def test_prod_prices_multi_az_and_two_nat_gateways_in_eu_west_1(prod):
    eu = load_prices("eu-west-1")
    report = compute(_templates(prod), eu)
    assert _item(report, "RDS db.t4g.medium Multi-AZ").idle_usd == pytest.approx(0.068 * 2 * 730, abs=0.005)
    assert _item(report, "RDS gp3 storage").idle_usd == pytest.approx(20 * 0.254, abs=0.005)
    assert _item(report, "NAT gateways").quantity == 2
    assert _item(report, "Fargate service Scheduler").quantity == 2


def test_prod_prices_the_login_rate_limits_web_acl_and_dev_has_none(prod, dev):
    eu = load_prices("eu-west-1")
    report = compute(_templates(prod), eu, Assumptions(ui_million_requests=2.0))
    (waf,) = [i for i in report.items if i.resource.startswith("AWS WAF web ACL")]
    # $5 a web ACL + $1 for its one rule + $0.60 per million requests inspected
    assert waf.idle_usd == pytest.approx(5 + 1 + 2 * 0.6, abs=0.005) and waf.stack.endswith("-airflow")
    assert not [i for i in compute(_templates(dev), US).items if i.resource.startswith("AWS WAF")]


def test_no_nat_prices_interface_endpoints_per_az(no_nat):
    report = compute(_templates(no_nat), US)
    endpoints = _item(report, "VPC interface endpoints")
    assert endpoints.quantity == 6 * 2
    assert endpoints.idle_usd == pytest.approx(12 * 0.01 * 730 + 3 * 0.01, abs=0.005)


def test_office_hours_scale_services_and_db_instance_only(synth):
    templates = _templates(synth("lean"))
    always = compute(templates, US, Assumptions(awake_hours_per_week=168))
    office = compute(templates, US, Assumptions(awake_hours_per_week=60))
    share = 60 / 168
    assert always.idle_usd == always.idle_always_on_usd == office.idle_always_on_usd
    for name in ("Fargate service Scheduler", "Public IPv4 of ApiServer", "RDS db.t4g.micro"):
        assert _item(office, name).idle_usd == pytest.approx(_item(always, name).idle_usd * share, abs=0.005)
    for name in ("Application Load Balancer", "RDS gp3 storage", "Public IPv4 of the load balancer"):
        assert _item(office, name).idle_usd == _item(always, name).idle_usd


@pytest.mark.parametrize(
    ("start", "stop", "hours"),
    [
        # Monday-Friday 08:00-18:00: 10 h x 5 days
        (["cron(0 8 ? * MON-FRI *)"], ["cron(0 18 ? * MON-FRI *)"], 50.0),
        # the config's generic default, 07:00-19:00 on weekdays: 12 h x 5
        (["cron(0 7 ? * MON-FRI *)"], ["cron(0 19 ? * MON-FRI *)"], 60.0),
        # a night shift across midnight, numeric AWS days (1 = SUN): Sunday-Thursday 20:00 to 06:00 = 10 h x 5
        (["cron(0 20 ? * 1-5 *)"], ["cron(0 6 ? * 2-6 *)"], 50.0),
        # 08:30 to 17:15 every day: 8.75 h x 7
        (["cron(30 8 * * ? *)"], ["cron(15 17 * * ? *)"], 61.25),
        # awake from the 1st 00:00 to the 2nd 00:00 of each month: 24 h x 12 over the 365 days of 2027
        (["cron(0 0 1 * ? *)"], ["cron(0 0 2 * ? *)"], 24 * 12 / (365 / 7)),
        # a second start while awake changes nothing: Monday 06:00 and 08:00 start, Monday 18:00 stops
        (["cron(0 6 ? * MON *)", "cron(0 8 ? * MON *)"], ["cron(0 18 ? * MON *)"], 12.0),
        # AWS's day wildcards, which the configuration accepts: the first Monday of each month
        # 08:00-18:00 (12 of them in 2027), the last day of each month all day, the weekday nearest
        # the 15th, the last Friday
        (["cron(0 8 ? * 2#1 *)"], ["cron(0 18 ? * 2#1 *)"], 10 * 12 / (365 / 7)),
        (["cron(0 0 L * ? *)"], ["cron(0 0 1 * ? *)"], 24 * 12 / (365 / 7)),
        (["cron(0 8 15W * ? *)"], ["cron(0 18 15W * ? *)"], 10 * 12 / (365 / 7)),
        (["cron(0 8 ? * 6L *)"], ["cron(0 18 ? * 6L *)"], 10 * 12 / (365 / 7)),
    ],
)
def test_awake_hours_are_counted_from_each_start_to_the_next_stop(start, stop, hours):
    assert awake_hours_per_week(start, stop) == pytest.approx(hours)


@pytest.mark.parametrize(
    ("start", "stop", "message"),
    [
        (["rate(1 day)"], ["cron(0 18 ? * MON-FRI *)"], "not rate\\(\\) or at\\(\\)"),
        (["cron(0 8 ? * MON-FRI *)"], ["cron(0 8 ? * MON *)"], "same minute"),
        (["cron(0 8 ? * 2#1 *)"], ["cron(0 18 ? * 2#1 2150)"], "day-of-week field|year field"),
        (["cron(0 8 ? * MON *)"], [], "never start or never stop"),
    ],
)
def test_office_hours_the_count_cannot_read_are_refused(start, stop, message):
    with pytest.raises(CostError, match=message):
        awake_hours_per_week(start, stop)


def test_a_schedule_the_configuration_accepts_is_priced_by_make_cost():
    """`make cost`'s code path (synthesis, templates, count) with AWS's # wildcard, which the
    configuration accepts and the count refused before: 08:00-18:00 on each month's first Monday,
    10 h x 12 a year."""
    context = ["office_hours_scope=environment", "office_hours_start=cron(0 8 ? * MON#1 *)",
               "office_hours_stop=cron(0 18 ? * 2#1 *)"]
    result = CliRunner().invoke(main, [arg for c in context for arg in ("-c", c)] + ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("\n{") + 1:])  # after CDK's annotations
    assert any(f"{10 * 12 / (365 / 7):g} h a week" in note for note in report["notes"]), report["notes"]


def test_office_hours_are_read_from_the_templates_schedules(synth):
    """office_hours_scope=environment in Europe/Berlin with the generic 07:00-19:00 weekdays: each
    service's scheduled actions and the DB's EventBridge Scheduler schedules give 60 h a week."""
    templates = _templates(synth("office-hours-environment"))
    schedules = read_schedules(templates)
    db = [(s, lid) for s, lid in schedules if "Database" in lid or "Instance" in lid]
    assert len(schedules) == 5 and len(db) == 1, schedules
    for schedule in schedules.values():
        assert schedule.timezone == "Europe/Berlin"
        assert schedule.start == ("cron(0 7 ? * MON-FRI *)",) and schedule.stop == ("cron(0 19 ? * MON-FRI *)",)
        assert schedule.awake_hours_per_week == 60.0
    office = compute(templates, US)
    always = compute(templates, US, Assumptions(awake_hours_per_week=168))
    for name in ("Fargate service Scheduler", "Fargate service Triggerer", "RDS db.t4g.micro"):
        assert _item(office, name).idle_usd == pytest.approx(_item(always, name).idle_usd * 60 / 168, abs=0.005)
        assert _item(office, name).idle_always_on_usd == pytest.approx(_item(always, name).idle_usd, abs=0.005)
    assert office.idle_always_on_usd == pytest.approx(always.idle_usd, abs=0.01)
    assert any("60 h a week" in note and "Europe/Berlin" in note for note in office.notes)
    # scope ui: only the api-server sleeps
    ui = compute(_templates(synth("office-hours-ui")), US)
    assert _item(ui, "Fargate service ApiServer").idle_usd < _item(ui, "Fargate service ApiServer").idle_always_on_usd
    assert _item(ui, "Fargate service Scheduler").idle_usd == _item(ui, "Fargate service Scheduler").idle_always_on_usd
    assert _item(ui, "RDS db.t4g.micro").idle_usd == _item(ui, "RDS db.t4g.micro").idle_always_on_usd


def test_a_missing_price_is_an_error_naming_it(dev, tmp_path):
    data = json.loads((PRICES_DIR / "us-east-1.json").read_text())
    del data["prices"]["kms.key_month"]
    (tmp_path / "us-east-1.json").write_text(json.dumps(data))
    with pytest.raises(CostError, match=r"missing price 'kms.key_month' in us-east-1.json"):
        compute(_templates(dev), load_prices("us-east-1", tmp_path))


def test_arm64_on_spot_has_no_price_and_is_refused_not_zero(dev):
    templates = copy.deepcopy(_templates(dev))
    for template in templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::ECS::TaskDefinition":
                resource["Properties"]["RuntimePlatform"]["CpuArchitecture"] = "ARM64"
    with pytest.raises(CostError, match=r"fargate.spot.arm64.vcpu_hour"):
        compute(templates, US)


def test_a_region_without_a_price_table_is_refused_with_the_key_and_the_fix():
    with pytest.raises(CostError) as err:
        load_prices("ap-south-1")
    message = str(err.value)
    assert "region='ap-south-1'" in message
    assert "eu-west-1, us-east-1" in message and "-c region=" in message


def test_an_unknown_instance_class_is_refused_with_the_key_and_the_fix(synth):
    templates = copy.deepcopy(_templates(synth("lean")))
    for template in templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::RDS::DBInstance":
                resource["Properties"]["DBInstanceClass"] = "db.x2iedn.metal"
    with pytest.raises(CostError) as err:
        compute(templates, US)
    message = str(err.value)
    assert message.startswith("db_instance_type='x2iedn.metal'")
    assert "t4g.micro" in message and "rds.postgres.db.x2iedn.metal.hour" in message


def test_pricing_region_comes_from_the_deployment_then_the_option():
    assert pricing_region({}, None) == "us-east-1"
    assert pricing_region({}, "eu-west-1") == "eu-west-1"
    assert pricing_region({"region": "eu-west-1"}, None) == "eu-west-1"
    with pytest.raises(CostError, match="disagree"):
        pricing_region({"region": "eu-west-1"}, "us-east-1")
    with pytest.raises(CostError, match="-c key=value"):
        parse_context(("stage",))
    # -c region alone only prices; the app still synthesizes environment-agnostic
    assert synth_context({"stage": "lean", "region": "eu-west-1"}) == {"stage": "lean"}
    both = {"account": "123456789012", "region": "eu-west-1"}
    assert synth_context(both) == both


def test_cli_json_from_an_existing_assembly(synth, tmp_path):
    assembly = Path(synth("lean").assembly.directory)
    result = CliRunner().invoke(main, ["--cdk-out", str(assembly), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"monthly_usd", "items", "prices_date", "region"}
    assert data["region"] == "us-east-1" and data["prices_date"] == "2026-11-25"
    assert data["monthly_usd"]["idle"] == pytest.approx(sum(i["idle_usd"] for i in data["items"]), abs=0.05)
    assert data["monthly_usd"]["workload"] > data["monthly_usd"]["idle"]
    # lean sleeps outside office hours by default: the always-on figure beside it
    assert data["monthly_usd"]["idle"] <= 50 < data["monthly_usd"]["idle_always_on"]
    assert data["monthly_usd"]["idle_always_on"] == pytest.approx(sum(i["always_on_usd"] for i in data["items"]), abs=0.05)
    override = json.loads(CliRunner().invoke(main, ["--cdk-out", str(assembly), "--json", "--awake-hours-per-week", "168"]).output)
    assert override["monthly_usd"]["idle"] == override["monthly_usd"]["idle_always_on"] == data["monthly_usd"]["idle_always_on"]
    table = CliRunner().invoke(main, ["--cdk-out", str(assembly), "--region", "eu-west-1"])
    assert table.exit_code == 0 and "TOTAL" in table.output and "Assumptions:" in table.output
    bad = CliRunner().invoke(main, ["--cdk-out", str(assembly), "--region", "ap-south-1"])
    assert bad.exit_code == 2 and "cost/prices/ap-south-1.json" in bad.output


def test_cli_refuses_a_bad_configuration_before_synthesis():
    result = CliRunner().invoke(main, ["-c", "alarm_email=not-an-address"])
    assert result.exit_code == 2
    assert "alarm_email='not-an-address' is not an e-mail address" in result.output
