"""Rehearsal only (``local_ecs/rehearsal_dags/``, never in ``dags/``): the work in flight while the
upgrade and image-rollout rehearsals replace the deployment (docs/rehearsal.md).

Three tasks sleep 60, 90 and 120 seconds (times ``params.scale``) in parallel, each logging a line
every 10 s, then ``versions`` returns the code version and the Airflow version of the worker
that ran it. ``CODE_VERSION`` is written by the rehearsal per image (``v1``, then ``v2`` in the
image rollout): a worker launched after the rollout returns the new one. Two retries each, as a
DAG author would set them for work that must survive a worker being replaced.
"""

import datetime
import time

import pendulum
from airflow.sdk import dag, get_current_context, task

CODE_VERSION = "v1"
SECONDS = (60, 90, 120)


@dag(dag_id="upgrade_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
     params={"scale": 1.0}, max_active_tasks=len(SECONDS),
     default_args={"retries": 2, "retry_delay": datetime.timedelta(seconds=10)})
def upgrade_probe():
    @task
    def work(seconds: int) -> int:
        scaled = seconds * float(get_current_context()["params"]["scale"])
        started = time.monotonic()
        while time.monotonic() - started < scaled:
            print(f"working: {time.monotonic() - started:.0f} of {scaled:.0f} s (code {CODE_VERSION})", flush=True)
            time.sleep(min(10.0, max(0.0, scaled - (time.monotonic() - started))))
        return seconds

    @task
    def versions(done: list) -> dict:
        import airflow

        return {"code": CODE_VERSION, "airflow": airflow.__version__, "slept": sorted(done)}

    versions([work.override(task_id=f"work_{seconds}")(seconds) for seconds in SECONDS])


upgrade_probe()
