"""Fixtures of the git bundle tests: a real git server on localhost and a DAG repository on it."""

from __future__ import annotations

import pytest

from standins.gitserver import GitHttpServer, new_repository

USER, TOKEN = "x-access-token", "tok-5f1c-not-a-real-token"
DAG_V1 = '''from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("from_git", schedule=None, tags=["v1"]):
    EmptyOperator(task_id="first")
'''
DAG_V2 = DAG_V1.replace('["v1"]', '["v2"]').replace('task_id="first")', 'task_id="first") >> EmptyOperator(task_id="second")')


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "server"
    root.mkdir()
    with GitHttpServer(root, USER, TOKEN) as srv:
        yield srv


@pytest.fixture
def repo(server):
    """The DAG repository's working clone (branch main holds dags/from_git.py)."""
    return new_repository(server.root, "dags", {"dags/from_git.py": DAG_V1})


