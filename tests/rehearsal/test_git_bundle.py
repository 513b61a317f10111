"""The git DAG bundle and the private package index in the rehearsal (local_ecs/git_bundle.py,
docs/rehearsal.md, ``make rehearsal-git``): the scenario runs once per session; the tests read its
report (``.rehearsal/report-git.json``).

In ``make test`` (marker ``rehearsal``): about 5-6 minutes on a 2-core machine, and no step
depends on the machine's load but through generous timeouts (the measured seconds are reported,
not judged against a tight bound).
"""

from __future__ import annotations

import pytest

from local_ecs.git_bundle import PACKAGE
from tests.rehearsal.conftest import OUT, report_of

pytestmark = pytest.mark.rehearsal


@pytest.fixture(scope="session")
def git_report():
    from local_ecs.git_bundle import rehearse_git_bundle

    return report_of(lambda: rehearse_git_bundle(OUT), "report-git.json")


def test_the_token_of_the_private_index_is_in_no_layer_and_not_in_cdk_out(git_report):
    assert "token_in_image" in git_report, git_report.get("error")
    assert git_report["token_in_cdk_out"] == []
    assert git_report["token_in_image"] == []
    assert git_report["image_archive_mib"] > 100  # the whole image was searched, layers and all


def test_a_dag_from_git_runs_in_workers_with_the_package_of_ours_from_the_private_index(git_report):
    assert "runs" in git_report, git_report.get("error")
    version = git_report["package"].split("==")[1]
    first = git_report["runs"]["first"]
    assert first["state"] == "success"
    assert first["returned"] == f"code=v1 {PACKAGE}={version}"  # a version only the private index has
    assert git_report["worker_tasks_launched"] >= 3  # one per run
    assert git_report["iam_denials"] == [] and git_report["ecs_failures"] == []


def test_a_push_during_a_run_shows_up_and_the_new_version_runs(git_report):
    assert "push" in git_report, git_report.get("error")
    runs = git_report["runs"]
    # The run in flight keeps the commit it started with (the git bundle is versioned) ...
    assert runs["in_flight"]["state"] == "success" and runs["in_flight"]["returned"].startswith("code=v1 ")
    # ... and the run triggered once the push was parsed runs the pushed code.
    assert runs["after_push"]["state"] == "success" and runs["after_push"]["returned"].startswith("code=v2 ")
    push = git_report["push"]
    assert 0 < push["parsed_seconds"] < push["run_seconds"]
    assert git_report["git_requests"].get("401", 0) >= 1  # the server asked for the token, and got it
    assert git_report["left_running"] == []
