"""The image-rollout rehearsal (local_ecs/upgrade.py, docs/rehearsal.md): new DAG code in an
image of the same Airflow version, rolled out by the operations CLI's orchestrator while the
``upgrade_probe`` DAG's tasks are in flight. The scenario runs once per session; the tests read
its report (``.rehearsal/image-rollout-report.json``).
"""

from __future__ import annotations

import pytest

from tests.rehearsal.test_upgrade import no_task_failed_lost_or_run_twice, run_scenario

pytestmark = [pytest.mark.rehearsal, pytest.mark.rollout_rehearsal]


@pytest.fixture(scope="session")
def rollout_report():
    from local_ecs.upgrade import rehearse_image_rollout

    return run_scenario(rehearse_image_rollout, "image-rollout-report.json")



def test_an_image_rollout_takes_no_snapshot_migrates_nothing_and_loses_no_task(rollout_report):
    assert "error" not in rollout_report, rollout_report.get("error")
    methods = {method for _, method, _ in rollout_report["rollout_calls"]}
    assert not methods & {"snapshot", "run_airflow", "restore_snapshot"}, methods
    assert rollout_report["rds_snapshots"] == [] and rollout_report["rollout"]["snapshot"] is None
    assert rollout_report["schema"]["before"] == rollout_report["schema"]["after"]
    assert rollout_report["dag_run_state"] == "success"
    no_task_failed_lost_or_run_twice(rollout_report["task_instances"])


def test_workers_launched_after_the_rollout_run_the_new_dag_code(rollout_report):
    assert rollout_report["versions_returned"]["code"] == "v2"  # launched after the rollout
    assert rollout_report["dag_run_after_rollout"] == "success"
    assert rollout_report["versions_returned_after_rollout"]["code"] == "v2"


def test_the_rollout_replaces_each_service_as_its_deployment_configuration_says(rollout_report):
    rollouts = rollout_report["rollouts"]
    assert set(rollouts) == {"scheduler", "api-server", "dag-processor", "triggerer"}
    for service, events in rollouts.items():
        kinds = [event.split()[0] for event in events]
        if service == "api-server":  # listens on a port: stop-first on the stand-in's host network
            assert kinds == ["stop", "start", "healthy"], events
        else:  # minimum healthy 100 %, maximum 200 %: the new task healthy before the old stops
            assert kinds == ["start", "healthy", "stop"], events
    assert rollout_report["iam_denials"] == [] and rollout_report["left_running"] == []
