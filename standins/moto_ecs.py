"""Where moto 5.2.5's ECS is more lenient than ECS, made as strict as ECS (shared by the benchmark's
emulator, the end-to-end harness in tests/e2e and the local ECS runner of local_ecs).

- RunTask with a family name runs its latest ACTIVE revision; with no ACTIVE revision, or with an
  explicit INACTIVE revision, ECS refuses (``ClientException``). moto runs the latest revision,
  INACTIVE or not. ("You can't use an INACTIVE task definition to run new tasks", DeregisterTaskDefinition,
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html)
- A container that has not exited has no ``exitCode`` in DescribeTasks; moto starts every
  container at ``exitCode = 0``, so a task stopped while running could look like "exited 0".
  The harness sets the exit code when, and only when, a container exits.
- StopTask of a task that does not exist: moto raises a bare exception (HTTP 500); ECS answers
  ``InvalidParameterException``, which the executors' start-up health check (StopTask of a
  made-up task) relies on.
"""

from __future__ import annotations

import functools
import inspect


def active_task_definition(backend, task_definition_str: str) -> str:
    """Resolve RunTask's ``taskDefinition`` as ECS does.

    :return: ``family:revision`` of the revision ECS would run.
    :raises moto.ecs.exceptions.ECSException: ``ClientException`` when ECS would refuse.
    """
    from moto.ecs.exceptions import ECSException

    name = task_definition_str.split("/")[-1]
    if ":" in name:
        definition = backend.describe_task_definition(task_definition_str)
        if definition.status != "ACTIVE":
            raise ECSException("ClientException", f"TaskDefinition is inactive: {name}")
        return name
    revisions = backend.task_definitions.get(name, {})
    active = [revision for revision, definition in revisions.items() if definition.status == "ACTIVE"]
    if not active:
        raise ECSException("ClientException", f"Unable to describe task definition {name}: no ACTIVE revision.")
    return f"{name}:{max(active)}"


def strict_run_task(original):
    """Wrap moto's ``EC2ContainerServiceBackend.run_task`` with the two rules above."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def run_task(backend, *args, **kwargs):
        bound = signature.bind(backend, *args, **kwargs)
        bound.arguments["task_definition_str"] = active_task_definition(
            backend, bound.arguments["task_definition_str"]
        )
        tasks = original(*bound.args, **bound.kwargs)
        for task in tasks:
            for container in task.containers:
                if hasattr(container, "exitCode"):
                    del container.exitCode  # not exited yet
        return tasks

    return run_task


def ecs_stop_task(original):
    """Wrap moto's ``EC2ContainerServiceBackend.stop_task`` so that an unknown task is
    ``InvalidParameterException``, as ECS answers (see the module docstring)."""
    from moto.ecs.exceptions import InvalidParameterException

    @functools.wraps(original)
    def stop_task(backend, cluster_str, task_str, reason):
        try:
            return original(backend, cluster_str, task_str, reason)
        except InvalidParameterException:
            raise
        except Exception as error:
            if "Could not find task" in str(error) or "has no registered tasks" in str(error):
                raise InvalidParameterException("The referenced task was not found.") from error
            raise

    return stop_task
