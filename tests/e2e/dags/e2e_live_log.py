"""A task that logs a line a second for a while, so its log can be read while it runs."""

from __future__ import annotations

import time

import pendulum

from airflow.sdk import dag, task

LIVE_LINES = 40


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False, tags=["e2e"])
def e2e_live_log():
    @task(task_id="talk")
    def talk() -> None:
        import logging

        log = logging.getLogger("e2e.live")
        for i in range(LIVE_LINES):
            log.info("live line %d", i)
            time.sleep(1)

    talk()


e2e_live_log()
