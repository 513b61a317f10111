"""Example DAG: run the ECS job ``upload-file-to-s3`` (``jobs/upload-file-to-s3/``) with the
amazon provider's ``EcsRunTaskOperator``; the job writes one file to the data bucket the app
creates, under ``uploads/``.

Nothing to edit: the deployment gives every worker the Airflow variable
``ecs_job_upload_file_to_s3`` (environment ``AIRFLOW_VAR_ECS_JOB_UPLOAD_FILE_TO_S3``, a JSON
object with cluster, task definition family, container, subnets, security group, public IP
choice, log group and data bucket), and the DAG reads it at run time through templates. With
``render_template_as_native_obj=True`` a template such as ``{{ job.subnets }}`` renders to a list.

The operator runs inside an Airflow worker task (itself an ECS task), which may run, follow,
stop and reattach to exactly the jobs of the configuration (``constructs_lib/ecs_jobs.py``).

``example_ecs_job_deferrable`` runs the same job with ``deferrable=True``: the worker starts the
job and frees its slot (the worker task ends), the triggerer waits for the job to stop and
forwards its log lines (the provider's ``TaskDoneTrigger``), and a new worker task checks the
job's exit code. The triggerer may only wait for and read the logs of the jobs cluster's tasks.
A deferred task's log page in the UI: see executor/README.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import dag

#: The job's settings, as the deployment provides them (see the module docstring).
JOB = "var.json.ecs_job_upload_file_to_s3"


def setting(name: str) -> str:
    """A template that renders to field ``name`` of the job's settings."""
    return "{{ " + JOB + "." + name + " }}"


def run_job(task_id: str, *, deferrable: bool) -> EcsRunTaskOperator:
    """The operator that runs the job once, from the job's settings (see the module docstring).

    :param deferrable: hand the wait to the triggerer (``TaskDoneTrigger``) instead of keeping a
        worker task for the job's whole run.
    """
    return EcsRunTaskOperator(
        task_id=task_id,
        cluster=setting("cluster"),
        task_definition=setting("task_definition"),
        container_name=setting("container_name"),
        launch_type="FARGATE",
        platform_version="LATEST",
        overrides={
            "containerOverrides": [
                {
                    "name": setting("container_name"),
                    "environment": [
                        {"name": "DATA_BUCKET", "value": setting("data_bucket")},
                        {"name": "OBJECT_KEY", "value": "uploads/{{ ds }}/{{ ti.run_id | replace(':', '-') }}.txt"},
                    ],
                }
            ]
        },
        network_configuration={
            "awsvpcConfiguration": {
                "subnets": setting("subnets"),
                "securityGroups": setting("security_groups"),
                "assignPublicIp": setting("assign_public_ip"),
            }
        },
        awslogs_group=setting("log_group"),
        awslogs_stream_prefix=setting("log_stream_prefix"),
        awslogs_region=setting("region"),
        awslogs_fetch_interval=timedelta(seconds=10),
        # A worker restarted while the job runs (e.g. a Spot interruption) follows the same job
        # instead of starting a second one.
        reattach=True,
        deferrable=deferrable,
        # Deferred: the trigger polls DescribeTasks every 10 s (the operator's default is 6 s).
        waiter_delay=10,
    )


DAG_ARGS = dict(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
    default_args={"retries": 1},
)


@dag(dag_id="example_ecs_job", tags=["example", "ecs-job"], **DAG_ARGS)
def example_ecs_job():
    run_job("upload_file_to_s3", deferrable=False)


@dag(dag_id="example_ecs_job_deferrable", tags=["example", "ecs-job", "deferrable"], **DAG_ARGS)
def example_ecs_job_deferrable():
    run_job("upload_file_to_s3", deferrable=True)


dag_object = example_ecs_job()
deferrable_dag_object = example_ecs_job_deferrable()
