"""AWS cron expressions, read once for the validator and the cost report (:class:`AwsCron`, over
croniter), and IANA time zone names.

Source of the cron format (the same in Application Auto Scaling scheduled actions and EventBridge
Scheduler): "Schedule types on EventBridge Scheduler", cron-based schedules,
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#cron-based, and
"Scheduled scaling for Application Auto Scaling",
https://docs.aws.amazon.com/autoscaling/application/userguide/scheduled-scaling-using-cron-expressions.html.
``cron(minutes hours day-of-month month day-of-week year)``: six fields; one of day-of-month and
day-of-week must be ``?``; day-of-week 1-7 is SUN-SAT; ``L`` (last), ``W`` (nearest weekday) and
``#`` (n-th weekday of the month) as in those pages.

An expression is accepted when AWS's grammar allows it and croniter, which the fire times are
computed with, reads its translation; so every schedule the configuration accepts can be counted
by ``make cost`` (:func:`awake_hours_per_week`).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from croniter import croniter

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

#: The six fields of an AWS cron expression: name, lowest, highest, names (index + lowest = value).
#: The year's upper bound is croniter's (AWS accepts up to 2199).
CRON_FIELDS = (
    ("minutes", 0, 59, None),
    ("hours", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, MONTHS),
    ("day-of-week", 1, 7, DAYS),
    ("year", 1970, 2099, None),
)

EXAMPLE = "cron(0 7 ? * MON-FRI *)"
#: The reference week (a Monday) and the first year of the count.
WEEK_START = dt.datetime(2027, 1, 4)
YEAR = 2027


class CronError(ValueError):
    """An expression AWS would refuse or the count cannot read; the message names the part."""


def _value(text: str, low: int, high: int, names: list[str] | None) -> int | None:
    if names and text.upper() in names:
        return names.index(text.upper()) + low
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None


def _special(name: str, part: str, low: int, high: int, names: list[str] | None) -> bool:
    """``L``, ``15W``, ``6#3``, ``FRI#3``, ``6L``: AWS's day wildcards."""
    if name == "day-of-month":
        return part == "L" or (part.endswith("W") and _value(part[:-1], low, high, None) is not None)
    if name == "day-of-week":
        if re.fullmatch(r"[1-7A-Za-z]{1,3}#[1-5]", part):
            return _value(part.split("#")[0], low, high, names) is not None
        return part == "L" or (part.endswith("L") and _value(part[:-1], low, high, names) is not None)
    return False


def _field_error(name: str, text: str, low: int, high: int, names: list[str] | None) -> str | None:
    wrong = f"{name} field {text!r}"
    limits = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    if text == "LW":
        return f"{wrong}: LW (last weekday of the month) cannot be counted; use L or a day-of-week like MON-FRI"
    for part in text.split(","):
        if part in ("*", "?"):
            if part == "?" and name not in ("day-of-month", "day-of-week"):
                return f"{wrong}: '?' is allowed only in day-of-month or day-of-week"
            if "," in text:
                return f"{wrong}: '{part}' cannot be part of a list"
            continue
        if _special(name, part, low, high, names):
            if "," in text:
                return f"{wrong}: '{part}' cannot be part of a list"
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


def _day_of_week(text: str) -> str:
    """AWS day-of-week (1-7 = SUN-SAT, ``6L``, ``6#3``) in croniter's terms (0-6, ``L5``, ``5#3``)."""

    def day(token: str) -> str:
        return str(int(token) - 1) if token.isdigit() else token

    if text in ("*", "?"):
        return "*"
    if text == "L":
        return "6"
    if "#" in text:
        weekday, _, nth = text.partition("#")
        return f"{day(weekday)}#{nth}"
    if text.endswith("L"):
        return f"L{day(text[:-1])}"
    parts = []
    for part in text.split(","):
        base, slash, step = part.partition("/")
        first, dash, last = base.partition("-")
        base = "*" if base == "*" else day(first) + (dash + day(last) if dash else "")
        parts.append(base + slash + step)
    return ",".join(parts)


