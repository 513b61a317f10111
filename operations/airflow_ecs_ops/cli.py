"""The ``airflow-ecs`` command line (click).

Every command finds the deployment from the stacks ``<project>-<stage>-{cluster,airflow,image}``
in the session's region; ``--project`` and ``--stage`` default to ``AIRFLOW_ECS_PROJECT`` /
``AIRFLOW_ECS_STAGE``, else to the ``project_name`` / ``stage`` of ``./cdk.json``'s context (so in
the repository they match what ``cdk deploy`` deployed), else ``airflow`` / ``dev``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import boto3
import click
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError, ProfileNotFound

from airflow_ecs_ops import logs as logs_mod
from airflow_ecs_ops import office_hours, preflight, publish as publish_mod, shell as shell_mod, tasks
from airflow_ecs_ops import secrets as secrets_mod
from airflow_ecs_ops.options import NamePart, Region, Seconds
from airflow_ecs_ops.deployment import (
    COMPONENTS,
    SERVICES,
    WORKER,
    Deployment,
    OpsError,
    aws_error,
    check_component,
    find_deployment,
    stack_name,
)


def _cdk_json_context(key: str) -> str | None:
    path = Path("cdk.json")
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text()).get("context", {}).get(key)
    except (OSError, ValueError):
        return None
    return str(value) if value is not None else None


class Ctx:
    """What every command shares: the AWS session and the deployment's name."""

    def __init__(self, project: str, stage: str, region: str | None, profile: str | None):
        self.project, self.stage, self.profile = project, stage, profile
        try:
            self.session = boto3.Session(region_name=region, profile_name=profile)
        except ProfileNotFound as err:
            raise OpsError(f"{err}: check --profile / AWS_PROFILE (aws configure list-profiles).") from err
        if not self.session.region_name:
            raise OpsError("No AWS region: pass --region or set AWS_REGION (or a profile's region).")

    def client(self, name: str):
        try:
            return self.session.client(name)
        except NoRegionError as err:
            raise OpsError("No AWS region: pass --region or set AWS_REGION.") from err

    def deployment(self, roles: tuple[str, ...] = ("cluster", "airflow")) -> Deployment:
        return find_deployment(self.session, self.project, self.stage, roles)


def _progress(line: str) -> None:
    click.echo(f"[airflow-ecs] {line}", err=True)


