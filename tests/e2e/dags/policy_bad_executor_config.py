"""A DAG the executor's cluster policy must refuse at parse time (an import error, never scheduled).

Without the policy it parses, is scheduled (@once), and Airflow 3.3.2's scheduler crashes on the
string ``executor_config`` while it builds the workload, in a loop. Not named e2e_*: the harness
waits for every e2e_* DAG to be serialized, and this one must never be.
"""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag

BAD_DAG_ID = "policy_bad_executor_config"
BAD_TASK_ID = "size_as_string"


@dag(dag_id=BAD_DAG_ID, schedule="@once", start_date=pendulum.datetime(2026, 1, 1), catchup=False, tags=["e2e"])
def policy_bad_executor_config():
    EmptyOperator(task_id=BAD_TASK_ID, executor_config="large")


policy_bad_executor_config()
