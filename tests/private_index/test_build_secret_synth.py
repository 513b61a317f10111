"""``pip_index_file``: the image asset gets the build secret ``pip_index`` by path; the token is in
no file of the cloud assembly; a file that is missing or inside the repository is refused."""

from __future__ import annotations

import json

import pytest

from app_config import load_config
from app_config.model import ConfigError
from tests.cdk.conftest import CDK_JSON_CONTEXT, PROJECT_ROOT, synthesize

TOKEN = "codeartifact-tok-0c1d2e3f-not-real"


def test_the_asset_names_the_file_and_cdk_out_holds_no_token(tmp_path):
    secret = tmp_path / "home" / "private-index.conf"
    secret.parent.mkdir()
    secret.write_text(f"[global]\nextra-index-url = https://aws:{TOKEN}@example-123456789012.d.codeartifact."
                      "eu-west-1.amazonaws.com/pypi/team/simple/\n")
    out = tmp_path / "cdk.out"
    synthesize({"pip_index_file": str(secret)}, out)

    (manifest,) = out.glob("*Image*.assets.json")
    (image,) = json.loads(manifest.read_text())["dockerImages"].values()
    assert image["source"]["dockerBuildSecrets"] == {"pip_index": f"src={secret}"}
    holding = [p for p in out.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert holding == []
    assert not list(out.rglob("private-index.conf"))


def test_without_the_key_the_build_has_no_secret(tmp_path):
    out = tmp_path / "cdk.out"
    synthesize({}, out)
    (manifest,) = out.glob("*Image*.assets.json")
    (image,) = json.loads(manifest.read_text())["dockerImages"].values()
    assert "dockerBuildSecrets" not in image["source"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/nonexistent/private-index.conf", "pip_index_file=/nonexistent/private-index.conf: no such file"),
        (str(PROJECT_ROOT / "docker" / "requirements.txt"), "is inside the repository, where a token may be committed"),
    ],
)
def test_bad_files_are_refused_naming_the_key(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config({**CDK_JSON_CONTEXT, "pip_index_file": value})


def test_the_rehearsal_builds_the_asset_with_its_secret_as_the_cdk_cli_does(tmp_path, monkeypatch):
    """local_ecs.images passes the asset's build secrets to podman build as ``--secret
    id=<id>,<source>`` (the CDK CLI's ``docker build`` option); before, it dropped them and the
    image was built from public PyPI alone."""
    import local_ecs.images as images

    secret = tmp_path / "private-index.conf"
    secret.write_text("[global]\nindex-url = http://team:tok@127.0.0.1:1/simple/\n")
    out = tmp_path / "cdk.out"
    synthesize({"pip_index_file": str(secret)}, out)
    builds: list[dict] = []
    monkeypatch.setattr(images, "build_base_image", lambda config=None, **kwargs: "localhost/stand-in:test")
    monkeypatch.setattr(images, "_image_label", lambda tag, config: None)
    monkeypatch.setattr(images, "_build", lambda tag, context, containerfile, build_args, labels, config,
                        platform=None, build_secrets=None: builds.append(dict(build_secrets or {})))
    images.build_assembly_images(out, config=object())
    assert {"pip_index": f"src={secret}"} in builds  # the Airflow image's asset (other assets have none)
    assert images.secret_options({"pip_index": f"src={secret}"}) == ["--secret", f"id=pip_index,src={secret}"]
