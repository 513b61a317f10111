"""The upgrade and image-rollout rehearsals: the operations CLI's orchestrator
(``airflow_ecs_ops.upgrade``: :func:`~airflow_ecs_ops.upgrade.upgrade`,
:func:`~airflow_ecs_ops.upgrade.rollback`) driving the local stand-in of a deployment while a DAG's
tasks are in flight.

:class:`RehearsalTarget` is the orchestrator's ``UpgradeTarget`` with the rehearsal's means:

- ``scale``/``deploy``: the services' tasks started and stopped as ECS does
  (:meth:`~local_ecs.scenario.LocalDeployment.scale_service`, ``roll_service`` with the
  template's minimum healthy and maximum percent), from the task definitions of the synthesis
  deployed (:meth:`~local_ecs.scenario.LocalDeployment.update` registers its revisions in moto);
- ``run_airflow``: a one-off container of the deployed api-server task definition's migration
  container (the new image after ``deploy``), alone, with the command given;
- ``snapshot``: BOTH the RDS API call on moto (``CreateDBSnapshot`` of the stand-in's DB
  instance: the call and the name an operator sees) AND a real ``pg_dump`` of the local
  PostgreSQL to ``<out>/snapshots/<name>.dump``: moto's snapshot holds no data, so only the
  dump can prove that a restore brings the data back (``restore_snapshot`` restores it with
  ``pg_restore`` after dropping the database);
- ``schema_revision``: ``alembic_version`` of the metadata database.

:func:`rehearse_upgrade` and :func:`rehearse_image_rollout` play the scenarios of
docs/rehearsal.md and return their reports (``<out>/upgrade-report.json``,
``<out>/image-rollout-report.json``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from pathlib import Path

from local_ecs.rest import RestClient, http
from local_ecs.scenario import LocalDeployment, RehearsalFailed, wait_parsed
from local_ecs.synth import REHEARSAL_DAGS, synthesize

log = logging.getLogger(__name__)

PROBE_DAG = "upgrade_probe"
PROBE_FILE = "upgrade_probe.py"
#: The project and stage of cdk.json's context (the snapshot name's prefix, as the CLI makes it).
PROJECT, STAGE = "airflow", "dev"


def probe_source(code_version: str) -> str:
    """The rehearsal DAG with ``CODE_VERSION`` set (what an image's DAG code says about itself)."""
    source = (REHEARSAL_DAGS / PROBE_FILE).read_text()
    if 'CODE_VERSION = "v1"' not in source:
        raise RehearsalFailed(f"{REHEARSAL_DAGS / PROBE_FILE} no longer has CODE_VERSION = \"v1\"")
    return source.replace('CODE_VERSION = "v1"', f'CODE_VERSION = "{code_version}"')


def assembly_airflow_version(cdk_out: Path) -> str:
    """The Airflow version of a synthesis: its image asset's ``AIRFLOW_VERSION`` build argument,
    else docker/Dockerfile's default (what the build then uses)."""
    from local_ecs.images import default_airflow_version

    for manifest in Path(cdk_out).glob("*.assets.json"):
        for entry in json.loads(manifest.read_text()).get("dockerImages", {}).values():
            version = entry["source"].get("dockerBuildArgs", {}).get("AIRFLOW_VERSION")
            if version:
                return version
    return default_airflow_version()


class RehearsalTarget:
    """``airflow_ecs_ops.upgrade.UpgradeTarget`` for a :class:`LocalDeployment` (module docstring).

    :param deployment: the running deployment.
    :param deploy_next: the synthesis :meth:`deploy` moves to (set it before a rollback).
    :param snapshot_dir: where the ``pg_dump`` files go.
    :ivar calls: ``(seconds since start, method, argument)`` of every call, in order (the report's
        proof of the order of steps, e.g. the snapshot before the migration).
    """

    def __init__(self, deployment: LocalDeployment, deploy_next: Path, snapshot_dir: Path):
        self.deployment = deployment
        self.deploy_next = Path(deploy_next)
        self.snapshot_dir = Path(snapshot_dir)
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        self.version = assembly_airflow_version(deployment.cdk_out)
        self.calls: list[tuple[float, str, str]] = []
        self.one_off_logs: dict[str, str] = {}
        self.rollouts: dict[str, list[str]] = {}
        self._started = time.monotonic()

    def _call(self, method: str, argument: str = "") -> None:
        self.calls.append((round(time.monotonic() - self._started, 1), method, argument))
        log.info("target.%s(%s)", method, argument)

    # -- the database ------------------------------------------------------------------------

    def _database(self) -> tuple[str, str]:
        credentials = self.deployment.db_credentials
        return credentials["dbname"], credentials["username"]

    def schema_revision(self) -> str | None:
        self._call("schema_revision")
        database, _ = self._database()
        with contextlib.suppress(Exception):
            rows = self.deployment.postgres.psql_rows(database, "SELECT version_num FROM alembic_version")
            return rows[0][0] if rows else None
        return None

    def _db_instance(self) -> str:
        for stack in self.deployment.assembly.stacks.values():
            for logical_id in stack.of_type("AWS::RDS::DBInstance"):
                return self.deployment.aws.resolver.resolve(stack.artifact_id, {"Ref": logical_id})
        raise RehearsalFailed("no AWS::RDS::DBInstance in the assembly")

    def _rds(self):
        rds = self.deployment.aws.client("rds")
        identifier = self._db_instance()
        try:
            rds.describe_db_instances(DBInstanceIdentifier=identifier)
        except rds.exceptions.DBInstanceNotFoundFault:
            # The stand-in's RDS instance exists only for the snapshot API (PostgreSQL is local).
            database, username = self._database()
            rds.create_db_instance(DBInstanceIdentifier=identifier, Engine="postgres", DBInstanceClass="db.t4g.micro",
                                   AllocatedStorage=20, MasterUsername=username, MasterUserPassword="not-used-here-1",
                                   DBName=database)
        return rds, identifier

    def snapshot(self, name: str) -> None:
        self._call("snapshot", name)
        rds, identifier = self._rds()
        rds.create_db_snapshot(DBSnapshotIdentifier=name, DBInstanceIdentifier=identifier)
        database, _ = self._database()
        self.deployment.postgres.dump(database, self.snapshot_dir / f"{name}.dump")

    def snapshot_created(self, name: str) -> dt.datetime | None:
        self._call("snapshot_created", name)
        rds, _ = self._rds()
        try:
            found = rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"]
        except rds.exceptions.DBSnapshotNotFoundFault:
            return None
        return found[0]["SnapshotCreateTime"] if found and (self.snapshot_dir / f"{name}.dump").exists() else None

    def restore_snapshot(self, name: str) -> None:
        self._call("restore_snapshot", name)
        database, owner = self._database()
        self.deployment.postgres.restore(database, owner, self.snapshot_dir / f"{name}.dump")

    # -- the services ------------------------------------------------------------------------

    def deployed_version(self) -> str:
        self._call("deployed_version")
        return self.version

    def service_counts(self) -> dict[str, int]:
        self._call("service_counts")
        d = self.deployment
        return {d.service_name(lid): settings["desired"] for lid, settings in d.service_settings.items()}

    def scale(self, component: str, count: int) -> None:
        """Set the desired count; return when that many tasks run (their main container started,
        what ECS's ``runningCount`` and the AWS target wait for), or, at 0, when they stopped."""
        self._call("scale", f"{component}={count}")
        self.deployment.scale_service(self.deployment.service_by_name(component), count, until="running")

    def running_worker_tasks(self) -> int:
        self._call("running_worker_tasks")
        ecs = self.deployment.ecs
        return sum(1 for task in ecs.tasks.values() if task.status != "STOPPED") + len(ecs.pending)

    def deploy(self) -> None:
        """``cdk deploy`` of :attr:`deploy_next`: its images and task definition revisions, then
        each service rolled over to them as ECS does (services at 0 tasks just get the new
        definition), then the replaced revisions deregistered (CloudFormation's clean-up)."""
        self._call("deploy", str(self.deploy_next))
        d = self.deployment
        registered = d.update(self.deploy_next)
        for logical_id in d.service_specs:
            if d.service_settings[logical_id]["desired"] and d.tasks_of(logical_id):
                self.rollouts[d.service_name(logical_id)] = d.roll_service(logical_id)
        d.deregister_previous_revisions(registered)
        self.version = assembly_airflow_version(self.deploy_next)

    def run_airflow(self, args: list[str]) -> int:
        self._call("run_airflow", " ".join(args))
        code, output = self.deployment.run_one_off(list(args))
        self.one_off_logs[" ".join(args)] = output[-4000:]
        return code if code is not None else 1

    def suspend_scaling(self) -> None:
        self._call("suspend_scaling")  # no Application Auto Scaling in the stand-in

    def resume_scaling(self) -> None:
        self._call("resume_scaling")


class Monitor:
    """Polls, every ``interval`` seconds, the UI's health endpoint through the load balancer
    stand-in and the newest scheduler heartbeat in the database, to measure what a user sees
    during an upgrade.

    :ivar ui: ``(seconds, HTTP status)`` samples (0: nothing answered).
    :ivar heartbeats: ``(seconds, newest running SchedulerJob heartbeat as epoch seconds or None)``.
    """

    def __init__(self, deployment: LocalDeployment, interval: float = 1.0):
        self.deployment, self.interval = deployment, interval
        self.ui: list[tuple[float, int]] = []
        self.heartbeats: list[tuple[float, float | None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = time.monotonic()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="upgrade-monitor")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _heartbeat(self) -> float | None:
        database = self.deployment.db_credentials["dbname"]
        rows = self.deployment.postgres.psql_rows(
            database, "SELECT extract(epoch FROM max(latest_heartbeat)) FROM job "
                      "WHERE job_type = 'SchedulerJob' AND state = 'running'")
        return float(rows[0][0]) if rows and rows[0][0] else None

    def _loop(self) -> None:
        url = self.deployment.ui_url + "/api/v2/monitor/health"
        while not self._stop.is_set():
            now = round(time.monotonic() - self.started, 1)
            self.ui.append((now, http("GET", url, timeout=5)[0]))
            beat = None
            with contextlib.suppress(Exception):
                beat = self._heartbeat()
            self.heartbeats.append((now, beat))
            self._stop.wait(self.interval)

    def summary(self, start: float, end: float) -> dict:
        """UI downtime (seconds without a 200 between ``start`` and ``end``, seconds since the
        monitor started; the longest outage) and scheduling downtime (the longest time between
        two consecutive scheduler heartbeats seen in that window, by the heartbeats' own clock)."""
        window = [(t, status) for t, status in self.ui if start <= t <= end]
        down, longest, run_start = 0.0, 0.0, None
        for (t, status), following in zip(window, window[1:] + [(end, 200)]):
            if status != 200:
                down += following[0] - t
                run_start = t if run_start is None else run_start
                longest = max(longest, following[0] - run_start)
            else:
                run_start = None
        beats = sorted({beat for t, beat in self.heartbeats if beat is not None and start <= t <= end})
        before = [beat for t, beat in self.heartbeats if beat is not None and t < start]
        if before:
            beats = sorted(set(beats) | {max(before)})
        gaps = [b - a for a, b in zip(beats, beats[1:])]
        return {"ui_down_seconds": round(down, 1), "ui_longest_outage_seconds": round(longest, 1),
                "ui_samples": len(window), "ui_non_200_samples": sum(1 for _, s in window if s != 200),
                "scheduling_gap_seconds": round(max(gaps), 1) if gaps else None,
                "scheduler_heartbeats_seen": len(beats)}


def task_tries(deployment: LocalDeployment, dag_id: str, run_id: str) -> dict[str, dict]:
    """From the database: each task instance of the run with its state, its try number and the
    states of its earlier tries (``task_instance_history``: a try that failed, was lost or ran
    twice leaves a row there)."""
    database = deployment.db_credentials["dbname"]
    escaped = run_id.replace("'", "''")
    current = deployment.postgres.psql_rows(
        database, f"SELECT task_id, map_index, state, try_number FROM task_instance "
                  f"WHERE dag_id = '{dag_id}' AND run_id = '{escaped}' ORDER BY task_id")
    history = deployment.postgres.psql_rows(
        database, f"SELECT task_id, map_index, state, try_number FROM task_instance_history "
                  f"WHERE dag_id = '{dag_id}' AND run_id = '{escaped}' ORDER BY task_id, try_number")
    found = {f"{task}[{index}]": {"state": state, "try_number": int(tries), "earlier_tries": []}
             for task, index, state, tries in current}
    for task, index, state, tries in history:
        found.setdefault(f"{task}[{index}]", {"state": None, "try_number": None, "earlier_tries": []})[
            "earlier_tries"].append({"try_number": int(tries), "state": state})
    return found


def _wait_tasks_running(client: RestClient, run_id: str, count: int, timeout: float, check) -> list[str]:
    """Wait until ``count`` task instances of the run are ``running`` (work in flight)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        with contextlib.suppress(Exception):
            running = [ti["task_id"] for ti in client.task_instances(PROBE_DAG, run_id) if ti["state"] == "running"]
            if len(running) >= count:
                return running
        time.sleep(2)
    raise RehearsalFailed(f"{count} tasks of {PROBE_DAG} run {run_id} were not running after {timeout:.0f}s")


def _xcom(client: RestClient, run_id: str, task_id: str):
    status, body = client.get(f"/api/v2/dags/{PROBE_DAG}/dagRuns/{run_id}/taskInstances/{task_id}/"
                              "xcomEntries/return_value")
    return json.loads(body).get("value") if status == 200 else f"HTTP {status}: {body[:200]}"


def _write(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


@dataclasses.dataclass
class _InFlight:
    """What :meth:`_Scenario.probe_in_flight` set up: the deployment started from the first
    synthesis, healthy, with the second synthesis's images built and :data:`PROBE_DAG`'s tasks
    running in the run ``run_id``; the monitor is made but not started."""

    deployment: LocalDeployment
    monitor: Monitor
    client: RestClient
    target: RehearsalTarget
    run_id: str


class _Scenario:
    """The report of the upgrade or image-rollout scenario as it runs: timed steps
    (``steps``: name -> seconds), echoed orchestrator lines (``echo``), written to
    ``<out_dir>/<file>``, and the set-up both scenarios share (:meth:`probe_in_flight`).

    :param out_dir: the scenario's folder (resolved: PostgreSQL's certificate paths must not be relative).
    :param report: the report's first keys (``scenario``, ...); ``steps`` and ``echo`` follow.
    :param file: the report's file name in ``out_dir``.
    :param label: what the scenario's log lines start with.
    """

    def __init__(self, out_dir: Path, report: dict, file: str, label: str):
        self.started = time.monotonic()
        self.out_dir = Path(out_dir).resolve()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.report: dict = {**report, "steps": {}, "echo": []}
        self.path = self.out_dir / file
        self.label = label

    def timed(self, name: str, action):
        """Return ``action()``; its seconds go to the report's ``steps[name]`` (also when it raises)."""
        begun = time.monotonic()
        try:
            return action()
        finally:
            self.report["steps"][name] = round(time.monotonic() - begun, 1)

    def say(self, line: str) -> None:
        """The orchestrator's ``echo``: the line, with the seconds since the start, to the report and the log."""
        self.report["echo"].append(f"{time.monotonic() - self.started:7.1f} {line}")
        log.warning("%s: %s", self.label, line)

    def write(self) -> None:
        _write(self.report, self.path)

    @contextlib.contextmanager
    def probe_in_flight(self, first: Path, second: Path, run_dir: str, steps: tuple[str, str, str], *,
                        running_key: str, scale: float, healthy_timeout: float, count_samples: bool = False):
        """Deploy ``first`` in ``<out_dir>/<run_dir>``, wait until it is healthy, build ``second``'s
        images (make publish, before the upgrade or rollout), trigger :data:`PROBE_DAG` and wait
        until 3 of its tasks run; yield that as an :class:`_InFlight`.

        On the way out, whatever happened: the monitor stopped, the deployment stopped, and the
        report (``error`` if the set-up or the body raised, ``left_running``, ``iam_denials``,
        ``seconds``; ``monitor_samples`` if ``count_samples``) written.

        :param steps: the timed step names of the start, the wait until healthy and the image build.
        :param running_key: the report key of the task ids running when the set-up is done.
        :param scale: the probe's task durations times this.
        :param healthy_timeout: seconds to wait until the deployment is healthy.
        :raises RehearsalFailed, TimeoutError: a step failed.
        """
        start, healthy, build = steps
        report = self.report
        deployment = LocalDeployment(first, self.out_dir / run_dir, task_hostnames=True)
        monitor = Monitor(deployment)
        try:
            self.timed(start, deployment.start)
            self.timed(healthy, lambda: deployment.wait_healthy(timeout=healthy_timeout))
            client = RestClient(deployment.ui_url, *deployment.admin_login())
            target = RehearsalTarget(deployment, second, self.out_dir / "snapshots")
            self.timed(build, lambda: deployment.build_images(second))
            self.timed("probe_parsed", lambda: wait_parsed(client, PROBE_DAG, 600, deployment.check))
            run_id = report["run_id"] = client.trigger(PROBE_DAG, {"scale": scale})
            report[running_key] = self.timed(
                "probe_tasks_running", lambda: _wait_tasks_running(client, run_id, 3, 900, deployment.check))
            yield _InFlight(deployment, monitor, client, target, run_id)
        except Exception as error:
            report["error"] = f"{type(error).__name__}: {error}"
            raise
        finally:
            monitor.stop()
            if count_samples:
                report["monitor_samples"] = {"ui": len(monitor.ui), "heartbeats": len(monitor.heartbeats)}
            report["left_running"] = deployment.stop()
            report["iam_denials"] = sorted({d.line() for d in deployment.aws.denials})
            report["seconds"] = round(time.monotonic() - self.started, 1)
            self.write()


def rehearse_upgrade(out_dir: Path, *, from_version: str | None = None, to_version: str | None = None,
                     scale: float = 1.0, healthy_timeout: float = 1500, run_timeout: float = 2400) -> dict:
    """The upgrade scenario (docs/rehearsal.md): deploy ``from_version``, trigger
    :data:`PROBE_DAG`, upgrade to ``to_version`` with the orchestrator while its tasks run, wait
    for the run, roll back to ``from_version`` (downgrade), run the DAG again.

    :param from_version: default: the previous minor's last patch (``PREVIOUS_AIRFLOW_VERSION``).
    :param to_version: default: docker/Dockerfile's ``AIRFLOW_VERSION``.
    :param scale: the probe's task durations times this (1.0: 60, 90 and 120 s).
    :returns: the report, also written to ``<out_dir>/upgrade-report.json``.
    :raises RehearsalFailed, UpgradeError, TimeoutError: a step failed (the report says which).
    """
    from airflow_ecs_ops.upgrade import plan_rollback, plan_upgrade, rollback, snapshot_name, upgrade

    from app_config.settings import IMAGE_AIRFLOW_VERSION, PREVIOUS_AIRFLOW_VERSION

    from_version, to_version = from_version or PREVIOUS_AIRFLOW_VERSION, to_version or IMAGE_AIRFLOW_VERSION
    run = _Scenario(out_dir, {"scenario": "upgrade", "from_version": from_version, "to_version": to_version},
                    "upgrade-report.json", "upgrade")
    report, timed = run.report, run.timed
    synth_dir = run.out_dir / "upgrade-synth"
    probe = {PROBE_FILE: probe_source("v1")}
    old_out = timed("synthesize_old", lambda: synthesize({"airflow_version": from_version}, synth_dir / from_version,
                                                         extra_dags=probe))
    new_out = timed("synthesize_new", lambda: synthesize({"airflow_version": to_version}, synth_dir / to_version,
                                                         extra_dags=probe))
    with run.probe_in_flight(old_out, new_out, "run-upgrade", ("start_old", "old_healthy", "build_new_images"),
                             running_key="running_when_upgrade_started", scale=scale,
                             healthy_timeout=healthy_timeout, count_samples=True) as flight:
        deployment, monitor, client, target, run_id = (flight.deployment, flight.monitor, flight.client,
                                                       flight.target, flight.run_id)
        monitor.start()
        upgrade_started = time.monotonic() - monitor.started
        plan = plan_upgrade(target.deployed_version(), to_version)
        name = snapshot_name(PROJECT, STAGE, from_version, to_version, dt.datetime.now(dt.timezone.utc))
        up = timed("upgrade", lambda: upgrade(target, plan, run.say, snapshot=name))
        report["upgrade"] = up.to_dict()
        report["upgrade_calls"] = list(target.calls)
        report["snapshot"] = {"name": name, "pg_dump": str(target.snapshot_dir / f"{name}.dump"),
                              "pg_dump_bytes": (target.snapshot_dir / f"{name}.dump").stat().st_size,
                              "rds": str(target.snapshot_created(name))}
        report["schema"] = {"before": up.revision_before, "after": up.revision_after,
                            "expected_after": plan.to_revision, "expected_before": plan.from_revision}
        report["dag_run_state"] = timed("probe_run_after_upgrade",
                                        lambda: client.wait_for_run(PROBE_DAG, run_id, run_timeout, deployment.check))
        report["downtime"] = monitor.summary(upgrade_started, time.monotonic() - monitor.started)
        report["task_instances"] = task_tries(deployment, PROBE_DAG, run_id)
        report["versions_returned"] = _xcom(client, run_id, "versions")
        run.write()

        # Back to the previous version: downgrade with the current image, then the old synthesis.
        target.deploy_next = old_out
        target.calls.clear()
        back = plan_rollback(target.deployed_version(), from_version)
        back_name = snapshot_name(PROJECT, STAGE, to_version, from_version, dt.datetime.now(dt.timezone.utc))
        rolled = timed("rollback", lambda: rollback(target, back, run.say, confirm=lambda question: False,
                                                    snapshot=back_name, fallback_snapshot=name))
        report["rollback"] = rolled.to_dict()
        report["rollback_calls"] = list(target.calls)
        report["schema"]["after_rollback"] = rolled.revision_after
        report["schema"]["expected_after_rollback"] = back.to_revision
        again, report["dag_run_after_rollback"] = timed(
            "probe_run_after_rollback", lambda: client.trigger_and_wait(PROBE_DAG, run_timeout, deployment.check,
                                                                        conf={"scale": min(scale, 0.2)}))
        report["task_instances_after_rollback"] = task_tries(deployment, PROBE_DAG, again)
        report["versions_returned_after_rollback"] = _xcom(client, again, "versions")
        report["rollouts"] = target.rollouts
        report["one_off_logs"] = {k: v[-1500:] for k, v in target.one_off_logs.items()}
    return report


def rehearse_image_rollout(out_dir: Path, *, scale: float = 1.0, healthy_timeout: float = 1500,
                           run_timeout: float = 2400) -> dict:
    """The image-rollout scenario (docs/rehearsal.md): deploy an image whose probe DAG says
    ``v1``, trigger it, roll out an image of the same Airflow version whose probe says ``v2``
    with the orchestrator while the tasks run (no snapshot, no migration: services rolled as ECS
    does), wait for the run, then run the DAG again: the worker launched after the rollout runs
    the ``v2`` code.

    :returns: the report, also written to ``<out_dir>/image-rollout-report.json``.
    """
    from airflow_ecs_ops.upgrade import plan_upgrade, upgrade

    run = _Scenario(out_dir, {"scenario": "image-rollout"}, "image-rollout-report.json", "image rollout")
    report, timed = run.report, run.timed
    synth_dir = run.out_dir / "rollout-synth"
    v1 = timed("synthesize_v1", lambda: synthesize({}, synth_dir / "v1", extra_dags={PROBE_FILE: probe_source("v1")}))
    v2 = timed("synthesize_v2", lambda: synthesize({}, synth_dir / "v2", extra_dags={PROBE_FILE: probe_source("v2")}))
    with run.probe_in_flight(v1, v2, "run-image-rollout", ("start", "healthy", "build_v2_images"),
                             running_key="running_when_rollout_started", scale=scale,
                             healthy_timeout=healthy_timeout) as flight:
        deployment, monitor, client, target, run_id = (flight.deployment, flight.monitor, flight.client,
                                                       flight.target, flight.run_id)
        revision_before = target.schema_revision()
        monitor.start()
        rollout_started = time.monotonic() - monitor.started
        plan = plan_upgrade(target.deployed_version(), target.deployed_version())
        done = timed("rollout", lambda: upgrade(target, plan, run.say))
        report["rollout"] = done.to_dict()
        report["rollout_calls"] = list(target.calls)
        report["rollouts"] = target.rollouts
        report["schema"] = {"before": revision_before, "after": target.schema_revision()}
        report["dag_run_state"] = timed("probe_run", lambda: client.wait_for_run(PROBE_DAG, run_id, run_timeout,
                                                                                 deployment.check))
        report["downtime"] = monitor.summary(rollout_started, time.monotonic() - monitor.started)
        report["task_instances"] = task_tries(deployment, PROBE_DAG, run_id)
        report["versions_returned"] = _xcom(client, run_id, "versions")
        again, report["dag_run_after_rollout"] = timed(
            "probe_run_after_rollout", lambda: client.trigger_and_wait(PROBE_DAG, run_timeout, deployment.check,
                                                                       conf={"scale": min(scale, 0.2)}))
        report["task_instances_after_rollout"] = task_tries(deployment, PROBE_DAG, again)
        report["versions_returned_after_rollout"] = _xcom(client, again, "versions")
        snapshots = deployment.aws.client("rds").describe_db_snapshots()["DBSnapshots"]
        report["rds_snapshots"] = [s["DBSnapshotIdentifier"] for s in snapshots]
    return report
