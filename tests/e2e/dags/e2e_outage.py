"""A burst of tasks queued while the ECS API answers 503 for OUTAGE_SECONDS (the harness's outage)."""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task

OUTAGE_TASKS = 6


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=OUTAGE_TASKS,
    tags=["e2e"],
)
def e2e_outage():
    for i in range(OUTAGE_TASKS):

        @task(task_id=f"during_outage_{i}", retries=0)
        def during_outage(i=i) -> int:
            return i

        during_outage()


e2e_outage()
