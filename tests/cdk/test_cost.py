"""The cost model (``cost/``): figures computed by hand from the price table match the report,
and what cannot be priced is refused with the key and the fix, never a silent zero."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cost.assembly import read_templates
from cost.cli import main, parse_context, pricing_region, synth_context
from cost.model import HOURS_PER_MONTH, Assumptions, compute
from cost.prices import PRICES_DIR, CostError, load_prices

US = load_prices("us-east-1")


def _templates(synthesized) -> dict[str, dict]:
    return read_templates(Path(synthesized.assembly.directory))


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
            assert entry["date"] == table.prices_date, key
            assert entry["usd"] > 0 and entry["unit"], key


def test_lean_stage_line_items_match_a_hand_computation(synth):
    """stage=lean in us-east-1, always on: every line computed by hand from the table's numbers."""
    report = compute(_templates(synth("lean")), US, Assumptions(worker_task_minutes_per_day=600))
    h = 730
    spot = lambda vcpu, gb: (vcpu * 0.01334053 + gb * 0.00146489) * h  # noqa: E731
    expected_idle = {
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
        "CloudWatch dashboards": 3.00,
        "Airflow metrics (CloudWatch custom metrics)": 13 * 0.30,
        "Cloud Map private DNS namespace (hosted zone)": 0.50,
        "Cloud Map registered instances": 0.10,
        "CloudWatch Logs (services, flow logs)": (4 * 0.5 + 1 * 1.0) * 0.50,
        "ECR image storage": 2 * 0.10,
    }
    for resource, usd in expected_idle.items():
        assert _item(report, resource).idle_usd == pytest.approx(usd, abs=0.005), resource
    # nothing else costs money while idle, and the total is their sum
    assert {i.resource for i in report.items if i.idle_usd} == set(expected_idle)
    assert report.idle_usd == pytest.approx(sum(expected_idle.values()), abs=0.01)
    # no NAT gateway, no interface endpoint, no Container Insights in lean
    names = {i.resource for i in report.items}
    assert not names & {"NAT gateways", "VPC interface endpoints", "Container Insights"}
    # the workload: 600 task-minutes a day of 0.5 vCPU / 1 GB Spot workers with a public IP each
    task_hours = 600 * 365 / 12 / 60
    assert _item(report, "Fargate worker tasks (Workers)").workload_usd == pytest.approx(
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


def test_no_nat_prices_interface_endpoints_per_az(no_nat):
    report = compute(_templates(no_nat), US)
    endpoints = _item(report, "VPC interface endpoints")
    assert endpoints.quantity == 6 * 2
    assert endpoints.idle_usd == pytest.approx(12 * 0.01 * 730 + 3 * 0.01, abs=0.005)


def test_office_hours_scale_services_and_db_instance_only(synth):
    templates = _templates(synth("lean"))
    always = compute(templates, US)
    office = compute(templates, US, Assumptions(awake_hours_per_week=60))
    share = 60 / 168
    for name in ("Fargate service Scheduler", "Public IPv4 of ApiServer", "RDS db.t4g.micro"):
        assert _item(office, name).idle_usd == pytest.approx(_item(always, name).idle_usd * share, abs=0.005)
    for name in ("Application Load Balancer", "RDS gp3 storage", "Public IPv4 of the load balancer"):
        assert _item(office, name).idle_usd == _item(always, name).idle_usd


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
    table = CliRunner().invoke(main, ["--cdk-out", str(assembly), "--region", "eu-west-1"])
    assert table.exit_code == 0 and "TOTAL" in table.output and "Assumptions:" in table.output
    bad = CliRunner().invoke(main, ["--cdk-out", str(assembly), "--region", "ap-south-1"])
    assert bad.exit_code == 2 and "cost/prices/ap-south-1.json" in bad.output


def test_cli_refuses_a_bad_configuration_before_synthesis():
    result = CliRunner().invoke(main, ["-c", "alarm_email=not-an-address"])
    assert result.exit_code == 2
    assert "alarm_email='not-an-address' is not an e-mail address" in result.output