class OpsGroup(click.Group):
    """Every AWS error a command does not handle itself becomes one line (``Error: ...``), not a
    traceback: an unreachable endpoint, an unexpected refusal."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ClientError, BotoCoreError) as err:
            raise aws_error(err, f"running {ctx.invoked_subcommand or 'the command'}") from err


@click.group(cls=OpsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--project", envvar="AIRFLOW_ECS_PROJECT", default=lambda: _cdk_json_context("project_name") or "airflow",
              type=NamePart("project", "--project airflow", first_is_letter=True),
              show_default="cdk.json's project_name, else airflow", help="The CDK app's project_name.")
@click.option("--stage", envvar="AIRFLOW_ECS_STAGE", default=lambda: _cdk_json_context("stage") or "dev",
              type=NamePart("stage", "--stage prod"),
              show_default="cdk.json's stage, else dev", help="The CDK app's stage.")
@click.option("--region", envvar="AWS_REGION", default=None, type=Region(),
              help="AWS region (default: the AWS CLI's).")
@click.option("--profile", envvar="AWS_PROFILE", default=None, help="AWS profile (default: the AWS CLI's).")
@click.pass_context
def cli(ctx: click.Context, project: str, stage: str, region: str | None, profile: str | None) -> None:
    """Operate the Airflow on ECS Fargate deployment of this repository.

    \b
    Examples:
      airflow-ecs status
      airflow-ecs wake --wait
      airflow-ecs sleep
      airflow-ecs run -- db check
      airflow-ecs run -- users list
      airflow-ecs logs scheduler --since 30m --follow
      airflow-ecs logs worker --queue team-a
      airflow-ecs shell api-server
      airflow-ecs --stage prod publish --version 1.4.0
    """
    ctx.obj = (project, stage, region, profile)


def _ctx(click_ctx: click.Context) -> Ctx:
    return Ctx(*click_ctx.obj)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--component", default="scheduler", show_default=True, type=click.Choice(list(SERVICES)),
              help="Whose task definition, task role, secrets and network to use.")
@click.option("--timeout", "timeout_seconds", type=Seconds("--timeout", "leave it out to wait until the task stops"),
              default=None, help="Stop waiting after this many seconds.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run(click_ctx: click.Context, component: str, timeout_seconds: float | None, command: tuple[str, ...]) -> None:
    """Run an Airflow command as a one-off ECS task and exit with its exit code.

    COMMAND is what follows `airflow` (the image's entrypoint), after `--`:
    `airflow-ecs run -- db check`, `airflow-ecs run -- users list`. The task waits for the DB
    migrations like the services, streams its log here, and is stopped by ECS when it ends.
    """
    ctx = _ctx(click_ctx)
    deployment = ctx.deployment()
    ecs, logs = ctx.client("ecs"), ctx.client("logs")
    template = tasks.service_template(ecs, deployment, component)
    arn = tasks.run_one_off(ecs, deployment, template, list(command))
    _progress(f"started {arn} ({' '.join(command)}); waiting for it to stop")
    stream = None
    if template.log_group and template.log_stream_prefix:
        name = logs_mod.stream_name(template.log_stream_prefix, component, tasks.task_id(arn))
        stream = logs_mod.LogStream(logs, template.log_group, name, click.echo)
        _progress(f"log: {template.log_group} {name}")
    code = tasks.wait_for_task(
        ecs, deployment.cluster, arn, component, log=stream, progress=_progress, timeout_seconds=timeout_seconds
    )
    _progress(f"exit code {code}")
    sys.exit(code)


@cli.command()
@click.argument("component", default="scheduler")
@click.option("--command", "command", default="/bin/bash", show_default=True, help="What to run in the container.")
@click.pass_context
def shell(click_ctx: click.Context, component: str, command: str) -> None:
    """Open a shell in a running task of COMPONENT (ECS Exec; needs enable_ecs_exec and the
    Session Manager plugin)."""
    check_component(component, tuple(SERVICES))
    ctx = _ctx(click_ctx)
    deployment = ctx.deployment()
    sys.exit(shell_mod.open_shell(ctx.profile, ctx.client("ecs"), deployment, component, command))


@cli.command()
@click.argument("component")
@click.option("--since", default="10m", show_default=True, help="How far back: 30s, 10m, 2h, 1d.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until interrupted.")
@click.option("--queue", default=None, metavar="NAME",
              help="With worker: a team queue's workers (a worker_queues entry with its own role), whose "
              "streams are worker-NAME/...; without it, worker shows the default workers.")
@click.pass_context
def logs(click_ctx: click.Context, component: str, since: str, follow: bool, queue: str | None) -> None:
    """Print COMPONENT's CloudWatch logs (scheduler, api-server, dag-processor, triggerer, worker).

    \b
    airflow-ecs logs worker                  the default workers (and queues without a role)
    airflow-ecs logs worker --queue team-a   team queue team-a's workers
    """
    check_component(component, COMPONENTS)
    if queue is not None and component != WORKER:
        raise OpsError(
            f"--queue selects a team queue's workers, not a part of {component}: "
            f"airflow-ecs logs worker --queue {queue} (or leave --queue out)."
        )
    since_seconds = logs_mod.parse_since(since)
    ctx = _ctx(click_ctx)
    deployment = ctx.deployment()
    ecs, logs_client = ctx.client("ecs"), ctx.client("logs")
    if component == WORKER:
        family = deployment.output("cluster", "WorkerTaskDefinitionFamily")
        container = deployment.output("cluster", "WorkerContainerName")
        if queue is not None:
            family = _team_queue_family(ecs, deployment, family, queue)
        task_definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
        group, prefix = tasks.awslogs_options(task_definition, container)
    else:
        template = tasks.service_template(ecs, deployment, component)
        group, prefix = template.log_group, template.log_stream_prefix
    if not group:
        raise OpsError(f"The {component} container does not log to CloudWatch (no awslogs driver).")
    seen: set[str] = set()
    start = logs_mod.now_ms() - since_seconds * 1000
    while True:
        for event in logs_mod.recent_events(logs_client, group, f"{prefix}/" if prefix else None, start, seen):
            stamp = datetime.fromtimestamp(event["timestamp"] / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            stream = event.get("logStreamName", "").rsplit("/", 1)[-1][:8]
            click.echo(f"{stamp} {stream} {event['message']}")
        if not follow:
            return
        # Events can arrive late; look back a minute and drop the ones already printed.
        start = logs_mod.now_ms() - 60_000
        tasks.sleep(2.0)


def _team_queue_family(ecs, deployment: Deployment, family: str, queue: str) -> str:
    """The task definition family of team queue ``queue`` (``<family>-<queue>``).

    :raises OpsError: the deployment has no such team queue; the message names those it has.
    """
    queues = tasks.team_queues(ecs, deployment)
    if queue in queues:
        return f"{family}-{queue}"
    have = (f"team queues with a task definition there: {', '.join(queues)}." if queues
            else "it has no team queue.")
    raise OpsError(
        f"No team queue {queue!r} in {deployment.project}-{deployment.stage} (no ACTIVE task definition family "
        f"{family}-{queue}): {have} A worker_queues entry without s3_prefixes, secrets_prefixes, "
        "managed_policy_arns or jobs runs on the default workers' task definition and logs with them: "
        "airflow-ecs logs worker."
    )


@cli.command()
@click.pass_context
def status(click_ctx: click.Context) -> None:
    """Show each service's counts and deployment, running worker tasks (per queue's task
    definition family: the default workers, each team queue), whether office hours have
    the environment asleep (and until when) or awake (until when), the UI URL and login."""
    ctx = _ctx(click_ctx)
    deployment = ctx.deployment(("cluster", "airflow", "database"))
    ecs = ctx.client("ecs")
    click.echo(f"deployment {deployment.project}-{deployment.stage} in {deployment.region}, cluster {deployment.cluster}")
    click.echo(f"{'component':<14}{'desired':>8}{'running':>8}{'pending':>8}{'healthy':>8}  deployment")
    for s in tasks.service_statuses(ecs, deployment):
        rollout = s.rollout + (f" ({s.rollout_reason})" if s.rollout == "FAILED" and s.rollout_reason else "")
        click.echo(f"{s.component:<14}{s.desired:>8}{s.running:>8}{s.pending:>8}{s.healthy:>8}  {rollout}")
    workers = tasks.worker_tasks(ecs, deployment)
    click.echo(f"worker tasks running: {len(workers)}" + (f" ({tasks.count_by_queue(workers)})" if workers else ""))
    if "database" in deployment.outputs:
        hours = office_hours.read_office_hours(ctx.client("application-autoscaling"), ctx.client("rds"), deployment)
        click.echo(hours.describe(datetime.now(timezone.utc)))
        if hours.database:
            click.echo(f"database {hours.database}: {hours.database_status}")
    click.echo(f"UI: {deployment.output('airflow', 'AirflowUiUrl')}")
    click.echo(f"admin login: {deployment.output('airflow', 'AdminUsername')}")
    secret = deployment.output("airflow", "AdminPasswordSecretArn")
    click.echo(
        "admin password: aws secretsmanager get-secret-value "
        f"--region {deployment.region} --secret-id {secret} --query SecretString --output text"
    )


@cli.command("stop-workers")
@click.option("--stop-scheduler", is_flag=True, help="First scale the scheduler to 0 so no new worker starts.")
@click.option("--missing-ok", is_flag=True, help="Succeed when the deployment does not exist (e.g. already destroyed).")
@click.pass_context
def stop_workers(click_ctx: click.Context, stop_scheduler: bool, missing_ok: bool) -> None:
    """Stop every worker task still running in the cluster, the team queues' too (make destroy
    runs this first: a running task's network interface blocks deleting the VPC)."""
    ctx = _ctx(click_ctx)
    roles = ("cluster", "airflow") if stop_scheduler else ("cluster",)
    try:
        deployment = ctx.deployment(roles)
    except OpsError as err:
        if missing_ok and str(err).startswith("No deployment"):
            click.echo(f"nothing to stop: {err}")
            return
        raise
    ecs = ctx.client("ecs")
    if stop_scheduler:
        tasks.scale_service(ecs, deployment, "scheduler", 0)
        click.echo(f"scheduler service {deployment.service_name('scheduler')} scaled to 0")
    stopped = tasks.stop_workers(ecs, deployment, reason="airflow-ecs stop-workers")
    click.echo(f"stopped {len(stopped)} worker task(s)" + (f" ({tasks.count_by_queue(stopped)})" if stopped else ""))
    for worker in stopped:
        click.echo(f"  {worker.arn}" + (f" (queue {worker.queue})" if worker.queue else ""))


