"""The rehearsal: the synthesized deployment run as ECS would run it (podman, moto with IAM
enforced, TLS-only PostgreSQL), for each configuration of ``CONFIGURATIONS``.

Each configuration runs once per session (about 3 minutes); the tests read its report, which
is also written to ``.rehearsal/report-<name>.json`` (and ``.rehearsal/report.json`` for all).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from local_ecs.scenario import rehearse
from tests.rehearsal.conftest import CONFIGURATIONS, OUT, PROJECT_ROOT, report_of

pytestmark = pytest.mark.rehearsal
_REPORTS: dict[str, dict] = {}


def _run(name: str, cdk_out) -> dict:
    if name not in _REPORTS:
        _REPORTS[name] = report_of(lambda: rehearse(cdk_out(name), OUT, name=name,
                                                    dags_dir=PROJECT_ROOT / "dags" if name == "s3" else None,
                                                    browser=name == "default"), f"report-{name}.json")
        summary = {"configurations": {n: {k: r.get(k) for k in ("dag_run_state", "task_log_from_s3", "iam_denials",
                                                                 "seconds", "error")} for n, r in _REPORTS.items()}}
        (OUT / "report.json").write_text(json.dumps({**_REPORTS.get("default", {}), **summary}, indent=2) + "\n")
    return _REPORTS[name]


#: Configurations whose rehearsal is known not to pass yet (docs/rehearsal.md), reported as xfail.
KNOWN_FAILING: dict[str, str] = {}


@pytest.fixture(scope="session", params=[
    pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_FAILING[name], strict=False)) if name in KNOWN_FAILING
    else name for name in CONFIGURATIONS])
def report(request, cdk_out):
    return _run(request.param, cdk_out)


@pytest.fixture(scope="session")
def default_report(cdk_out):
    return _run("default", cdk_out)


def test_the_run_succeeds_with_every_task_in_a_worker_container(report):
    assert "error" not in report, report.get("error")
    assert report["dag_run_state"] == "success", report.get("task_instances")
    assert set(report["task_instances"].values()) == {"success"}
    # One ECS task per Airflow task, launched by the scheduler's RunTask.
    assert report["worker_tasks_launched"] >= len(report["task_instances"]) == 7
    workers = [c for c in report["containers"] if c["task"].startswith("w")]
    assert workers and all(c["exit_code"] == 0 for c in workers)


def test_services_became_healthy_by_their_own_health_checks(report):
    checked = [c for c in report["containers"] if c["health_status"] is not None]
    assert {c["name"] for c in checked} == {"scheduler", "api-server", "dag-processor", "triggerer"}
    assert all(c["healthy"] for c in checked), checked
    inits = [c for c in report["containers"] if c["name"] in ("db-migrate", "wait-for-migrations")]
    assert len(inits) == 4 and all(c["exit_code"] == 0 for c in inits)


def test_task_log_is_read_back_from_s3_through_the_rest_api(report):
    assert report["task_log_from_s3"] is True, report.get("task_log")


def test_iam_denies_nothing_the_deployment_does_and_exactly_what_the_access_probe_may_not_do(report):
    """Only the default configuration runs the access probe; its three refused requests are the
    only denials: the workers' principal asking for another deployment's secret, the team task's
    principal writing under the other team's prefix and reading the other team's secret."""
    probe = report.get("access_probe")
    if report["configuration"] != "default":
        assert probe is None and report["iam_denials"] == []
        return
    assert probe is not None, report.get("error")
    stored, conf, tasks = probe["stored"], probe["conf"], probe["worker_tasks"]
    worker, team = tasks["other_deployment"]["principal"], tasks["team"]["principal"]
    expected = sorted([
        f"AccessDenied: {worker} is not authorized to perform secretsmanager:GetSecretValue on "
        f"{stored['other_deployment_secret']['arn']}",
        f"AccessDenied: {team} is not authorized to perform s3:PutObject on "
        f"arn:aws:s3:::{conf['bucket']}/team-b/access-probe.txt",
        f"AccessDenied: {team} is not authorized to perform secretsmanager:GetSecretValue on "
        f"{stored['team_secrets']['team-b']['arn']}",
    ])
    assert report["iam_denials"] == expected
    # python -m local_ecs rehearse judges by the probe's own list: the same three.
    assert probe["expected_iam_denials"] == expected


def _probe(report: dict) -> dict:
    probe = report.get("access_probe")
    assert probe is not None, report.get("error")
    assert probe["dag_run_state"] == "success", (probe["task_instances"], probe["returned"])
    return probe


def test_a_dag_reads_the_connection_and_variable_the_cli_stored_in_secrets_manager(default_report):
    probe = _probe(default_report)
    stored = probe["stored"]
    name = stored["connection"]["name"]
    # Stored by the operations CLI (airflow-ecs connections set / variables set) under the prefixes.
    assert stored["cli"] == [f"created connection {name} (airflow/dev/connections/{name})",
                             f"created variable {name} (airflow/dev/variables/{name})",
                             f"created connection {name} (airflow/prod/connections/{name})"]
    # Read in a worker through Airflow's secrets backend: nothing else holds them.
    assert probe["returned"]["connection_and_variable"] == {**stored["connection"]["expected"],
                                                            "variable": stored["variable"]["value"]}
    assert probe["worker_tasks"]["connection_and_variable"]["family"] == "airflow-dev-worker"


def test_a_dag_asking_for_another_deployments_secret_is_denied(default_report):
    returned = _probe(default_report)["returned"]["other_deployment"]
    assert returned["secret"] == "airflow/prod/connections/rehearsal_probe"
    assert (returned["outcome"], returned["status"]) == ("denied", 403), returned


def test_a_team_queue_task_runs_with_its_own_family_and_role_and_reaches_only_its_prefixes(default_report):
    probe = _probe(default_report)
    tasks, returned, stored = probe["worker_tasks"], probe["returned"]["team"], probe["stored"]
    # Launched by the executor from the queue's own task definition, signed as its own role.
    assert tasks["team"]["family"] == "airflow-dev-worker-team-a"
    assert tasks["team"]["task_role"] == "arn:aws:iam::123456789012:role/airflow-dev-worker-team-a"
    assert tasks["team"]["principal"] == "arn:aws:iam::123456789012:user/airflow-dev-worker-team-a"
    assert tasks["other_deployment"]["family"] == "airflow-dev-worker"
    assert tasks["other_deployment"]["task_role"] != tasks["team"]["task_role"]
    written = hashlib.sha256(b"written by the access probe").hexdigest()
    assert returned["own_prefix"] == {"key": "team-a/access-probe.txt", "outcome": "allowed", "value": written}
    assert returned["own_secret"] == {"name": "team-a/probe-token", "outcome": "allowed",
                                      "value": stored["team_secrets"]["team-a"]["sha256"]}
    for key, name in (("other_prefix", "team-b/access-probe.txt"), ("other_secret", "team-b/probe-token")):
        assert (returned[key].get("key") or returned[key].get("name"), returned[key]["outcome"],
                returned[key]["status"]) == (name, "denied", 403), returned[key]


def test_worker_start_overhead_is_measured_for_every_worker_task(default_report):
    """Per worker task, container start -> the task instance's start_date (docs/worker-start.md):
    every worker container was inspected before its removal and paired with its task instance."""
    overhead = default_report["worker_start_overhead"]
    ran = len(default_report["task_instances"]) + len(_probe(default_report)["task_instances"])
    assert overhead["workers_inspected"] == overhead["workers_launched"] >= ran == 10
    rows = overhead["rows"]
    assert len({(r["dag_id"], r["task_id"], r["map_index"]) for r in rows}) == len(rows) == ran
    # The task's start is after its container's, within the scheduler's heartbeat timeout (300 s).
    assert all(0 < r["seconds"] < 300 for r in rows), rows
    assert overhead["summary"]["count"] == ran


def test_async_path_works_against_tls_only_postgres(report):
    assert report["async_wait"]["ok"], report["async_wait"]


def test_every_service_stops_on_sigterm_within_its_stop_timeout_and_nothing_is_left(report):
    assert report["stopped_within_stop_timeout"], [
        (c["name"], c["stop_seconds"], c["exit_code"]) for c in report["containers"] if c["stop_seconds"]]
    assert report["left_running"] == []


def test_scratch_space_and_read_only_root(report):
    assert report["scratch"] == {**report["scratch"], "tmp_writable_by_50000": True, "root_read_only": True}


def test_browser_logs_in_and_shows_the_task_log(default_report):
    """Chromium logs in and opens the load task's log page (default configuration only)."""
    browser = default_report.get("browser") or {}
    assert browser.get("ok"), browser
    assert Path(browser["screenshot"]).stat().st_size > 10_000


@pytest.fixture(scope="session")
def reload_report(cdk_out):
    """make local's set-up (dags/ mounted, not baked) with a DAG written and then edited."""
    from local_ecs.scenario import rehearse_reload

    return report_of(lambda: rehearse_reload(cdk_out("default"), OUT, PROJECT_ROOT / "dags"),
                     "report-local-reload.json")


def test_make_local_runs_a_new_and_then_an_edited_dag_without_a_rebuild(reload_report):
    assert "error" not in reload_report, reload_report.get("error")
    new, edit = reload_report["reload"]["new"], reload_report["reload"]["edit"]
    assert new["run_state"] == edit["run_state"] == "success", reload_report["reload"]
    # The worker launched after the edit ran the edited file: its return value is the edit's.
    assert "new" in str(new["returned"]) and "edit" in str(edit["returned"]), reload_report["reload"]
    assert reload_report["iam_denials"] == [] and reload_report["left_running"] == []


def test_the_execution_api_is_refused_through_the_load_balancer_and_served_inside(report):
    """The listener's rule (the template's, played by the load balancer stand-in) answers 403;
    the api-server itself serves the Execution API, which the workers reach by Cloud Map."""
    assert report["execution_api"] == {"through_load_balancer": 403, "on_the_api_server": 200}
