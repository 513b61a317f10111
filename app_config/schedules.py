"""Validation of the schedule expressions AWS accepts for scheduled scaling and EventBridge
Scheduler, and of IANA time zone names.

Source of the cron format (the same in Application Auto Scaling scheduled actions and EventBridge
Scheduler): "Schedule types on EventBridge Scheduler", cron-based schedules,
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#cron-based, and
"Scheduled scaling for Application Auto Scaling",
https://docs.aws.amazon.com/autoscaling/application/userguide/scheduled-scaling-using-cron-expressions.html.
``cron(minutes hours day-of-month month day-of-week year)``: six fields; one of day-of-month and
day-of-week must be ``?``.
"""

from __future__ import annotations

import re
import zoneinfo

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

#: The six fields of an AWS cron expression: name, lowest, highest, names (index + lowest = value).
#: Source: EventBridge Scheduler / Application Auto Scaling cron expression reference.
CRON_FIELDS = (
    ("minutes", 0, 59, None),
    ("hours", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, MONTHS),
    ("day-of-week", 1, 7, DAYS),
    ("year", 1970, 2199, None),
)

EXAMPLE = "cron(0 7 ? * MON-FRI *)"


def _value(text: str, low: int, high: int, names: list[str] | None) -> int | None:
    if names and text.upper() in names:
        return names.index(text.upper()) + low
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None


def _field_error(name: str, text: str, low: int, high: int, names: list[str] | None) -> str | None:
    wrong = f"{name} field {text!r}"
    limits = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    for part in text.split(","):
        if part in ("*", "?"):
            if part == "?" and name not in ("day-of-month", "day-of-week"):
                return f"{wrong}: '?' is allowed only in day-of-month or day-of-week"
            if "," in text:
                return f"{wrong}: '{part}' cannot be part of a list"
            continue
        if name == "day-of-month" and part in ("L", "LW"):
            continue
        if name == "day-of-month" and part.endswith("W") and _value(part[:-1], low, high, None):
            continue
        if name == "day-of-week" and re.fullmatch(r"[1-7A-Za-z]{1,3}#[1-5]", part):
            if _value(part.split("#")[0], low, high, names) is not None:
                continue
        if name == "day-of-week" and part.endswith("L") and len(part) > 1:
            if _value(part[:-1], low, high, names) is not None:
                continue
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) >= 1):
            return f"{wrong}: the increment after '/' must be a positive whole number"
        if base == "*" and step:
            continue
        first, dash, last = base.partition("-")
        if _value(first, low, high, names) is None or (dash and _value(last, low, high, names) is None):
            return f"{wrong}: use values {limits} with , - * / (see the AWS cron format)"
    return None


def cron_error(expression: str) -> str | None:
    """Describe why AWS would reject ``expression`` as a cron schedule, or return None.

    :param expression: e.g. ``cron(0 7 ? * MON-FRI *)`` (minutes hours day-of-month month
        day-of-week year).
    :returns: a sentence naming the wrong part, or None when the expression is valid.
    """
    match = re.fullmatch(r"cron\((.*)\)", expression.strip())
    if not match:
        return f"write a cron expression like {EXAMPLE} (AWS's six-field form inside cron(...))"
    parts = match.group(1).split()
    if len(parts) != 6:
        return (
            f"AWS cron expressions have 6 fields (minutes hours day-of-month month day-of-week "
            f"year), this one has {len(parts)}; e.g. {EXAMPLE}"
        )
    for (name, low, high, names), text in zip(CRON_FIELDS, parts):
        problem = _field_error(name, text, low, high, names)
        if problem:
            return problem
    if (parts[2] == "?") == (parts[4] == "?"):
        return "exactly one of day-of-month and day-of-week must be '?', e.g. " + EXAMPLE
    return None


def timezone_error(name: str) -> str | None:
    """Describe why ``name`` is not an IANA time zone (e.g. ``Europe/Berlin``), or return None."""
    if not re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", name or ""):
        return f"{name!r} is not an IANA time zone name; write it like Europe/Berlin or UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not an IANA time zone name; write it like Europe/Berlin or UTC"
    return None
