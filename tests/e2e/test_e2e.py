"""End to end: real Airflow 3 processes, real PostgreSQL, the ECS executor against moto ECS.

The independent scenarios are triggered together at the start, so their tasks overlap as they would
in production and the suite stays inside its time budget; each test then waits for its own run and
asserts final states. The scheduler-restart scenario runs last, on its own.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections import Counter

import pytest

from tests.e2e.local_airflow import wait_until
from tests.e2e.scenarios import (
    OOM_TASK,
    OUTAGE_DAG,
    OUTAGE_SECONDS,
    TERMINAL_TI_STATES,
    THROTTLED_DAG,
    WORKER_LOG_GROUP,
    is_stock_executor,
)
from tests.e2e.dags.e2e_burst import BURST_SIZE
from tests.e2e.dags.e2e_failing import RETRIES
from tests.e2e.dags.e2e_mapped import MAP_SIZE
from tests.e2e.dags.e2e_outage import OUTAGE_TASKS
from tests.e2e.dags.policy_bad_executor_config import BAD_DAG_ID, BAD_TASK_ID
from tests.e2e.fargate import OOM_REASON

pytestmark = pytest.mark.e2e

CONCURRENT_SCENARIOS = ("e2e_live_log", OUTAGE_DAG, "e2e_xcom_chain", "e2e_failing", "e2e_oom", THROTTLED_DAG,
                        "e2e_mapped")


@pytest.fixture(scope="module")
def runs(airflow):
    return airflow.trigger(*CONCURRENT_SCENARIOS)


def api_get(airflow, path: str) -> dict:
    request = urllib.request.Request(f"{airflow.api_url}{path}", headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_running_task_log_is_read_through_the_rest_api(airflow, runs):
    """8.7: while `talk` runs, its log lines so far come from the worker's CloudWatch stream (the
    api-server's executor.get_task_log), not from port 8793 and not from a shared disk."""
    if is_stock_executor():
        pytest.xfail("the stock AwsEcsExecutor does not implement get_task_log")
    run_id = runs["e2e_live_log"]

    def running():
        airflow.assert_alive()
        ti = airflow.task_instances("e2e_live_log", run_id).get(("talk", -1))
        return ti if ti and ti["state"] == "running" else None

    ti = wait_until(running, 300, interval=1.0, what="e2e_live_log.talk to run")
    path = f"/api/v2/dags/e2e_live_log/dagRuns/{run_id}/taskInstances/talk/logs/{ti['try_number']}?full_content=true"

    def live_lines():
        text = json.dumps(api_get(airflow, path))
        return text if "live line 3" in text else None

    text = wait_until(live_lines, 60, interval=2.0, what="live log lines through the REST API")
    assert airflow.task_instances("e2e_live_log", run_id)[("talk", -1)]["state"] == "running"
    assert WORKER_LOG_GROUP in text and "CloudWatch Logs" in text
    assert "Could not read served logs" not in text and "8793" not in text
    assert "live line 39" not in text  # read while it ran, not after


def test_outage_delays_tasks_without_failing_them(airflow, runs):
    """9.1: RunTask answers 503 for OUTAGE_SECONDS from the burst's first launch; every task of the
    burst succeeds on its first try (task_queued_timeout is the default 600 s)."""
    run_id = runs[OUTAGE_DAG]
    tis = airflow.wait_for_run(OUTAGE_DAG, run_id, timeout=420)
    assert {k: (v["state"], v["try_number"]) for k, v in states_raw(tis).items()} == {
        f"during_outage_{i}": ("success", 1) for i in range(OUTAGE_TASKS)}
    refused = airflow.moto.outage_refused
    assert len(refused) == OUTAGE_TASKS, f"the outage did not hit every task: {refused}"
    if is_stock_executor():
        return
    told = [(task_id, extra) for task_id, event, extra in airflow.events(OUTAGE_DAG)
            if event == "ecs task launched after retries"]
    assert {task_id for task_id, _ in told} == {f"during_outage_{i}" for i in range(OUTAGE_TASKS)}, told
    # Launched only after the outage ended.
    seconds = [int(extra.split(" over ")[1].split(" s")[0]) for _, extra in told]
    assert min(seconds) >= OUTAGE_SECONDS - 5, told


