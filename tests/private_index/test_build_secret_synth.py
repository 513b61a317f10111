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
