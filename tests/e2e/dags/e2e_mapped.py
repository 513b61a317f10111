"""A dynamically mapped task with 50 map indexes between an upstream and a reducing downstream."""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task

MAP_SIZE = 50


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=MAP_SIZE,
    tags=["e2e"],
)
def e2e_mapped():
    @task
    def numbers() -> list[int]:
        return list(range(MAP_SIZE))

    @task
    def add_one(x: int) -> int:
        return x + 1

    @task
    def total(values) -> int:
        values = list(values)
        expected = sum(range(1, MAP_SIZE + 1))
        if len(values) != MAP_SIZE or sum(values) != expected:
            raise ValueError(f"expected {MAP_SIZE} values summing to {expected}, got {values}")
        return sum(values)

    total(add_one.expand(x=numbers()))


e2e_mapped()
