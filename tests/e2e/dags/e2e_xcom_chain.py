"""Several tasks with dependencies that hand values to each other through XCom."""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False, tags=["e2e"])
def e2e_xcom_chain():
    @task
    def extract() -> list[int]:
        return [1, 2, 3, 4]

    @task
    def double(values: list[int]) -> list[int]:
        return [v * 2 for v in values]

    @task
    def square(values: list[int]) -> list[int]:
        return [v * v for v in values]

    @task
    def load(doubled: list[int], squared: list[int]) -> int:
        total = sum(doubled) + sum(squared)
        # A wrong value here means XCom lost or mixed up a value on the way.
        if total != 50:
            raise ValueError(f"expected 50, got {total} from {doubled} and {squared}")
        return total

    values = extract()
    load(double(values), square(values))


e2e_xcom_chain()
