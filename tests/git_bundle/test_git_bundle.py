"""The git DAG bundle (``dag_bundle=git``) against a real git server on localhost.

Airflow's own ``GitDagBundle`` (apache-airflow-providers-git, installed from requirements-dev.txt)
is built by Airflow's ``DagBundlesManager`` from the ``dag_bundle_config_list`` this app writes
(:func:`constructs_lib.airflow_settings.dag_bundle_config`), with the connection as the ECS secret
hands it over (``AIRFLOW_CONN_GIT_DAGS``, the secret's JSON), and fetches from ``git http-backend``
behind basic auth (:mod:`standins.gitserver`). The tests play what the dag-processor does
(``initialize()`` once, ``refresh()`` every ``refresh_interval``) and what a worker does
(``initialize()`` of the version its task was parsed at).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from git.exc import GitCommandError

from app_config.model import GitBundleConfig
from constructs_lib.airflow_settings import GIT_CONN_ID, dag_bundle_config
from standins.gitserver import GitHttpServer, commit_files, git, push_over_http

from tests.git_bundle.conftest import DAG_V1, DAG_V2, TOKEN, USER


def airflow_env(monkeypatch, tmp_path: Path, server: GitHttpServer, *, branch: str = "main", token: str = TOKEN,
                refresh_seconds: int = 5) -> None:
    """The environment the dag-processor and the workers get with ``dag_bundle=git``."""
    git_config = GitBundleConfig(f"{server.url}/dags.git", branch, refresh_seconds, "airflow/dev/git-dags")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", dag_bundle_config("git", None, git_config))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "bundles"))
    # What the secret holds (README, "Writing DAGs"), as ECS puts it in the environment.
    monkeypatch.setenv(f"AIRFLOW_CONN_{GIT_CONN_ID.upper()}",
                       json.dumps({"conn_type": "git", "login": USER, "password": token}))
    # Nothing outside the test may answer for credentials (a developer's credential helper).
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")


def the_bundle(version: str | None = None):
    """The bundle as Airflow builds it from ``[dag_processor] dag_bundle_config_list``."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    return DagBundlesManager().get_bundle("git-dags", version)


def version_of(bundle) -> str:
    current = bundle.get_current_version()
    return getattr(current, "version", current)


def test_a_push_shows_up_at_the_next_refresh(monkeypatch, tmp_path, server, repo, capsys):
    airflow_env(monkeypatch, tmp_path, server)
    bundle = the_bundle()
    assert type(bundle).__name__ == "GitDagBundle" and bundle.refresh_interval == 5
    bundle.initialize()
    first = version_of(bundle)
    assert (bundle.path / "dags" / "from_git.py").read_text() == DAG_V1

    pushed = commit_files(repo, {"dags/from_git.py": DAG_V2}, "second task")
    push_over_http(repo, server, "dags")
    started = time.monotonic()
    bundle.refresh()
    seconds = time.monotonic() - started

    assert (bundle.path / "dags" / "from_git.py").read_text() == DAG_V2
    assert version_of(bundle) == pushed != first
    assert server.requests.get(401, 0) >= 1 and server.requests.get(200, 0) >= 4  # auth was asked for and given
    with capsys.disabled():
        print(f"\ngit bundle: refresh after a push took {seconds:.2f} s (plus up to refresh_interval=5 s of waiting)")


def test_a_worker_fetches_the_version_its_task_was_parsed_at(monkeypatch, tmp_path, server, repo):
    airflow_env(monkeypatch, tmp_path, server)
    first = git("rev-parse", "HEAD", cwd=repo).strip()
    commit_files(repo, {"dags/from_git.py": DAG_V2}, "second task")
    push_over_http(repo, server, "dags")

    # A worker has no copy yet: it clones the remote and checks out that exact commit.
    worker = the_bundle(version=first)
    worker.initialize()
    assert (worker.path / "dags" / "from_git.py").read_text() == DAG_V1
    assert worker.path.name == first


