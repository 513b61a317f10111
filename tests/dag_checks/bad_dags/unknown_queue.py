"""Imports; task ``big`` is on queue ``gpu``, which the test deployment has not configured, while
task ``sized`` is on ``large``, which it has."""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="unknown_queue", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="sized", queue="large") >> EmptyOperator(task_id="big", queue="gpu")
