"""Tasks that run long enough for the test to kill and restart the scheduler under them."""

from __future__ import annotations

import time

import pendulum

from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False, tags=["e2e"])
def e2e_restart():
    @task
    def slow(seconds: int) -> int:
        time.sleep(seconds)
        return seconds

    @task
    def after(values) -> int:
        return sum(values)

        # More tasks than the fake Fargate runs at once: some are still PROVISIONING at the restart.
    after(slow.expand(seconds=[15] * 6))


e2e_restart()
