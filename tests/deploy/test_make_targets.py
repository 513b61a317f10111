"""What make deploy / publish / destroy run, in which order, with the options of CDK_ARGS
(``make -n``: printed, not run)."""

from __future__ import annotations

import subprocess

from .test_readme_deploy import ROOT, clean_env

PROD = "-c stage=prod -c project_name=data -c account=123456789012 -c region=eu-west-1"


def planned(target: str, tmp_path, *variables: str) -> list[str]:
    result = subprocess.run(["make", "-n", target, *variables], cwd=ROOT, env=clean_env(tmp_path),
                            capture_output=True, text=True, check=True)
    return [" ".join(line.split()) for line in result.stdout.splitlines()
            if "bin/cdk " in line or "airflow-ecs" in line or "-m changes " in line]


def test_deploy_checks_first_then_deploys_every_stack_with_the_cdk_args(tmp_path):
    assert planned("deploy", tmp_path, f"CDK_ARGS={PROD}") == [
        f"node_modules/.bin/cdk synth --quiet -o cdk.out {PROD}",
        ".venv/bin/airflow-ecs --project data --stage prod --region eu-west-1 preflight --assembly cdk.out --account 123456789012",
        ".venv/bin/python -m changes check-deployed --cdk-out cdk.out",
        f"node_modules/.bin/cdk deploy --all --app cdk.out {PROD}",
    ]


def test_destroy_stops_the_scheduler_then_the_workers_then_deletes_the_rest(tmp_path):
    assert planned("destroy", tmp_path, f"CDK_ARGS={PROD}") == [
        f"node_modules/.bin/cdk destroy Airflow {PROD}",
        ".venv/bin/airflow-ecs --project data --stage prod --region eu-west-1 stop-workers --missing-ok",
        f"node_modules/.bin/cdk destroy --all {PROD}",
    ]


def test_publish_synthesizes_then_publishes_the_version(tmp_path):
    assert planned("publish", tmp_path, "VERSION=1.4.0", "ENGINE=podman") == [
        "node_modules/.bin/cdk synth --quiet",
        ".venv/bin/airflow-ecs publish --version 1.4.0 --engine podman",
    ]


def test_dev_defaults_leave_project_and_stage_to_cdk_json(tmp_path):
    assert planned("deploy", tmp_path) == [
        "node_modules/.bin/cdk synth --quiet -o cdk.out",
        ".venv/bin/airflow-ecs preflight --assembly cdk.out",
        ".venv/bin/python -m changes check-deployed --cdk-out cdk.out",
        "node_modules/.bin/cdk deploy --all --app cdk.out",
    ]


def test_deploy_passes_allow_replace_to_the_change_check(tmp_path):
    assert ".venv/bin/python -m changes check-deployed --cdk-out cdk.out --allow-replace NetworkVpc7FB7348F,Other" in planned(
        "deploy", tmp_path, "ALLOW_REPLACE=NetworkVpc7FB7348F,Other"
    )


def test_diff_reports_only_and_then_runs_cdk_diff_on_the_same_templates(tmp_path):
    lines = planned("diff", tmp_path, f"CDK_ARGS={PROD}")
    assert lines[:2] == [
        f"node_modules/.bin/cdk synth --quiet -o cdk.out {PROD}",
        ".venv/bin/python -m changes check-deployed --cdk-out cdk.out --report-only",
    ]
    assert "cdk diff --all --app cdk.out" in lines[2]


def test_make_test_runs_the_static_checks_before_the_tests(tmp_path):
    result = subprocess.run(["make", "-n", "test"], cwd=ROOT, env=clean_env(tmp_path), capture_output=True, text=True, check=True)
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    ruff = lines.index(".venv/bin/python -m ruff check .")
    vulture = next(i for i, line in enumerate(lines) if line.startswith(".venv/bin/python -m vulture "))
    mypy = next(i for i, line in enumerate(lines) if line.startswith(".venv/bin/python -m mypy "))
    pytest_line = next(i for i, line in enumerate(lines) if line.startswith(".venv/bin/python -m pytest"))
    assert ruff < vulture < mypy < pytest_line
    # The whole suite but the two scenario rehearsals (docs/rehearsal.md, "Upgrades and image rollouts").
    assert lines[pytest_line] == '.venv/bin/python -m pytest -m "not rollout_rehearsal"'
