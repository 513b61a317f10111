"""End to end: real Airflow 3 processes, real PostgreSQL, the ECS executor against moto ECS.

The independent scenarios are triggered together at the start, so their tasks overlap as they would
in production and the suite stays inside its time budget; each test then waits for its own run and
asserts final states. The scheduler-restart scenario runs last, on its own.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.e2e.conftest import (
    OOM_TASK,
    TERMINAL_TI_STATES,
    THROTTLED_DAG,
    is_stock_executor,
    wait_until,
)
from tests.e2e.dags.e2e_burst import BURST_SIZE
from tests.e2e.dags.e2e_failing import RETRIES
from tests.e2e.dags.e2e_mapped import MAP_SIZE
from tests.e2e.fargate import OOM_REASON

pytestmark = pytest.mark.e2e

CONCURRENT_SCENARIOS = ("e2e_xcom_chain", "e2e_failing", "e2e_oom", THROTTLED_DAG, "e2e_mapped")


@pytest.fixture(scope="module")
def runs(airflow):
    return airflow.trigger(*CONCURRENT_SCENARIOS)


def states(tis) -> dict[str, str]:
    return {f"{task_id}[{map_index}]" if map_index >= 0 else task_id: ti["state"]
            for (task_id, map_index), ti in tis.items()}


def test_dependencies_and_xcom(airflow, runs):
    run_id = runs["e2e_xcom_chain"]
    tis = airflow.wait_for_run("e2e_xcom_chain", run_id, timeout=420)
    assert states(tis) == {"extract": "success", "double": "success", "square": "success", "load": "success"}
    assert airflow.run_state("e2e_xcom_chain", run_id) == "success"
    # `load` checks the values it received; here check the one it pushed.
    rows = airflow.postgres.query(
        "SELECT value::text FROM xcom WHERE dag_id = 'e2e_xcom_chain' AND run_id = %s AND task_id = 'load'",
        (run_id,))
    assert rows and rows[0][0].strip('"') == "50"


def test_failing_task_is_retried_then_failed(airflow, runs):
    run_id = runs["e2e_failing"]
    tis = airflow.wait_for_run("e2e_failing", run_id, timeout=300)
    assert states(tis) == {"boom": "failed", "never_runs": "upstream_failed"}
    assert tis[("boom", -1)]["try_number"] == RETRIES + 1
    # Earlier tries are archived on retry (their state recorded as failed).
    tries = airflow.postgres.query(
        "SELECT try_number, state FROM task_instance_history WHERE dag_id = 'e2e_failing' AND run_id = %s "
        "AND task_id = 'boom' ORDER BY try_number", (run_id,))
    assert tries == [(n, "failed") for n in range(1, RETRIES + 1)]
    # Airflow retried it, one container per try; execute_workload exits 0 when the task fails.
    containers = sorted((c.workload["ti"]["try_number"], c.exit_code) for c in airflow.fargate.finished
                        if c.workload and c.workload["ti"]["dag_id"] == "e2e_failing")
    assert containers == [(n, 0) for n in range(1, RETRIES + 2)]
    assert airflow.run_state("e2e_failing", run_id) == "failed"


def test_oom_killed_container_fails_task_with_reason(airflow, runs):
    dag_id, task_id = OOM_TASK
    run_id = runs[dag_id]
    tis = airflow.wait_for_run(dag_id, run_id, timeout=300)
    assert states(tis) == {task_id: "failed"}
    killed = [c for c in airflow.fargate.finished
              if (c.workload or {}).get("ti", {}).get("dag_id") == dag_id and c.exit_code == 137]
    assert killed, "the harness never killed the container"
    # Killed while its code ran, not before it started.
    started = airflow.postgres.query(
        "SELECT start_date IS NOT NULL FROM task_instance WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
    assert started == [(True,)]
    if is_stock_executor():
        pytest.xfail("the stock AwsEcsExecutor logs stoppedReason only to the scheduler log (docs/architecture.md, section 2, defect 9)")
    events = airflow.events(dag_id)
    assert any(OOM_REASON in extra and "137" in extra for _, _, extra in events), (
        f"no task event gives the exit code 137 and {OOM_REASON!r}; events for {dag_id}: {events}")


def test_run_task_throttling_during_burst(airflow, runs):
    run_id = runs[THROTTLED_DAG]
    tis = airflow.wait_for_run(THROTTLED_DAG, run_id, timeout=420)
    assert len(tis) == BURST_SIZE
    assert set(states(tis).values()) == {"success"}
    throttled = {key for key in airflow.moto.throttled}
    assert len(throttled) >= BURST_SIZE, f"throttling was not injected for every task: {airflow.moto.throttled}"


def test_mapped_task_with_50_indexes(airflow, runs):
    run_id = runs["e2e_mapped"]
    tis = airflow.wait_for_run("e2e_mapped", run_id, timeout=540)
    mapped = {k[1]: v["state"] for k, v in tis.items() if k[0] == "add_one"}
    assert sorted(mapped) == list(range(MAP_SIZE))
    assert set(mapped.values()) == {"success"}
    assert tis[("numbers", -1)]["state"] == "success"
    assert tis[("total", -1)]["state"] == "success"
    assert airflow.run_state("e2e_mapped", run_id) == "success"


def test_executor_task_events_reach_the_log_table(airflow, runs):
    """The executor's own events (here: RunTask throttled, once per burst task) are persisted."""
    if is_stock_executor():
        pytest.skip("the stock AwsEcsExecutor does not log intermediate submit failures (docs/architecture.md, section 2, defect 4)")
    airflow.wait_for_run(THROTTLED_DAG, runs[THROTTLED_DAG], timeout=420)
    time.sleep(5)  # events are saved at the end of the scheduler loop that produced them
    lost = [name for name, path in airflow.log_files.items()
            if name.startswith("scheduler") and "trying to save task event logs" in path.read_text(errors="replace")]
    assert not lost, f"{lost} failed to save executor task events"
    told = {task_id for task_id, _, extra in airflow.events(THROTTLED_DAG) if "throttl" in extra.lower()}
    assert told == {f"burst_{i}" for i in range(BURST_SIZE)}, airflow.events(THROTTLED_DAG)


