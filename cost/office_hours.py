"""Office hours as the synthesized templates schedule them, in awake hours per week.

Read from the templates:

- Application Auto Scaling scheduled actions [``ScheduledActions`` of
  ``AWS::ApplicationAutoScaling::ScalableTarget``]: an action with ``MaxCapacity`` 0 stops the
  service it scales, any other starts it;
- EventBridge Scheduler schedules [``AWS::Scheduler::Schedule``] whose target is the universal
  target ``aws-sdk:rds:stopDBInstance`` / ``startDBInstance``: they stop and start the RDS
  instance their input names.

How awake hours per week are counted (:func:`awake_hours_per_week`): every time a start or a stop
expression fires is listed over one week (Monday 00:00 to the next Monday 00:00, wall-clock time
of the schedule's time zone) when the day-of-month, month and year fields are wildcards, else
over the calendar year 2027 (then divided by 365/7 weeks). The resource is awake from each start
to the next stop; the state at the beginning of the period is the state its last event leaves
(the schedule repeats). Hours are wall-clock hours of the schedule's time zone: a daylight-saving
change inside the awake window, twice a year, is ignored. The cron format is AWS's
(``cron(minutes hours day-of-month month day-of-week year)``, day-of-week 1-7 = SUN-SAT), see
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#cron-based.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from app_config.schedules import CRON_FIELDS
from cost.prices import CostError

#: the reference week (a Monday) and year of the count
_WEEK_START = dt.datetime(2027, 1, 4)
_YEAR = 2027


@dataclass(frozen=True)
class Schedule:
    """When a resource is started and stopped.

    :param start: the cron expressions that start it (AWS form).
    :param stop: the cron expressions that stop it.
    :param timezone: IANA time zone of the expressions.
    """

    start: tuple[str, ...]
    stop: tuple[str, ...]
    timezone: str

    @property
    def awake_hours_per_week(self) -> float:
        """Hours a week the resource runs, in [0, 168] (see the module docstring)."""
        return awake_hours_per_week(self.start, self.stop)

    def describe(self) -> str:
        return f"start {', '.join(self.start)}, stop {', '.join(self.stop)} ({self.timezone})"


def _field_values(name: str, text: str, low: int, high: int, names: list[str] | None, expression: str) -> set[int]:
    def value(part: str) -> int:
        if names and part.upper() in names:
            return names.index(part.upper()) + low
        if part.isdigit() and low <= int(part) <= high:
            return int(part)
        raise CostError(
            f"{expression}: {name} field {text!r} cannot be counted; the cost report reads values "
            f"{low}-{high} with , - * / (not L, W or #)"
        )

    values: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base in ("*", "?"):
            first, last = low, high
        else:
            a, dash, b = base.partition("-")
            first = value(a)
            last = value(b) if dash else (high if step else first)
        values.update(range(first, last + 1, int(step) if step.isdigit() and int(step) else 1))
    return values


def _parse(expression: str) -> list[set[int]]:
    match = re.fullmatch(r"cron\((.*)\)", expression.strip())
    parts = match.group(1).split() if match else []
    if len(parts) != 6:
        raise CostError(
            f"{expression!r}: the cost report counts office hours from AWS cron expressions "
            "(cron(minutes hours day-of-month month day-of-week year)), not rate() or at()"
        )
    return [_field_values(n, t, lo, hi, names, expression) for (n, lo, hi, names), t in zip(CRON_FIELDS, parts)]


def _is_weekly(expression: str) -> bool:
    parts = expression.strip()[5:-1].split()
    return all(p in ("*", "?") for p in (parts[2], parts[3], parts[5]))


def _fire_minutes(expression: str, days: int, origin: dt.datetime) -> list[int]:
    """Minutes after ``origin`` at which ``expression`` fires within ``days`` days."""
    minutes, hours, dom, months, dow, years = _parse(expression)
    parts = expression.strip()[5:-1].split()
    times = []
    for d in range(days):
        day = origin + dt.timedelta(days=d)
        aws_dow = day.isoweekday() % 7 + 1  # SUN=1 .. SAT=7
        if day.month not in months or day.year not in years:
            continue
        if parts[2] != "?" and day.day not in dom:
            continue
        if parts[4] != "?" and aws_dow not in dow:
            continue
        times += [d * 1440 + h * 60 + m for h in sorted(hours) for m in sorted(minutes)]
    return times


def awake_hours_per_week(start: tuple[str, ...] | list[str], stop: tuple[str, ...] | list[str]) -> float:
    """Hours a week between each start and the next stop.

    :param start: AWS cron expressions that start the resource.
    :param stop: AWS cron expressions that stop it.
    :returns: hours per week, 0 to 168.
    :raises CostError: for an expression the count cannot read (named), a start and a stop at the
        same minute, or a schedule that never starts or never stops in the counted period.
    """
    expressions = [*start, *stop]
    for expression in expressions:
        _parse(expression)  # refuses what cannot be counted, named
    weekly = all(_is_weekly(e) for e in expressions)
    if weekly:
        days, origin, weeks = 7, _WEEK_START, 1.0
    else:
        days, origin = (dt.date(_YEAR + 1, 1, 1) - dt.date(_YEAR, 1, 1)).days, dt.datetime(_YEAR, 1, 1)
        weeks = days / 7
    events: dict[int, bool] = {}
    for awake, group in ((True, start), (False, stop)):
        for expression in group:
            for minute in _fire_minutes(expression, days, origin):
                if events.get(minute, awake) != awake:
                    raise CostError(f"office hours start and stop at the same minute: {', '.join(expressions)}")
                events[minute] = awake
    if True not in events.values() or False not in events.values():
        raise CostError(f"office hours that never start or never stop in {'a week' if weekly else _YEAR}: "
                        f"{', '.join(expressions)}")
    order = sorted(events)
    state, previous, awake_minutes = events[order[-1]], 0, 0
    for minute in order:
        if state:
            awake_minutes += minute - previous
        state, previous = events[minute], minute
    if state:
        awake_minutes += days * 1440 - previous
    return awake_minutes / 60 / weeks


def _strings(node: object) -> str:
    return json.dumps(node, sort_keys=True)


def _service_ref(resource_id: object) -> str | None:
    """The logical ID of the ECS service a scalable target's ``ResourceId`` names."""
    found = re.findall(r'"Fn::GetAtt": \["([A-Za-z0-9]+)", "Name"\]', _strings(resource_id))
    return found[0] if found else None


