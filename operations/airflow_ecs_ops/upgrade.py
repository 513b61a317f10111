"""Airflow version upgrades and image rollouts of a running deployment, and the way back.

The steps follow Airflow's upgrade guidance and what the ``airflow db`` commands do; the facts
are collected, with their sources, in ``docs/upgrading.md``:

- an upgrade whose schema changes (the versions' Alembic heads differ): stop the scheduler (no
  new task launches), let the worker tasks in flight finish (up to a timeout), stop the other
  writers (dag-processor, triggerer, api-server), take a database snapshot named with both
  versions, deploy the new synthesis with the services still at 0 tasks, run ``airflow db
  migrate`` once as a one-off task of the new api-server task definition and check its exit code
  and the schema revision it leaves, then start the services at their previous counts;
- an image-only rollout (same Airflow version, so the same schema): no snapshot, no migration,
  the deploy rolls the services over as ECS does;
- a rollback: the same stops, then, where the schema changed, ``airflow db downgrade --to-version
  <previous> -y`` with the current (newer) image, which is the only one that knows the
  migrations; when that fails, the snapshot's restore, after saying what it loses and asking;
  then the previous synthesis with the services at 0, then the services.

The orchestrator (:func:`upgrade`, :func:`rollback`) talks to a deployment only through
:class:`UpgradeTarget`: ``airflow_ecs_ops.upgrade_aws.AwsUpgradeTarget`` drives AWS, the offline
rehearsal drives its own stand-in. Every step is echoed as it starts and ends, with its seconds;
a failure raises :class:`UpgradeError` naming the step, what happened, the state the database is
in and the command that continues or restores. Nothing is started on a schema that is not the
version's: after a failed migration or downgrade the services stay at 0 tasks.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.metadata
import importlib.util
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Protocol

from airflow_ecs_ops.deployment import OpsError
from cloud_assembly.names import deployment_name

#: The components in the order an upgrade stops them: the scheduler first (it launches the
#: worker tasks), then the other writers, the api-server last (the Execution API the worker
#: tasks in flight report to).
STOP_ORDER: tuple[str, ...] = ("scheduler", "dag-processor", "triggerer", "api-server")
#: The order they start again: the api-server first (the Execution API and the UI), the scheduler
#: last (its first launches need the api-server).
START_ORDER: tuple[str, ...] = ("api-server", "dag-processor", "triggerer", "scheduler")

#: Seconds an upgrade waits, by default, for the worker tasks in flight to finish after the
#: scheduler stopped. A task still running then keeps running; see :func:`upgrade`.
DEFAULT_DRAIN_TIMEOUT_SECONDS = 900.0
#: Seconds between two counts of the running worker tasks while draining.
DRAIN_POLL_SECONDS = 15.0

#: Step names (the report's and the messages').
STEP_CHECK = "check"
STEP_SUSPEND_SCALING = "suspend-scaling"
STEP_STOP_SCHEDULER = "stop-scheduler"
STEP_DRAIN = "drain-workers"
STEP_STOP_WRITERS = "stop-writers"
STEP_SNAPSHOT = "snapshot"
STEP_DEPLOY = "deploy"
STEP_MIGRATE = "migrate"
STEP_DOWNGRADE = "downgrade"
STEP_RESTORE = "restore-snapshot"
STEP_START = "start-services"
STEP_RESUME_SCALING = "resume-scaling"

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class UpgradeTarget(Protocol):
    """What the orchestrator needs from a deployment (AWS, or the rehearsal's stand-in).

    Components are the service names of ``airflow_ecs_ops.deployment.SERVICES``: ``scheduler``,
    ``api-server``, ``dag-processor``, ``triggerer``.
    """

    def deployed_version(self) -> str:
        """The Airflow version (``3.2.2``) of what runs now."""
        ...

    def schema_revision(self) -> str | None:
        """The Alembic revision of the metadata database now (``alembic_version``), None when
        the database has none (never migrated)."""
        ...

    def snapshot(self, name: str) -> None:
        """Take a snapshot of the metadata database named ``name``; return when it is
        available. :raises Exception: it failed (any exception: the orchestrator reports it)."""
        ...

    def service_counts(self) -> dict[str, int]:
        """Component -> desired task count now."""
        ...

    def scale(self, component: str, count: int) -> None:
        """Set the component's desired count; return when that many tasks run (0: stopped)."""
        ...

    def running_worker_tasks(self) -> int:
        """How many of the executor's worker tasks run now (every queue's: a team queue's
        workers report to the Execution API as well)."""
        ...

    def deploy(self) -> None:
        """Deploy the new synthesis (for a rollback: the previous one); every service keeps the
        desired count it has (0 during a schema change)."""
        ...

    def run_airflow(self, args: list[str]) -> int:
        """Run ``airflow <args>`` once as a one-off task of the api-server task definition
        deployed now (after :meth:`deploy`: the new one), with nothing else run before it in
        that task; return the exit code (non-zero also when it never ran)."""
        ...

    def suspend_scaling(self) -> None:
        """Keep anything but the orchestrator from starting services during the upgrade
        (Application Auto Scaling's scaling policies and scheduled actions, e.g. office hours).
        A target without such scaling does nothing."""
        ...

    def resume_scaling(self) -> None:
        """Undo :meth:`suspend_scaling`."""
        ...

    def snapshot_created(self, name: str) -> dt.datetime | None:
        """When the snapshot ``name`` was taken (aware, UTC), None when it does not exist."""
        ...

    def restore_snapshot(self, name: str) -> None:
        """Replace the metadata database by the snapshot ``name``; return when it is available.
        Everything written since the snapshot was taken is lost."""
        ...


@dataclass(frozen=True)
class UpgradePlan:
    """What an upgrade (or a rollback) from ``from_version`` to ``to_version`` does.

    :param from_version: the Airflow version deployed now, ``X.Y.Z``.
    :param to_version: the Airflow version of the synthesis to deploy.
    :param from_revision: the Alembic head of ``from_version`` in Airflow's own map of versions
        to heads (``airflow.utils.db._REVISION_HEADS_MAP`` of the installed Airflow), None when
        that map cannot tell (a version newer than the installed Airflow, or no Airflow installed).
    :param to_revision: likewise for ``to_version``.
    :param rollback: True for a rollback (``to_version`` older than ``from_version``).
    """

    from_version: str
    to_version: str
    from_revision: str | None
    to_revision: str | None
    rollback: bool = False

    @property
    def schema_changes(self) -> bool:
        """The two versions' schemas differ, or one of them is unknown (then the orchestrator
        assumes a change: snapshot and migration, which is harmless when nothing changes)."""
        if self.from_version == self.to_version:
            return False
        return self.from_revision is None or self.to_revision is None or self.from_revision != self.to_revision

    def describe(self) -> str:
        """One line: what kind of change this is."""
        verb = "rollback" if self.rollback else "upgrade"
        if self.from_version == self.to_version:
            return f"image-only rollout of Airflow {self.to_version}: no schema change, no snapshot, no migration"
        if not self.schema_changes:
            return (f"{verb} of Airflow {self.from_version} to {self.to_version}: same schema "
                    f"({self.to_revision}), no snapshot, no migration")
        known = (f"schema {self.from_revision} -> {self.to_revision}" if self.from_revision and self.to_revision
                 else "schema change assumed (Airflow's map of versions to schema revisions does not know "
                      f"{self.to_version if self.to_revision is None else self.from_version})")
        return f"{verb} of Airflow {self.from_version} to {self.to_version}: {known}"


@dataclass
class StepRecord:
    """One step as it ran: its name, seconds (wall clock), outcome (``ok``, ``failed``,
    ``skipped``) and a line of detail."""

    name: str
    seconds: float
    outcome: str
    detail: str = ""


@dataclass
class UpgradeReport:
    """What an upgrade or rollback did.

    :param plan: the plan it followed.
    :param steps: the steps in order, with their seconds.
    :param snapshot: the snapshot taken (or restored), or None.
    :param revision_before, revision_after: the schema revision before and after.
    :param counts: the desired counts the services had before (and got back).
    :param workers_left: worker tasks still running when the drain timed out (0: all finished).
    :param ok: the whole upgrade succeeded.
    """

    plan: UpgradePlan
    steps: list[StepRecord] = field(default_factory=list)
    snapshot: str | None = None
    revision_before: str | None = None
    revision_after: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    workers_left: int = 0
    ok: bool = False

    def to_dict(self) -> dict:
        """A JSON-ready dict (the rehearsal writes it to its report)."""
        data = asdict(self)
        data["plan"]["schema_changes"] = self.plan.schema_changes
        return data


class UpgradeError(OpsError):
    """An upgrade or rollback stopped: which step, what happened, what state the database is in,
    and the command that continues or restores. ``report`` holds the steps done so far."""

    def __init__(self, step: str, problem: str, database: str, next_steps: str, report: UpgradeReport | None = None):
        self.step, self.problem, self.database, self.next_steps, self.report = step, problem, database, next_steps, report
        super().__init__(f"{step}: {problem} Database: {database} Next: {next_steps}")


# --- versions and schema revisions ------------------------------------------------------------


def parse_version(version: str, what: str = "version") -> tuple[int, int, int]:
    """``"3.2.2"`` -> ``(3, 2, 2)``.

    :raises UpgradeError: not three dot-separated numbers (pre-releases are not upgraded to).
    """
    match = _VERSION_RE.match(version.strip()) if isinstance(version, str) else None
    if not match:
        raise UpgradeError(
            STEP_CHECK, f"The {what} {version!r} is not an Airflow release version (X.Y.Z, e.g. 3.3.2).",
            "unchanged (nothing was done).", f"give the {what} as X.Y.Z.",
        )
    return int(match[1]), int(match[2]), int(match[3])


def installed_revision_heads() -> tuple[dict[str, str], str | None]:
    """Airflow's own map of versions to the Alembic head they introduced
    (``airflow/utils/db.py``: ``_REVISION_HEADS_MAP``), read from the installed Airflow's source
    without importing Airflow, and the installed Airflow's version (the newest version the map can
    speak for). ``({}, None)`` when no Airflow is installed."""
    spec = importlib.util.find_spec("airflow")
    if spec is None or not spec.submodule_search_locations:
        return {}, None
    source = Path(next(iter(spec.submodule_search_locations))) / "utils" / "db.py"
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError):
        return {}, None
    heads: dict[str, str] = {}
    for node in tree.body:
        target: ast.expr
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign):
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "_REVISION_HEADS_MAP":
            heads = ast.literal_eval(value)
    version = None
    for distribution in ("apache-airflow-core", "apache-airflow"):
        try:
            version = importlib.metadata.version(distribution)
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    return heads, version


