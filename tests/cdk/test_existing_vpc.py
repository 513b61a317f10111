"""Issue 19 item 1: an existing VPC (``vpc_id``). The app creates no network resource, every
stack uses the given IDs, synthesis looks nothing up, and the exports stay put when the load
balancer's or the tasks' subnets switch."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Annotations, Match

from tests.cdk.conftest import OPTIONAL_FEATURES, resources_of, synthesize
from tests.cdk.test_stacks import container, env_of

EXISTING = OPTIONAL_FEATURES["existing-vpc"]
VPC_ID = EXISTING["vpc_id"]
PRIVATE = EXISTING["private_subnet_ids"].split(",")
PUBLIC = EXISTING["public_subnet_ids"].split(",")
PRIVATE_CIDRS = ["10.20.10.0/24", "10.20.11.0/24"]
#: The other placement: the load balancer internal (private subnets), the tasks in the public
#: subnets with public IPs.
SWITCHED = {
    **EXISTING,
    "ui_private_only": "true",
    "ui_allowed_cidrs": "10.0.0.0/8",
    "private_subnet_cidrs": ",".join(PRIVATE_CIDRS),
    "task_public_ip": "true",
}
#: Resources of a network the app owns: none of them with an existing VPC.
NETWORK_TYPES = (
    "AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::NatGateway", "AWS::EC2::VPCEndpoint", "AWS::EC2::EIP",
    "AWS::EC2::InternetGateway", "AWS::EC2::VPCGatewayAttachment", "AWS::EC2::RouteTable", "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation", "AWS::EC2::FlowLog",
)
EXECUTOR = "AIRFLOW__AWS_ECS_EXECUTOR__"
JOB_VARIABLE = "AIRFLOW_VAR_ECS_JOB_UPLOAD_FILE_TO_S3"


@pytest.fixture(scope="module")
def existing(synth):
    return synth("existing-vpc")


@pytest.fixture(scope="module")
def switched(tmp_path_factory):
    return synthesize(SWITCHED, tmp_path_factory.mktemp("cdk-existing-vpc-switched"))


@pytest.fixture(params=["existing", "switched"])
def either(request):
    return request.getfixturevalue(request.param)


def _all_resources(synthesized) -> dict[str, dict]:
    return {f"{role}/{lid}": r for role, t in synthesized.templates().items() for lid, r in t["Resources"].items()}


def test_no_network_resource_is_created(either):
    types = {r["Type"] for r in _all_resources(either).values()}
    assert not types & set(NETWORK_TYPES), sorted(types & set(NETWORK_TYPES))
    assert not [r for r in types if r.startswith("Custom::VpcRestrictDefaultSG")]


def test_synthesis_looks_nothing_up(either):
    assert either.assembly.missing_context == []
    annotations = Annotations.from_stack(either.stacks["network"])
    warnings = annotations.find_warning("*", Match.any_value()) + annotations.find_error("*", Match.any_value())
    assert warnings == [], [m.entry.data for m in warnings]


def test_security_groups_target_group_and_namespace_are_in_the_given_vpc(either):
    network = either.template("network").to_json()
    groups = resources_of(network, "AWS::EC2::SecurityGroup")
    assert len(groups) == 5 and {g["Properties"]["VpcId"] for g in groups.values()} == {VPC_ID}
    (target_group,) = resources_of(either.template("airflow").to_json(), "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert target_group["Properties"]["VpcId"] == VPC_ID
    (namespace,) = resources_of(either.template("cluster").to_json(), "AWS::ServiceDiscovery::PrivateDnsNamespace").values()
    assert namespace["Properties"]["Vpc"] == VPC_ID


def test_the_database_runs_in_the_given_private_subnets(either):
    (group,) = resources_of(either.template("database").to_json(), "AWS::RDS::DBSubnetGroup").values()
    assert group["Properties"]["SubnetIds"] == PRIVATE


@pytest.mark.parametrize(("name", "subnets", "public_ip"), [("existing", PRIVATE, "DISABLED"), ("switched", PUBLIC, "ENABLED")])
def test_tasks_run_in_the_given_subnets(request, name, subnets, public_ip):
    synthesized = request.getfixturevalue(name)
    airflow = synthesized.template("airflow").to_json()
    services = resources_of(airflow, "AWS::ECS::Service").values()
    assert len(services) == 4
    for service in services:
        vpc_config = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert vpc_config["Subnets"] == subnets and vpc_config["AssignPublicIp"] == public_ip
    executor = env_of(container(airflow, "scheduler"))
    assert executor[f"{EXECUTOR}SUBNETS"] == ",".join(subnets)
    job = json.dumps(env_of(container(synthesized.template("cluster").to_json(), "worker"))[JOB_VARIABLE])
    assert json.dumps(f'"subnets":{json.dumps(subnets, separators=(",", ":"))}')[1:-1] in job
    assert f'\\"assign_public_ip\\":\\"{public_ip}\\"' in job


@pytest.mark.parametrize(("name", "subnets", "cidrs", "scheme"), [
    ("existing", PUBLIC, EXISTING["public_subnet_cidrs"].split(","), "internet-facing"),
    ("switched", PRIVATE, PRIVATE_CIDRS, "internal"),
])
def test_the_load_balancer_runs_in_the_given_subnets_and_trusts_only_them(request, name, subnets, cidrs, scheme):
    synthesized = request.getfixturevalue(name)
    airflow = synthesized.template("airflow").to_json()
    (alb,) = resources_of(airflow, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert alb["Properties"]["Subnets"] == subnets and alb["Properties"]["Scheme"] == scheme
    assert env_of(container(airflow, "api-server"))["FORWARDED_ALLOW_IPS"].split(",") == cidrs


def test_no_subnet_is_exported_or_imported(either):
    """The given subnet IDs are literals in each consumer's template: nothing imports them, so no
    switch of the load balancer's or the tasks' subnets can remove an import."""
    templates = either.templates()
    assert not [name for name in json.dumps(templates["network"].get("Outputs", {})).split('"') if "Subnet" in name]
    for role, template in templates.items():
        imported = [name for name in json.dumps(template).split('"') if "ExportsOutput" in name and "Subnet" in name]
        assert imported == [], (role, imported)


def test_switching_subnets_keeps_every_export(existing, switched):
    """ui_private_only and task_public_ip moved together: the same exports on both sides (the
    jobs' security group stays exported, as with a created VPC)."""
    for role in ("network", "image", "cluster", "database"):
        before = set(existing.template(role).to_json().get("Outputs", {}))
        after = set(switched.template(role).to_json().get("Outputs", {}))
        assert before == after, role
    assert any("SecurityGroupsJobs" in name for name in existing.template("network").to_json()["Outputs"])
