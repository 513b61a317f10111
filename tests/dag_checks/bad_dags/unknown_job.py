"""Imports; line 14 reads the settings of an ECS job, ``report``, that the deployment does not
configure (its variable ``ecs_job_report`` would be missing when the task runs)."""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="unknown_job", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    BashOperator(
        task_id="show",
        bash_command="echo {{ var.json.ecs_job_report.cluster }}",
    )