def read_schedules(templates: dict[str, dict]) -> dict[tuple[str, str], Schedule]:
    """``{(stack, logical ID of the ECS service or RDS instance): Schedule}`` from ``templates``.

    :raises CostError: when a resource's schedules use two time zones.
    """
    found: dict[tuple[str, str], dict] = {}
    # another stack's resource is named through its export: {"Fn::ImportValue": name}
    exports: dict[str, tuple[str, str]] = {}
    for stack, template in templates.items():
        for output in template.get("Outputs", {}).values():
            name, value = (output.get("Export") or {}).get("Name"), output.get("Value")
            if isinstance(name, str) and isinstance(value, dict) and isinstance(value.get("Ref"), str):
                exports[name] = (stack, value["Ref"])

    def is_db(key: tuple[str, str]) -> bool:
        resource = templates.get(key[0], {}).get("Resources", {}).get(key[1], {})
        return resource.get("Type") == "AWS::RDS::DBInstance"

    def add(key: tuple[str, str], awake: bool, expression: str, timezone: str) -> None:
        entry = found.setdefault(key, {"start": [], "stop": [], "tz": set()})
        entry["start" if awake else "stop"].append(expression)
        entry["tz"].add(timezone or "UTC")

    for stack, template in templates.items():
        resources = template.get("Resources", {})
        for props in (r.get("Properties", {}) for r in resources.values()
                      if r.get("Type") == "AWS::ApplicationAutoScaling::ScalableTarget"):
            service = _service_ref(props.get("ResourceId"))
            if service is None or not props.get("ScheduledActions"):
                continue
            for action in props["ScheduledActions"]:
                target = action.get("ScalableTargetAction") or {}
                awake = int(target.get("MaxCapacity", 1)) > 0
                add((stack, service), awake, str(action["Schedule"]), action.get("Timezone", "UTC"))
        for props in (r.get("Properties", {}) for r in resources.values() if r.get("Type") == "AWS::Scheduler::Schedule"):
            target = props.get("Target") or {}
            arn = _strings(target.get("Arn"))
            kind = "stop" if "rds:stopDBInstance" in arn else "start" if "rds:startDBInstance" in arn else None
            if kind is None:
                continue
            text = _strings(target.get("Input"))
            keys = [(stack, r) for r in re.findall(r'"Ref": "([A-Za-z0-9]+)"', text)]
            keys += [exports[i] for i in re.findall(r'"Fn::ImportValue": "([^"]+)"', text) if i in exports]
            for key in filter(is_db, keys):
                add(key, kind == "start", str(props["ScheduleExpression"]),
                    props.get("ScheduleExpressionTimezone", "UTC"))
    schedules = {}
    for key, entry in found.items():
        if len(entry["tz"]) > 1:
            raise CostError(f"{key[0]}/{key[1]}: its start and stop schedules use time zones {sorted(entry['tz'])}")
        schedules[key] = Schedule(tuple(entry["start"]), tuple(entry["stop"]), entry["tz"].pop())
    return schedules
