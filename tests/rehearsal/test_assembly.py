"""The cloud assembly reader and the intrinsic resolver (no containers)."""

from __future__ import annotations

import json

import pytest

from cloud_assembly import AssemblyError, CloudAssembly
from local_ecs.assembly import Resolver, StandIns


def _assembly(tmp_path, stacks: dict[str, dict]) -> CloudAssembly:
    artifacts = {}
    for name, template in stacks.items():
        (tmp_path / f"{name}.template.json").write_text(json.dumps(template))
        artifacts[name] = {"type": "aws:cloudformation:stack",
                           "properties": {"templateFile": f"{name}.template.json", "stackName": f"app-{name.lower()}"}}
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    return CloudAssembly(tmp_path)


def test_missing_manifest_names_the_fix(tmp_path):
    with pytest.raises(AssemblyError, match="cdk synth"):
        CloudAssembly(tmp_path)


def test_intrinsics_resolve_from_the_one_table(tmp_path):
    assembly = _assembly(tmp_path, {
        "A": {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
              "Outputs": {"Out": {"Value": {"Ref": "Bucket"}, "Export": {"Name": "app-a:Bucket"}}}},
        "B": {"Resources": {"Role": {"Type": "AWS::IAM::Role"}}},
    })
    table = StandIns(region="eu-west-1")
    table.refs[("A", "Bucket")] = "my-bucket"
    resolver = Resolver(assembly, table)
    value = {
        "join": {"Fn::Join": ["", ["s3://", {"Fn::ImportValue": "app-a:Bucket"}, "/logs"]]},
        "sub": {"Fn::Sub": ["${AWS::Region}:${X}:${!Literal}", {"X": {"Fn::Select": [1, {"Fn::Split": [",", "a,b"]}]}}]},
        "arn": {"Fn::GetAtt": ["Role", "Arn"]},
        "novalue": {"Ref": "AWS::NoValue"},
    }
    resolved = resolver.resolve("B", value)
    assert resolved["join"] == "s3://my-bucket/logs"
    assert resolved["sub"] == "eu-west-1:b:${Literal}"
    assert resolved["arn"] == f"arn:aws:iam::123456789012:role/{resolver.resolve('B', {'Ref': 'Role'})}"
    assert "novalue" not in resolved
    # Deterministic: the same table gives the same value again.
    assert resolver.resolve("B", {"Ref": "Role"}) == table.refs[("B", "Role")]


def test_unknown_references_fail_with_the_stack_and_logical_id(tmp_path):
    assembly = _assembly(tmp_path, {"A": {"Resources": {"Thing": {"Type": "AWS::Foo::Bar"}}}})
    resolver = Resolver(assembly, StandIns())
    with pytest.raises(AssemblyError, match="unknown logical ID Nope in stack A"):
        resolver.resolve("A", {"Ref": "Nope"})
    with pytest.raises(AssemblyError, match="Thing.Size"):
        resolver.resolve("A", {"Fn::GetAtt": ["Thing", "Size"]})
    with pytest.raises(AssemblyError, match="no stack exports it"):
        resolver.resolve("A", {"Fn::ImportValue": "missing"})


def test_synthesized_app_resolves_every_task_definition(cdk_out):
    assembly = CloudAssembly(cdk_out())
    table = StandIns(load_balancer_dns="127.0.0.1:8080")
    resolver = Resolver(assembly, table)
    definitions = {
        (stack.artifact_id, logical_id): resolver.properties(stack.artifact_id, logical_id)
        for stack in assembly.stacks.values()
        for logical_id in stack.of_type("AWS::ECS::TaskDefinition")
    }
    # four services, the workers (the Airflow stack's revision and the Cluster stack's transitional
    # one, README "Upgrading"), the example ECS job and the default rehearsal's two team queues
    assert len(definitions) == 9
    text = json.dumps(list(definitions.values()))
    assert "Fn::" not in text and '"Ref"' not in text
    airflow = {key: d for key, d in definitions.items() if not key[1].startswith("Jobs")}
    images = {c["Image"] for d in airflow.values() for c in d["ContainerDefinitions"]}
    (image,) = images  # every Airflow container runs the one image
    tag = image.rpartition(":")[2]
    assert tag in assembly.images and len(assembly.images) == 2  # the Airflow image and the job's
    assert image == f"123456789012.dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-assets-123456789012-us-east-1:{tag}"
    table.images[tag] = "localhost/project:rehearsal"
    assert table.image(image) == "localhost/project:rehearsal"


