"""Every DAG in dags/ imports (no import error, no cycle: Airflow's DagBag records a cycle as an
import error of its file), has tags and retries. An example to extend with your team's rules."""

from __future__ import annotations

PARSE = """
from airflow.dag_processing.dagbag import DagBag

bag = DagBag()  # [core] dags_folder: the repository's dags/
result({
    "import_errors": bag.import_errors,
    "dags": {
        dag_id: {
            "file": dag.relative_fileloc,
            "tags": sorted(dag.tags),
            "tasks": {t.task_id: {"retries": t.retries, "owner": t.owner} for t in dag.tasks},
        }
        for dag_id, dag in bag.dags.items()
    },
})
"""


def test_every_dag_imports_with_tags_and_retries(run_airflow):
    parsed = run_airflow(PARSE)
    assert parsed["import_errors"] == {}
    assert {"example_pipeline", "example_ecs_job"} <= set(parsed["dags"])
    for dag_id, dag in parsed["dags"].items():
        assert dag["tags"], f"{dag['file']}: DAG {dag_id} has no tags"
        assert dag["tasks"], f"{dag['file']}: DAG {dag_id} has no tasks"
        for task_id, task in dag["tasks"].items():
            assert task["retries"] >= 1, f"{dag['file']}: {dag_id}.{task_id} has no retries"
