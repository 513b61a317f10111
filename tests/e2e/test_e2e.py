"""End to end: real Airflow 3 processes, real PostgreSQL, the ECS executor against moto ECS.

The runs of the independent scenarios are triggered together at the start (they overlap, as in
production); each test then waits for its own run and asserts the final states.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runs(airflow):
    return airflow.trigger("e2e_xcom_chain")


def test_dependencies_and_xcom(airflow, runs):
    tis = airflow.wait_for_run("e2e_xcom_chain", runs["e2e_xcom_chain"], timeout=240)
    assert {k[0]: v["state"] for k, v in tis.items()} == {
        "extract": "success", "double": "success", "square": "success", "load": "success"}
    assert airflow.run_state("e2e_xcom_chain", runs["e2e_xcom_chain"]) == "success"
