"""The :class:`~airflow_ecs_ops.upgrade.UpgradeTarget` of a deployment on AWS.

Calls: ECS ``DescribeServices``, ``UpdateService``, ``ListTasks``, ``DescribeTasks``,
``DescribeTaskDefinition``, ``RunTask``; CloudWatch Logs ``GetLogEvents`` (what a one-off task
printed); RDS ``CreateDBSnapshot`` (+ the ``db_snapshot_available`` waiter),
``DescribeDBSnapshots``, ``DescribeDBInstances``, ``ModifyDBInstance`` and
``RestoreDBInstanceFromDBSnapshot`` (+ ``db_instance_available``); Application Auto Scaling
``DescribeScalableTargets`` and ``RegisterScalableTarget`` (``SuspendedState``); and the deploy:
the CDK CLI's ``cdk deploy --all --app <assembly>``, as ``make deploy`` runs it.

One-off tasks run the api-server's task definition (the image, role, secrets and network of the
service) with every container the api-server waits for (its ``db-migrate`` init container, which
runs ``airflow db migrate`` and ``users create``) told to run ``airflow version`` instead: RunTask
overrides apply to any container of the task definition. So ``airflow db migrate`` runs exactly
once, in the task's main container, and its exit code is that container's.

The deploy keeps each service's desired count: where the Airflow stack's template sets
``DesiredCount`` (services Application Auto Scaling does not own), CloudFormation sends it again on
every update of the service and would start the services during the migration. The target deploys
a copy of the assembly whose services' ``DesiredCount`` is the count they have now (0 during a
schema change) and re-points that template's asset (its S3 key is the SHA-256 of its content); the
next ``make deploy`` sets the configured counts again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from botocore.exceptions import ClientError

from airflow_ecs_ops import logs as logs_mod
from airflow_ecs_ops import tasks
from airflow_ecs_ops.deployment import SERVICES, Deployment, OpsError, aws_error
from airflow_ecs_ops.office_hours import DATABASE_OUTPUT, SCALABLE_DIMENSION, SERVICE_NAMESPACE
from airflow_ecs_ops.publish import staged_image

#: What a probe task prints: ``airflow-version: 3.3.2`` and ``alembic-revision: <rev>|none``.
PROBE_SCRIPT = (
    "import airflow\n"
    "from airflow.utils.db import _get_current_revision\n"
    "from airflow.utils.session import create_session\n"
    "with create_session() as session:\n"
    "    revision = _get_current_revision(session)\n"
    "print('airflow-version:', airflow.__version__)\n"
    "print('alembic-revision:', revision or 'none')\n"
)
#: The command the containers the api-server waits for run in a one-off task instead of theirs.
INIT_REPLACEMENT = ["version"]
#: Seconds a service may take to reach its desired count (a new api-server: image pull, init
#: container, health check grace).
SERVICE_WAIT_SECONDS = 1200.0
#: Tag keys on the snapshots the upgrade takes.
TAG_DEPLOYMENT, TAG_UPGRADE = "airflow-ecs:deployment", "airflow-ecs:upgrade"

_ARG_VERSION_RE = re.compile(r"^\s*ARG\s+AIRFLOW_VERSION=(\S+)\s*$", re.MULTILINE)


def assembly_airflow_version(assembly: Path, image_stack: str) -> str:
    """The Airflow version the assembly's image installs: ``ARG AIRFLOW_VERSION=`` of the
    Dockerfile staged for the image stack (``docker/Dockerfile``).

    :raises OpsError: no assembly, no staged image (synthesized with ``image_tag``/``image_uri``:
        pass ``--to-version``), or no such ARG.
    """
    staged = staged_image(assembly, image_stack)
    dockerfile = staged.context / staged.dockerfile
    try:
        match = _ARG_VERSION_RE.search(dockerfile.read_text())
    except OSError as err:
        raise OpsError(f"Cannot read {dockerfile}: {err}; pass the Airflow version with --to-version.") from err
    if not match:
        raise OpsError(f"{dockerfile} has no ARG AIRFLOW_VERSION=...; pass the Airflow version with --to-version.")
    return match.group(1)


def pinned_assembly(assembly: Path, out: Path, airflow_stack: str, counts: dict[str, int]) -> list[str]:
    """Write to ``out`` a copy of the cloud assembly ``assembly`` in which each service of the
    stack ``airflow_stack`` whose template sets ``DesiredCount`` gets ``counts[component]``.

    Asset sources point back into ``assembly`` (absolute paths: nothing big is copied); the
    changed template's file asset is renamed to its new SHA-256 (the S3 object key CDK uploads it
    to and the stack's ``stackTemplateAssetObjectUrl``), else CDK would find the original's
    object in S3 and deploy that.

    :returns: ``component=count`` for each service changed.
    :raises OpsError: no assembly, or no such stack in it.
    """
    manifest_file = assembly / "manifest.json"
    if not manifest_file.is_file():
        raise OpsError(f"No cloud assembly at {assembly}: run make synth first (with the same CDK_ARGS).")
    out.mkdir(parents=True, exist_ok=True)
    for entry in assembly.iterdir():
        if entry.is_file():
            shutil.copy2(entry, out / entry.name)
    manifest = json.loads(manifest_file.read_text())
    artifacts = manifest.get("artifacts", {})
    stack_id = next((k for k, a in artifacts.items() if a.get("type") == "aws:cloudformation:stack"
                     and a.get("properties", {}).get("stackName") == airflow_stack), None)
    if stack_id is None:
        raise OpsError(f"{assembly} holds no stack {airflow_stack}: synthesize the same project and stage.")
    for artifact in artifacts.values():
        if artifact.get("type") != "cdk:asset-manifest":
            continue
        path = out / artifact["properties"]["file"]
        assets = json.loads(path.read_text())
        for kind, key in (("files", "path"), ("dockerImages", "directory")):
            for asset in assets.get(kind, {}).values():
                source = asset.get("source", {})
                if key in source and not Path(source[key]).is_absolute():
                    source[key] = str((assembly / source[key]).resolve())
        path.write_text(json.dumps(assets, indent=1))
    properties = artifacts[stack_id]["properties"]
    template_path = out / properties["templateFile"]
    template = json.loads(template_path.read_text())
    outputs = template.get("Outputs", {})
    changed = []
    for component, output in SERVICES.items():
        value = outputs.get(output, {}).get("Value", {})
        logical_id = value.get("Fn::GetAtt", [None])[0] if isinstance(value, dict) else None
        resource = template.get("Resources", {}).get(logical_id or "", {})
        props = resource.get("Properties", {})
        if "DesiredCount" in props and component in counts and props["DesiredCount"] != counts[component]:
            props["DesiredCount"] = counts[component]
            changed.append(f"{component}={counts[component]}")
    if not changed:
        return []
    body = json.dumps(template, indent=1)
    template_path.write_text(body)
    old_hash = hashlib.sha256((assembly / properties["templateFile"]).read_bytes()).hexdigest()
    new_hash = hashlib.sha256(body.encode()).hexdigest()
    url = properties.get("stackTemplateAssetObjectUrl")
    if url:
        properties["stackTemplateAssetObjectUrl"] = url.replace(old_hash, new_hash)
    for dependency in artifacts[stack_id].get("dependencies", []):
        artifact = artifacts.get(dependency, {})
        if artifact.get("type") != "cdk:asset-manifest":
            continue
        path = out / artifact["properties"]["file"]
        assets = json.loads(path.read_text())
        files = assets.get("files", {})
        if old_hash in files:
            entry = files.pop(old_hash)
            entry["source"]["path"] = str(template_path.resolve())
            for destination in entry.get("destinations", {}).values():
                destination["objectKey"] = destination.get("objectKey", "").replace(old_hash, new_hash)
            files[new_hash] = entry
            path.write_text(json.dumps(assets, indent=1))
    manifest_file_out = out / "manifest.json"
    manifest_file_out.write_text(json.dumps(manifest, indent=1))
    return changed


def _run_cdk(command: list[str], env: dict[str, str] | None = None) -> int:
    return subprocess.run(command, check=False, env={**os.environ, **(env or {})}).returncode


class AwsUpgradeTarget:
    """A deployment on AWS as an :class:`~airflow_ecs_ops.upgrade.UpgradeTarget`.

    :param session: a ``boto3.Session`` in the deployment's region.
    :param deployment: the deployment (stacks ``cluster``, ``airflow``, ``database``).
    :param assembly: the cloud assembly :meth:`deploy` deploys.
    :param cdk: the CDK CLI command (e.g. ``["node_modules/.bin/cdk"]``).
    :param echo: called with progress lines.
    :param run_cdk: runs a command, returns its exit status (default: a subprocess).
    :param waiter_delay_seconds: seconds between RDS waiter polls (at most 60 s).
    :param poll_seconds: seconds between ECS polls while waiting for a service.
    """

    def __init__(self, session, deployment: Deployment, *, assembly: Path | None, cdk: list[str],
                 echo: Callable[[str], None], run_cdk: Callable[[list[str]], int] | None = None,
                 waiter_delay_seconds: int = 30, poll_seconds: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.deployment, self.assembly, self.cdk, self.echo, self.run_cdk = deployment, assembly, cdk, echo, run_cdk
        # cdk deploys where this CLI works: the session's region and profile (e.g. from --region/--profile).
        self.cdk_env = {"AWS_REGION": session.region_name, "AWS_DEFAULT_REGION": session.region_name}
        if session.profile_name and session.profile_name != "default":
            self.cdk_env["AWS_PROFILE"] = session.profile_name
        self.ecs, self.logs = session.client("ecs"), session.client("logs")
        self.rds, self.scaling = session.client("rds"), session.client("application-autoscaling")
        self.waiter_delay_seconds, self.poll_seconds, self.sleep, self.clock = waiter_delay_seconds, poll_seconds, sleep, clock
        self._probe_cache: tuple[str, str | None] | None = None
        self._suspended: list[dict] = []

    @property
    def database(self) -> str:
        """The RDS instance identifier (output of the database stack)."""
        return self.deployment.output("database", DATABASE_OUTPUT)

    # --- one-off tasks ---------------------------------------------------------------------

    def _one_off(self, command: list[str], echo_log: bool) -> tuple[int, list[str]]:
        """Run ``command`` in the api-server's task definition as deployed now; return the exit
        code and the main container's log lines."""
        service = tasks.describe_service(self.ecs, self.deployment, "api-server")
        arn = service["taskDefinition"]
        definition = self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        main = next((c for c in definition["containerDefinitions"] if c["name"] == "api-server"), None)
        if main is None:
            raise OpsError(f"Task definition {arn} has no api-server container.")
        overrides = [{"name": "api-server", "command": list(command)}]
        overrides += [{"name": d["containerName"], "command": list(INIT_REPLACEMENT)} for d in main.get("dependsOn", [])]
        network = dict(service.get("networkConfiguration", {}).get("awsvpcConfiguration", {}))
        try:
            response = self.ecs.run_task(
                cluster=self.deployment.cluster, taskDefinition=arn, count=1, launchType="FARGATE",
                networkConfiguration={"awsvpcConfiguration": tasks.network_configuration(network)},
                overrides={"containerOverrides": overrides}, startedBy=tasks.STARTED_BY, propagateTags="TASK_DEFINITION",
            )
        except ClientError as err:
            raise aws_error(err, f"starting airflow {' '.join(command[:2])} (RunTask)") from err
        if response.get("failures") or not response.get("tasks"):
            reasons = "; ".join(f"{f.get('arn', '')} {f.get('reason', '')}".strip() for f in response.get("failures", []))
            raise OpsError(f"RunTask started no task: {reasons or 'no reason given'}.")
        task_arn = response["tasks"][0]["taskArn"]
        lines: list[str] = []

        def collect(line: str) -> None:
            lines.append(line)
            if echo_log:
                self.echo(f"  | {line}")

        group, prefix = tasks.awslogs_options(definition, "api-server")
        stream = None
        if group and prefix:
            stream = logs_mod.LogStream(self.logs, group, logs_mod.stream_name(prefix, "api-server", tasks.task_id(task_arn)), collect)
            self.echo(f"one-off task {tasks.task_id(task_arn)} ({' '.join(command[:3])}); log {group} {stream.stream}")
        code = tasks.wait_for_task(self.ecs, self.deployment.cluster, task_arn, "api-server", log=stream,
                                   progress=self.echo if echo_log else (lambda line: None))
        return code, lines

    def _probe(self) -> tuple[str, str | None]:
        if self._probe_cache is None:
            code, lines = self._one_off(["python", "-c", PROBE_SCRIPT], echo_log=False)
            found = dict(line.split(": ", 1) for line in lines if line.startswith(("airflow-version: ", "alembic-revision: ")))
            if code != 0 or "airflow-version" not in found:
                tail = " | ".join(lines[-5:]) or "no log lines"
                raise OpsError(
                    f"The probe task (Airflow version and schema revision) exited {code}: {tail}. Is the database "
                    "available (airflow-ecs status; a sleeping environment: airflow-ecs wake --wait)? "
                    "--from-version skips asking for the version."
                )
            revision = found.get("alembic-revision", "none").strip()
            self._probe_cache = (found["airflow-version"].strip(), None if revision == "none" else revision)
        return self._probe_cache

    def deployed_version(self) -> str:
        """The Airflow version of the api-server's image, asked from a one-off task."""
        return self._probe()[0]

    def schema_revision(self) -> str | None:
        """The database's Alembic revision, asked from a one-off task (cached until something
        changes it: a deploy, a one-off ``airflow`` command, a restore)."""
        return self._probe()[1]

    def run_airflow(self, args: list[str]) -> int:
        """``airflow <args>`` in a one-off task of the api-server's current task definition, its
        log echoed; returns the exit code (126 when the container never ran)."""
        self._probe_cache = None
        return self._one_off(list(args), echo_log=True)[0]

    # --- services --------------------------------------------------------------------------

    def service_counts(self) -> dict[str, int]:
        """Component -> desired count (DescribeServices)."""
        names = {self.deployment.service_name(c): c for c in SERVICES}
        try:
            services = self.ecs.describe_services(cluster=self.deployment.cluster, services=list(names))["services"]
        except ClientError as err:
            raise aws_error(err, "describing the services") from err
        counts = {names[s["serviceName"]]: int(s.get("desiredCount", 0)) for s in services if s["serviceName"] in names}
        return {c: counts.get(c, 0) for c in SERVICES}

    def scale(self, component: str, count: int) -> None:
        """UpdateService's desired count, then wait until ``count`` tasks run and none is pending
        (0: until every task of the service has stopped).

        :raises OpsError: the service did not get there within :data:`SERVICE_WAIT_SECONDS`.
        """
        tasks.scale_service(self.ecs, self.deployment, component, count)
        name = self.deployment.service_name(component)
        start = self.clock()
        while True:
            service = tasks.describe_service(self.ecs, self.deployment, component)
            running, pending = service.get("runningCount", 0), service.get("pendingCount", 0)
            if running == count and pending == 0 and (count > 0 or not self._service_tasks_alive(name)):
                return
            waited = self.clock() - start
            if waited > SERVICE_WAIT_SECONDS:
                raise OpsError(f"{component} ({name}) did not reach {count} running task(s) in {waited:.0f} s "
                               f"({running} running, {pending} pending): see airflow-ecs status and its events.")
            self.sleep(self.poll_seconds)

    def _service_tasks_alive(self, service_name: str) -> bool:
        arns = list(tasks._list_tasks(self.ecs, cluster=self.deployment.cluster, serviceName=service_name))
        arns += list(tasks._list_tasks(self.ecs, cluster=self.deployment.cluster, serviceName=service_name,
                                       desiredStatus="STOPPED"))
        return any(t.get("lastStatus") != "STOPPED" for t in tasks._describe(self.ecs, self.deployment.cluster, arns))

    def running_worker_tasks(self) -> int:
        """The executor's worker tasks that run now: the workers' task definition family's and
        every team queue's (:func:`~airflow_ecs_ops.tasks.worker_tasks`)."""
        return len(tasks.worker_tasks(self.ecs, self.deployment))

    # --- scaling ---------------------------------------------------------------------------

    def _targets(self) -> list[dict]:
        ids = [f"service/{self.deployment.cluster}/{self.deployment.service_name(c)}" for c in SERVICES]
        try:
            return self.scaling.describe_scalable_targets(
                ServiceNamespace=SERVICE_NAMESPACE, ResourceIds=ids, ScalableDimension=SCALABLE_DIMENSION
            )["ScalableTargets"]
        except ClientError as err:
            raise aws_error(err, "reading the scalable targets (Application Auto Scaling)") from err

    def _set_suspended(self, resource_id: str, suspended: bool) -> None:
        try:
            self.scaling.register_scalable_target(
                ServiceNamespace=SERVICE_NAMESPACE, ResourceId=resource_id, ScalableDimension=SCALABLE_DIMENSION,
                SuspendedState={"DynamicScalingInSuspended": suspended, "DynamicScalingOutSuspended": suspended,
                                "ScheduledScalingSuspended": suspended},
            )
        except ClientError as err:
            raise aws_error(err, f"{'suspending' if suspended else 'resuming'} the scaling of {resource_id}") from err

    def suspend_scaling(self) -> None:
        """Suspend scaling policies and scheduled actions (office hours) of every service's
        scalable target (Application Auto Scaling ``SuspendedState``)."""
        for target in self._targets():
            self._set_suspended(target["ResourceId"], True)
            self.echo(f"scaling of {target['ResourceId']} suspended")

    def resume_scaling(self) -> None:
        """Resume them (the app's templates never suspend scaling, so resuming restores them)."""
        for target in self._targets():
            self._set_suspended(target["ResourceId"], False)
            self.echo(f"scaling of {target['ResourceId']} resumed")

    # --- deploy ----------------------------------------------------------------------------

    def deploy(self) -> None:
        """``cdk deploy --all`` of the assembly, every service keeping its desired count (see the
        module's docstring).

        :raises OpsError: no assembly given, or cdk exited non-zero.
        """
        if self.assembly is None:
            raise OpsError("No assembly to deploy: pass --assembly.")
        counts = self.service_counts()
        airflow_stack = f"{self.deployment.project}-{self.deployment.stage}-airflow"
        self._probe_cache = None
        with tempfile.TemporaryDirectory(prefix="airflow-ecs-upgrade-") as tmp:
            app = Path(tmp) / "cdk.out"
            changed = pinned_assembly(self.assembly, app, airflow_stack, counts)
            if changed:
                self.echo(f"deploying a copy of {self.assembly} whose services keep their desired counts "
                          f"({', '.join(changed)}) instead of the template's DesiredCount; the next make deploy "
                          "sets the configured counts again")
            else:
                app = self.assembly
            command = [*self.cdk, "deploy", "--all", "--app", str(app), "--require-approval", "never"]
            self.echo("$ " + " ".join(command))
            code = self.run_cdk(command) if self.run_cdk else _run_cdk(command, self.cdk_env)
        if code != 0:
            raise OpsError(f"cdk deploy exited {code} (its output is above; CloudFormation rolled back the stack "
                           "that failed)")

    # --- snapshots -------------------------------------------------------------------------

    def snapshot(self, name: str) -> None:
        """CreateDBSnapshot ``name`` of the database, tagged with the deployment and the
        upgrade, and wait until it is available.

        :raises OpsError: RDS refused it, or it did not become available.
        """
        versions = name.rsplit("-airflow-", 1)[-1].rsplit("-", 2)[0].split("-to-")
        upgrade = " to ".join(v.replace("-", ".") for v in versions)
        try:
            self.rds.create_db_snapshot(
                DBSnapshotIdentifier=name, DBInstanceIdentifier=self.database,
                Tags=[{"Key": TAG_DEPLOYMENT, "Value": f"{self.deployment.project}-{self.deployment.stage}"},
                      {"Key": TAG_UPGRADE, "Value": upgrade}],
            )
        except ClientError as err:
            raise aws_error(err, f"creating the snapshot {name} of {self.database}") from err
        self.echo(f"snapshot {name} of {self.database}: creating (minutes, by the database's size)")
        try:
            self.rds.get_waiter("db_snapshot_available").wait(
                DBSnapshotIdentifier=name, WaiterConfig={"Delay": self.waiter_delay_seconds, "MaxAttempts": 120})
        except Exception as err:  # botocore WaiterError
            raise OpsError(f"The snapshot {name} did not become available: {err}") from err

    def snapshot_created(self, name: str) -> dt.datetime | None:
        """SnapshotCreateTime of the manual snapshot ``name``, None when there is none."""
        try:
            snapshots = self.rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "DBSnapshotNotFound":
                return None
            raise aws_error(err, f"describing the snapshot {name}") from err
        if not snapshots:
            return None
        created = snapshots[0].get("SnapshotCreateTime")
        return created.astimezone(dt.timezone.utc) if created else None

    def latest_snapshot(self, prefix: str) -> str | None:
        """The newest available manual snapshot of the database whose name starts with
        ``prefix`` (e.g. ``airflow-dev-airflow-3-2-2-to-3-3-2-``), or None."""
        try:
            pages = self.rds.get_paginator("describe_db_snapshots").paginate(
                DBInstanceIdentifier=self.database, SnapshotType="manual")
            found = [s for page in pages for s in page["DBSnapshots"]
                     if s["DBSnapshotIdentifier"].startswith(prefix) and s.get("Status") == "available"]
        except ClientError as err:
            raise aws_error(err, "listing the database's snapshots") from err
        found.sort(key=lambda s: s.get("SnapshotCreateTime") or dt.datetime.min.replace(tzinfo=dt.timezone.utc))
        return found[-1]["DBSnapshotIdentifier"] if found else None

    def restore_snapshot(self, name: str) -> None:
        """Replace the database by the snapshot ``name`` under the same identifier (so the same
        endpoint, and the same physical resource for CloudFormation): rename the instance to
        ``<id>-before-restore-<UTC time>`` (kept: delete it once the restore is checked), restore
        the snapshot with the instance's class, subnet group, security groups, parameter group,
        Multi-AZ and port, and wait until it is available.

        :raises OpsError: an RDS error or a waiter timeout (named).
        """
        identifier = self.database
        try:
            instance = self.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
            aside = f"{identifier}-before-restore-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}"
            self.rds.modify_db_instance(DBInstanceIdentifier=identifier, NewDBInstanceIdentifier=aside, ApplyImmediately=True)
            self.echo(f"database {identifier} renamed to {aside} (kept; delete it once the restore is checked)")
            self._wait_renamed(aside)
            restore = dict(
                DBInstanceIdentifier=identifier, DBSnapshotIdentifier=name,
                DBInstanceClass=instance["DBInstanceClass"], MultiAZ=bool(instance.get("MultiAZ")),
                PubliclyAccessible=bool(instance.get("PubliclyAccessible")),
                VpcSecurityGroupIds=[g["VpcSecurityGroupId"] for g in instance.get("VpcSecurityGroups", [])],
                DeletionProtection=bool(instance.get("DeletionProtection")),
                CopyTagsToSnapshot=bool(instance.get("CopyTagsToSnapshot")),
                # Keys starting with aws: (CloudFormation's own tags) are reserved: RDS refuses them.
                Tags=[t for t in instance.get("TagList", []) if not t["Key"].startswith("aws:")],
            )
            if instance.get("DBSubnetGroup", {}).get("DBSubnetGroupName"):
                restore["DBSubnetGroupName"] = instance["DBSubnetGroup"]["DBSubnetGroupName"]
            groups = [g["DBParameterGroupName"] for g in instance.get("DBParameterGroups", [])]
            if groups:
                restore["DBParameterGroupName"] = groups[0]
            if instance.get("Endpoint", {}).get("Port"):
                restore["Port"] = instance["Endpoint"]["Port"]
            for key in ("StorageType", "EnableCloudwatchLogsExports"):
                if instance.get(key):
                    restore[key] = instance[key]
            restore["EnableIAMDatabaseAuthentication"] = bool(instance.get("IAMDatabaseAuthenticationEnabled"))
            self.rds.restore_db_instance_from_db_snapshot(**restore)
        except ClientError as err:
            raise aws_error(err, f"restoring {name} as {identifier}") from err
        self.echo(f"database {identifier}: restoring from {name}")
        self._wait_instance(identifier)
        # RestoreDBInstanceFromDBSnapshot takes no backup settings: give the old instance's back.
        try:
            self.rds.modify_db_instance(
                DBInstanceIdentifier=identifier, ApplyImmediately=True,
                BackupRetentionPeriod=int(instance.get("BackupRetentionPeriod", 1)),
                **({"PreferredBackupWindow": instance["PreferredBackupWindow"]} if instance.get("PreferredBackupWindow") else {}),
            )
        except ClientError as err:
            raise aws_error(err, f"setting the backup retention of the restored {identifier}") from err
        self.echo(f"database {identifier}: backup retention {instance.get('BackupRetentionPeriod', 1)} days as before; "
                  "enhanced monitoring and Performance Insights, if the instance had them, need setting again "
                  "(aws rds modify-db-instance)")
        self._wait_instance(identifier)
        self._probe_cache = None

    def _wait_renamed(self, identifier: str) -> None:
        """Wait until the renamed instance answers under its new name and is available (RDS
        applies a rename within a minute or so; until then the name is not found)."""
        start = self.clock()
        while True:
            try:
                status = self.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"]
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "DBInstanceNotFound":
                    raise
                status = "renaming"
            if status == "available":
                return
            if self.clock() - start > 120 * self.waiter_delay_seconds:
                raise OpsError(f"The database renamed to {identifier} is still {status}: see the RDS console.")
            self.sleep(self.waiter_delay_seconds)

    def _wait_instance(self, identifier: str) -> None:
        try:
            self.rds.get_waiter("db_instance_available").wait(
                DBInstanceIdentifier=identifier, WaiterConfig={"Delay": self.waiter_delay_seconds, "MaxAttempts": 120})
        except Exception as err:  # botocore WaiterError
            raise OpsError(f"The database {identifier} did not become available: {err}") from err
