"""Many independent short tasks at once: the harness throttles RunTask during this burst."""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task

BURST_SIZE = 8


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=BURST_SIZE,
    tags=["e2e"],
)
def e2e_burst():
    for i in range(BURST_SIZE):

        @task(task_id=f"burst_{i}")
        def burst(i=i) -> int:
            return i

        burst()


e2e_burst()
