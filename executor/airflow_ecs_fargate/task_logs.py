"""Live logs of a running worker, read from its CloudWatch Logs (awslogs) stream.

A worker container runs ``execute_workload``, which writes the task's log lines to stdout as well
as to its log file (``subprocess_logs_to_stdout=True`` in Airflow 3.3.2); the awslogs driver sends
stdout to the log group ``worker_log_group``, stream ``<worker_log_stream_prefix>/<container
name>/<ECS task id>`` (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html).
Once the task finishes, its log is read from S3 remote logging instead.
"""

from __future__ import annotations

from typing import Any

#: Most log events returned for one read (GetLogEvents returns up to 10,000 events or 1 MB per call).
MAX_EVENTS = 50_000


def stream_name(prefix: str, container_name: str, task_arn: str) -> str:
    """awslogs stream of ``container_name`` in the ECS task ``task_arn``."""
    task_id = task_arn.rsplit("/", 1)[-1]
    return f"{prefix}/{container_name}/{task_id}" if prefix else f"{container_name}/{task_id}"


def read_stream(client: Any, group: str, stream: str, max_events: int = MAX_EVENTS) -> list[str]:
    """Every message of a log stream, oldest first (GetLogEvents, following nextForwardToken).

    :raises botocore.exceptions.ClientError: e.g. ResourceNotFoundException before the stream exists.
    """
    messages: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    while len(messages) < max_events:
        response = client.get_log_events(**kwargs)
        messages.extend(event["message"] for event in response.get("events") or [])
        token = response.get("nextForwardToken")
        if not response.get("events") or not token or token == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = token
    return messages[:max_events]
