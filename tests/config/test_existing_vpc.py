"""Issue 19 item 1's configuration: deploying into an existing VPC (``vpc_id``). Each bad input is
refused before synthesis with the key and the fix; the accepted shapes reach the stacks."""

from __future__ import annotations

import pytest

from app_config import ConfigError, load_config

ENV = {"account": "123456789012", "region": "eu-west-1", "availability_zones": "eu-west-1a,eu-west-1b"}
PRIVATE = "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2"
PUBLIC = "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2"
#: A VPC with a public UI: the load balancer in the public subnets, whose CIDRs it needs.
EXISTING = {**ENV, "vpc_id": "vpc-0123456789abcdef0", "private_subnet_ids": PRIVATE, "public_subnet_ids": PUBLIC,
            "public_subnet_cidrs": "10.20.0.0/24,10.20.1.0/24"}
#: The same VPC with the UI on an internal load balancer in the private subnets.
PRIVATE_UI = {**ENV, "vpc_id": "vpc-0123456789abcdef0", "private_subnet_ids": PRIVATE, "ui_private_only": "true",
              "private_subnet_cidrs": "10.20.10.0/24,10.20.11.0/24", "ui_allowed_cidrs": "10.0.0.0/8"}


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return info.value.problems


def without(raw: dict, *keys: str) -> dict:
    return {k: v for k, v in raw.items() if k not in keys}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # malformed IDs
        ({**EXISTING, "vpc_id": "vpc-123"}, "vpc_id='vpc-123': a VPC ID is vpc- and 8 or 17 hexadecimal digits"),
        ({**EXISTING, "vpc_id": "vpc-0123456789ABCDEF0"}, "a VPC ID is vpc- and 8 or 17 hexadecimal digits"),
        ({**EXISTING, "vpc_id": "subnet-0123456789abcdef0"}, "vpc_id='subnet-0123456789abcdef0': a VPC ID is vpc-"),
        ({**EXISTING, "private_subnet_ids": "subnet-0aaaaaaaaaaaaaaa1,subnet-xyz"},
         "private_subnet_ids: subnet-xyz not a subnet ID; a subnet ID is subnet- and 8 or 17 hexadecimal digits"),
        ({**EXISTING, "public_subnet_ids": "vpc-0aaaaaaa,subnet-0bbbbbbb"}, "public_subnet_ids: vpc-0aaaaaaa not a subnet ID"),
        ({**EXISTING, "public_subnet_cidrs": "10.20.0.0/24,10.20.1.1/24"},
         "public_subnet_cidrs='10.20.1.1/24' is not an IPv4 CIDR block"),
        # a VPC ID without subnets, subnets without a VPC ID
        (without(EXISTING, "private_subnet_ids"),
         "private_subnet_ids: with vpc_id give 2, one per availability zone in the order of availability_zones"),
        (without(ENV, "availability_zones") | {"private_subnet_ids": PRIVATE},
         "private_subnet_ids: set vpc_id too (the existing VPC the subnets belong to)"),
        ({"public_subnet_cidrs": "10.20.0.0/24,10.20.1.0/24"}, "public_subnet_cidrs: set vpc_id too"),
        # the AZs: exactly two, with account and region, subnets in two different zones
        (without(EXISTING, "availability_zones"), "availability_zones: with vpc_id give the 2 AZs of the subnets"),
        ({**EXISTING, "availability_zones": "eu-west-1a"}, "availability_zones: give exactly 2 names"),
        ({**EXISTING, "availability_zones": "eu-west-1a,eu-west-1a"}, "an AZ is listed twice"),
        (without(EXISTING, "account", "region"), "vpc_id: set account and region too"),
        ({**EXISTING, "private_subnet_ids": "subnet-0aaaaaaaaaaaaaaa1"},
         "private_subnet_ids: 1 given for the 2 availability zones eu-west-1a,eu-west-1b; give one per AZ"),
        ({**EXISTING, "public_subnet_ids": PUBLIC + ",subnet-0bbbbbbbbbbbbbbb3"},
         "public_subnet_ids: 3 given for the 2 availability zones"),
        ({**EXISTING, "private_subnet_ids": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa1"},
         "private_subnet_ids: a subnet is listed twice; give one subnet per availability zone"),
        ({**EXISTING, "public_subnet_ids": PRIVATE}, "subnet-0aaaaaaaaaaaaaaa1, subnet-0aaaaaaaaaaaaaaa2 in both lists"),
        ({**EXISTING, "public_subnet_cidrs": "10.20.0.0/24,10.20.0.128/25"}, "10.20.0.0/24 and 10.20.0.128/25 overlap"),
        # the public UI (or task_public_ip) needs the public subnets; the load balancer's subnets need CIDRs
        (without(EXISTING, "public_subnet_ids"),
         "public_subnet_ids: with vpc_id give 2, one per availability zone in the order of availability_zones; the "
         "internet-facing load balancer runs there, or set ui_private_only=true"),
        ({**PRIVATE_UI, "task_public_ip": "true"}, "public_subnet_ids: with vpc_id give 2, one per availability zone "
         "in the order of availability_zones; the tasks run there with task_public_ip"),
        (without(EXISTING, "public_subnet_cidrs"), "public_subnet_cidrs: with vpc_id give 2"),
        (without(PRIVATE_UI, "private_subnet_cidrs"), "private_subnet_cidrs: with vpc_id give 2"),
        (without(PRIVATE_UI, "ui_allowed_cidrs"),
         "ui_allowed_cidrs: with vpc_id and ui_private_only give the IPv4 CIDRs that may reach the internal load balancer"),
        # keys of the VPC the app would create
        ({**EXISTING, "vpc_cidr": "10.0.0.0/16"}, "vpc_cidr: the app creates no VPC with vpc_id"),
        ({**EXISTING, "nat_gateways": "0"}, "nat_gateways: the app creates no VPC with vpc_id"),
        ({**EXISTING, "stage": "prod", "nat_gateways": "2"}, "nat_gateways: the app creates no VPC with vpc_id"),
    ],
)
def test_bad_input_is_refused_with_the_key_and_the_fix(raw, expected):
    message = "\n".join(problems_of(raw)) + "\n"
    assert expected in message, message