@cli.command("preflight")
@click.option("--account", default=None, help="Fail unless the credentials belong to this account.")
@click.option("--assembly", type=click.Path(path_type=Path), default=None,
              help="The synthesized cloud assembly about to be deployed (make deploy: cdk.out): checks "
              "whether it changes a database that office hours stopped.")
@click.option("--wake/--no-wake", "wake_answer", default=None,
              help="When the change needs the stopped database: wake the environment (--wake) or stop "
              "(--no-wake) without asking. Default: ask on a terminal, else stop.")
@click.pass_context
def preflight_command(click_ctx: click.Context, account: str | None, assembly: Path | None,
                      wake_answer: bool | None) -> None:
    """Check credentials, region and the CDK bootstrap before a deploy (make deploy runs this),
    and that a database office hours stopped can take the change (RDS refuses changes to a stopped
    instance): if not, say so and offer to wake the environment first."""
    ctx = _ctx(click_ctx)
    caller_account, region = preflight.check_deploy_prerequisites(ctx.session, account or None)
    click.echo(f"deploying to account {caller_account}, region {region}: credentials and CDK bootstrap OK")
    check = preflight.check_database(ctx.session, ctx.project, ctx.stage, assembly)
    if check.status in office_hours.DB_ASLEEP and not check.blocked:
        note = "" if assembly else " (pass --assembly to check that this deploy leaves it alone)"
        click.echo(f"database {check.identifier} is {check.status} (asleep): this deploy does not change it and "
                   f"leaves the environment asleep{note}")
    if not check.blocked:
        return
    changed = "; ".join(f"{logical_id}: {', '.join(names)}" for logical_id, names in sorted(check.changes.items()))
    problem = (
        f"The database {check.identifier} is {check.status} (office hours have the environment asleep) and this "
        f"deploy changes it ({changed}); RDS refuses changes to a stopped instance (InvalidDBInstanceState)."
    )
    if wake_answer is None and sys.stdin.isatty():
        click.echo(problem)
        wake_answer = click.confirm("Wake the environment now (airflow-ecs wake --wait) and deploy?", default=False)
    if not wake_answer:
        raise OpsError(
            f"{problem} Wake it first: airflow-ecs wake --wait, then make deploy again; airflow-ecs sleep "
            "afterwards puts it back to sleep (or the next scheduled stop does)."
        )
    deployment = ctx.deployment(("cluster", "airflow", "database"))
    office_hours.wake_environment(
        ctx.client("application-autoscaling"), ctx.client("ecs"), ctx.client("rds"), deployment, click.echo,
        wait_for_database=True,
    )
    click.echo("the environment is awake; deploying (airflow-ecs sleep puts it back to sleep)")


