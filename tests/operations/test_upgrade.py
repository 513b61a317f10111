"""The upgrade and rollback orchestrator (``airflow_ecs_ops.upgrade``) against a fake deployment
that records every call: the order of the steps, each bad input of issue 18, and failures halfway.

The fake's schema revisions are Airflow's own (the installed Airflow's map of versions to Alembic
heads): 3.2.2 -> 1d6611b6ab7c, 3.3.2 -> d2f4e1b3c5a7.
"""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_ecs_ops import upgrade as up
from airflow_ecs_ops.upgrade import (
    Commands,
    UpgradeError,
    parse_counts,
    plan_rollback,
    plan_upgrade,
    rollback,
    schema_revision_of,
    snapshot_name,
    upgrade,
)

HEADS = {"3.1.0": "cc92b33c6709", "3.2.0": "1d6611b6ab7c", "3.3.0": "d2f4e1b3c5a7"}
OLD_REV, NEW_REV = "1d6611b6ab7c", "d2f4e1b3c5a7"
SNAPSHOT = "airflow-dev-airflow-3-2-2-to-3-3-2-20261207-013000"
COUNTS = {"scheduler": 2, "api-server": 1, "dag-processor": 1, "triggerer": 1}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeTarget:
    """A deployment whose calls are logged in ``calls``; failures are set per method."""

    def __init__(self, clock: FakeClock, revision: str | None = OLD_REV, version="3.2.2", workers=0):
        self.clock = clock
        self.revision = revision
        self.version = version
        self.counts = dict(COUNTS)
        self.workers = workers
        self.calls: list[tuple] = []
        self.snapshots: dict[str, dt.datetime] = {}
        self.fail: dict[str, Exception] = {}
        #: exit code of run_airflow per first argument pair, and the revision it leaves
        self.exit_codes = {("db", "migrate"): 0, ("db", "downgrade"): 0}
        self.leaves = {("db", "migrate"): NEW_REV, ("db", "downgrade"): OLD_REV}
        self.workers_finish_after = 0.0  # seconds after the scheduler stopped
        self.deploy_sets: dict[str, int] = {}
        self.scheduler_stopped_at: float | None = None

    def _call(self, *call):
        self.calls.append(call)
        if call[0] in self.fail:
            raise self.fail[call[0]]

    def deployed_version(self) -> str:
        return self.version

    def schema_revision(self):
        self.calls.append(("schema_revision",))
        return self.revision

    def snapshot(self, name):
        self._call("snapshot", name, self.revision)
        self.snapshots[name] = dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.timezone.utc)

    def service_counts(self):
        return dict(self.counts)

    def scale(self, component, count):
        self._call("scale", component, count, self.revision)
        self.counts[component] = count
        if component == "scheduler" and count == 0:
            self.scheduler_stopped_at = self.clock()

    def running_worker_tasks(self):
        if self.scheduler_stopped_at is not None and self.clock() - self.scheduler_stopped_at >= self.workers_finish_after:
            self.workers = 0
        self.calls.append(("workers", self.workers))
        return self.workers

    def deploy(self):
        self._call("deploy", dict(self.counts))
        self.counts.update(self.deploy_sets)

    def run_airflow(self, args):
        self._call("run_airflow", tuple(args), self.revision, dict(self.counts))
        key = tuple(args[:2])
        code = self.exit_codes[key]
        self.revision = self.leaves[key]
        return code

    def suspend_scaling(self):
        self._call("suspend_scaling")

    def resume_scaling(self):
        self._call("resume_scaling")

    def snapshot_created(self, name):
        return self.snapshots.get(name)

    def restore_snapshot(self, name):
        self._call("restore_snapshot", name)
        self.revision = OLD_REV

    def names(self) -> list:
        return [c[0] for c in self.calls if c[0] not in ("schema_revision", "workers")]


@pytest.fixture
def clock():
    return FakeClock()


def plan(a="3.2.2", b="3.3.2"):
    return plan_upgrade(a, b, HEADS, "3.3.2")


def run_upgrade(target, clock, the_plan=None, lines=None, **kwargs):
    lines = [] if lines is None else lines
    kwargs.setdefault("snapshot", SNAPSHOT)
    return upgrade(target, the_plan or plan(), lines.append, sleep=clock.sleep, clock=clock,
                   commands=Commands("airflow-ecs upgrade --assembly cdk.out", "airflow-ecs rollback --assembly ../prev/cdk.out"),
                   **kwargs)