def schema_revision_of(version: str, heads: Mapping[str, str], known_up_to: str | None) -> str | None:
    """The Alembic head of Airflow ``version``: the head of the newest version in ``heads`` that
    is not newer than it (the map lists only the versions that changed the schema; Airflow's
    ``db downgrade --to-version`` reads it the same way). None when ``version`` is newer than
    ``known_up_to`` (the installed Airflow cannot know its migrations) or older than the map.
    """
    wanted = parse_version(version)
    if known_up_to is None or wanted > parse_version(known_up_to, "installed Airflow version"):
        return None
    best = None
    for listed, head in heads.items():
        if _VERSION_RE.match(listed) and parse_version(listed) <= wanted and (best is None or parse_version(listed) > best[0]):
            best = (parse_version(listed), head)
    return best[1] if best else None


def plan_upgrade(from_version: str, to_version: str, heads: Mapping[str, str] | None = None,
                 known_up_to: str | None = None) -> UpgradePlan:
    """Plan an upgrade (or an image-only rollout when the versions are equal).

    :param heads, known_up_to: Airflow's map of versions to schema heads and the newest version
        it speaks for; default: the installed Airflow's (:func:`installed_revision_heads`).
    :raises UpgradeError: a version is not ``X.Y.Z``; ``to_version`` is older (a downgrade is
        ``airflow-ecs rollback``); the major version changes; the minor version jumps by more than
        one (upgrade to the next minor's last patch first, as Airflow's release notes are written
        from one minor to the next).
    """
    if heads is None:
        heads, known_up_to = installed_revision_heads()
    old, new = parse_version(from_version, "deployed version"), parse_version(to_version, "new version")
    nothing = "unchanged (nothing was done)."
    if new < old:
        raise UpgradeError(
            STEP_CHECK, f"The new synthesis runs Airflow {to_version}, older than the deployed {from_version}.",
            nothing, "to go back to an older version, use airflow-ecs rollback --assembly <its synthesis>.",
        )
    if new[0] != old[0]:
        raise UpgradeError(
            STEP_CHECK, f"Airflow {from_version} -> {to_version} changes the major version.", nothing,
            "a major upgrade needs Airflow's own migration guide and a new deployment; this command upgrades "
            "within a major version.",
        )
    if new[1] - old[1] > 1:
        step_to = f"{old[0]}.{old[1] + 1}"
        raise UpgradeError(
            STEP_CHECK, f"Airflow {from_version} -> {to_version} skips a minor version ({step_to}).", nothing,
            f"upgrade to the last {step_to}.x patch first (synthesize it, airflow-ecs upgrade --assembly <it>), "
            f"then to {to_version}.",
        )
    return UpgradePlan(from_version, to_version, schema_revision_of(from_version, heads, known_up_to),
                       schema_revision_of(to_version, heads, known_up_to))


