"""Imports, but its tasks form a cycle: a -> b -> c -> a."""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="cyclic", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    c = EmptyOperator(task_id="c")
    a >> b >> c >> a
