"""One run of ``example_pipeline`` with ``dag.test()``: every task in this process, against a
SQLite metadata database in the test's scratch AIRFLOW_HOME (no scheduler, no executor, no AWS)."""

from __future__ import annotations

RUN = """
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils import db
from airflow.utils.session import create_session

db.initdb()  # the scratch SQLite database
dag = DagBag().dags["example_pipeline"]
run = dag.test()
with create_session() as session:
    rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, task_ids="load",
                                              key="return_value")).all()
result({
    "state": str(run.state),
    "tasks": sorted([ti.task_id, ti.map_index, str(ti.state)] for ti in run.get_task_instances()),
    "load": [XComModel.deserialize_value(row) for row in rows],
})
"""


def test_example_pipeline_runs_and_loads_the_sum_of_squares(run_airflow):
    outcome = run_airflow(RUN)
    assert outcome["state"] == "success"
    assert outcome["tasks"] == [["extract", -1, "success"], ["load", -1, "success"]] + [
        ["transform", i, "success"] for i in range(5)
    ]
    assert outcome["load"] == [1 + 4 + 9 + 16 + 25]
