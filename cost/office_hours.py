"""Office hours as the synthesized templates schedule them, in awake hours per week.

Read from the templates:

- Application Auto Scaling scheduled actions [``ScheduledActions`` of
  ``AWS::ApplicationAutoScaling::ScalableTarget``]: an action with ``MaxCapacity`` 0 stops the
  service it scales, any other starts it;
- EventBridge Scheduler schedules [``AWS::Scheduler::Schedule``] whose target is the universal
  target ``aws-sdk:rds:stopDBInstance`` / ``startDBInstance``: they stop and start the RDS
  instance their input names.

How awake hours per week are counted: :func:`app_config.schedules.awake_hours_per_week` (AWS
cron expressions read by the one adapter the configuration validates them with, over croniter;
``L``, ``W`` and ``#`` included).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from app_config import schedules
from cost.prices import CostError


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


def awake_hours_per_week(start: tuple[str, ...] | list[str], stop: tuple[str, ...] | list[str]) -> float:
    """Hours a week between each start and the next stop (0 to 168), counted by
    :func:`app_config.schedules.awake_hours_per_week`, the count the configuration's validator
    runs too: every schedule the app accepts can be priced.

    :raises CostError: for an expression the count cannot read (named), a start and a stop at the
        same minute, or a schedule that never starts or never stops in the counted period.
    """
    try:
        return schedules.awake_hours_per_week(start, stop)
    except schedules.CronError as err:
        raise CostError(f"office hours: {err}") from None


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
