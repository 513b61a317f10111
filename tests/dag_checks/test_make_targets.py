"""make deploy and make publish run the DAG check before anything else that touches AWS, on the
folder DAGS with the CDK context of CDK_ARGS (``make -n``: printed, not run)."""

from __future__ import annotations

import subprocess

from tests.deploy.test_readme_deploy import ROOT, clean_env

CHECK = ".venv/bin/python -m dag_checks check"


def planned(target: str, tmp_path, *variables: str) -> list[str]:
    result = subprocess.run(["make", "-n", target, *variables], cwd=ROOT, env=clean_env(tmp_path),
                            capture_output=True, text=True, check=True)
    return [" ".join(line.split()) for line in result.stdout.splitlines()
            if "bin/cdk " in line or "airflow-ecs" in line or "dag_checks" in line or "pytest" in line]


def test_deploy_and_publish_check_the_dags_first(tmp_path):
    for target in ("deploy", "publish"):
        lines = planned(target, tmp_path)
        assert lines[0] == f"{CHECK} dags", (target, lines)
        assert len(lines) > 1 and all("dag_checks" not in line for line in lines[1:])


def test_dags_check_takes_the_folder_and_the_cdk_args(tmp_path):
    assert planned("dags-check", tmp_path, "DAGS=../team-dags") == [f"{CHECK} ../team-dags"]
    # Run for real: the check reads the context from CDK_ARGS, which the target exports, and refuses a
    # configuration the CDK app would refuse before importing any DAG.
    result = subprocess.run(["make", "dags-check", "CDK_ARGS=-c stage=nope --profile x"], cwd=ROOT,
                            env=clean_env(tmp_path), capture_output=True, text=True)
    assert result.returncode != 0
    assert "refused: the configuration (cdk.json with -c stage=nope --profile x) is invalid" in result.stderr
    assert "stage='nope' is not a stage" in result.stderr


def test_dags_test_runs_the_dag_authors_tests(tmp_path):
    assert planned("dags-test", tmp_path) == [".venv/bin/python -m pytest tests/dags -q"]