class TestPlan:
    def test_a_minor_upgrade_changes_the_schema_by_airflows_own_map(self):
        p = plan("3.2.2", "3.3.2")
        assert (p.from_revision, p.to_revision, p.schema_changes) == (OLD_REV, NEW_REV, True)

    def test_a_patch_upgrade_without_new_migrations_keeps_the_schema(self):
        assert plan("3.3.0", "3.3.2").schema_changes is False

    def test_the_same_version_is_an_image_only_rollout(self):
        assert plan("3.3.2", "3.3.2").schema_changes is False
        assert "image-only" in plan("3.3.2", "3.3.2").describe()

    def test_a_version_newer_than_the_installed_airflow_is_assumed_to_change_the_schema(self):
        p = plan("3.3.2", "3.4.0")
        assert p.to_revision is None and p.schema_changes

    def test_the_installed_airflow_knows_3_2_2_and_3_3_2(self):
        heads, installed = up.installed_revision_heads()
        assert installed == "3.3.2"
        assert schema_revision_of("3.2.2", heads, installed) == OLD_REV
        assert schema_revision_of("3.3.2", heads, installed) == NEW_REV

    @pytest.mark.parametrize(
        "old, new, message",
        [
            ("3.3.2", "3.2.2", "older than the deployed 3.3.2"),
            ("3.2.2", "3.4.0", "skips a minor version (3.3)"),
            ("3.1.0", "3.3.2", "skips a minor version (3.2)"),
            ("2.10.3", "3.0.0", "changes the major version"),
            ("3.3", "3.3.2", "not an Airflow release version"),
            ("3.2.2", "latest", "not an Airflow release version"),
        ],
    )
    def test_bad_upgrades_are_refused_before_anything_happens(self, old, new, message):
        with pytest.raises(UpgradeError) as err:
            plan(old, new)
        assert message in str(err.value)
        assert "Database: unchanged (nothing was done)" in str(err.value)
        assert "Next: " in str(err.value)

    def test_a_rollback_without_a_previous_version_is_refused(self):
        with pytest.raises(UpgradeError) as err:
            plan_rollback("3.3.2", None, HEADS, "3.3.2")
        assert "No previous version" in str(err.value) and "airflow-ecs rollback --assembly" in str(err.value)

    def test_a_rollback_to_a_newer_version_is_refused(self):
        with pytest.raises(UpgradeError, match="newer than the deployed"):
            plan_rollback("3.2.2", "3.3.2", HEADS, "3.3.2")

    def test_snapshot_names_carry_both_versions_and_the_utc_time(self):
        when = dt.datetime(2026, 12, 7, 2, 30, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
        assert snapshot_name("airflow", "dev", "3.2.2", "3.3.2", when) == SNAPSHOT

    def test_counts_parse_and_refuse_unknown_components(self):
        assert parse_counts("scheduler=2,api-server=1") == {"scheduler": 2, "api-server": 1}
        with pytest.raises(up.OpsError, match="--counts"):
            parse_counts("worker=3")


class TestUpgrade:
    def test_the_steps_run_in_order_and_each_is_echoed_with_its_seconds(self, clock):
        target = FakeTarget(clock)
        lines: list[str] = []
        report = run_upgrade(target, clock, lines=lines)
        assert report.ok
        assert [s.name for s in report.steps] == [
            "check", "suspend-scaling", "stop-scheduler", "drain-workers", "stop-writers", "snapshot", "deploy",
            "migrate", "start-services", "resume-scaling",
        ]
        assert target.names() == [
            "suspend_scaling", "scale", "scale", "scale", "scale", "snapshot", "deploy", "run_airflow",
            "scale", "scale", "scale", "scale", "resume_scaling",
        ]
        scales = [c[1:3] for c in target.calls if c[0] == "scale"]
        assert scales[:4] == [("scheduler", 0), ("dag-processor", 0), ("triggerer", 0), ("api-server", 0)]
        assert scales[4:] == [("api-server", 1), ("dag-processor", 1), ("triggerer", 1), ("scheduler", 2)]
        # The snapshot is of the old schema, with every writer stopped; the deploy keeps them at 0.
        snapshot = next(c for c in target.calls if c[0] == "snapshot")
        assert snapshot[2] == OLD_REV
        deploy = next(c for c in target.calls if c[0] == "deploy")
        assert set(deploy[1].values()) == {0}
        migrate = next(c for c in target.calls if c[0] == "run_airflow")
        assert migrate[1] == ("db", "migrate") and set(migrate[3].values()) == {0}
        # The services start only on the new schema.
        assert all(c[3] == NEW_REV for c in target.calls if c[0] == "scale" and c[2] > 0)
        assert (report.revision_before, report.revision_after, report.snapshot) == (OLD_REV, NEW_REV, SNAPSHOT)
        assert any(line.startswith("[migrate] started") for line in lines)
        assert any(line.startswith("[migrate] done in") and " s" in line for line in lines)
        assert report.to_dict()["plan"]["schema_changes"] is True

    def test_an_image_only_rollout_only_deploys(self, clock):
        target = FakeTarget(clock, revision=NEW_REV, version="3.3.2")
        report = run_upgrade(target, clock, plan("3.3.2", "3.3.2"), snapshot=None)
        assert target.names() == ["deploy"]
        deploy = target.calls[-1]
        assert deploy[1] == COUNTS  # the services keep running: ECS rolls them over
        assert report.snapshot is None and report.ok

    def test_the_drain_waits_for_the_workers_in_flight(self, clock):
        target = FakeTarget(clock, workers=3)
        target.workers_finish_after = 40.0
        report = run_upgrade(target, clock)
        assert report.workers_left == 0
        drain = next(s for s in report.steps if s.name == "drain-workers")
        assert drain.seconds >= 40.0
        # The api-server stops only after the workers finished (they report to its Execution API).
        api_stop = next(i for i, c in enumerate(target.calls) if c[:3] == ("scale", "api-server", 0))
        last_count = max(i for i, c in enumerate(target.calls) if c[0] == "workers")
        assert last_count < api_stop

    def test_a_drain_timeout_goes_on_and_says_what_happens_to_the_tasks_left(self, clock):
        target = FakeTarget(clock, workers=2)
        target.workers_finish_after = 10_000.0
        lines: list[str] = []
        report = run_upgrade(target, clock, lines=lines, drain_timeout_seconds=60)
        assert report.ok and report.workers_left == 2
        assert any("retries" in line and "heartbeat" in line for line in lines)

    def test_a_failed_snapshot_stops_before_the_deploy_with_the_database_unchanged(self, clock):
        target = FakeTarget(clock)
        target.fail["snapshot"] = RuntimeError("SnapshotQuotaExceeded")
        with pytest.raises(UpgradeError) as err:
            run_upgrade(target, clock)
        message = str(err.value)
        assert err.value.step == "snapshot" and "SnapshotQuotaExceeded" in message
        assert f"revision {OLD_REV} (Airflow 3.2.2's schema), unchanged" in message
        assert "airflow-ecs rollback --assembly ../prev/cdk.out --counts scheduler=2,api-server=1" in message
        assert "deploy" not in target.names() and "run_airflow" not in target.names()
        assert set(target.counts.values()) == {0}
        assert err.value.report.steps[-1].outcome == "failed"

    def test_a_migration_that_fails_halfway_leaves_every_service_stopped(self, clock):
        target = FakeTarget(clock)
        target.exit_codes[("db", "migrate")] = 1
        target.leaves[("db", "migrate")] = "0123abcd4567"  # a revision between the two heads
        with pytest.raises(UpgradeError) as err:
            run_upgrade(target, clock)
        message = str(err.value)
        assert err.value.step == "migrate" and "exited 1" in message
        assert "0123abcd4567 (neither version's schema: migrated halfway)" in message
        assert "nothing runs on this schema" in message
        assert f"--restore-snapshot {SNAPSHOT}" in message
        assert "airflow-ecs upgrade --assembly cdk.out --counts scheduler=2,api-server=1,dag-processor=1,triggerer=1" in message
        assert set(target.counts.values()) == {0}
        assert "resume_scaling" not in target.names()  # nothing may start them again

    def test_a_migration_that_exits_0_on_the_wrong_revision_is_a_failure(self, clock):
        target = FakeTarget(clock)
        target.leaves[("db", "migrate")] = OLD_REV
        with pytest.raises(UpgradeError, match="exited 0 but left the database"):
            run_upgrade(target, clock)
        assert set(target.counts.values()) == {0}

    def test_a_rerun_after_a_failed_migration_uses_the_counts_given_and_skips_the_snapshot(self, clock):
        target = FakeTarget(clock, revision=NEW_REV)
        target.counts = dict.fromkeys(COUNTS, 0)
        report = run_upgrade(target, clock, counts=COUNTS)
        assert report.ok and target.counts == COUNTS
        assert "snapshot" not in target.names()
        assert next(s for s in report.steps if s.name == "snapshot").outcome == "skipped"

    def test_services_found_at_0_without_counts_given_stay_at_0_and_it_says_so(self, clock):
        target = FakeTarget(clock)
        target.counts = dict.fromkeys(COUNTS, 0)
        lines: list[str] = []
        report = run_upgrade(target, clock, lines=lines)
        assert report.ok and set(target.counts.values()) == {0}
        assert any("every service is at 0 tasks" in line and "--counts" in line for line in lines)

    def test_a_deploy_that_starts_services_is_set_back_to_0_before_the_migration(self, clock):
        target = FakeTarget(clock)
        target.deploy_sets = {"api-server": 1, "scheduler": 2}  # a template that re-applies DesiredCount
        report = run_upgrade(target, clock)
        migrate = next(c for c in target.calls if c[0] == "run_airflow")
        assert set(migrate[3].values()) == {0}
        assert "DesiredCount" in next(s for s in report.steps if s.name == "deploy").detail

    def test_a_failed_deploy_keeps_the_services_stopped_and_names_the_way_back(self, clock):
        target = FakeTarget(clock)
        target.fail["deploy"] = RuntimeError("UPDATE_ROLLBACK_COMPLETE")
        with pytest.raises(UpgradeError) as err:
            run_upgrade(target, clock)
        assert err.value.step == "deploy" and "unchanged" in str(err.value)
        assert "run_airflow" not in target.names()

    def test_an_unexpected_error_is_reported_with_the_step(self, clock):
        target = FakeTarget(clock)
        target.fail["suspend_scaling"] = RuntimeError("AccessDenied")
        with pytest.raises(UpgradeError) as err:
            run_upgrade(target, clock)
        assert err.value.step == "suspend-scaling" and "AccessDenied" in str(err.value)


def run_rollback(target, clock, answer=True, lines=None, **kwargs):
    lines = [] if lines is None else lines
    kwargs.setdefault("snapshot", "airflow-dev-airflow-3-3-2-to-3-2-2-20261207-020000")
    asked: list[str] = []

    def confirm(question):
        asked.append(question)
        return answer

    report = rollback(target, plan_rollback("3.3.2", "3.2.2", HEADS, "3.3.2"), lines.append, confirm=confirm,
                      sleep=clock.sleep, clock=clock, now=lambda: dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.timezone.utc),
                      commands=Commands("airflow-ecs upgrade --assembly cdk.out", "airflow-ecs rollback --assembly ../prev/cdk.out"),
                      **kwargs)
    return report, asked


