"""The change check's rules on small hand-written templates, and its command line (a stand-in of
DescribeStacks/GetTemplate, and moto's CloudFormation)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import botocore.exceptions as bx
import pytest
from click.testing import CliRunner
from moto import mock_aws

from changes import deployed
from changes.check import DATA_LOSS, DEPLOY_FAILURE, WARNING, CONFIGURATION_METADATA_KEY, StackTemplate, StackTemplates, compare
from changes.cli import main

ACCOUNT = "123456789012"


def network(cidr: str, *, export_subnet: bool = True) -> dict:
    template = {
        "Metadata": {CONFIGURATION_METADATA_KEY: {"project_name": "airflow", "stage": "dev", "vpc_cidr": cidr}},
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": cidr}},
            "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": cidr.replace("0.0/16", "0.0/24")}},
        },
        "Outputs": {},
    }
    if export_subnet:
        template["Outputs"]["SubnetExport"] = {"Value": {"Ref": "Subnet"}, "Export": {"Name": "airflow-dev-network:Subnet"}}
    return template


def consumer(cidr: str) -> dict:
    return {
        "Metadata": {CONFIGURATION_METADATA_KEY: {"project_name": "airflow", "stage": "dev", "vpc_cidr": cidr}},
        "Resources": {
            "Group": {"Type": "AWS::RDS::DBSubnetGroup", "Properties": {"DBSubnetGroupDescription": "db", "SubnetIds": [{"Fn::ImportValue": "airflow-dev-network:Subnet"}]}},
        },
    }


def side(**templates: dict) -> StackTemplates:
    return StackTemplates({role: StackTemplate(role, f"airflow-dev-{role.lower()}", t) for role, t in templates.items()})


def test_a_new_vpc_cidr_is_data_loss_named_by_its_key():
    report = compare(side(Network=network("10.0.0.0/16"), Database=consumer("10.0.0.0/16")),
                     side(Network=network("10.1.0.0/16"), Database=consumer("10.1.0.0/16")))
    kinds = {(f.kind, f.logical_id) for f in report.findings}
    assert (DATA_LOSS, "Vpc") in kinds
    # the subnet follows the VPC, and its export changes value while the database stack imports it
    assert any("Subnet" in c and "replaced" in c for c in report.changes)
    assert (DEPLOY_FAILURE, "SubnetExport") in kinds
    vpc = next(f for f in report.findings if f.logical_id == "Vpc")
    assert vpc.keys == ("vpc_cidr",) and vpc.exact
    assert "10.0.0.0/16 -> 10.1.0.0/16" in vpc.line()


def test_an_export_removed_while_imported_fails_and_one_nobody_imports_does_not():
    report = compare(side(Network=network("10.0.0.0/16"), Database=consumer("10.0.0.0/16")),
                     side(Network=network("10.0.0.0/16", export_subnet=False), Database=consumer("10.0.0.0/16")))
    assert [(f.kind, f.logical_id) for f in report.findings] == [(DEPLOY_FAILURE, "SubnetExport")]
    assert "airflow-dev-database imports it" in report.findings[0].what
    quiet = compare(side(Network=network("10.0.0.0/16")), side(Network=network("10.0.0.0/16", export_subnet=False)))
    assert quiet.findings == []


def listener(lid: str, action: str) -> dict:
    return {"Resources": {
        "Lb": {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {}},
        lid: {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {"LoadBalancerArn": {"Ref": "Lb"}, "Port": 80, "DefaultActions": [{"Type": action}]}},
    }}


def test_a_port_served_by_a_new_listener_id_fails():
    report = compare(side(Airflow=listener("Http", "forward")), side(Airflow=listener("Redirect80", "redirect")))
    assert [(f.kind, f.logical_id) for f in report.findings] == [(DEPLOY_FAILURE, "Redirect80")]
    assert compare(side(Airflow=listener("Http", "forward")), side(Airflow=listener("Http", "redirect"))).findings == []


def scaled_service(count: int | None) -> dict:
    props = {"Cluster": "c"} | ({"DesiredCount": count} if count is not None else {})
    return {"Resources": {
        "ApiServerService": {"Type": "AWS::ECS::Service", "Properties": props},
        "Target": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
            "ResourceId": {"Fn::Join": ["", ["service/c/", {"Fn::GetAtt": ["ApiServerService", "Name"]}]]}, "MinCapacity": 1, "MaxCapacity": 4}},
    }}


def test_desired_count_on_a_scaled_service_is_a_warning_that_does_not_block():
    report = compare(side(Airflow=scaled_service(2)), side(Airflow=scaled_service(2)))
    assert [(f.kind, f.logical_id) for f in report.findings] == [(WARNING, "ApiServerService")]
    assert report.blocking() == []
    assert compare(side(Airflow=scaled_service(None)), side(Airflow=scaled_service(None))).findings == []


def test_a_replaced_custom_named_resource_fails():
    def repository(encryption: str) -> dict:
        return {"Resources": {"Repo": {"Type": "AWS::ECR::Repository", "Properties": {
            "RepositoryName": "fixed", "EncryptionConfiguration": {"EncryptionType": encryption}}}}}
    kinds = [(f.kind, f.logical_id) for f in compare(side(Image=repository("AES256")), side(Image=repository("KMS"))).findings]
    assert kinds == [(DATA_LOSS, "Repo"), (DEPLOY_FAILURE, "Repo")]


def test_a_renamed_logical_id_of_a_stateful_resource_is_data_loss():
    before = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}}}}
    after = {"Resources": {"Bucket2": {"Type": "AWS::S3::Bucket", "Properties": {}}}}
    (finding,) = compare(side(Cluster=before), side(Cluster=after)).findings
    assert finding.kind == DATA_LOSS and "Bucket2" in finding.what
    assert finding.keys == () and not finding.config_known


# --- command line --------------------------------------------------------------------------------


def write_assembly(directory: Path, **templates: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for role, template in templates.items():
        (directory / f"{role}.template.json").write_text(json.dumps(template))
        artifacts[role] = {
            "type": "aws:cloudformation:stack",
            "environment": f"aws://{ACCOUNT}/eu-west-1",
            "properties": {"templateFile": f"{role}.template.json", "stackName": f"airflow-dev-{role.lower()}"},
        }
    (directory / "manifest.json").write_text(json.dumps({"version": "1", "artifacts": artifacts}))
    return directory


def test_diff_refuses_data_loss_and_allow_replace_accepts_it(tmp_path):
    before = write_assembly(tmp_path / "before", Network=network("10.0.0.0/16"))
    after = write_assembly(tmp_path / "after", Network=network("10.1.0.0/16"))
    runner = CliRunner()
    refused = runner.invoke(main, ["diff", "--before", str(before), "--after", str(after)])
    assert refused.exit_code == 1
    assert "DATA LOSS: airflow-dev-network Vpc (AWS::EC2::VPC)" in refused.output
    assert "ALLOW_REPLACE=Vpc" in refused.output
    accepted = runner.invoke(main, ["diff", "--before", str(before), "--after", str(after), "--allow-replace", "Vpc"])
    assert accepted.exit_code == 0, accepted.output
    assert runner.invoke(main, ["diff", "--before", str(before), "--after", str(after), "--report-only"]).exit_code == 0


def test_diff_of_a_directory_that_is_no_assembly_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["diff", "--before", str(tmp_path), "--after", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "no manifest.json" in result.output
    assert "Traceback" not in result.output


class StandIn:
    """DescribeStacks/GetTemplate of a CloudFormation client, from a dict of deployed templates."""

    def __init__(self, templates: dict[str, object], error: Exception | None = None):
        self.templates, self.error = templates, error

    def describe_stacks(self, StackName):
        if self.error:
            raise self.error
        if StackName not in self.templates:
            raise bx.ClientError({"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}}, "DescribeStacks")
        return {"Stacks": [{"StackName": StackName, "StackStatus": "UPDATE_COMPLETE"}]}

    def get_template(self, StackName, TemplateStage):
        return {"TemplateBody": self.templates[StackName]}


@pytest.fixture
def after(tmp_path):
    return write_assembly(tmp_path / "cdk.out", Network=network("10.1.0.0/16"))


def run_deployed(monkeypatch, after, client):
    monkeypatch.setattr(deployed, "cloudformation_client", lambda region: client)
    return CliRunner().invoke(main, ["check-deployed", "--cdk-out", str(after)])


def test_first_deploy_is_a_new_deployment_and_passes(monkeypatch, after):
    result = run_deployed(monkeypatch, after, StandIn({}))
    assert result.exit_code == 0 and "New deployment" in result.output


def test_deployed_data_loss_is_refused(monkeypatch, after):
    result = run_deployed(monkeypatch, after, StandIn({"airflow-dev-network": network("10.0.0.0/16")}))
    assert result.exit_code == 1 and "DATA LOSS" in result.output and "[configuration key: vpc_cidr]" in result.output


@pytest.mark.parametrize(
    "error, says",
    [
        (bx.NoCredentialsError(), "no AWS credentials"),
        (bx.EndpointConnectionError(endpoint_url="https://cloudformation.xx-nowhere-1.amazonaws.com"), "check the region name"),
        (bx.ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "DescribeStacks"), "renew the credentials"),
    ],
)
def test_aws_errors_are_one_line_that_says_what_to_do(monkeypatch, after, error, says):
    result = run_deployed(monkeypatch, after, StandIn({}, error))
    assert result.exit_code == 2
    assert says in result.output and result.output.strip().count("\n") == 0
    assert "Traceback" not in result.output


def test_a_template_that_is_not_json_is_one_line(monkeypatch, after):
    result = run_deployed(monkeypatch, after, StandIn({"airflow-dev-network": "Resources:\n  X: y\n"}))
    assert result.exit_code == 2 and "is not JSON" in result.output


def test_no_region_is_one_line(monkeypatch, tmp_path):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    agnostic = write_assembly(tmp_path / "agnostic", Network=network("10.0.0.0/16"))
    manifest = json.loads((agnostic / "manifest.json").read_text())
    manifest["artifacts"]["Network"]["environment"] = "aws://unknown-account/unknown-region"
    (agnostic / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(main, ["check-deployed", "--cdk-out", str(agnostic)])
    assert result.exit_code == 2 and "no AWS region" in result.output


@mock_aws
def test_against_moto_cloudformation(monkeypatch, after):
    """The real client against moto: a deployed VPC with another CIDR is refused, the same one passes."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    cfn = boto3.client("cloudformation", region_name="eu-west-1")
    cfn.create_stack(StackName="airflow-dev-network", TemplateBody=json.dumps(network("10.0.0.0/16")))
    runner = CliRunner()
    refused = runner.invoke(main, ["check-deployed", "--cdk-out", str(after)])
    assert refused.exit_code == 1, refused.output
    assert "DATA LOSS: airflow-dev-network Vpc" in refused.output
    cfn.update_stack(StackName="airflow-dev-network", TemplateBody=json.dumps(network("10.1.0.0/16")))
    passed = runner.invoke(main, ["check-deployed", "--cdk-out", str(after)])
    assert passed.exit_code == 0, passed.output
    assert "No data loss" in passed.output
