"""Every task can reach what it needs to start, in every stage: the ECS jobs and one-off tasks
pull their images as the workers do; ECS Exec without NAT has its endpoint; an explicit
account/region with ``availability_zones`` synthesizes without looking anything up."""

from __future__ import annotations

import json
import re

import pytest

from tests.cdk.conftest import CONFIGURATIONS, resources_of
from tests.cdk.test_stacks import container, env_of

JOB_VARIABLE = "AIRFLOW_VAR_ECS_JOB_UPLOAD_FILE_TO_S3"
EXECUTOR = "AIRFLOW__AWS_ECS_EXECUTOR__"


def subnet_imports(value: object) -> set[str]:
    """The network stack's subnet exports that ``value`` imports."""
    return {name for name in re.findall(r'"Fn::ImportValue": "([^"]+)"', json.dumps(value)) if "Subnet" in name}


def interface_endpoints(network_template: dict) -> set[str]:
    """Service names (the part after ``com.amazonaws.<region>.``) of the VPC's interface endpoints."""
    names = set()
    for endpoint in resources_of(network_template, "AWS::EC2::VPCEndpoint").values():
        props = endpoint["Properties"]
        if props.get("VpcEndpointType") == "Interface":
            name = props["ServiceName"]
            if isinstance(name, dict):  # {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".ecr.api"]]}
                name = name["Fn::Join"][1][-1]
            names.add(re.sub(r"^(com\.amazonaws\.[a-z0-9-]+)?\.", "", name))
    return names


class TestJobsRunWhereTheWorkersRun:
    """The example job's RunTask gets the workers' subnets and public IP choice from its variable."""

    @pytest.mark.parametrize("name", list(CONFIGURATIONS))
    def test_subnets_and_public_ip_are_the_workers(self, synth, name):
        synthesized = synth(name)
        job = env_of(container(synthesized.template("cluster").to_json(), "worker"))[JOB_VARIABLE]
        executor = env_of(container(synthesized.template("airflow").to_json(), "scheduler"))
        assert subnet_imports(job) and subnet_imports(job) == subnet_imports(executor[f"{EXECUTOR}SUBNETS"])
        public_ip = "ENABLED" if executor[f"{EXECUTOR}ASSIGN_PUBLIC_IP"] == "True" else "DISABLED"
        assert f'\\"assign_public_ip\\":\\"{public_ip}\\"' in json.dumps(job)

    @pytest.mark.parametrize("name", list(CONFIGURATIONS))
    def test_the_job_can_reach_ecr(self, synth, name):
        """Public subnets with a public IP, or NAT, or the ECR interface endpoints."""
        synthesized = synth(name)
        network = synthesized.template("network").to_json()
        job = env_of(container(synthesized.template("cluster").to_json(), "worker"))[JOB_VARIABLE]
        subnets = subnet_imports(job)
        if '\\"assign_public_ip\\":\\"ENABLED\\"' in json.dumps(job):
            assert all("PublicSubnet" in s for s in subnets), subnets
        elif not resources_of(network, "AWS::EC2::NatGateway"):
            assert {"ecr.api", "ecr.dkr"} <= interface_endpoints(network)
        else:
            assert all("PrivateSubnet" in s for s in subnets), subnets

    def test_lean_jobs_run_in_the_public_subnets_with_a_public_ip(self, synth):
        job = env_of(container(synth("lean").template("cluster").to_json(), "worker"))[JOB_VARIABLE]
        assert {re.sub(r"Subnet\d.*", "", s.split("Network")[-1]) for s in subnet_imports(job)} == {"VpcPublic"}
        assert '\\"assign_public_ip\\":\\"ENABLED\\"' in json.dumps(job)


_SYNTHESIZED: dict[str, object] = {}


def synthesized(overrides: dict[str, str], tmp_path_factory):
    """One synthesis per configuration in this module (``overrides`` over cdk.json)."""
    from tests.cdk.conftest import synthesize

    key = json.dumps(overrides, sort_keys=True)
    if key not in _SYNTHESIZED:
        _SYNTHESIZED[key] = synthesize(overrides, tmp_path_factory.mktemp("cdk-reach"))
    return _SYNTHESIZED[key]


class TestEcsExecWithoutNat:
    """The SSM agent in a task opens ECS Exec sessions through ssmmessages."""

    def test_ecs_exec_without_nat_has_the_ssmmessages_endpoint(self, tmp_path_factory):
        synth = synthesized({"nat_gateways": "0", "enable_ecs_exec": "true", "read_only_root_filesystem": "false"}, tmp_path_factory)
        assert "ssmmessages" in interface_endpoints(synth.template("network").to_json())

    def test_no_ssmmessages_endpoint_without_ecs_exec(self, no_nat):
        endpoints = interface_endpoints(no_nat.template("network").to_json())
        assert endpoints and "ssmmessages" not in endpoints


class TestOfflineSynthesis:
    """With account, region and ``availability_zones`` set, synthesis needs no context lookup."""

    def test_explicit_azs_leave_no_missing_lookup(self, prod):
        assert prod.config.network.availability_zones and prod.config.account
        assert prod.assembly.missing_context == []

    def test_the_vpc_uses_the_given_azs(self, prod):
        subnets = resources_of(prod.template("network").to_json(), "AWS::EC2::Subnet").values()
        assert {s["Properties"]["AvailabilityZone"] for s in subnets} == {"eu-west-1a", "eu-west-1b"}
