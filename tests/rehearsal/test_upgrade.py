"""The upgrade rehearsal (local_ecs/upgrade.py, docs/rehearsal.md): the
operations CLI's orchestrator drives the local stand-in of a deployment while the
``upgrade_probe`` DAG's tasks (60, 90 and 120 s, two retries each) are in flight.

The scenario runs once per session; the tests read its report (``.rehearsal/upgrade-report.json``).
"""

from __future__ import annotations

import pytest

from tests.rehearsal.conftest import OUT, report_of

pytestmark = [pytest.mark.rehearsal, pytest.mark.rollout_rehearsal]


def run_scenario(scenario, name: str) -> dict:
    """``scenario(OUT)``'s report, or the one it wrote to ``OUT/name`` (:func:`report_of`)."""
    return report_of(lambda: scenario(OUT), name)


@pytest.fixture(scope="session")
def upgrade_report():
    from local_ecs.upgrade import rehearse_upgrade

    return run_scenario(rehearse_upgrade, "upgrade-report.json")


def no_task_failed_lost_or_run_twice(instances: dict) -> None:
    assert instances, "no task instance found"
    for key, ti in instances.items():
        assert ti["state"] == "success", (key, ti)
        # One try each, and no earlier try in task_instance_history: nothing failed, was lost
        # (failed by the scheduler and retried) or ran twice.
        assert ti["try_number"] == 1 and ti["earlier_tries"] == [], (key, ti)


def test_the_run_in_flight_during_the_upgrade_succeeds_with_no_task_failed_lost_or_run_twice(upgrade_report):
    assert "error" not in upgrade_report, upgrade_report.get("error")
    assert upgrade_report["dag_run_state"] == "success"
    assert len(upgrade_report["running_when_upgrade_started"]) == 3
    no_task_failed_lost_or_run_twice(upgrade_report["task_instances"])
    assert upgrade_report["upgrade"]["workers_left"] == 0


def test_the_schema_is_at_the_new_versions_head_after_the_upgrade(upgrade_report):
    schema = upgrade_report["schema"]
    assert schema["before"] == schema["expected_before"] != schema["after"] == schema["expected_after"]
    # The task that ran after the upgrade ran on the new Airflow.
    assert upgrade_report["versions_returned"]["airflow"] == upgrade_report["to_version"]


def test_the_snapshot_is_taken_before_the_migration_after_the_writers_stopped(upgrade_report):
    steps = [step["name"] for step in upgrade_report["upgrade"]["steps"]]
    assert steps.index("stop-writers") < steps.index("snapshot") < steps.index("migrate") < steps.index("start-services")
    calls = [(method, argument) for _, method, argument in upgrade_report["upgrade_calls"]]
    name = upgrade_report["snapshot"]["name"]
    assert calls.index(("snapshot", name)) < calls.index(("run_airflow", "db migrate"))
    assert [c for c in calls if c[0] == "run_airflow"] == [("run_airflow", "db migrate")]  # migrated once
    assert upgrade_report["snapshot"]["pg_dump_bytes"] > 100_000 and upgrade_report["snapshot"]["rds"] != "None"
    assert upgrade_report["from_version"].replace(".", "-") in name and upgrade_report["to_version"].replace(".", "-") in name


def test_the_rollback_downgrades_the_schema_and_a_run_succeeds_again(upgrade_report):
    assert "error" not in upgrade_report, upgrade_report.get("error")
    schema = upgrade_report["schema"]
    assert schema["after_rollback"] == schema["expected_after_rollback"] == schema["before"]
    calls = [argument for _, method, argument in upgrade_report["rollback_calls"] if method == "run_airflow"]
    assert calls == [f"db downgrade --to-version {upgrade_report['from_version']} -y"]
    assert upgrade_report["dag_run_after_rollback"] == "success"
    no_task_failed_lost_or_run_twice(upgrade_report["task_instances_after_rollback"])
    assert upgrade_report["versions_returned_after_rollback"]["airflow"] == upgrade_report["from_version"]


def test_the_upgrade_report_has_seconds_and_downtime_and_nothing_is_left(upgrade_report):
    assert {"upgrade", "rollback", "start_old", "probe_run_after_upgrade"} <= set(upgrade_report["steps"])
    downtime = upgrade_report["downtime"]
    assert downtime["ui_samples"] > 10 and downtime["scheduling_gap_seconds"] is not None
    assert upgrade_report["iam_denials"] == [] and upgrade_report["left_running"] == []
