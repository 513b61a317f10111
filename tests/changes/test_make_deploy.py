"""``make deploy`` with moto's CloudFormation answering DescribeStacks/GetTemplate: it refuses a
data-loss change with the report and the way forward, and lets a safe one through to
``cdk deploy``. The preflight and the CDK CLI are stand-ins (``OPS=true``, ``CDK=echo``), the
dependency targets are taken as made (``make -o``), the assembly is a prepared one (``CDK_OUT``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from tests.changes.test_check import network, write_assembly

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=30)  # moto's state is per process
    yield endpoint
    server.stop()


def make_deploy(endpoint: str, assembly: Path, *variables: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"], "HOME": str(assembly.parent),
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    command = ["make", "-o", "deps-synth", "-o", "deps-ops", "-o", ".venv/.changes-deps", "deploy",
               "OPS=true", "CDK=echo", f"CDK_OUT={assembly}", *variables]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_make_deploy_refuses_data_loss_and_lets_a_safe_change_through(moto_endpoint, tmp_path):
    cfn = boto3.client("cloudformation", region_name="eu-west-1", endpoint_url=moto_endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    cfn.create_stack(StackName="airflow-dev-network", TemplateBody=json.dumps(network("10.0.0.0/16")))

    new_cidr = write_assembly(tmp_path / "new-cidr", Network=network("10.1.0.0/16"))
    refused = make_deploy(moto_endpoint, new_cidr)
    assert refused.returncode != 0
    assert "DATA LOSS: airflow-dev-network Vpc (AWS::EC2::VPC)" in refused.stdout
    assert "[configuration key: vpc_cidr]" in refused.stdout
    assert "ALLOW_REPLACE=Vpc" in refused.stderr
    assert f"deploy --all --app {new_cidr}" not in refused.stdout

    accepted = make_deploy(moto_endpoint, new_cidr, "ALLOW_REPLACE=Vpc")
    assert accepted.returncode == 0, accepted.stderr
    assert f"deploy --all --app {new_cidr}" in accepted.stdout

    same = write_assembly(tmp_path / "same", Network=network("10.0.0.0/16"))
    safe = make_deploy(moto_endpoint, same)
    assert safe.returncode == 0, safe.stderr
    assert "No data loss" in safe.stdout and f"deploy --all --app {same}" in safe.stdout


def test_make_deploy_of_a_first_deployment_passes(moto_endpoint, tmp_path):
    fresh = write_assembly(tmp_path / "fresh", Network=network("10.0.0.0/16"))
    result = make_deploy(moto_endpoint, fresh)
    assert result.returncode == 0, result.stderr
    assert "New deployment" in result.stdout and f"deploy --all --app {fresh}" in result.stdout