def test_accepted_shapes_reach_the_network_config():
    network = load_config(EXISTING).network
    assert network.existing_vpc is not None and network.existing_vpc.vpc_id == "vpc-0123456789abcdef0"
    assert network.existing_vpc.private_subnet_ids == tuple(PRIVATE.split(","))
    assert network.existing_vpc.public_subnet_ids == tuple(PUBLIC.split(","))
    assert network.availability_zones == ("eu-west-1a", "eu-west-1b")
    assert network.nat_gateways == 0  # the app creates none
    assert load_config(PRIVATE_UI).network.existing_vpc.public_subnet_ids == ()
    # 8-digit IDs (created before 2018) and cdk.json lists
    old = {**EXISTING, "vpc_id": "vpc-0123abcd", "private_subnet_ids": ["subnet-0123abcd", "subnet-4567abcd"]}
    assert load_config(old).network.existing_vpc.private_subnet_ids == ("subnet-0123abcd", "subnet-4567abcd")
    assert load_config({}).network.existing_vpc is None


@pytest.mark.parametrize("stage", ["prod", "lean"])
def test_a_stage_preset_of_nat_gateways_is_no_refused_key(stage):
    """prod presets nat_gateways=2 and lean 0: with vpc_id the preset is dropped, not refused."""
    extra = {"ui_allowed_cidrs": "203.0.113.0/24", "domain_name": "airflow.example.com",
             "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "example.com"} if stage == "prod" else {}
    config = load_config({**EXISTING, **extra, "stage": stage})
    assert config.network.nat_gateways == 0
    # lean keeps task_public_ip: its tasks run in the given public subnets with public IPs
    assert config.network.task_public_ip == (stage == "lean")


def test_the_default_vpc_cidr_is_not_a_refused_key():
    """vpc_cidr has a default; only a vpc_cidr the user gives is refused with vpc_id."""
    assert load_config(EXISTING).network.existing_vpc is not None
    assert [p for p in problems_of({**EXISTING, "vpc_cidr": "10.0.0.0/16"}) if p.startswith("vpc_cidr")]
