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


@dag(
    dag_id="example_ecs_job",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "ecs-job"],
    render_template_as_native_obj=True,
    default_args={"retries": 1},
)
def example_ecs_job():
    EcsRunTaskOperator(
        task_id="upload_file_to_s3",
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
    )


dag_object = example_ecs_job()