def test_the_rehearsal_builds_the_images_of_the_services_and_workers_only(cdk_out, tmp_path):
    """The ECS job's image starts FROM a public base image no registry here serves: it is not
    built, and nothing the rehearsal runs needs it."""
    from local_ecs.scenario import LocalDeployment

    out = cdk_out()
    deployment = LocalDeployment(out, tmp_path)
    wanted = deployment.rehearsed_image_assets()
    assets = CloudAssembly(out).images
    (only,) = wanted
    assert (assets[only].directory / assets[only].dockerfile).read_text().startswith("# The one image every Airflow")
    assert set(assets) - wanted, "the job's image is left out"


def test_every_output_of_the_airflow_stack_resolves(cdk_out):
    """The scenario resolves every output of the Airflow stack (UI URL, admin user); one of them
    is the scheduler service's ``Fn::GetAtt ... .Name``, which had no stand-in and stopped the run."""
    assembly = CloudAssembly(cdk_out())
    resolver = Resolver(assembly, StandIns())
    for key, output in assembly.stack("Airflow").template.get("Outputs", {}).items():
        assert resolver.resolve("Airflow", output["Value"]) not in (None, ""), key


def test_a_runner_that_keeps_failing_stops_the_rehearsal(cdk_out, tmp_path):
    """A podman that cannot start containers (seen: TMPDIR leaking into podman's own environment)
    must stop the rehearsal with its error, not leave it waiting for health until the timeout."""
    from local_ecs.scenario import LocalDeployment, RehearsalFailed

    deployment = LocalDeployment(cdk_out(), tmp_path)
    deployment.check()  # nothing failed yet
    runner = deployment.runner
    runner.errors.append("03:00:00 PodmanError('podman ps ... exit 125')")
    runner.failed_ticks_in_a_row = 1
    deployment.check()  # one glitch of a loaded machine is tolerated
    runner.errors.extend(
        f"03:00:0{i} PodmanError('podman run ... exit 125: open /opt/airflow/tmp/1: no such file')" for i in range(5)
    )
    runner.failed_ticks_in_a_row = 5
    with pytest.raises(RehearsalFailed, match="failed 5 times in a row.*no such file"):
        deployment.check()


def test_image_assets_carry_what_their_build_needs(tmp_path):
    """The reader keeps every field of a staged image a build uses (airflow-ecs publish builds it
    with the same secrets cdk deploy would)."""
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": {
        "Image.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Image.assets.json"}}}}))
    (tmp_path / "Image.assets.json").write_text(json.dumps({"dockerImages": {"abc": {"source": {
        "directory": "asset.abc", "dockerFile": "docker/Dockerfile", "platform": "linux/amd64",
        "dockerBuildArgs": {"A": "1"}, "dockerBuildSecrets": {"pip_index": "env=PIP_INDEX_URL"}}}}}))
    image = CloudAssembly(tmp_path).images["abc"]
    assert image.directory == (tmp_path / "asset.abc").resolve() and image.dockerfile == "docker/Dockerfile"
    assert (image.platform, image.build_args, image.build_secrets) == (
        "linux/amd64", {"A": "1"}, {"pip_index": "env=PIP_INDEX_URL"})


def test_a_named_role_is_referred_to_by_its_name(tmp_path):
    """A team queue's task definition names its role by the physical name (RoleName); Ref and
    Arn of that role must give the same name, or its policies stand in for no principal."""
    assembly = _assembly(tmp_path, {"A": {"Resources": {
        "Named": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "airflow-dev-worker-team-a"}},
        "Token": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": {"Fn::Join": ["-", ["a", "b"]]}}},
    }}})
    resolver = Resolver(assembly, StandIns())
    assert resolver.resolve("A", {"Ref": "Named"}) == "airflow-dev-worker-team-a"
    assert resolver.resolve("A", {"Fn::GetAtt": ["Named", "Arn"]}) == "arn:aws:iam::123456789012:role/airflow-dev-worker-team-a"
    with pytest.raises(AssemblyError, match="A/Token: RoleName .* is not a plain string"):
        resolver.resolve("A", {"Ref": "Token"})