class TestRollback:
    def test_the_schema_is_downgraded_with_the_current_image_before_the_old_synthesis_deploys(self, clock):
        target = FakeTarget(clock, revision=NEW_REV, version="3.3.2")
        report, asked = run_rollback(target, clock)
        assert report.ok and not asked
        names = target.names()
        assert names.index("snapshot") < names.index("run_airflow") < names.index("deploy")
        downgrade = next(c for c in target.calls if c[0] == "run_airflow")
        assert downgrade[1] == ("db", "downgrade", "--to-version", "3.2.2", "-y") and downgrade[2] == NEW_REV
        assert set(downgrade[3].values()) == {0}
        assert all(c[3] == OLD_REV for c in target.calls if c[0] == "scale" and c[2] > 0)
        assert report.revision_after == OLD_REV

    def test_a_failed_downgrade_offers_the_snapshot_after_saying_what_is_lost(self, clock):
        target = FakeTarget(clock, revision=NEW_REV, version="3.3.2")
        target.snapshots[SNAPSHOT] = dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.timezone.utc)
        target.exit_codes[("db", "downgrade")] = 1
        target.leaves[("db", "downgrade")] = NEW_REV
        lines: list[str] = []
        report, asked = run_rollback(target, clock, lines=lines, fallback_snapshot=SNAPSHOT)
        assert asked and "2026-12-07 01:30:00 UTC" in asked[0]
        assert any("every write since then is lost (30 minutes" in line for line in lines)
        names = target.names()
        assert names.index("restore_snapshot") < names.index("deploy")
        assert report.ok and report.snapshot == SNAPSHOT and report.revision_after == OLD_REV

    def test_a_restored_snapshot_of_the_wrong_schema_is_not_started_on(self, clock):
        target = FakeTarget(clock, revision=NEW_REV, version="3.3.2")
        target.snapshots[SNAPSHOT] = dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.timezone.utc)
        target.restore_snapshot = lambda name: target.calls.append(("restore_snapshot", name))  # stays at NEW_REV
        with pytest.raises(UpgradeError) as err:
            run_rollback(target, clock, restore_snapshot=SNAPSHOT)
        assert err.value.step == "restore-snapshot" and "not Airflow 3.2.2's" in str(err.value)
        assert "deploy" not in target.names() and set(target.counts.values()) == {0}

    def test_a_declined_restore_stops_with_the_services_at_0(self, clock):
        target = FakeTarget(clock, revision=NEW_REV, version="3.3.2")
        target.snapshots[SNAPSHOT] = dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.timezone.utc)
        target.exit_codes[("db", "downgrade")] = 1
        target.leaves[("db", "downgrade")] = NEW_REV
        with pytest.raises(UpgradeError) as err:
            run_rollback(target, clock, answer=False, fallback_snapshot=SNAPSHOT)
        assert "declined" in str(err.value) and f"--restore-snapshot {SNAPSHOT} --yes" in str(err.value)
        assert "restore_snapshot" not in target.names() and "deploy" not in target.names()
        assert set(target.counts.values()) == {0}

    def test_a_failed_downgrade_without_a_snapshot_stops(self, clock):
        target = FakeTarget(clock, revision=NEW_REV, version="3.3.2")
        target.exit_codes[("db", "downgrade")] = 2
        target.leaves[("db", "downgrade")] = NEW_REV
        with pytest.raises(UpgradeError) as err:
            run_rollback(target, clock)
        assert err.value.step == "downgrade" and "exited 2" in str(err.value)
        assert "nothing runs on this schema" in str(err.value)
        assert "deploy" not in target.names()

    def test_a_restore_of_a_missing_snapshot_is_refused_before_anything_stops(self, clock):
        target = FakeTarget(clock, revision=NEW_REV, version="3.3.2")
        with pytest.raises(UpgradeError, match="does not exist"):
            run_rollback(target, clock, restore_snapshot="nope")
        assert target.names() == []

    def test_a_rollback_without_a_schema_change_only_deploys(self, clock):
        target = FakeTarget(clock, revision=NEW_REV, version="3.3.2")
        report = rollback(target, plan_rollback("3.3.2", "3.3.0", HEADS, "3.3.2"), lambda line: None,
                          confirm=lambda q: True, sleep=clock.sleep, clock=clock)
        assert report.ok and target.names() == ["deploy"]