@cli.command()
@click.option("--wait", is_flag=True, help="Wait until the database is available before starting the services.")
@click.pass_context
def wake(click_ctx: click.Context, wait: bool) -> None:
    """Start the environment now, as office hours do at their start: the database, then every
    service office hours manage, back to its task count. The next scheduled stop puts it to sleep."""
    ctx = _ctx(click_ctx)
    deployment = ctx.deployment(("cluster", "airflow", "database"))
    office_hours.wake_environment(
        ctx.client("application-autoscaling"), ctx.client("ecs"), ctx.client("rds"), deployment, click.echo,
        wait_for_database=wait,
    )
    click.echo(f"{deployment.project}-{deployment.stage} is waking up; airflow-ecs status shows the tasks")


@cli.command("sleep")
@click.pass_context
def sleep_command(click_ctx: click.Context) -> None:
    """Stop the environment now, as office hours do at their stop: every service office hours
    manage to 0 tasks, then the database. The next scheduled start wakes it."""
    ctx = _ctx(click_ctx)
    deployment = ctx.deployment(("cluster", "airflow", "database"))
    office_hours.sleep_environment(
        ctx.client("application-autoscaling"), ctx.client("ecs"), ctx.client("rds"), deployment, click.echo
    )
    hours = office_hours.read_office_hours(ctx.client("application-autoscaling"), ctx.client("rds"), deployment)
    click.echo(hours.describe(datetime.now(timezone.utc)))


@cli.command()
@click.option("--version", "version", default=None, help="Tag to publish; a semantic version, required in prod. "
              "Default in dev: git-<commit>.")
@click.option("--engine", default="docker", show_default=True, help="Container engine: docker or podman.")
@click.option("--assembly", default="cdk.out", show_default=True, type=click.Path(path_type=Path),
              help="The cloud assembly holding the staged image (make synth writes it).")