def test_bad_executor_config_is_an_import_error_and_the_scheduler_runs_on(airflow, runs):
    """9.2: the cluster policy (airflow.policy entry point) turns the DAG into an import error that
    names the task and the fix; it is never serialized or scheduled; the scheduler stays up."""
    def import_error():
        rows = airflow.postgres.query("SELECT filename, stacktrace FROM import_error")
        return [r for r in rows if r[0].endswith("policy_bad_executor_config.py")]

    (row,) = wait_until(import_error, 120, what="the import error of the bad DAG")
    assert BAD_TASK_ID in row[1] and "must be a dict" in row[1] and "queue=" in row[1], row[1]
    assert not airflow.postgres.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (BAD_DAG_ID,))
    assert not airflow.postgres.query("SELECT 1 FROM dag_run WHERE dag_id = %s", (BAD_DAG_ID,))
    errors = api_get(airflow, "/api/v2/importErrors")
    assert any(BAD_TASK_ID in e["stack_trace"] for e in errors["import_errors"])
    airflow.wait_for_run("e2e_xcom_chain", runs["e2e_xcom_chain"], timeout=420)
    airflow.assert_alive()


def test_harness_is_as_strict_as_ecs(airflow):
    """9.6: a running container has no exit code; an INACTIVE task definition is refused."""
    from botocore.exceptions import ClientError

    ecs = airflow.moto.ecs
    running = [c for c in list(airflow.fargate.running.values())]
    for container in running[:3]:
        (task,) = ecs.describe_tasks(cluster="airflow-e2e", tasks=[container.task_arn])["tasks"]
        if task["lastStatus"] == "RUNNING":
            assert all("exitCode" not in c for c in task["containers"]), task["containers"]
    arn = ecs.register_task_definition(
        family="e2e-inactive", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "x", "image": "x", "memory": 512}])["taskDefinition"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=arn)
    network = {"awsvpcConfiguration": {"subnets": [airflow.moto.subnet], "securityGroups": []}}
    for ref in ("e2e-inactive", arn):
        with pytest.raises(ClientError) as caught:
            ecs.run_task(cluster="airflow-e2e", taskDefinition=ref, launchType="FARGATE",
                         networkConfiguration=network)
        assert caught.value.response["Error"]["Code"] == "ClientException"


def states_raw(tis) -> dict[str, dict]:
    return {f"{task_id}[{map_index}]" if map_index >= 0 else task_id: ti for (task_id, map_index), ti in tis.items()}


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
    # 9.5: where the UI shows it: the task instance's Audit Log tab reads this REST query, by try.
    found = api_get(airflow, f"/api/v2/eventLogs?dag_id={dag_id}&task_id={task_id}&run_id={run_id}&try_number=1")
    stopped = [e for e in found["event_logs"] if e["event"] == "ecs task stopped"]
    assert stopped and OOM_REASON in stopped[0]["extra"] and "137" in stopped[0]["extra"], found


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
    expected = {f"burst_{i}" for i in range(BURST_SIZE)}

    def told() -> set[str]:
        return {task_id for task_id, _, extra in airflow.events(THROTTLED_DAG) if "throttl" in extra.lower()}

    # Events are saved at the end of the scheduler loop that produced them: wait for the rows.
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: told() >= expected, 120, interval=1.0, what="the throttling events in the log table")
    lost = [name for name, path in airflow.log_files.items()
            if name.startswith("scheduler") and "trying to save task event logs" in path.read_text(errors="replace")]
    assert not lost, f"{lost} failed to save executor task events"
    assert told() == expected, airflow.events(THROTTLED_DAG)


def test_scheduler_restart_while_tasks_run(airflow, runs):
    for dag_id in CONCURRENT_SCENARIOS:  # start from a quiet system, so the restart is the only variable
        airflow.wait_for_run(dag_id, runs[dag_id], timeout=540)
    run_id = airflow.trigger("e2e_restart")["e2e_restart"]

    def some_running():
        tis = airflow.task_instances("e2e_restart", run_id)
        return sum(1 for (task_id, _), ti in tis.items() if task_id == "slow" and ti["state"] == "running") >= 2

    wait_until(some_running, 180, what="two `slow` tasks running")
    old = airflow.scheduler
    airflow.kill(old)  # SIGKILL: no executor.end(), no chance to tidy up; returns once it has exited
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