def test_make_upgrade_runs_make_deploys_checks_then_the_upgrade_of_the_same_assembly(tmp_path):
    from tests.deploy.test_make_targets import PROD, planned

    assert planned("upgrade", tmp_path, f"CDK_ARGS={PROD}", "UPGRADE_ARGS=--drain-timeout 60") == [
        f"node_modules/.bin/cdk synth --quiet -o cdk.out {PROD}",
        ".venv/bin/airflow-ecs --project data --stage prod --region eu-west-1 preflight --assembly cdk.out --account 123456789012",
        ".venv/bin/python -m changes check-deployed --cdk-out cdk.out",
        ".venv/bin/airflow-ecs --project data --stage prod --region eu-west-1 upgrade --assembly cdk.out "
        "--cdk node_modules/.bin/cdk --drain-timeout 60",
    ]


def test_a_snapshot_name_taken_in_the_same_second_gets_a_suffix():
    """RDS refuses a second snapshot of one identifier: a rollback retried within the second (the
    first declined its restore) must not fail on its own earlier snapshot."""
    from airflow_ecs_ops.upgrade import unused_snapshot_name

    class Taken:
        def __init__(self, *names):
            self.names = set(names)

        def snapshot_created(self, name):
            return dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc) if name in self.names else None

    assert unused_snapshot_name(Taken(), "a-b") == "a-b"
    assert unused_snapshot_name(Taken("a-b"), "a-b") == "a-b-2"
    assert unused_snapshot_name(Taken("a-b", "a-b-2"), "a-b") == "a-b-3"
