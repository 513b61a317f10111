"""Real Airflow 3 ExecuteTask workloads, built without a metadata database."""

from __future__ import annotations

import uuid
from pathlib import Path

from airflow.executors.workloads import BundleInfo, ExecuteTask
from airflow.executors.workloads.task import TaskInstanceDTO

DAG_ID = "bench_fanout"
RUN_ID = "manual__bench"


def make_workloads(n: int, generator=None) -> list[ExecuteTask]:
    """n ExecuteTask workloads as the scheduler would queue them (one DAG run fanning out n tasks).

    The TaskInstanceDTO is built directly instead of from an ORM TaskInstance (ExecuteTask.make), which
    is the only part that needs the database; the JSON the executor ships in the container command has
    the same shape and, with a generator, a real signed token.
    """
    dag_version_id = uuid.uuid4()
    out = []
    for i in range(n):
        ti = TaskInstanceDTO(
            id=uuid.uuid4(),
            task_id=f"task_{i:04d}",
            dag_id=DAG_ID,
            run_id=RUN_ID,
            try_number=1,
            map_index=-1,
            dag_version_id=dag_version_id,
            queue="default",
            pool_slots=1,
            priority_weight=1,
            executor_config={},
        )
        out.append(
            ExecuteTask(
                ti=ti,
                dag_rel_path=Path("bench_fanout.py"),
                token=ExecuteTask.generate_token(str(ti.id), generator),
                bundle_info=BundleInfo(name="dags-folder"),
                log_path=f"dag_id={DAG_ID}/run_id={RUN_ID}/task_id={ti.task_id}/attempt=1.log",
            )
        )
    return out
