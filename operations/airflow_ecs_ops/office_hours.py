"""Asleep or awake: the office hours of a deployment, read from AWS, and waking or putting it to
sleep on demand the way the schedules do.

How the schedules work (the CDK app's ``constructs_lib/scaling.py``): each service that office
hours manage has an Application Auto Scaling scalable target (``ecs:service:DesiredCount``) with
two kinds of scheduled actions: a stop action sets the target's minimum and maximum capacity to 0,
a start action back to the service's bounds. With ``office_hours_scope=environment`` every
service is managed, and EventBridge Scheduler stops and starts the RDS instance at the same
times; with ``ui`` only the api-server. So here:

- a service is managed when its scalable target has scheduled actions; its awake bounds are the
  start action's (the one whose maximum is above 0);
- the database sleeps with the environment when the scheduler does (only scope ``environment``
  scales the scheduler);
- ``sleep`` registers the bounds 0/0, sets the desired count to 0 and stops the database;
  ``wake`` starts the database and registers the awake bounds with the desired count at their
  minimum. A later scheduled action takes over as usual.

Calls: Application Auto Scaling ``DescribeScalableTargets``, ``DescribeScheduledActions``,
``RegisterScalableTarget``; ECS ``UpdateService``; RDS ``DescribeDBInstances``,
``StopDBInstance``, ``StartDBInstance``. AWS cron expressions (six fields, day-of-week 1-7 =
SUN-SAT, https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#cron-based)
are turned into croniter's five fields to find the next start.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from croniter import croniter

from airflow_ecs_ops.deployment import SERVICES, Deployment, OpsError, aws_error

SERVICE_NAMESPACE = "ecs"
SCALABLE_DIMENSION = "ecs:service:DesiredCount"
#: Output of the database stack naming the RDS instance (``stacks/database_stack.py``).
DATABASE_OUTPUT = "DatabaseInstanceIdentifier"
#: RDS states of an instance that is (going) to sleep.
DB_ASLEEP = frozenset({"stopped", "stopping"})


@dataclass(frozen=True)
class Action:
    """One scheduled action: an AWS cron expression, its IANA time zone, the bounds it sets."""

    schedule: str
    timezone: str
    min_capacity: int
    max_capacity: int

    @property
    def starts(self) -> bool:
        return self.max_capacity > 0


@dataclass(frozen=True)
class ManagedService:
    """A service office hours scale.

    :param min_capacity, max_capacity: the scalable target's bounds now (0/0 asleep).
    :param awake_min, awake_max: the bounds the start action sets.
    """

    component: str
    service: str
    resource_id: str
    min_capacity: int
    max_capacity: int
    awake_min: int
    awake_max: int
    actions: tuple[Action, ...]

    @property
    def asleep(self) -> bool:
        return self.max_capacity == 0


@dataclass(frozen=True)
class OfficeHours:
    """What office hours manage in a deployment and their state now.

    :param services: the managed services (empty: no office hours).
    :param database: the RDS instance identifier, when it sleeps with the environment.
    :param database_status: its ``DBInstanceStatus`` (``available``, ``stopped``, ...), or None.
    """

    services: tuple[ManagedService, ...]
    database: str | None
    database_status: str | None

    @property
    def asleep(self) -> bool:
        """Every managed service at 0/0 and the database (if managed) stopped or stopping."""
        db_asleep = self.database is None or self.database_status in DB_ASLEEP
        return bool(self.services) and all(s.asleep for s in self.services) and db_asleep

    @property
    def awake(self) -> bool:
        db_awake = self.database is None or self.database_status not in DB_ASLEEP
        return all(not s.asleep for s in self.services) and db_awake

    def next_time(self, starts: bool, now: dt.datetime) -> tuple[dt.datetime | None, Action | None]:
        """The next start (``starts``) or stop of any managed service after ``now`` (aware)."""
        best: tuple[dt.datetime | None, Action | None] = (None, None)
        for service in self.services:
            for action in service.actions:
                if action.starts != starts:
                    continue
                when = next_fire(action.schedule, action.timezone, now)
                if when is not None and (best[0] is None or when < best[0]):
                    best = (when, action)
        return best

    def describe(self, now: dt.datetime) -> str:
        """One line: asleep until when, awake until when, partly asleep, or no office hours."""
        if not self.services:
            return "office hours: none (always on)"
        if self.asleep:
            when, action = self.next_time(True, now)
            until = f" until {_fmt(when, action)}" if when and action else " (no scheduled start found; airflow-ecs wake starts it)"
            return f"office hours: asleep{until}"
        if self.awake:
            when, action = self.next_time(False, now)
            return "office hours: awake" + (f" until {_fmt(when, action)}" if when and action else "")
        sleeping = [s.component for s in self.services if s.asleep]
        if self.database and self.database_status in DB_ASLEEP:
            sleeping.append(f"database ({self.database_status})")
        return f"office hours: partly asleep ({', '.join(sleeping)}): airflow-ecs wake or sleep makes it whole"


def _fmt(when: dt.datetime, action: Action) -> str:
    return f"{when:%a %Y-%m-%d %H:%M} {action.timezone} ({action.schedule})"


def cron_fields(expression: str) -> str | None:
    """croniter's five fields for an AWS ``cron(m h dom mon dow year)``; None when it cannot be
    expressed (a year other than ``*``, ``W`` in day-of-month, ``L`` in day-of-week)."""
    match = re.fullmatch(r"\s*cron\((.*)\)\s*", expression)
    parts = match.group(1).split() if match else []
    if len(parts) != 6 or parts[5] not in ("*", "?") or "W" in parts[2].upper() or "L" in parts[4].upper():
        return None
    # AWS numbers the days of the week 1-7 from Sunday, cron 0-6; names stay; n#k keeps its k.
    parts[4] = re.sub(r"(?<![#\d])(\d)", lambda m: str(int(m.group(1)) - 1), parts[4])
    return " ".join(parts[:5])


def next_fire(expression: str, timezone: str, now: dt.datetime) -> dt.datetime | None:
    """When the AWS cron ``expression`` in IANA ``timezone`` fires next after ``now``, or None
    when it cannot be computed (see :func:`cron_fields`, or an unknown time zone)."""
    fields = cron_fields(expression)
    try:
        zone = zoneinfo.ZoneInfo(timezone or "UTC")
        if fields is None:
            return None
        return croniter(fields, now.astimezone(zone)).get_next(dt.datetime)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, KeyError):
        return None


def read_office_hours(autoscaling, rds, deployment: Deployment) -> OfficeHours:
    """Read the managed services (Application Auto Scaling) and the database's state (RDS).

    :raises OpsError: an AWS error (named), or a database that office hours manage but whose
        stack has no :data:`DATABASE_OUTPUT` (deployed by an older version of the app).
    """
    ids = {f"service/{deployment.cluster}/{deployment.service_name(c)}": c for c in SERVICES}
    try:
        targets = autoscaling.describe_scalable_targets(
            ServiceNamespace=SERVICE_NAMESPACE, ResourceIds=list(ids), ScalableDimension=SCALABLE_DIMENSION
        )["ScalableTargets"]
        managed = []
        for target in targets:
            rid = target["ResourceId"]
            actions = tuple(
                Action(
                    a["Schedule"],
                    a.get("Timezone") or "UTC",
                    int(a.get("ScalableTargetAction", {}).get("MinCapacity", 0)),
                    int(a.get("ScalableTargetAction", {}).get("MaxCapacity", 0)),
                )
                for a in autoscaling.describe_scheduled_actions(
                    ServiceNamespace=SERVICE_NAMESPACE, ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION
                )["ScheduledActions"]
            )
            start = next((a for a in actions if a.starts), None)
            if start is None or rid not in ids:
                continue  # scaled automatically, not by office hours
            component = ids[rid]
            managed.append(
                ManagedService(component, deployment.service_name(component), rid, int(target["MinCapacity"]),
                               int(target["MaxCapacity"]), start.min_capacity, start.max_capacity, actions)
            )
    except (ClientError, BotoCoreError) as err:
        raise aws_error(err, "reading the office hours (Application Auto Scaling)") from err
    order = list(SERVICES)
    managed.sort(key=lambda s: order.index(s.component))
    database = status = None
    if any(s.component == "scheduler" for s in managed):
        database = deployment.output("database", DATABASE_OUTPUT)
        status = database_status(rds, database)
    return OfficeHours(tuple(managed), database, status)


def database_status(rds, identifier: str) -> str:
    """The RDS instance's ``DBInstanceStatus``.

    :raises OpsError: the instance does not exist, or another AWS error.
    """
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "DBInstanceNotFound":
            raise OpsError(f"The database {identifier} does not exist: deploy again (make deploy).") from err
        raise aws_error(err, f"describing the database {identifier}") from err
    except BotoCoreError as err:
        raise aws_error(err, f"describing the database {identifier}") from err


def _no_office_hours(deployment: Deployment) -> OpsError:
    return OpsError(
        f"{deployment.project}-{deployment.stage} has no office hours (office_hours_scope=none), so nothing "
        "sleeps or wakes on a schedule: deploy with -c office_hours_scope=environment to use wake and sleep."
    )


def _set_bounds(autoscaling, ecs, deployment: Deployment, service: ManagedService, low: int, high: int) -> None:
    try:
        autoscaling.register_scalable_target(
            ServiceNamespace=SERVICE_NAMESPACE,
            ResourceId=service.resource_id,
            ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=low,
            MaxCapacity=high,
        )
        # Application Auto Scaling moves the count into the bounds within a minute; say it now.
        ecs.update_service(cluster=deployment.cluster, service=service.service, desiredCount=low)
    except (ClientError, BotoCoreError) as err:
        raise aws_error(err, f"scaling the {service.component} service ({service.service})") from err


def sleep_environment(autoscaling, ecs, rds, deployment: Deployment, report) -> OfficeHours:
    """Put the managed services to 0/0, then stop the database (if managed).

    :param report: called with one line per step.
    :returns: the office hours as they were before.
    :raises OpsError: no office hours; the database is in a state RDS cannot stop (named, with
        what to do); an AWS error.
    """
    hours = read_office_hours(autoscaling, rds, deployment)
    if not hours.services:
        raise _no_office_hours(deployment)
    if hours.database and hours.database_status not in DB_ASLEEP | {"available"}:
        raise OpsError(
            f"The database {hours.database} is {hours.database_status}; RDS stops only an available instance: "
            "try again when airflow-ecs status shows it available."
        )
    for service in hours.services:
        _set_bounds(autoscaling, ecs, deployment, service, 0, 0)
        report(f"{service.component}: 0 tasks (was {service.min_capacity}-{service.max_capacity})")
    if hours.database:
        if hours.database_status == "available":
            try:
                rds.stop_db_instance(DBInstanceIdentifier=hours.database)
            except (ClientError, BotoCoreError) as err:
                raise aws_error(err, f"stopping the database {hours.database}") from err
            report(f"database {hours.database}: stopping (AWS starts it by itself after 7 days)")
        else:
            report(f"database {hours.database}: already {hours.database_status}")
    return hours


def wake_environment(autoscaling, ecs, rds, deployment: Deployment, report, *, wait_for_database: bool,
                     waiter_delay_seconds: int = 30) -> OfficeHours:
    """Start the database (if managed), then return the managed services to their awake bounds.

    :param wait_for_database: wait until the database is available before the services (RDS
        takes minutes; without waiting, as with the schedules, services started earlier fail
        until it accepts connections and ECS replaces them).
    :param waiter_delay_seconds: seconds between DescribeDBInstances calls while waiting (up to 60).
    :returns: the office hours as they were before.
    :raises OpsError: no office hours; the database is still stopping (RDS cannot start it yet);
        an AWS error.
    """
    hours = read_office_hours(autoscaling, rds, deployment)
    if not hours.services:
        raise _no_office_hours(deployment)
    if hours.database:
        if hours.database_status == "stopping":
            raise OpsError(
                f"The database {hours.database} is still stopping; RDS starts only a stopped instance: "
                "try again in a few minutes (airflow-ecs status)."
            )
        if hours.database_status == "stopped":
            try:
                rds.start_db_instance(DBInstanceIdentifier=hours.database)
            except (ClientError, BotoCoreError) as err:
                raise aws_error(err, f"starting the database {hours.database}") from err
            report(f"database {hours.database}: starting")
        else:
            report(f"database {hours.database}: {hours.database_status}")
        if wait_for_database:
            report(f"waiting for the database {hours.database} to be available (a few minutes)")
            try:
                rds.get_waiter("db_instance_available").wait(
                    DBInstanceIdentifier=hours.database, WaiterConfig={"Delay": waiter_delay_seconds, "MaxAttempts": 60}
                )
            except Exception as err:  # botocore's WaiterError, or an AWS error while waiting
                raise OpsError(f"The database {hours.database} did not become available: {err}") from err
    for service in hours.services:
        _set_bounds(autoscaling, ecs, deployment, service, service.awake_min, service.awake_max)
        report(f"{service.component}: {service.awake_min}-{service.awake_max} tasks")
    return hours
