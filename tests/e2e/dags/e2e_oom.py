"""A task whose container the fake Fargate kills as if it ran out of memory (see fargate.py)."""

from __future__ import annotations

import time

import pendulum

from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False, tags=["e2e"])
def e2e_oom():
    @task(retries=0)
    def hog_memory():
        # The harness kills the container a few seconds after it starts; the sleep only has to
        # outlast that. If it ever finishes, the task would succeed and the test fails loudly.
        time.sleep(120)

    hog_memory()


e2e_oom()
