"""Per worker task: seconds from the worker container's start to the task instance's start.

A worker container's ``State.StartedAt`` (``podman inspect``) is when the runtime started its first
process; the task instance's ``start_date`` (Airflow's REST API) is set when the worker's supervisor
calls the Execution API's ``ti/run``, after the entrypoint, Python's start-up and the task SDK's
imports (docs/worker-start.md). The difference is the part of a Fargate task's start that the image
and Python own; provisioning and the image pull come before ``StartedAt``.

The container is matched to its task instance through the workload its command carries
(``airflow_ecs_fargate.workload_command.workload_json``: the inline ``--json-string`` or the compact
``--zjson`` form), whose ``ti.id`` is the task instance's ``id``.
"""

from __future__ import annotations

import datetime
import json
import re
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_ecs_fargate.workload_command import workload_json

_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?(?:\s+[A-Z]+)?$"
)


def parse_timestamp(text: str) -> datetime.datetime:
    """Parse a timestamp of podman (``2026-12-07T01:40:00.123456789Z`` in JSON, or Go's
    ``2026-12-07 01:40:00.123456789 +0000 UTC``) or of Airflow's API (ISO 8601), to an aware
    ``datetime`` (UTC when no offset is given; fractions beyond microseconds are dropped).

    :raises ValueError: any other form, naming the text.
    """
    m = _TIMESTAMP.match(text.strip())
    if not m:
        raise ValueError(f"not a timestamp: {text!r} (expected e.g. 2026-12-07T01:40:00.123456Z)")
    day, clock, fraction, offset = m.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    tz = "+00:00" if offset in (None, "Z") else offset[:3] + ":" + offset[-2:]
    return datetime.datetime.fromisoformat(f"{day}T{clock}.{micro}{tz}")


def workload_ti_id(command: Iterable[str] | None) -> str | None:
    """The task instance id (``ti.id``) of the workload a worker's command carries, or None for a
    command with no (readable) workload."""
    text = workload_json(list(command or []))
    if text is None:
        return None
    try:
        ti = json.loads(text).get("ti") or {}
    except (ValueError, AttributeError):
        return None
    return str(ti["id"]) if isinstance(ti, dict) and ti.get("id") else None


def worker_start_overheads(containers: Iterable[Mapping[str, Any]],
                           task_instances: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pair each worker container with the task instance it ran.

    :param containers: ``podman inspect`` entries (``dict``): ``Config.Cmd`` (the container
        command, a ``list[str]``) and ``State.StartedAt`` (``str``). Containers whose command
        carries no workload (services, init containers) and containers that never started
        (``StartedAt`` of year 1) are skipped.
    :param task_instances: Airflow REST API task instances (``dict``): ``id``, ``dag_id``,
        ``task_id``, ``map_index``, ``try_number``, ``start_date`` (``str`` or None).
    :returns: one ``dict`` per matched pair, in container start order: the task instance's keys
        above, ``container_started_at`` and ``start_date`` (ISO 8601 ``str``) and ``seconds``
        (``float``, start_date minus StartedAt). A task instance without a start_date, or a
        container without a matching task instance, gives no entry.
    :raises ValueError: a timestamp in neither podman's nor Airflow's form.
    """
    by_id = {str(ti["id"]): ti for ti in task_instances if ti.get("id")}
    rows = []
    for container in containers:
        ti = by_id.get(workload_ti_id((container.get("Config") or {}).get("Cmd")) or "")
        started_text = (container.get("State") or {}).get("StartedAt")
        if ti is None or not ti.get("start_date") or not started_text:
            continue
        started = parse_timestamp(started_text)
        if started.year < 2000:  # podman's zero time: created, never started
            continue
        ti_start = parse_timestamp(ti["start_date"])
        rows.append({
            **{key: ti.get(key) for key in ("id", "dag_id", "task_id", "map_index", "try_number")},
            "container_started_at": started.isoformat(),
            "start_date": ti_start.isoformat(),
            "seconds": round((ti_start - started).total_seconds(), 3),
        })
    return sorted(rows, key=lambda r: r["container_started_at"])


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Count, median, min and max of the rows' ``seconds`` (``None`` values when there are no rows)."""
    seconds = [r["seconds"] for r in rows]
    if not seconds:
        return {"count": 0, "median": None, "min": None, "max": None}
    return {"count": len(seconds), "median": round(statistics.median(seconds), 3),
            "min": min(seconds), "max": max(seconds)}
