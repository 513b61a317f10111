"""A real ``airflow dag-processor`` following the git bundle: a push shows up without a deploy.

The dag-processor (a process of this venv's Airflow, SQLite metadata database in ``tmp_path``)
gets the environment the deployment gives it with ``dag_bundle=git`` (bundle config from
:func:`constructs_lib.airflow_settings.dag_bundle_config`, the connection as ``AIRFLOW_CONN_GIT_DAGS``)
plus a second, local bundle. Measured: the seconds from ``git push`` to the new DAG version in the
metadata database (at most ``refresh_interval`` + the fetch and the parse, once the file's previous
parse is ``min_file_process_interval`` old). Then the git host refuses the token: the dag-processor logs it, keeps the last
good version and keeps parsing the other bundle.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app_config.model import GitBundleConfig
from constructs_lib.airflow_settings import GIT_CONN_ID, dag_bundle_config
from tests.git_bundle.conftest import DAG_V2, TOKEN, USER
from standins.gitserver import commit_files, git, push_over_http

pytestmark = pytest.mark.e2e

REFRESH_SECONDS = 5
#: Airflow 3.3.2's default ``[dag_processor] min_file_process_interval`` (seconds).
MIN_FILE_PROCESS_INTERVAL = 30
LOCAL_DAG = '''from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("from_local_bundle", schedule=None):
    EmptyOperator(task_id="only")
'''


def wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout} s waiting for {what}; dag-processor log:\n{log.read_text()[-6000:]}")


def test_a_push_reaches_the_dag_processor_and_a_refused_token_keeps_the_last_version(tmp_path, server, repo, capsys):
    home, airflow_home, local = tmp_path / "home", tmp_path / "airflow", tmp_path / "local-dags"
    for path in (home, airflow_home, local):
        path.mkdir()
    (local / "from_local.py").write_text(LOCAL_DAG)
    db = airflow_home / "airflow.db"
    git_bundle = json.loads(dag_bundle_config(
        "git", None, GitBundleConfig(f"{server.url}/dags.git", "main", REFRESH_SECONDS, "airflow/dev/git-dags")))
    local_bundle = {"name": "local-dags", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(local), "refresh_interval": REFRESH_SECONDS}}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GIT_"))}
    env.update({
        "HOME": str(home), "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([*git_bundle, local_bundle]),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(tmp_path / "bundles"),
        f"AIRFLOW_CONN_{GIT_CONN_ID.upper()}": json.dumps({"conn_type": "git", "login": USER, "password": TOKEN}),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
    })
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=600)
    log = tmp_path / "dag-processor.log"

    def latest(dag_id: str):
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT bundle_version, version_number FROM dag_version WHERE dag_id = ? "
                                "ORDER BY version_number DESC LIMIT 1", (dag_id,)).fetchone()

    def serialized(dag_id: str) -> str:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT data FROM serialized_dag WHERE dag_id = ? ORDER BY last_updated DESC LIMIT 1",
                               (dag_id,)).fetchone()
        return row[0] if row and row[0] else ""

    first = git("rev-parse", "HEAD", cwd=repo).strip()
    with log.open("w") as out:
        processor = subprocess.Popen([airflow, "dag-processor"], env=env, cwd=tmp_path, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: latest("from_git") == (first, 1) and latest("from_local_bundle") and serialized("from_git"), 300,
                 "the first parse of both bundles", log)

        # Airflow parses a file at most every [dag_processor] min_file_process_interval (30 s by
        # default), a new bundle version included: push once that has passed since the first parse,
        # as a push to a branch whose DAGs are not brand new would be.
        time.sleep(MIN_FILE_PROCESS_INTERVAL + 1)
        pushed = commit_files(repo, {"dags/from_git.py": DAG_V2}, "second task")
        push_over_http(repo, server, "dags")
        started = time.monotonic()
        # Airflow updates a DAG version that has no runs yet in place: the version's bundle_version
        # moves to the pushed commit and its serialized DAG gains the task "second".
        wait_for(lambda: latest("from_git")[0] == pushed and '"second"' in serialized("from_git"), 60,
                 "the pushed version", log)
        seconds = time.monotonic() - started

        server.token = "rotated"  # the git host no longer accepts the token the dag-processor started with
        commit_files(repo, {"dags/from_git.py": DAG_V2.replace('"second"', '"third"')}, "third task")
        git("push", "--quiet", str(server.root / "dags.git"), "main", cwd=repo)  # the author still pushes
        refused_at = time.monotonic()
        wait_for(lambda: "Error refreshing bundle git-dags" in log.read_text(), 60, "the refused refresh", log)
        wait_for(lambda: time.monotonic() - refused_at > 2 * REFRESH_SECONDS, 60, "two more refresh periods", log)
        text = log.read_text()
        assert "Authentication failed for" in text
        assert TOKEN not in text
        assert latest("from_git")[0] == pushed and '"third"' not in serialized("from_git"), "the last good version stays"
        assert processor.poll() is None, "the dag-processor keeps running"
        assert latest("from_local_bundle") is not None
    finally:
        os.killpg(processor.pid, signal.SIGTERM)
        try:
            processor.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(processor.pid, signal.SIGKILL)
            processor.wait(timeout=10)
    assert seconds < REFRESH_SECONDS + 15, f"{seconds:.1f} s from push to the new DAG version"
    with capsys.disabled():
        print(f"\ngit bundle: a push reached the dag-processor's metadata database in {seconds:.1f} s "
              f"(refresh_interval={REFRESH_SECONDS} s)")