def plan_rollback(current_version: str, previous_version: str | None, heads: Mapping[str, str] | None = None,
                  known_up_to: str | None = None) -> UpgradePlan:
    """Plan a rollback from ``current_version`` to ``previous_version``.

    :raises UpgradeError: no previous version; a version is not ``X.Y.Z``; the previous version is
        newer (that is an upgrade) or of another major version.
    """
    nothing = "unchanged (nothing was done)."
    if not previous_version:
        raise UpgradeError(
            STEP_CHECK, "No previous version to roll back to.", nothing,
            "synthesize the previous version from its git tag (git worktree add ../prev <tag>; make synth there) "
            "and pass it: airflow-ecs rollback --assembly ../prev/cdk.out.",
        )
    if heads is None:
        heads, known_up_to = installed_revision_heads()
    now, back = parse_version(current_version, "deployed version"), parse_version(previous_version, "previous version")
    if back > now:
        raise UpgradeError(
            STEP_CHECK, f"The synthesis to roll back to runs Airflow {previous_version}, newer than the deployed "
            f"{current_version}.", nothing, "to go forward, use airflow-ecs upgrade --assembly <its synthesis>.",
        )
    if back[0] != now[0]:
        raise UpgradeError(STEP_CHECK, f"Airflow {current_version} -> {previous_version} changes the major version.",
                           nothing, "restore the snapshot taken before the major upgrade instead.")
    return UpgradePlan(current_version, previous_version, schema_revision_of(current_version, heads, known_up_to),
                       schema_revision_of(previous_version, heads, known_up_to), rollback=True)


