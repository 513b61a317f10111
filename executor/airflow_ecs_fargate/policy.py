"""Airflow cluster policy: refuse, at DAG parse time, an ``executor_config`` this executor cannot run.

Registered through the ``airflow.policy`` setuptools entry point of this package
(``executor/pyproject.toml``), so every Airflow process where the package is installed (the image,
hence the dag-processor) loads it; no ``airflow_local_settings.py`` is needed. Airflow's
``settings.initialize()`` calls ``load_setuptools_entrypoints("airflow.policy")``
(airflow/settings.py, Airflow 3.3.2).

Why at parse time: Airflow 3.3.2 validates the workload (``TaskInstanceDTO.executor_config: dict``)
in the scheduler before any executor code runs, so a task with, e.g., a string ``executor_config``
puts the scheduler into a crash loop. Raising ``AirflowClusterPolicyViolation`` here makes the DAG
file an import error instead (shown in the UI with the task and the fix), and nothing of that DAG
reaches the scheduler.
"""

from __future__ import annotations

from airflow.policies import hookimpl

from airflow_ecs_fargate.task_config import FIX, executor_config_errors

#: Executor class names whose tasks this policy checks.
ECS_EXECUTORS = ("EcsFargateExecutor", "AwsEcsExecutor")


def _runs_on_ecs(task) -> bool:
    """True when the task runs on an ECS executor (its own ``executor=``, else the default one)."""
    name = getattr(task, "executor", None)
    if not name:
        from airflow.configuration import conf

        name = (conf.get("core", "executor", fallback="") or "").split(",")[0]
    return any(cls in name for cls in ECS_EXECUTORS)


@hookimpl
def task_policy(task) -> None:
    """Raise ``AirflowClusterPolicyViolation`` when ``task.executor_config`` would fail on ECS.

    :raises airflow.exceptions.AirflowClusterPolicyViolation: with the DAG id, the task id, every
        problem found and the fix.
    """
    if not _runs_on_ecs(task):
        return
    errors = executor_config_errors(getattr(task, "executor_config", None))
    if errors:
        from airflow.exceptions import AirflowClusterPolicyViolation

        raise AirflowClusterPolicyViolation(
            f"Task {task.task_id!r} in DAG {getattr(task, 'dag_id', '?')!r}: " + "; ".join(errors) + f". {FIX}"
        )
