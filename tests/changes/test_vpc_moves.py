"""The change check on a database whose security groups move to another VPC (issue 19: switching
networks), on small hand-written templates; the real templates are in test_matrix.py."""

from __future__ import annotations

from changes.check import CONFIGURATION_METADATA_KEY, DATA_LOSS, StackTemplate, StackTemplates, compare

EXPORT = "airflow-dev-network:DatabaseGroup"


def _side(vpc_id: str, description: str = "db") -> StackTemplates:
    metadata = {CONFIGURATION_METADATA_KEY: {"project_name": "airflow", "stage": "dev", "vpc_id": vpc_id}}
    network = {
        "Metadata": metadata,
        "Resources": {"Group": {"Type": "AWS::EC2::SecurityGroup",
                                "Properties": {"GroupDescription": description, "VpcId": vpc_id}}},
        "Outputs": {"GroupExport": {"Value": {"Fn::GetAtt": ["Group", "GroupId"]}, "Export": {"Name": EXPORT}}},
    }
    database = {
        "Metadata": metadata,
        "Resources": {"Db": {"Type": "AWS::RDS::DBInstance", "Properties": {
            "Engine": "postgres", "VPCSecurityGroups": [{"Fn::ImportValue": EXPORT}]}}},
    }
    return StackTemplates({role: StackTemplate(role, f"airflow-dev-{role.lower()}", t)
                           for role, t in {"Network": network, "Database": database}.items()})


def test_a_database_whose_security_groups_move_to_another_vpc_is_data_loss_named_by_the_key():
    report = compare(_side("vpc-0123456789abcdef0"), _side("vpc-0fedcba9876543210"))
    (loss,) = [f for f in report.findings if f.kind == DATA_LOSS]
    assert loss.logical_id == "Db" and loss.keys == ("vpc_id",) and loss.exact
    assert "moves to another VPC" in loss.what and "vpc-0fedcba9876543210" in loss.what


def test_a_security_group_replaced_in_the_same_vpc_moves_no_database():
    report = compare(_side("vpc-0123456789abcdef0"), _side("vpc-0123456789abcdef0", description="database"))
    assert any("Group" in c and "replaced" in c for c in report.changes)
    assert [f for f in report.findings if f.kind == DATA_LOSS] == []
