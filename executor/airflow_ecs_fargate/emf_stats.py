"""A StatsD client that writes CloudWatch embedded metric format (EMF) records to stdout.

Airflow loads it with ``[metrics] statsd_on = True`` and ``[metrics] statsd_custom_client_path =
airflow_ecs_fargate.emf_stats.EmfStatsClient``. Each stat becomes one JSON line on the
process's stdout; the container's awslogs driver sends it to CloudWatch Logs, which extracts
the metric (no agent, no sidecar, no extra image: the same route works where no registry is
reachable). Format: "Specification: Embedded metric format" in the CloudWatch user guide
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html);
CloudWatch Logs extracts it from PutLogEvents without a special header.

Settings (environment, set by the CDK app on every container):

- ``AIRFLOW_METRICS_NAMESPACE``: CloudWatch namespace (default ``Airflow``);
- ``AIRFLOW_METRICS_DEPLOYMENT``: value of the one dimension ``Deployment`` (default ``airflow``).

Tags are dropped on purpose: a dimension per DAG or task would make one billed custom metric per
DAG and task. Airflow's ``[metrics] metrics_allow_list`` chooses which names are sent.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import TextIO

from statsd import StatsClient

#: StatsD type -> CloudWatch unit.
UNITS = {"c": "Count", "ms": "Milliseconds", "g": "None"}


def emf_record(line: str, *, prefix: str | None, namespace: str, deployment: str, now_ms: int) -> dict | None:
    """Turn one StatsD line (``name:value|type[|@rate]``) into an EMF record, or None.

    :param prefix: the StatsD prefix to strip from the name (``[metrics] statsd_prefix``).
    :param now_ms: timestamp, milliseconds since the epoch.
    :returns: ``{"_aws": {...}, "Deployment": ..., <name>: value}``; None for a set (``|s``) or
        a line that is not StatsD.
    """
    name, sep, rest = line.strip().partition(":")
    parts = rest.split("|")
    if not sep or len(parts) < 2 or parts[1] not in UNITS:
        return None
    try:
        value = float(parts[0])
    except ValueError:
        return None
    if len(parts) > 2 and parts[2].startswith("@"):
        try:
            rate = float(parts[2][1:])
        except ValueError:
            rate = 1.0
        if parts[1] == "c" and 0 < rate < 1:
            value = value / rate  # a sampled counter stands for 1/rate events
    if prefix and name.startswith(prefix + "."):
        name = name[len(prefix) + 1 :]
    return {
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["Deployment"]],
                    "Metrics": [{"Name": name, "Unit": UNITS[parts[1]]}],
                }
            ],
        },
        "Deployment": deployment,
        name: value,
    }


class EmfStatsClient(StatsClient):
    """``statsd.StatsClient`` whose datagrams are EMF lines on stdout instead of UDP packets.

    Airflow requires a subclass of ``statsd.StatsClient`` and calls it with ``host``, ``port``,
    ``prefix`` and ``ipv6``; no socket is opened.
    """

    def __init__(self, host="localhost", port=8125, prefix=None, maxudpsize=512, ipv6=False, stream: TextIO | None = None):
        self._prefix = prefix
        self._maxudpsize = maxudpsize
        self._stream = stream
        self._lock = threading.Lock()
        self.namespace = os.environ.get("AIRFLOW_METRICS_NAMESPACE", "Airflow")
        self.deployment = os.environ.get("AIRFLOW_METRICS_DEPLOYMENT", "airflow")

    def _send(self, data: str) -> None:
        now_ms = int(time.time() * 1000)
        lines = []
        for line in data.split("\n"):
            record = emf_record(line, prefix=self._prefix, namespace=self.namespace, deployment=self.deployment, now_ms=now_ms)
            if record is not None:
                lines.append(json.dumps(record, separators=(",", ":")))
        if not lines:
            return
        stream = self._stream or sys.__stdout__
        if stream is None:  # no stdout at all (a daemonized process): nowhere to write
            return
        with self._lock:
            stream.write("\n".join(lines) + "\n")
            stream.flush()

    def close(self) -> None:
        pass
