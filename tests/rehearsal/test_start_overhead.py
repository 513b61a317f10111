"""local_ecs.start_overhead: worker container start -> task instance start, on fake inputs."""

from __future__ import annotations

import datetime
import json

import pytest

from airflow_ecs_fargate.workload_command import compact_command
from local_ecs.start_overhead import parse_timestamp, summary, worker_start_overheads


def _inline(ti_id: str) -> list[str]:
    workload = json.dumps({"ti": {"id": ti_id, "task_id": "extract"}, "dag_rel_path": "example_pipeline.py"})
    return ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", workload]


def _container(cmd: list[str], started: str) -> dict:
    return {"Config": {"Cmd": cmd}, "State": {"StartedAt": started}}


def _ti(ti_id: str, start_date: str | None, task_id: str = "extract", map_index: int = -1) -> dict:
    return {"id": ti_id, "dag_id": "example_pipeline", "task_id": task_id, "map_index": map_index,
            "try_number": 1, "start_date": start_date}


@pytest.mark.parametrize("text, expected", [
    ("2026-12-07T01:40:00.123456789Z", datetime.datetime(2026, 12, 7, 1, 40, 0, 123456, datetime.UTC)),
    ("2026-12-07 01:40:00.5 +0000 UTC", datetime.datetime(2026, 12, 7, 1, 40, 0, 500000, datetime.UTC)),
    ("2026-12-07T02:40:00+01:00", datetime.datetime(2026, 12, 7, 1, 40, 0, 0, datetime.UTC)),
    ("2026-12-07T01:40:00.25", datetime.datetime(2026, 12, 7, 1, 40, 0, 250000, datetime.UTC)),
])
def test_parse_timestamp_reads_podman_and_airflow_forms(text, expected):
    assert parse_timestamp(text) == expected


def test_parse_timestamp_names_a_bad_value():
    with pytest.raises(ValueError, match="not a timestamp: 'yesterday'"):
        parse_timestamp("yesterday")


def test_pairs_containers_with_their_task_instances_in_both_command_forms():
    containers = [
        _container(compact_command(_inline("b")), "2026-12-07T01:40:10.000000000Z"),
        _container(_inline("a"), "2026-12-07T01:40:00.000000000Z"),
        _container(["api-server"], "2026-12-07T01:39:00Z"),  # a service: no workload
    ]
    tis = [_ti("a", "2026-12-07T01:40:04.250000Z"), _ti("b", "2026-12-07T01:40:13.5Z", "transform", 0)]
    rows = worker_start_overheads(containers, tis)
    assert [(r["id"], r["task_id"], r["map_index"], r["seconds"]) for r in rows] == [
        ("a", "extract", -1, 4.25), ("b", "transform", 0, 3.5)]
    assert rows[0]["container_started_at"] == "2026-12-07T01:40:00+00:00"
    assert summary(rows) == {"count": 2, "median": 3.875, "min": 3.5, "max": 4.25}


def test_skips_unmatched_unstarted_and_not_yet_running():
    containers = [
        _container(_inline("unknown"), "2026-12-07T01:40:00Z"),                # no such task instance
        _container(_inline("never"), "0001-01-01T00:00:00Z"),                  # created, never started
        _container(_inline("queued"), "2026-12-07T01:40:00Z"),                 # no start_date yet
        _container(["python", "-m", "x", "--zjson", "not-base64!"], "2026-12-07T01:40:00Z"),
    ]
    tis = [_ti("never", "2026-12-07T01:40:05Z"), _ti("queued", None)]
    assert worker_start_overheads(containers, tis) == []
    assert summary([]) == {"count": 0, "median": None, "min": None, "max": None}
