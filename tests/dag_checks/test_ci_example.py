"""docs/examples/dag-check.github-actions.yml still matches the repository it checks out: its
shell steps read the Dockerfile's versions, install files that exist, and run the check command."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from dag_checks.pins import dockerfile_args

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "examples" / "dag-check.github-actions.yml"


def steps() -> dict[str, dict]:
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["dag-check"]
    return {step.get("name", step.get("uses")): step for step in job["steps"]}


def step_named(prefix: str) -> dict:
    found = [step for name, step in steps().items() if name.startswith(prefix)]
    assert len(found) == 1, f"{WORKFLOW.name} has no single step named {prefix!r}: {list(steps())}"
    return found[0]


def test_the_version_step_reads_the_dockerfile(tmp_path):
    step = step_named("Read the image's Airflow and Python versions")
    output = tmp_path / "github_output"
    assert step["working-directory"] == "deployment"  # the checkout of this repository
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, env={**os.environ, "GITHUB_OUTPUT": str(output)},
                   check=True)
    args = dockerfile_args(ROOT / "docker" / "Dockerfile")
    assert output.read_text().splitlines() == [f"airflow={args['AIRFLOW_VERSION']}", f"python={args['PYTHON_VERSION']}"]


def test_the_install_step_names_files_of_this_repository():
    command = step_named("Install the image's Airflow")["run"]
    paths = re.findall(r"-[cr] (\S+)", command) + re.findall(r"^\s*(\./\S+)\s*$", command, re.M)
    assert paths == ["local_ecs/base_image/requirements.lock", "docker/requirements.txt", "./executor"]
    assert all((ROOT / p).exists() for p in paths)
    assert '"apache-airflow==${{ steps.image.outputs.airflow }}"' in command


def test_the_check_step_runs_the_check_on_the_dag_folder():
    step = step_named("Check the DAGs")
    assert step["run"] == '.venv/bin/python -m dag_checks check "$GITHUB_WORKSPACE/dag-repo/$DAG_FOLDER"'
    assert "CDK_ARGS" in yaml.safe_load(WORKFLOW.read_text())["env"]  # the check reads it (--cdk-args)
