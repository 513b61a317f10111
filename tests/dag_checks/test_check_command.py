"""``python -m dag_checks check``: the shipped DAGs pass; a broken, a cyclic and an unknown-queue DAG
are each refused with the file (and line where Python knows it); queues come from the cloud
assembly or the CDK context; a virtualenv without the image's versions is refused.

Each check runs as the command does, in a child process (Airflow reads its configuration once, at
import, so the check sets a scratch AIRFLOW_HOME before importing it).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cdk.conftest import synthesize

ROOT = Path(__file__).resolve().parents[2]
BAD_DAGS = Path(__file__).parent / "bad_dags"
QUEUES = {"large": {"cpu": 2048, "memory_mib": 4096}}


def check(*args: str, home: Path) -> subprocess.CompletedProcess:
    """Run the check as a DAG repository's CI would: HOME is scratch, no Airflow settings inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "dag_checks", "check", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def assembly_with_queues(tmp_path_factory) -> Path:
    """A cloud assembly of the app with one worker queue, ``large``."""
    outdir = tmp_path_factory.mktemp("cdk-queues")
    synthesize({"worker_queues": json.dumps(QUEUES)}, outdir)
    return outdir


def fail_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("FAIL ")]


def test_shipped_dags_pass(tmp_path):
    result = check("dags", home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok example_pipeline.py: example_pipeline" in result.stdout
    assert "ok example_ecs_job.py: example_ecs_job" in result.stdout
    assert "All 3 DAG(s) pass." in result.stdout
    assert not list(tmp_path.iterdir()), "the check wrote into HOME"


def test_broken_cyclic_unknown_queue_and_unknown_job_dags_are_refused(tmp_path, assembly_with_queues):
    result = check(str(BAD_DAGS), "--cdk-out", str(assembly_with_queues), home=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    source = f"{assembly_with_queues}: scheduler environment of airflow-dev-airflow"
    assert f"Queues ['default', 'large'], pools ['default_pool'], job variables ['ecs_job_upload_file_to_s3'] " \
           f"({source})" in result.stdout
    assert fail_lines(result) == [
        "FAIL broken.py:12: import error: NameError: name 'task_that_does_not_exist' is not defined",
        "FAIL cyclic.py: cycle: AirflowDagCycleException: Cycle detected in Dag: cyclic. Faulty task: c",
        "FAIL unknown_queue.py: unknown queue: DAG 'unknown_queue' task 'big' uses queue 'gpu'; this deployment has "
        f"['default', 'large'] ({source}): add 'gpu' to worker_queues or use one of these",
        "FAIL unknown_job.py:14: unknown variable: Airflow variable 'ecs_job_report' is not set by this deployment, "
        f"which sets ['ecs_job_upload_file_to_s3'] for its ECS jobs ({source}): add the job to the jobs key "
        "(README, ECS jobs from DAGs) or fix the name",
    ]
    assert "4 problem(s); 2 DAG(s) loaded." in result.stdout


def test_without_an_assembly_the_queues_come_from_the_cdk_context(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "q.py").write_text((BAD_DAGS / "unknown_queue.py").read_text().replace('"gpu"', '"large"'))
    configured = check(str(tmp_path / "dags"), "--cdk-args", f"-c {shlex.quote('worker_queues=' + json.dumps(QUEUES))} --profile x",
                       home=tmp_path)
    assert configured.returncode == 0, configured.stdout + configured.stderr
    assert "Queues ['default', 'large']" in configured.stdout

    default = check(str(tmp_path / "dags"), home=tmp_path)
    assert "job variables ['ecs_job_upload_file_to_s3'] (cdk.json (stage dev))" in default.stdout
    assert default.returncode == 1
    assert fail_lines(default) == [
        "FAIL q.py: unknown queue: DAG 'unknown_queue' task 'big' uses queue 'large'; this deployment has "
        "['default'] (cdk.json (stage dev)): add 'large' to worker_queues or use one of these",
        "FAIL q.py: unknown queue: DAG 'unknown_queue' task 'sized' uses queue 'large'; this deployment has "
        "['default'] (cdk.json (stage dev)): add 'large' to worker_queues or use one of these",
    ]


def test_a_pool_the_deployment_lacks_is_refused_unless_declared(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "pooled.py").write_text(
        "import pendulum\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "from airflow.sdk import DAG\n"
        "with DAG(dag_id='pooled', schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz='UTC')):\n"
        "    EmptyOperator(task_id='load', pool='etl')\n"
    )
    refused = check(str(dags), home=tmp_path)
    assert refused.returncode == 1
    assert fail_lines(refused) == [
        "FAIL pooled.py: unknown pool: DAG 'pooled' uses pool(s) ['etl'] (tasks ['load']); this deployment has "
        "['default_pool']: create the pool (airflow pools set NAME SLOTS DESCRIPTION) and pass --pool NAME, "
        "or use one of these"
    ]
    assert check(str(dags), "--pool", "etl", home=tmp_path).returncode == 0


def test_a_syntax_error_names_its_line(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "typo.py").write_text("from airflow.sdk import dag\n\nx = (\n")
    result = check(str(tmp_path / "dags"), home=tmp_path)
    assert result.returncode == 1
    assert fail_lines(result) == ["FAIL typo.py:3: import error: SyntaxError: '(' was never closed"]


def test_a_virtualenv_without_the_image_versions_is_refused(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text((ROOT / "docker" / "Dockerfile").read_text().replace(
        "ARG AIRFLOW_VERSION=3.3.2", "ARG AIRFLOW_VERSION=3.3.1"))
    result = check("dags", "--dockerfile", str(dockerfile), home=tmp_path)
    assert result.returncode == 2
    assert f"refused: apache-airflow: this Python ({sys.prefix}) has 3.3.2, the image installs " \
           f"apache-airflow==3.3.1 ({dockerfile} (ARG AIRFLOW_VERSION))" in result.stderr
    assert "make .venv/.test-deps" in result.stderr
    assert "FAIL" not in result.stdout and "ok " not in result.stdout


def test_an_unreadable_assembly_is_refused(tmp_path):
    result = check("dags", "--cdk-out", str(tmp_path / "nowhere"), home=tmp_path)
    assert result.returncode == 2
    assert "manifest.json not found: run `cdk synth` (or `make synth`) first" in result.stderr


def test_a_requirements_line_that_conflicts_stops_the_check_before_any_dag_is_imported(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text((ROOT / "docker" / "requirements.txt").read_text() + "sqlalchemy<2\n")
    result = check("dags", "--requirements", str(requirements), home=tmp_path)
    assert result.returncode == 1
    line = len(requirements.read_text().splitlines())
    assert fail_lines(result) == [
        f"FAIL requirements: {requirements}:{line}: 'sqlalchemy<2' conflicts with the image's pin SQLAlchemy==2.1.9 "
        "(local_ecs/base_image/requirements.lock: what apache-airflow 3.3.2 and its providers install); "
        "allow 2.1.9 or remove the line"
    ]
    assert "ok " not in result.stdout


def test_the_example_ecs_job_dag_is_refused_when_its_job_is_not_configured(tmp_path):
    result = check("dags", "--cdk-args", "-c jobs={}", home=tmp_path)
    assert result.returncode == 1
    assert fail_lines(result) == [
        "FAIL example_ecs_job.py:31: unknown variable: Airflow variable 'ecs_job_upload_file_to_s3' is not set by this "
        "deployment, which sets [] for its ECS jobs (cdk.json with -c jobs={} (stage dev)): add the job to the jobs "
        "key (README, ECS jobs from DAGs) or fix the name"
    ]


def test_team_queues_named_with_their_revisions_are_known_queues():
    """A team queue's entry names its task definition revision (a Ref, known at deploy time): the
    scheduler's QUEUES is then an Fn::Join in the assembly, and its queue names still count."""
    from dag_checks.deployment import QUEUES_VARIABLE, _deployment

    raw = {"Fn::Join": ["", ['{"large":{"cpu":2048,"memory":8192},"team-a":{"cpu":1024,"memory":2048,"task_definition":"',
                             {"Ref": "QueueWorkersteama79821F18"}, '"}}']]}
    deployment = _deployment({QUEUES_VARIABLE: raw}, (), "cdk.out", frozenset())
    assert deployment.queues == {"default", "large", "team-a"}
