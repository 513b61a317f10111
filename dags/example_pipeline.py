"""Example DAG shipped with the image: extract -> transform (mapped) -> load, passing XCom.

Each task runs as its own ECS task through the bundled ECS executor. Trigger it from the UI
(DAG ``example_pipeline``) after deploying.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task


@dag(
    dag_id="example_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example"],
    default_args={"retries": 1},
)
def example_pipeline():
    @task
    def extract() -> list[int]:
        return [1, 2, 3, 4, 5]

    @task
    def transform(value: int) -> int:
        return value * value

    @task
    def load(values: list[int]) -> int:
        total = sum(values)
        print(f"Sum of squares: {total}")
        return total

    load(transform.expand(value=extract()))


example_pipeline()
