"""Fixtures of the rehearsal tests: a cloud assembly synthesized once per configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON_CONTEXT = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
_CACHE: dict[str, Path] = {}
#: The configurations the rehearsal runs: context overrides over cdk.json.
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "default": {},
    "s3": {"dag_bundle": "s3"},
    "stock-executor": {"executor_class": "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"},
}


def synthesize(overrides: dict[str, str], outdir: Path) -> Path:
    """Synthesize the app with ``overrides`` over cdk.json's context into ``outdir``."""
    import aws_cdk as cdk

    from app import build_app
    from app_config import load_config

    app = cdk.App(context={**CDK_JSON_CONTEXT, **overrides}, outdir=str(outdir))
    build_app(app, load_config(app.node.get_all_context()))
    app.synth()
    return outdir


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory):
    """Return ``name -> cdk.out directory`` for the names of :data:`CONFIGURATIONS`."""
    configs = CONFIGURATIONS

    def get(name: str = "default") -> Path:
        if name not in _CACHE:
            _CACHE[name] = synthesize(configs[name], tmp_path_factory.mktemp(f"cdk-out-{name}"))
        return _CACHE[name]

    return get