def test_scheduler_restart_while_tasks_run(airflow, runs):
    for dag_id in CONCURRENT_SCENARIOS:  # start from a quiet system, so the restart is the only variable
        airflow.wait_for_run(dag_id, runs[dag_id], timeout=540)
    run_id = airflow.trigger("e2e_restart")["e2e_restart"]

    def some_running():
        tis = airflow.task_instances("e2e_restart", run_id)
        return sum(1 for (task_id, _), ti in tis.items() if task_id == "slow" and ti["state"] == "running") >= 2

    wait_until(some_running, 180, what="two `slow` tasks running")
    old = airflow.scheduler
    airflow.kill(old)  # SIGKILL: no executor.end(), no chance to tidy up
    time.sleep(2)
    airflow.start_scheduler()
    tis = airflow.wait_for_run("e2e_restart", run_id, timeout=300)
    slow = {k[1]: v for k, v in tis.items() if k[0] == "slow"}
    assert sorted(slow) == list(range(6))
    assert {ti["state"] for ti in slow.values()} == {"success"}, states(tis)
    # Adopted by the new scheduler, not reset and run again (which would have made a second try).
    assert {ti["try_number"] for ti in slow.values()} == {1}, states(tis)
    assert tis[("after", -1)]["state"] == "success"


def test_no_task_instance_lost_or_stuck(airflow, runs):
    """Whole-system invariants, after every scenario: all TIs final, no container left, none run twice."""
    rows = airflow.postgres.query("SELECT dag_id, run_id, task_id, map_index, state FROM task_instance")
    stuck = [row for row in rows if row[4] not in TERMINAL_TI_STATES]
    assert not stuck, f"task instances not in a final state: {stuck}"
    runs_not_done = airflow.postgres.query(
        "SELECT dag_id, run_id, state FROM dag_run WHERE state NOT IN ('success', 'failed')")
    assert not runs_not_done
    fargate = airflow.fargate
    # A worker reports its final state through the Execution API a moment before its process exits.
    wait_until(lambda: not fargate.running and not fargate.pending, 60, what="every container to exit")
    assert not fargate.errors, fargate.errors
    # No task try ran in two containers at once or one after the other (a relaunch of a task that
    # had started would run the Airflow task twice).
    started = Counter(
        (c.workload["ti"]["id"], c.workload["ti"]["try_number"])
        for c in fargate.finished if c.workload and c.started_at is not None)
    if not is_stock_executor():  # the stock executor relaunches a started task (docs/architecture.md, section 2, defect 5)
        assert not {k: n for k, n in started.items() if n > 1}
