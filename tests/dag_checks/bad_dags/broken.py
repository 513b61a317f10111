"""Fails at import: line 12 calls a name that does not exist."""

from __future__ import annotations

import pendulum

from airflow.sdk import dag


@dag(dag_id="broken", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
def broken():
    task_that_does_not_exist()  # noqa: F821


broken()
