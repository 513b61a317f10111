"""A task that always raises: it must be retried `retries` times, then fail, and fail its downstream."""

from __future__ import annotations

from datetime import timedelta

import pendulum

from airflow.sdk import dag, task

RETRIES = 1


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False, tags=["e2e"])
def e2e_failing():
    @task(retries=RETRIES, retry_delay=timedelta(seconds=1))
    def boom():
        raise RuntimeError("e2e: this task fails on purpose")

    @task
    def never_runs():
        pass

    boom() >> never_runs()


e2e_failing()