def snapshot_name(project: str, stage: str, from_version: str, to_version: str, now: dt.datetime) -> str:
    """``<project>-<stage>-airflow-3-2-2-to-3-3-2-20261207-013000`` (UTC): an RDS snapshot
    identifier (letters, digits and single hyphens, starting with a letter, at most 255
    characters; RDS CreateDBSnapshot reference).

    :raises UpgradeError: the project or stage makes an invalid identifier.
    """
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    versions = f"{from_version.replace('.', '-')}-to-{to_version.replace('.', '-')}"
    name = f"{deployment_name(project, stage)}-airflow-{versions}-{stamp}"
    if not re.fullmatch(r"[A-Za-z](?:-?[A-Za-z0-9])*", name) or len(name) > 255:
        raise UpgradeError(STEP_CHECK, f"The snapshot name {name!r} is not a valid RDS snapshot identifier.",
                           "unchanged (nothing was done).", "use a project_name and stage of letters, digits and "
                           "single hyphens.")
    return name


def unused_snapshot_name(target: UpgradeTarget, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when a snapshot of that name exists already (a command
    run again within the same second: RDS refuses a second snapshot of one identifier)."""
    candidate, n = name, 1
    while target.snapshot_created(candidate) is not None:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def _check_summary(plan: UpgradePlan, report: UpgradeReport) -> str:
    """The check step's line: the database's revision and the services' counts found."""
    return f"database {_revision_name(plan, report.revision_before)}; counts " + \
        ", ".join(f"{c}={n}" for c, n in report.counts.items())


# --- the orchestrator -------------------------------------------------------------------------


@dataclass(frozen=True)
class Commands:
    """The commands the messages name: how to run this upgrade again and how to go back.

    :param upgrade: the command that runs the same upgrade again (``--counts`` is appended).
    :param rollback: the command that returns to the previous version (``--counts`` appended).
    """

    upgrade: str = "airflow-ecs upgrade --assembly <new synthesis>"
    rollback: str = "airflow-ecs rollback --assembly <previous synthesis>"


def counts_option(counts: Mapping[str, int]) -> str:
    """``--counts scheduler=1,api-server=1,...``: what a re-run needs once the services are at 0."""
    return "--counts " + ",".join(f"{c}={n}" for c, n in counts.items())


def parse_counts(text: str) -> dict[str, int]:
    """Parse ``scheduler=1,api-server=2`` (:func:`counts_option`'s value).

    :raises OpsError: not ``component=count`` pairs, an unknown component or a negative count.
    """
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in STOP_ORDER or not value.isdigit():
            raise OpsError(f"--counts: {part!r} is not <component>=<tasks> with a component of "
                           f"{', '.join(STOP_ORDER)} (e.g. --counts scheduler=1,api-server=1).")
        counts[name] = int(value)
    return counts


class _Run:
    """The steps of one run: echo, timing, records, errors."""

    def __init__(self, report: UpgradeReport, echo: Callable[[str], None], clock: Callable[[], float]):
        self.report, self.echo, self.clock = report, echo, clock
        #: What an unexpected error (not an UpgradeError) reports as the database's state and next step.
        self.database, self.next_steps = "unchanged (nothing was done).", "fix the cause and run the command again."

    def step(self, name: str, action: Callable[[], str | None]) -> None:
        self.echo(f"[{name}] started")
        start = self.clock()
        try:
            detail = action() or ""
        except UpgradeError as err:
            self._failed(name, start, err.problem)
            err.report = self.report
            raise
        except Exception as err:  # an AWS or stand-in error the step did not expect
            problem = _failure(err)
            self._failed(name, start, problem)
            raise UpgradeError(name, problem, self.database, self.next_steps, self.report) from err
        seconds = self.clock() - start
        self.report.steps.append(StepRecord(name, seconds, "ok", detail))
        self.echo(f"[{name}] done in {seconds:.1f} s" + (f": {detail}" if detail else ""))

    def _failed(self, name: str, start: float, problem: str) -> None:
        """Record and echo the failure of step ``name`` (started at ``start``, clock seconds)."""
        seconds = self.clock() - start
        self.report.steps.append(StepRecord(name, seconds, "failed", problem))
        self.echo(f"[{name}] FAILED after {seconds:.1f} s: {problem}")

    def found(self, target: UpgradeTarget, counts: Mapping[str, int] | None) -> None:
        """The check step's reading: the schema revision and the counts to start at the end
        (``counts``, or the services' counts now)."""
        self.report.revision_before = target.schema_revision()
        self.report.counts = dict(counts) if counts is not None else target.service_counts()

    def deploy_only(self, target: UpgradeTarget, database: str, next_steps: str) -> UpgradeReport:
        """A run without a schema change: one deploy, rolled out as ECS does; return the report."""
        _deploy(self, target, database, next_steps)
        self.report.revision_after = self.report.revision_before
        self.report.ok = True
        return self.report

    def snapshot(self, target: UpgradeTarget, name: str | None, database: str, next_steps: str) -> None:
        """The snapshot step: take the snapshot ``name`` before the schema changes."""
        def action() -> str:
            try:
                target.snapshot(name)  # type: ignore[arg-type]
            except Exception as err:
                raise UpgradeError(STEP_SNAPSHOT, f"the snapshot {name} failed: {_failure(err)}", database,
                                   next_steps) from err
            self.report.snapshot = name
            return f"snapshot {name} available"
        self.step(STEP_SNAPSHOT, action)

    def finish(self, target: UpgradeTarget, database: str, again: str) -> UpgradeReport:
        """Start the services at the report's counts, resume scaling; return the report (ok)."""
        _start(self, target, self.report.counts, database, again)
        self.report.ok = True
        return self.report

    def skip(self, name: str, why: str) -> None:
        self.report.steps.append(StepRecord(name, 0.0, "skipped", why))
        self.echo(f"[{name}] skipped: {why}")


def _failure(err: Exception) -> str:
    text = str(err).strip() or type(err).__name__
    return text if text.endswith(".") else text + "."


def _stop(run: _Run, target: UpgradeTarget, counts: dict[str, int], drain_timeout_seconds: float,
          sleep: Callable[[float], None], clock: Callable[[], float], resume: str, database: str) -> None:
    """Suspend scaling, stop the scheduler, drain the workers, stop the other writers."""

    def suspend() -> str:
        try:
            target.suspend_scaling()
        except Exception as err:
            raise UpgradeError(STEP_SUSPEND_SCALING, f"suspending scaling failed: {_failure(err)}", database,
                               f"fix the cause and run {resume}.") from err
        return "scaling policies and scheduled actions suspended"

    def stop(components: tuple[str, ...]) -> Callable[[], str]:
        def action() -> str:
            for component in components:
                try:
                    target.scale(component, 0)
                except Exception as err:
                    raise UpgradeError(STEP_STOP_WRITERS if component != "scheduler" else STEP_STOP_SCHEDULER,
                                       f"stopping {component} failed: {_failure(err)}", database,
                                       f"fix the cause and run {resume}.") from err
            return ", ".join(f"{c} 0 (was {counts.get(c, 0)})" for c in components)
        return action

    def drain() -> str:
        start = clock()
        while True:
            running = target.running_worker_tasks()
            waited = clock() - start
            if running == 0:
                run.report.workers_left = 0
                return f"no worker task running after {waited:.0f} s"
            if waited >= drain_timeout_seconds:
                run.report.workers_left = running
                run.echo(
                    f"[{STEP_DRAIN}] {running} worker task(s) still running after {waited:.0f} s: they keep running "
                    "but cannot report to the Execution API while the api-server is stopped; when their heartbeat "
                    "stops, the scheduler that starts after the upgrade fails them, and Airflow retries each one "
                    "that has retries left (tasks without retries end failed)"
                )
                return f"{running} worker task(s) left running after {waited:.0f} s"
            run.echo(f"[{STEP_DRAIN}] {running} worker task(s) running after {waited:.0f} s")
            sleep(min(DRAIN_POLL_SECONDS, max(drain_timeout_seconds - waited, 0.0)))

    run.step(STEP_SUSPEND_SCALING, suspend)
    run.step(STEP_STOP_SCHEDULER, stop(("scheduler",)))
    run.step(STEP_DRAIN, drain)
    run.step(STEP_STOP_WRITERS, stop(tuple(c for c in STOP_ORDER if c != "scheduler")))


def _start(run: _Run, target: UpgradeTarget, counts: dict[str, int], database: str, again: str) -> None:
    def start() -> str:
        for component in START_ORDER:
            count = counts.get(component, 0)
            if count == 0:
                continue
            try:
                target.scale(component, count)
            except Exception as err:
                raise UpgradeError(STEP_START, f"starting {component} ({count} tasks) failed: {_failure(err)}", database,
                                   f"fix the cause and run {again} (it starts the services).") from err
        return ", ".join(f"{c} {counts.get(c, 0)}" for c in START_ORDER)

    def resume() -> str:
        try:
            target.resume_scaling()
        except Exception as err:
            raise UpgradeError(STEP_RESUME_SCALING, f"resuming scaling failed: {_failure(err)}", database,
                               f"run {again} again, or resume the scalable targets' scaling yourself "
                               "(aws application-autoscaling register-scalable-target --suspended-state ...).") from err
        return "scaling resumed"

    run.step(STEP_START, start)
    run.step(STEP_RESUME_SCALING, resume)


def _deploy(run: _Run, target: UpgradeTarget, database: str, next_steps: str) -> None:
    def action() -> str:
        before = target.service_counts()
        try:
            target.deploy()
        except Exception as err:
            raise UpgradeError(STEP_DEPLOY, f"the deploy failed: {_failure(err)}", database, next_steps) from err
        after = target.service_counts()
        started = {c: n for c, n in after.items() if n != before.get(c, 0)}
        if started:
            # A template that re-applies DesiredCount: put the counts back before anything else.
            for component, count in started.items():
                target.scale(component, before.get(component, 0))
            return "the deploy changed desired counts " + ", ".join(f"{c}={n}" for c, n in started.items()) + \
                " (DesiredCount in the templates); set back to " + \
                ", ".join(f"{c}={before.get(c, 0)}" for c in started)
        return "services kept their counts"
    run.step(STEP_DEPLOY, action)


def _warn_all_stopped(echo: Callable[[str], None], found: Mapping[str, int], given: Mapping[str, int] | None) -> None:
    if given is None and found and not any(found.values()):
        echo(f"[{STEP_CHECK}] every service is at 0 tasks (asleep, or stopped by an earlier run that failed): they "
             "stay at 0 at the end; --counts scheduler=1,api-server=1,... starts them")


def _revision_name(plan: UpgradePlan, revision: str | None) -> str:
    names = []
    if revision is not None and revision == plan.from_revision:
        names.append(f"Airflow {plan.from_version}'s schema")
    if revision is not None and revision == plan.to_revision:
        names.append(f"Airflow {plan.to_version}'s schema")
    label = " = ".join(names) if names else "neither version's schema: migrated halfway"
    return f"at revision {revision or '(none)'} ({label})"


#: How the messages say that the services are stopped, and what that means for the schema.
_SERVICES_STOPPED = " The services are stopped (0 tasks)"
_NOTHING_RUNS = f"{_SERVICES_STOPPED}: nothing runs on this schema."


def upgrade(
    target: UpgradeTarget,
    plan: UpgradePlan,
    echo: Callable[[str], None],
    *,
    snapshot: str | None = None,
    counts: Mapping[str, int] | None = None,
    drain_timeout_seconds: float = DEFAULT_DRAIN_TIMEOUT_SECONDS,
    commands: Commands = Commands(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> UpgradeReport:
    """Upgrade the deployment as ``plan`` says, echoing each step (``[step] started``, ``[step]
    done in 12.3 s``).

    Without a schema change (:attr:`UpgradePlan.schema_changes` false): one deploy, which rolls
    the services over as ECS does (their deployment configuration); no snapshot, no migration.

    With one: suspend scaling, stop the scheduler, drain the worker tasks (up to
    ``drain_timeout_seconds``; a task still running keeps running, cannot report while the
    api-server is stopped, and is failed by the next scheduler when its heartbeat stops and retried
    if it has retries), stop dag-processor, triggerer and api-server, take the snapshot ``snapshot``,
    deploy with the services at 0, ``airflow db migrate`` once (exit code and resulting revision
    checked), start the services at ``counts`` (default: the counts before) and resume scaling.

    :param snapshot: the snapshot's name (:func:`snapshot_name`); required with a schema change.
    :param counts: component -> tasks to start at the end; default: :meth:`UpgradeTarget.service_counts`
        before anything stops (a re-run after a failure, with every service at 0, passes them).
    :param commands: the commands the error messages name.
    :param sleep, clock: seconds; injected by tests.
    :returns: the :class:`UpgradeReport` (``ok`` true).
    :raises UpgradeError: a step failed; the message says what happened, the database's state and
        the command that continues or restores. After a failed migration the services stay at 0.
    """
    report = UpgradeReport(plan)
    run = _Run(report, echo, clock)
    echo(plan.describe())

    def check() -> str:
        run.found(target, counts)
        if plan.schema_changes and snapshot is None:
            raise UpgradeError(STEP_CHECK, "a schema change needs a snapshot name.", "unchanged by this run.",
                               "pass snapshot=snapshot_name(...).")
        _warn_all_stopped(echo, report.counts, counts)
        return _check_summary(plan, report)

    run.step(STEP_CHECK, check)
    again = f"{commands.upgrade} {counts_option(report.counts)}"
    run.database = f"{_revision_name(plan, report.revision_before)}, unchanged."
    run.next_steps = f"fix the cause and run {again} (it carries on from here)."
    if not plan.schema_changes:
        unchanged = f"{_revision_name(plan, report.revision_before)}, unchanged (no migration)."
        return run.deploy_only(target, unchanged, f"fix the cause and run {commands.upgrade} again; the services "
                               "run the version ECS rolled back to (airflow-ecs status).")

    before = f"{_revision_name(plan, report.revision_before)}, unchanged."
    _stop(run, target, report.counts, drain_timeout_seconds, sleep, clock, again, before)
    stopped = f"{before}{_SERVICES_STOPPED}."
    back_to_old = f"{commands.rollback} {counts_option(report.counts)}"
    run.database = stopped
    run.next_steps = f"fix the cause and run {again}; or start the old version again: {back_to_old}."

    if report.revision_before == plan.to_revision:
        run.skip(STEP_SNAPSHOT, f"the database is already at {plan.to_version}'s revision (an earlier run migrated it)")
    else:
        run.snapshot(target, snapshot, stopped, run.next_steps)

    restore = (f"{commands.rollback} --restore-snapshot {report.snapshot} {counts_option(report.counts)}"
               if report.snapshot else back_to_old)
    _deploy(run, target, stopped,
            f"fix the cause and run {again}; or return to the old version: {back_to_old}.")

    run.database = f"unknown (the migration may have started).{_NOTHING_RUNS}"
    run.next_steps = f"check the migration's log, then run {again}; or restore the snapshot taken before: {restore}."
    _migrate(run, target, plan, again, restore)
    after = f"{_revision_name(plan, report.revision_after)} (migrated)."
    run.database, run.next_steps = after, f"fix the cause and run {again} (it starts the services)."
    return run.finish(target, after, again)


def rollback(
    target: UpgradeTarget,
    plan: UpgradePlan,
    echo: Callable[[str], None],
    *,
    confirm: Callable[[str], bool],
    snapshot: str | None = None,
    restore_snapshot: str | None = None,
    fallback_snapshot: str | None = None,
    counts: Mapping[str, int] | None = None,
    drain_timeout_seconds: float = DEFAULT_DRAIN_TIMEOUT_SECONDS,
    commands: Commands = Commands(),
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> UpgradeReport:
    """Return the deployment to the previous version (``plan`` from :func:`plan_rollback`).

    Without a schema change: one deploy of the previous synthesis (rolled out as ECS does).
    With one: suspend scaling, stop the scheduler, drain, stop the writers, take the snapshot
    ``snapshot`` (a rollback is a schema change too), ``airflow db downgrade --to-version
    <previous> -y`` with the CURRENT task definition (only the newer Airflow knows the migrations
    to undo), check the revision, deploy the previous synthesis with the services at 0, start them.

    With ``restore_snapshot``, or when the downgrade fails and ``fallback_snapshot`` is given:
    restore that snapshot instead of downgrading, after echoing what is lost (every write since
    the snapshot was taken) and asking ``confirm`` (the CLI's ``--yes`` answers yes). A failed
    downgrade without a snapshot to fall back to stops with the services at 0.

    :param confirm: asked with a question; True goes on.
    :param snapshot: the name of the snapshot taken before the downgrade (:func:`snapshot_name`).
    :param restore_snapshot: restore this snapshot (taken before the upgrade being rolled back)
        instead of downgrading.
    :param fallback_snapshot: the snapshot to offer when the downgrade fails.
    :raises UpgradeError: a step failed or the restore was declined (services at 0, database state
        and the command that continues in the message).
    """
    report = UpgradeReport(plan)
    run = _Run(report, echo, clock)
    echo(plan.describe())

    def check() -> str:
        run.found(target, counts)
        if restore_snapshot is not None and target.snapshot_created(restore_snapshot) is None:
            raise UpgradeError(STEP_CHECK, f"the snapshot {restore_snapshot} does not exist.", "unchanged by this run.",
                               "name an existing snapshot (aws rds describe-db-snapshots --snapshot-type manual).")
        _warn_all_stopped(echo, report.counts, counts)
        if plan.schema_changes and restore_snapshot is None and snapshot is None:
            raise UpgradeError(STEP_CHECK, "a schema downgrade needs a snapshot name.", "unchanged by this run.",
                               "pass snapshot=snapshot_name(...).")
        return _check_summary(plan, report)

    run.step(STEP_CHECK, check)
    again = f"{commands.rollback} {counts_option(report.counts)}"
    run.database = f"{_revision_name(plan, report.revision_before)}, unchanged."
    run.next_steps = f"fix the cause and run {again} (it carries on from here)."
    if not plan.schema_changes and restore_snapshot is None:
        return run.deploy_only(target, f"{_revision_name(plan, report.revision_before)}, unchanged (no downgrade).",
                               f"fix the cause and run {commands.rollback} again.")

    before = f"{_revision_name(plan, report.revision_before)}, unchanged."
    _stop(run, target, report.counts, drain_timeout_seconds, sleep, clock, again, before)
    run.database = before + _NOTHING_RUNS
    restore = _Restore(run, target, plan, again, confirm, now)
    if restore_snapshot is not None:
        restore(restore_snapshot, "a restore was asked for")
    elif report.revision_before == plan.to_revision:
        run.skip(STEP_DOWNGRADE, f"the database is already at {plan.to_version}'s revision")
    else:
        run.snapshot(target, snapshot, before + _NOTHING_RUNS, f"fix the cause and run {again}.")
        try:
            _downgrade(run, target, plan, again, fallback_snapshot)
        except UpgradeError as err:
            if fallback_snapshot is None:
                raise
            restore(fallback_snapshot, err.problem.rstrip("."))

    report.revision_after = target.schema_revision()
    after = f"{_revision_name(plan, report.revision_after)}."
    run.database = after + _NOTHING_RUNS
    _deploy(run, target, after + _NOTHING_RUNS, f"fix the cause and run {again}.")
    return run.finish(target, after, again)


def _migrate(run: _Run, target: UpgradeTarget, plan: UpgradePlan, again: str, restore: str) -> None:
    """The migrate step: ``airflow db migrate`` once, its exit code and the revision it leaves checked.

    :param again: the upgrade command that carries on; :param restore: the one that restores.
    """
    def action() -> str:
        code = target.run_airflow(["db", "migrate"])
        revision = run.report.revision_after = target.schema_revision()
        if code != 0 or (plan.to_revision is not None and revision != plan.to_revision):
            reason = f"airflow db migrate exited {code}" if code != 0 else \
                f"airflow db migrate exited 0 but left the database at {revision}, not {plan.to_revision}"
            raise UpgradeError(
                STEP_MIGRATE, reason + ".",
                f"{_revision_name(plan, revision)}.{_NOTHING_RUNS}",
                f"read the migration's log, fix the cause and run {again} (airflow db migrate carries on from "
                f"this revision); or restore the snapshot taken before: {restore}.",
            )
        return f"database {_revision_name(plan, revision)}"
    run.step(STEP_MIGRATE, action)


def _downgrade(run: _Run, target: UpgradeTarget, plan: UpgradePlan, again: str, fallback_snapshot: str | None) -> None:
    """The downgrade step: ``airflow db downgrade --to-version <previous> -y``, revision checked."""
    def action() -> str:
        code = target.run_airflow(["db", "downgrade", "--to-version", plan.to_version, "-y"])
        revision = target.schema_revision()
        if code != 0 or (plan.to_revision is not None and revision != plan.to_revision):
            restore = (f"{again} --restore-snapshot {fallback_snapshot}" if fallback_snapshot
                       else f"{again} --restore-snapshot <the snapshot taken before the upgrade>")
            raise UpgradeError(
                STEP_DOWNGRADE,
                f"airflow db downgrade --to-version {plan.to_version} exited {code} and left the database "
                f"{_revision_name(plan, revision)}.",
                f"{_revision_name(plan, revision)}.{_NOTHING_RUNS}",
                f"restore the snapshot taken before the upgrade: {restore} (it says what is lost and asks); "
                f"or fix the cause and run {again}.",
            )
        return f"database {_revision_name(plan, revision)}"
    run.step(STEP_DOWNGRADE, action)


@dataclass(frozen=True)
class _Restore:
    """A rollback's restore of a snapshot: say what is lost, ask, restore, check the revision.

    :param again: the rollback command that carries on (with ``--counts``).
    :param confirm: asked before the restore; True goes on.
    :param now: the time (UTC) that tells how much is lost.
    """

    run: _Run
    target: UpgradeTarget
    plan: UpgradePlan
    again: str
    confirm: Callable[[str], bool]
    now: Callable[[], dt.datetime]

    def __call__(self, name: str, why: str) -> None:
        """Restore the snapshot ``name``, asked for because ``why``.

        :raises UpgradeError: the snapshot does not exist, the restore is declined or fails, or the
            restored database is not at the previous version's revision.
        """
        plan, again = self.plan, self.again
        taken = self.target.snapshot_created(name)
        if taken is None:
            raise UpgradeError(STEP_RESTORE, f"{why} and the snapshot {name} does not exist.", self._state(),
                               "name an existing snapshot: " + f"{again} --restore-snapshot <name>.")
        lost = self.now() - taken
        self.run.echo(
            f"[{STEP_RESTORE}] restoring {name} replaces the database by its state of {taken:%Y-%m-%d %H:%M:%S} UTC: "
            f"every write since then is lost ({lost.total_seconds() / 60:.0f} minutes of DAG runs, task states, "
            "users, connections and variables kept in the database, XComs, logs' metadata)")
        if not self.confirm(f"Restore {name} and lose everything written since {taken:%Y-%m-%d %H:%M:%S} UTC?"):
            raise UpgradeError(STEP_RESTORE, f"{why}; the restore of {name} was declined.", self._state(),
                               f"{again} --restore-snapshot {name} --yes restores it; or fix the downgrade's cause "
                               f"and run {again}.")

        def action() -> str:
            try:
                self.target.restore_snapshot(name)
            except Exception as err:
                raise UpgradeError(STEP_RESTORE, f"restoring {name} failed: {_failure(err)}",
                                   "unknown: check it (airflow-ecs status)." + _NOTHING_RUNS,
                                   f"fix the cause and run {again} --restore-snapshot {name} --yes.") from err
            self.run.report.snapshot = name
            revision = self.target.schema_revision()
            if plan.to_revision is not None and revision != plan.to_revision:
                raise UpgradeError(
                    STEP_RESTORE, f"the database restored from {name} is {_revision_name(plan, revision)}, not "
                    f"Airflow {plan.to_version}'s ({plan.to_revision}).", f"{_revision_name(plan, revision)}.{_NOTHING_RUNS}",
                    f"restore a snapshot taken before the upgrade to {plan.from_version}: {again} --restore-snapshot "
                    "<name> --yes.")
            return f"database restored from {name} (taken {taken:%Y-%m-%d %H:%M:%S} UTC), {_revision_name(plan, revision)}"
        self.run.step(STEP_RESTORE, action)

    def _state(self) -> str:
        """The database's state in a message of a restore that did not start."""
        return f"{_revision_name(self.plan, self.target.schema_revision())}.{_NOTHING_RUNS}"
