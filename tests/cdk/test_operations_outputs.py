"""The contract between the CDK app and the operations CLI (operations/): the stacks carry every
output the CLI reads, and the image stack's staged asset is where ``airflow-ecs publish`` looks."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ecs_ops.deployment import REQUIRED_OUTPUTS, SERVICES, stack_name
from airflow_ecs_ops.publish import staged_image


@pytest.mark.parametrize("configuration", ["dev", "prod"])
def test_stacks_have_every_output_the_cli_reads(synth, configuration):
    synthesized = synth(configuration)
    for role, keys in REQUIRED_OUTPUTS.items():
        stack = synthesized.stacks[role]
        assert stack.stack_name == stack_name(synthesized.config.project_name, synthesized.config.stage, role)
        outputs = synthesized.template(role).to_json().get("Outputs", {})
        assert set(keys) <= set(outputs), f"{stack.stack_name} lacks {set(keys) - set(outputs)}"


def test_service_outputs_name_the_services_of_their_components(synth):
    template = synth("dev").template("airflow").to_json()
    for component, key in SERVICES.items():
        construct = "".join(part.capitalize() for part in component.split("-"))
        ref = template["Outputs"][key]["Value"]
        assert ref["Fn::GetAtt"][0].startswith(f"{construct}Service"), (component, ref)
        assert ref["Fn::GetAtt"][1] == "Name"


def test_worker_outputs_name_the_workers_family_and_container(synth):
    synthesized = synth("dev")
    cluster = synthesized.template("cluster").to_json()
    (definition_id,) = [
        logical for logical, r in cluster["Resources"].items()
        if r["Type"] == "AWS::ECS::TaskDefinition" and logical.startswith("Workers")
    ]
    assert cluster["Outputs"]["WorkerTaskDefinitionFamily"]["Value"] == cluster["Resources"][definition_id]["Properties"]["Family"]
    containers = cluster["Resources"][definition_id]["Properties"]["ContainerDefinitions"]
    assert cluster["Outputs"]["WorkerContainerName"]["Value"] == containers[0]["Name"]


def test_publish_finds_the_staged_image_in_the_cloud_assembly(synth):
    synthesized = synth("dev")
    staged = staged_image(Path(synthesized.assembly.directory), synthesized.stacks["image"].stack_name)
    assert (staged.context / staged.dockerfile).is_file()
    assert staged.dockerfile == "docker/Dockerfile"
    assert staged.platform == "linux/amd64"
    # The allowlisted build context: the image's inputs, no virtualenv or tests.
    assert (staged.context / "executor").is_dir() and (staged.context / "dags").is_dir()
    assert not (staged.context / ".venv").exists() and not (staged.context / "tests").exists()


def test_database_output_names_the_metadata_db_instance(synth):
    template = synth("dev").template("database").to_json()
    ref = template["Outputs"]["DatabaseInstanceIdentifier"]["Value"]["Ref"]
    assert template["Resources"][ref]["Type"] == "AWS::RDS::DBInstance"
    assert "Export" not in template["Outputs"]["DatabaseInstanceIdentifier"], "read by the CLI, imported by no stack"
