"""``airflow-ecs preflight`` (what make deploy checks first) and ``airflow-ecs publish``."""

from __future__ import annotations

import json
import stat
import subprocess

import boto3
import pytest
from click.testing import CliRunner

from airflow_ecs_ops.cli import cli
from airflow_ecs_ops.deployment import OpsError
from airflow_ecs_ops.publish import default_tag

from .conftest import ACCOUNT, REGION, REPOSITORY, make_deployment


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def bootstrap():
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="CDKToolkit",
        TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
    )


def test_preflight_without_credentials_says_how_to_configure_them(aws_env, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    result = invoke("preflight")

    assert result.exit_code == 1 and "No AWS credentials" in result.stderr


def test_preflight_without_a_region_says_how_to_set_one(aws_env, monkeypatch):
    monkeypatch.delenv("AWS_REGION")

    result = invoke("preflight")

    assert result.exit_code == 1 and "AWS_REGION" in result.stderr


def test_preflight_names_the_bootstrap_command_when_the_account_is_not_bootstrapped(moto_aws):
    result = invoke("preflight")

    assert result.exit_code == 1
    assert f"npx cdk bootstrap aws://{ACCOUNT}/{REGION}" in result.stderr


def test_preflight_refuses_credentials_of_another_account(moto_aws):
    bootstrap()

    result = invoke("preflight", "--account", "111111111111")

    assert result.exit_code == 1 and "111111111111" in result.stderr and ACCOUNT in result.stderr


def test_preflight_passes_with_credentials_and_bootstrap(moto_aws):
    bootstrap()

    result = invoke("preflight", "--account", ACCOUNT)

    assert result.exit_code == 0, result.output
    assert f"account {ACCOUNT}, region {REGION}" in result.stdout


@pytest.mark.parametrize(
    "stage, commit, dirty, version, expected",
    [
        ("dev", "0123456789ab", False, None, "git-0123456789ab"),
        ("dev", "0123456789ab", True, "my-test", "my-test"),
        ("prod", "0123456789ab", False, "1.4.0", "1.4.0"),
        ("prod", "0123456789ab", False, "v2.0.0-rc.1", "v2.0.0-rc.1"),
    ],
)
def test_image_tags_git_commit_in_dev_semantic_version_in_prod(stage, commit, dirty, version, expected):
    assert default_tag(stage, commit, dirty, version) == expected


@pytest.mark.parametrize(
    "stage, commit, dirty, version, message",
    [
        ("prod", "0123456789ab", False, None, "semantic version"),
        ("prod", "0123456789ab", False, "latest", "semantic version"),
        ("dev", "0123456789ab", True, None, "uncommitted changes"),
        ("dev", None, False, None, "--version"),
        ("dev", "0123456789ab", False, "-bad", "ECR tag"),
    ],
)
def test_image_tag_refusals_name_the_fix(stage, commit, dirty, version, message):
    with pytest.raises(OpsError, match=message):
        default_tag(stage, commit, dirty, version)


def _assembly(tmp_path, build_secrets=None):
    """A cloud assembly shaped as cdk synth writes it (manifest, asset manifest, staged context)."""
    out = tmp_path / "cdk.out"
    context = out / "asset.abc123"
    (context / "docker").mkdir(parents=True)
    (context / "docker" / "Dockerfile").write_text("FROM scratch\n")
    (out / "manifest.json").write_text(json.dumps({"artifacts": {
        "Image.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Image.assets.json"}},
        "Image": {"type": "aws:cloudformation:stack",
                  "properties": {"stackName": "airflow-dev-image", "templateFile": "Image.template.json"},
                  "dependencies": ["Image.assets"]},
    }}))
    (out / "Image.template.json").write_text(json.dumps({"Resources": {}}))
    source = {"directory": "asset.abc123", "dockerFile": "docker/Dockerfile", "platform": "linux/amd64"}
    if build_secrets:
        source["dockerBuildSecrets"] = build_secrets
    (out / "Image.assets.json").write_text(json.dumps({"dockerImages": {"abc123": {"source": source}}}))
    return out, context


def _fake_engine(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    engine = bin_dir / "docker"
    engine.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/engine-calls\nif [ "$1" = login ]; then cat >> {tmp_path}/engine-stdin; fi\n')
    engine.chmod(engine.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return tmp_path / "engine-calls"


def _git_repo(path):
    for argv in (["init", "-q"], ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q",
                                  "--allow-empty", "-m", "x"]):
        subprocess.run(["git", "-C", str(path), *argv], check=True)
    return subprocess.run(["git", "-C", str(path), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_publish_builds_the_staged_image_and_pushes_it_tagged_by_commit(moto_aws, tmp_path, monkeypatch):
    make_deployment()
    boto3.client("ecr", region_name=REGION).create_repository(repositoryName=REPOSITORY)
    out, context = _assembly(tmp_path)
    calls = _fake_engine(tmp_path, monkeypatch)
    commit = _git_repo(tmp_path)
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}:git-{commit}"

    result = invoke("publish", "--assembly", str(out))

    assert result.exit_code == 0, result.output
    build, login, push = calls.read_text().splitlines()
    assert build == f"build --tag {image} --file {context}/docker/Dockerfile --platform linux/amd64 {context}"
    assert login.startswith("login --username AWS --password-stdin ") and login.endswith(".amazonaws.com")
    assert push == f"push {image}"
    assert (tmp_path / "engine-stdin").read_text()  # the password, never on the command line
    assert f"-c image_tag=git-{commit}" in result.stdout


def test_publish_passes_the_build_secrets_of_the_asset(moto_aws, tmp_path, monkeypatch):
    """The private index (pip_index_file) reaches ``make publish``'s build as CDK's would: a path."""
    make_deployment()
    boto3.client("ecr", region_name=REGION).create_repository(repositoryName=REPOSITORY)
    out, context = _assembly(tmp_path, {"pip_index": "src=/home/me/.config/pip/private-index.conf"})
    calls = _fake_engine(tmp_path, monkeypatch)
    _git_repo(tmp_path)

    result = invoke("publish", "--assembly", str(out))

    assert result.exit_code == 0, result.output
    build = calls.read_text().splitlines()[0]
    assert " --secret id=pip_index,src=/home/me/.config/pip/private-index.conf " in build


def test_publish_refuses_a_tag_the_repository_already_holds(moto_aws, tmp_path, monkeypatch):
    make_deployment()
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.create_repository(repositoryName=REPOSITORY)
    ecr.put_image(repositoryName=REPOSITORY, imageManifest=json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}),
                  imageTag="1.0.0")
    out, _ = _assembly(tmp_path)
    calls = _fake_engine(tmp_path, monkeypatch)

    result = invoke("--stage", "dev", "publish", "--assembly", str(out), "--version", "1.0.0")

    assert result.exit_code == 1 and "immutable" in result.stderr
    assert not calls.exists()


def test_publish_without_a_synthesized_assembly_says_run_make_synth(moto_aws, tmp_path):
    result = invoke("publish", "--assembly", str(tmp_path / "nowhere"), "--version", "1.0.0")

    assert result.exit_code == 1 and "make synth" in result.stderr