def test_a_branch_that_does_not_exist_fails_initialize_naming_the_branch(monkeypatch, tmp_path, server, repo):
    airflow_env(monkeypatch, tmp_path, server, branch="no-such-branch")
    bundle = the_bundle()
    with pytest.raises(GitCommandError) as err:
        bundle.initialize()
    # git's own message names the missing ref: "pathspec 'no-such-branch' did not match".
    assert "no-such-branch" in str(err.value)
    assert TOKEN not in str(err.value)


def test_a_deleted_branch_keeps_the_last_version(monkeypatch, tmp_path, server, repo):
    airflow_env(monkeypatch, tmp_path, server)
    bundle = the_bundle()
    bundle.initialize()
    first = version_of(bundle)
    git("update-ref", "-d", "refs/heads/main", cwd=server.root / "dags.git")  # the branch is deleted on the host

    bundle.refresh()  # the fetch does not prune: the last fetched head of the branch stays

    assert version_of(bundle) == first
    assert (bundle.path / "dags" / "from_git.py").read_text() == DAG_V1


def test_a_refused_token_fails_refresh_and_keeps_the_last_version(monkeypatch, tmp_path, server, repo):
    airflow_env(monkeypatch, tmp_path, server)
    bundle = the_bundle()
    bundle.initialize()
    first = version_of(bundle)
    commit_files(repo, {"dags/from_git.py": DAG_V2}, "second task")
    push_over_http(repo, server, "dags")
    server.token = "rotated"  # the git host no longer accepts the token the tasks started with

    started = time.monotonic()
    with pytest.raises(GitCommandError) as err:
        bundle.refresh()  # the dag-processor logs "Error refreshing bundle git-dags" with this, and goes on
    assert time.monotonic() - started < 30, "git must fail, not wait for a password prompt"

    message = str(err.value)
    assert "fatal: Authentication failed for" in message, message
    assert TOKEN not in message
    assert version_of(bundle) == first
    assert (bundle.path / "dags" / "from_git.py").read_text() == DAG_V1


def test_a_token_that_is_not_there_fails_initialize(monkeypatch, tmp_path, server, repo):
    airflow_env(monkeypatch, tmp_path, server, token="")
    bundle = the_bundle()
    with pytest.raises(Exception) as err:
        bundle.initialize()
    assert "could not read Username" in str(err.value.__cause__ or err.value), repr(err.value)


def test_the_https_server_serves_whoever_trusts_its_certificate(tmp_path):
    """The rehearsal's git host (``tls_host``): a push and a clone over HTTPS succeed with the
    certificate trusted (``GIT_SSL_CAINFO``, as the rehearsal's containers get it) and the name
    resolved to 127.0.0.1; without the certificate git refuses the server."""
    from standins.gitserver import new_repository

    root = tmp_path / "server"
    root.mkdir()
    with GitHttpServer(root, USER, TOKEN, tls_host="git.rehearsal.test") as server:
        assert server.url.startswith("https://git.rehearsal.test:") and server.certificate is not None
        resolve = [f"git.rehearsal.test:{server.url.rsplit(':', 1)[1]}:127.0.0.1"]
        work = new_repository(root, "dags", {"dags/from_git.py": DAG_V1})
        commit_files(work, {"dags/from_git.py": DAG_V2}, "v2")
        push_over_http(work, server, "dags", resolve=resolve)
        url = server.url.replace("https://", f"https://{USER}:{TOKEN}@") + "/dags.git"
        options = ("-c", f"http.curloptResolve={resolve[0]}")
        git(*options, "clone", "--quiet", url, str(tmp_path / "trusted"), cwd=tmp_path,
            env={"GIT_SSL_CAINFO": str(server.certificate)})
        assert "second" in (tmp_path / "trusted" / "dags" / "from_git.py").read_text()
        with pytest.raises(Exception) as refused:
            git(*options, "clone", "--quiet", url, str(tmp_path / "untrusted"), cwd=tmp_path)
        assert "certificate" in refused.value.stderr.lower()
