"""CloudWatch Logs reading: one task's stream while it runs, and a component's recent lines."""

from __future__ import annotations

import re
import time
from typing import Callable, Iterator

from botocore.exceptions import ClientError

from airflow_ecs_ops.deployment import OpsError, aws_error

_SINCE_RE = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> int:
    """Parse a duration like ``30s``, ``10m``, ``2h``, ``1d`` into seconds.

    :raises OpsError: any other form.
    """
    match = _SINCE_RE.match(text.strip())
    if not match:
        raise OpsError(f"--since {text!r}: write a number and a unit, e.g. 30s, 10m, 2h or 1d.")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def stream_name(prefix: str, container: str, task_id: str) -> str:
    """The awslogs stream of a container: ``<prefix>/<container>/<task id>`` (ECS awslogs driver
    documentation, ``awslogs-stream-prefix``)."""
    return f"{prefix}/{container}/{task_id}"


class LogStream:
    """Copies the new events of one log stream to ``write`` each time :meth:`pump` is called.

    A stream that does not exist yet (the container has not started) is not an error.
    """

    def __init__(self, logs, group: str, stream: str, write: Callable[[str], None]):
        self._logs, self.group, self.stream, self._write = logs, group, stream, write
        self._token: str | None = None

    def pump(self) -> int:
        """Write every event that arrived since the last call. Returns how many."""
        count = 0
        while True:
            kwargs = {"logGroupName": self.group, "logStreamName": self.stream, "startFromHead": True}
            if self._token:
                kwargs["nextToken"] = self._token
            try:
                response = self._logs.get_log_events(**kwargs)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return count
                raise aws_error(err, f"reading log stream {self.stream}") from err
            events = response.get("events", [])
            for event in events:
                self._write(event["message"])
            count += len(events)
            token = response.get("nextForwardToken")
            if not events or token == self._token:
                self._token = token
                return count
            self._token = token


def recent_events(
    logs, group: str, prefix: str | None, start_ms: int, seen: set[str] | None = None
) -> Iterator[dict]:
    """Yield the events of ``group`` (streams starting with ``prefix``) since ``start_ms``, oldest
    first, skipping event IDs in ``seen`` and adding the new ones to it."""
    kwargs = {"logGroupName": group, "startTime": start_ms}
    if prefix:
        kwargs["logStreamNamePrefix"] = prefix
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            for event in sorted(page.get("events", []), key=lambda e: (e["timestamp"], e.get("eventId", ""))):
                if seen is not None:
                    if event["eventId"] in seen:
                        continue
                    seen.add(event["eventId"])
                yield event
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise OpsError(f"Log group {group} does not exist: was the stack deleted?") from err
        raise aws_error(err, f"reading log group {group}") from err


def now_ms() -> int:
    """The current time in milliseconds since the epoch (CloudWatch Logs timestamps)."""
    return int(time.time() * 1000)