@click.pass_context
def publish(click_ctx: click.Context, version: str | None, engine: str, assembly: Path) -> None:
    """Build the image staged in cdk.out and push it into the app's ECR repository with a
    version tag; deploy it with -c image_tag=<tag>."""
    ctx = _ctx(click_ctx)
    staged = publish_mod.staged_image(assembly, stack_name(ctx.project, ctx.stage, "image"))
    commit, dirty = publish_mod.git_state(Path.cwd())
    tag = publish_mod.default_tag(ctx.stage, commit, dirty, version)
    deployment = ctx.deployment(("image",))
    repository_uri = deployment.output("image", "ImageRepositoryUri")
    image = publish_mod.publish(ctx.client("ecr"), engine, staged, repository_uri, tag)
    click.echo(f"published {image}")
    click.echo(f"deploy it: make deploy CDK_ARGS='-c image_tag={tag}'")


# --- Upgrades and rollbacks (airflow_ecs_ops/upgrade.py, docs/upgrading.md) -----------------


def _default_cdk() -> str:
    local = Path("node_modules/.bin/cdk")
    return str(local) if local.exists() else "cdk"


def _upgrade_options(command):
    """Options ``upgrade`` and ``rollback`` share."""
    options = [
        click.option("--from-version", default=None,
                     help="The Airflow version deployed now (default: asked from a one-off task of the api-server)."),
        click.option("--to-version", default=None,
                     help="The Airflow version of --assembly (default: ARG AIRFLOW_VERSION of the Dockerfile staged "
                     "in it; needed for an assembly synthesized with image_tag or image_uri)."),
        click.option("--counts", default=None,
                     help="Tasks per service to start at the end, e.g. scheduler=1,api-server=1,dag-processor=1,"
                     "triggerer=1 (default: the counts before; a re-run after a failure, with the services at 0, "
                     "passes the counts the failure message printed)."),
        click.option("--drain-timeout", type=float, default=None, show_default="900",
                     help="Seconds to wait for the worker tasks in flight after the scheduler stopped."),
        click.option("--cdk", "cdk_command", default=_default_cdk, show_default="node_modules/.bin/cdk, else cdk",
                     help="The CDK CLI that deploys the assembly."),
        click.option("--report", "report_file", type=click.Path(path_type=Path), default=None,
                     help="Also write the steps, their seconds and the schema revisions to this JSON file."),
        click.option("--dry-run", is_flag=True, help="Print the plan and stop."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _upgrade_setup(click_ctx: click.Context, assembly: Path, cdk_command: str, from_version: str | None,
                   to_version: str | None):
    from airflow_ecs_ops import upgrade_aws

    ctx = _ctx(click_ctx)
    deployment = ctx.deployment(("cluster", "airflow", "database"))
    target = upgrade_aws.AwsUpgradeTarget(ctx.session, deployment, assembly=assembly, cdk=cdk_command.split(),
                                          echo=_progress)
    if to_version is None:
        to_version = upgrade_aws.assembly_airflow_version(assembly, stack_name(ctx.project, ctx.stage, "image"))
    if from_version is None:
        _progress("asking the deployment for its Airflow version and schema revision (a one-off task, about a minute)")
        from_version = target.deployed_version()
    return ctx, target, from_version, to_version


def _new_snapshot(ctx, target, plan, from_version: str, to_version: str) -> str | None:
    """The name of the snapshot a schema change takes (one not taken yet), or None without one."""
    from airflow_ecs_ops import upgrade as up

    if not plan.schema_changes:
        return None
    return up.unused_snapshot_name(target, up.snapshot_name(
        ctx.project, ctx.stage, from_version, to_version, datetime.now(timezone.utc)))


def _command_line(ctx, command: str, assembly: object, from_version: str, to_version: str) -> str:
    """The ``airflow-ecs upgrade|rollback`` command line the messages name."""
    return (f"airflow-ecs --stage {ctx.stage} --project {ctx.project} {command} --assembly {assembly} "
            f"--from-version {from_version} --to-version {to_version}")


def _run_options(counts: str | None, drain_timeout: float | None) -> dict:
    """``counts`` and ``drain_timeout_seconds`` of upgrade.upgrade and upgrade.rollback from the options."""
    from airflow_ecs_ops import upgrade as up

    return {
        "counts": up.parse_counts(counts) if counts else None,
        "drain_timeout_seconds": drain_timeout if drain_timeout is not None else up.DEFAULT_DRAIN_TIMEOUT_SECONDS,
    }


def _finish(report, report_file: Path | None, done: str) -> None:
    """Write the report (with ``--report``) and say what was done (``done``, and the snapshot taken)."""
    if report_file is not None:
        report_file.write_text(json.dumps(report.to_dict(), indent=2, default=str))
        _progress(f"report: {report_file}")
    click.echo(done + (f"; snapshot {report.snapshot}" if report.snapshot else ""))


@cli.command("upgrade")
@click.option("--assembly", default="cdk.out", show_default=True, type=click.Path(path_type=Path),
              help="The new synthesis (make synth writes cdk.out).")
@_upgrade_options
@click.pass_context
def upgrade_command(click_ctx: click.Context, assembly: Path, from_version: str | None, to_version: str | None,
                    counts: str | None, drain_timeout: float | None, cdk_command: str, report_file: Path | None,
                    dry_run: bool) -> None:
    """Deploy a new synthesis; when its Airflow version changes the schema: stop the scheduler,
    let the worker tasks in flight finish, stop the other services, snapshot the database, deploy
    with the services at 0, run airflow db migrate once, start the services (docs/upgrading.md).
    The same Airflow version (new image, new DAGs) is a plain rolling deploy."""
    from airflow_ecs_ops import upgrade as up

    ctx, target, from_version, to_version = _upgrade_setup(click_ctx, assembly, cdk_command, from_version, to_version)
    plan = up.plan_upgrade(from_version, to_version)
    click.echo(plan.describe())
    if dry_run:
        return
    commands = up.Commands(
        upgrade=_command_line(ctx, "upgrade", assembly, from_version, to_version),
        rollback=_command_line(ctx, "rollback", f"<the {from_version} synthesis>", to_version, from_version),
    )
    report = up.upgrade(
        target, plan, _progress, snapshot=_new_snapshot(ctx, target, plan, from_version, to_version),
        commands=commands, **_run_options(counts, drain_timeout),
    )
    _finish(report, report_file, f"upgraded to Airflow {to_version}")


@cli.command("rollback")
@click.option("--assembly", default=None, type=click.Path(path_type=Path),
              help="The previous version's synthesis (check out its git tag and make synth there). Required.")
@click.option("--restore-snapshot", default=None,
              help="Restore this snapshot instead of downgrading (it says what is lost and asks first).")
@click.option("--yes", is_flag=True, help="Restore a snapshot without asking.")
@_upgrade_options
@click.pass_context
def rollback_command(click_ctx: click.Context, assembly: Path, restore_snapshot: str | None, yes: bool,
                     from_version: str | None, to_version: str | None, counts: str | None,
                     drain_timeout: float | None, cdk_command: str, report_file: Path | None, dry_run: bool) -> None:
    """Return to the previous synthesis; where the schema changed, first airflow db downgrade
    with the current (newer) image, or, when that fails or --restore-snapshot is given, restore
    the snapshot taken before the upgrade (after saying what is lost and asking)."""
    from airflow_ecs_ops import upgrade as up

    if assembly is None:
        up.plan_rollback(from_version or "", None)  # raises: no previous version, and how to make one
    assert assembly is not None
    ctx, target, from_version, to_version = _upgrade_setup(click_ctx, assembly, cdk_command, from_version, to_version)
    plan = up.plan_rollback(from_version, to_version)
    click.echo(plan.describe())
    fallback = None
    if plan.schema_changes and restore_snapshot is None:
        prefix = up.snapshot_name(ctx.project, ctx.stage, to_version, from_version,
                                  datetime(2000, 1, 1, tzinfo=timezone.utc)).rsplit("-", 2)[0] + "-"
        fallback = target.latest_snapshot(prefix)
        click.echo(f"snapshot to fall back to if the downgrade fails: {fallback or 'none found'}")
    if dry_run:
        return

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            return False
        return click.confirm(question, default=False)

    commands = up.Commands(
        upgrade=_command_line(ctx, "upgrade", f"<the {from_version} synthesis>", to_version, from_version),
        rollback=_command_line(ctx, "rollback", assembly, from_version, to_version),
    )
    report = up.rollback(
        target, plan, _progress, confirm=confirm, snapshot=_new_snapshot(ctx, target, plan, from_version, to_version),
        restore_snapshot=restore_snapshot, fallback_snapshot=fallback, commands=commands,
        **_run_options(counts, drain_timeout),
    )
    _finish(report, report_file, f"rolled back to Airflow {to_version}")


# Connections and variables in Secrets Manager (airflow_ecs_ops/secrets.py).
for _group in secrets_mod.commands(_ctx):
    cli.add_command(_group)


def main() -> None:
    """Console script entry point. Errors print ``Error: <what is wrong and the fix>``, exit status 1."""
    cli(prog_name="airflow-ecs")