@dataclass(frozen=True)
class AwsCron:
    """One AWS cron expression, read once: its six fields and its translation for croniter.

    Build it with :meth:`parse`.
    """

    expression: str
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, expression: str) -> AwsCron:
        """Read ``expression`` (e.g. ``cron(0 7 ? * MON-FRI *)``).

        :raises CronError: naming the wrong field, when AWS would refuse it or croniter cannot
            read its translation.
        """
        match = re.fullmatch(r"cron\((.*)\)", expression.strip())
        if not match:
            raise CronError(f"write a cron expression like {EXAMPLE} (AWS's six-field form inside cron(...))")
        parts = tuple(match.group(1).split())
        if len(parts) != 6:
            raise CronError(
                f"AWS cron expressions have 6 fields (minutes hours day-of-month month day-of-week "
                f"year), this one has {len(parts)}; e.g. {EXAMPLE}"
            )
        for (name, low, high, names), text in zip(CRON_FIELDS, parts):
            problem = _field_error(name, text, low, high, names)
            if problem:
                raise CronError(problem)
        if (parts[2] == "?") == (parts[4] == "?"):
            raise CronError("exactly one of day-of-month and day-of-week must be '?', e.g. " + EXAMPLE)
        cron = cls(expression.strip(), parts)
        if not croniter.is_valid(cron.croniter_expression):
            raise CronError(f"{expression}: croniter cannot read it as {cron.croniter_expression!r}")
        return cron

    @property
    def croniter_expression(self) -> str:
        """croniter's seven fields: minute hour day month weekday second(0) year."""
        return self._translated(*self.fields[:2])

    def _translated(self, minutes: str, hours: str) -> str:
        _, _, dom, month, dow, year = self.fields
        return f"{minutes} {hours} {'*' if dom == '?' else dom} {month} {_day_of_week(dow)} 0 {year}"

    @property
    def weekly(self) -> bool:
        """Whether it repeats every week: no day-of-month, month, year or n-th/last weekday."""
        _, _, dom, month, dow, year = self.fields
        return dom in ("*", "?") and month == "*" and year == "*" and not re.search(r"[#L]", dow)

    def _times_of_day(self) -> list[int]:
        expanded_minutes, expanded_hours = croniter.expand(self.croniter_expression)[0][:2]
        # croniter expands minutes and hours to ints, or ["*"] for every value.
        minutes = range(60) if expanded_minutes == ["*"] else [int(m) for m in expanded_minutes]
        hours = range(24) if expanded_hours == ["*"] else [int(h) for h in expanded_hours]
        return sorted(h * 60 + m for h in hours for m in minutes)

    def fire_minutes(self, origin: dt.datetime, days: int) -> list[int]:
        """Minutes after ``origin`` (midnight, wall-clock time) at which it fires in ``days`` days."""
        day_level = self._translated("0", "0")
        end = origin + dt.timedelta(days=days)
        times_of_day = self._times_of_day()
        fired, days_iter = [], croniter(day_level, origin - dt.timedelta(seconds=1))
        try:
            while (day := days_iter.get_next(dt.datetime)) < end:
                fired += [(day - origin).days * 1440 + minute for minute in times_of_day]
        except (StopIteration, ValueError, OverflowError):  # croniter finds no later date
            pass
        return fired

    def first_year(self, since: int) -> int | None:
        """The first calendar year from ``since`` in which it fires, or None."""
        try:
            return croniter(self.croniter_expression, dt.datetime(since, 1, 1) - dt.timedelta(seconds=1)).get_next(
                dt.datetime).year
        except (StopIteration, ValueError, OverflowError):  # croniter gives up past its years
            return None


def cron_error(expression: str) -> str | None:
    """Describe why AWS would reject ``expression`` as a cron schedule, or return None.

    :param expression: e.g. ``cron(0 7 ? * MON-FRI *)`` (minutes hours day-of-month month
        day-of-week year).
    :returns: a sentence naming the wrong part, or None when the expression is valid.
    """
    try:
        AwsCron.parse(expression)
    except CronError as err:
        return str(err)
    return None


def awake_hours_per_week(start: tuple[str, ...] | list[str], stop: tuple[str, ...] | list[str]) -> float:
    """Hours a week between each start and the next stop, wall-clock time of the schedule's zone.

    Fire times are listed over one week (Monday 00:00 to the next Monday) when every expression
    repeats weekly, else over the first calendar year from 2027 in which a start fires (then
    divided by that year's weeks). The state at the beginning of the period is the one its last
    event leaves (the schedule repeats). A daylight-saving change inside the awake window is
    ignored.

    :param start: AWS cron expressions that start the resource.
    :param stop: AWS cron expressions that stop it.
    :returns: hours per week, 0 to 168.
    :raises CronError: for an expression that is not an AWS cron expression, a start and a stop at
        the same minute, or a schedule that never starts or never stops in the counted period.
    """
    expressions = [*start, *stop]
    crons = {expression: AwsCron.parse(_cron_text(expression)) for expression in expressions}
    if all(cron.weekly for cron in crons.values()):
        days, origin, weeks, period = 7, WEEK_START, 1.0, "a week"
    else:
        years = [y for y in (crons[e].first_year(YEAR) for e in start) if y is not None]
        year = min(years, default=YEAR)
        days, origin = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days, dt.datetime(year, 1, 1)
        weeks, period = days / 7, str(year)
    events: dict[int, bool] = {}
    for awake, group in ((True, start), (False, stop)):
        for expression in group:
            for minute in crons[expression].fire_minutes(origin, days):
                if events.get(minute, awake) != awake:
                    raise CronError(f"office hours start and stop at the same minute: {', '.join(expressions)}")
                events[minute] = awake
    if True not in events.values() or False not in events.values():
        raise CronError(f"office hours that never start or never stop in {period}: {', '.join(expressions)}")
    order = sorted(events)
    state, previous, awake_minutes = events[order[-1]], 0, 0
    for minute in order:
        if state:
            awake_minutes += minute - previous
        state, previous = events[minute], minute
    if state:
        awake_minutes += days * 1440 - previous
    return awake_minutes / 60 / weeks


def _cron_text(expression: str) -> str:
    if not expression.strip().startswith("cron("):
        raise CronError(
            f"{expression!r}: office hours are counted from AWS cron expressions "
            "(cron(minutes hours day-of-month month day-of-week year)), not rate() or at()"
        )
    return expression


def timezone_error(name: str) -> str | None:
    """Describe why ``name`` is not an IANA time zone (e.g. ``Europe/Berlin``), or return None."""
    if not re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", name or ""):
        return f"{name!r} is not an IANA time zone name; write it like Europe/Berlin or UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not an IANA time zone name; write it like Europe/Berlin or UTC"
    return None
