"""Fixtures of the rehearsal tests: a cloud assembly synthesized once per configuration."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from local_ecs import access_probe
from local_ecs.podman import PROJECT_ROOT
from local_ecs.synth import synthesize  # noqa: F401 (for the rehearsal tests)

#: Where the rehearsals write their reports, screenshots, syntheses and container logs.
OUT = PROJECT_ROOT / ".rehearsal"
_CACHE: dict[str, Path] = {}
#: The configurations the rehearsal runs: context overrides over cdk.json. The default one adds
#: two team queues for the access probe (local_ecs/access_probe.py): two more task definitions
#: and roles, and one more DAG run, cost less than a configuration of its own (a whole rehearsal).
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "default": access_probe.overrides(),
    "s3": {"dag_bundle": "s3"},
    "stock-executor": {"executor_class": "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"},
}
#: DAG files baked into a configuration's image only (local_ecs/rehearsal_dags/, never dags/).
EXTRA_DAGS: dict[str, dict[str, str]] = {"default": access_probe.extra_dags()}


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory):
    """Return ``name -> cdk.out directory`` for the names of :data:`CONFIGURATIONS`."""
    configs = CONFIGURATIONS

    def get(name: str = "default") -> Path:
        if name not in _CACHE:
            _CACHE[name] = synthesize(configs[name], tmp_path_factory.mktemp(f"cdk-out-{name}"),
                                      extra_dags=EXTRA_DAGS.get(name))
        return _CACHE[name]

    return get


def report_of(rehearsal: Callable[[], dict], report_file: str) -> dict:
    """Run ``rehearsal`` and return its report. When it raises, return the report it wrote to
    ``OUT/report_file`` before raising (every scenario writes one whatever failed, with its
    ``error``), else ``{"error": ...}``: each test then fails on what it needed, not all on one
    exception."""
    try:
        return rehearsal()
    except Exception as error:
        path = OUT / report_file
        return json.loads(path.read_text()) if path.exists() else {"error": str(error)}
