"""What a deployment offers its DAGs that a check can know statically: queues, pools, job variables.

Queues: Airflow's default queue (``[operators] default_queue``, ``default`` unless set) and the
names of the configuration's ``worker_queues``, which the scheduler's executor reads from
``AIRFLOW__AWS_ECS_EXECUTOR__QUEUES`` (executor/README.md, "Queues"). A task on any other queue
still runs, at the default worker size: on this deployment a queue name that is not one of these
is a typo or a queue that was never configured. Pools: Airflow creates ``default_pool``; the
configuration creates none, so other pools exist only if someone created them (``airflow pools
set``) and must be named to the check (``--pool``). Variables: the deployment sets one Airflow
variable per configured ECS job, ``ecs_job_<name>`` (``AIRFLOW_VAR_ECS_JOB_<NAME>`` in the workers'
environment, ``constructs_lib/ecs_jobs.py``); other variables may live in the metadata database,
so only names with that prefix can be known statically.

Read from the cloud assembly (the scheduler container's environment in the synthesized templates)
when one is given, else from the CDK context through ``app_config.load_config``, the loader the CDK
app itself calls.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_ecs_fargate.queues import parse_queues

from app_config.jobs import job_variable_name

from dag_checks.pins import ROOT, display

#: Airflow's ``[operators] default_queue`` default (Airflow configuration reference).
AIRFLOW_DEFAULT_QUEUE = "default"
#: The pool Airflow creates in every metadata database (``Pool.DEFAULT_POOL_NAME``).
DEFAULT_POOL = "default_pool"
QUEUES_VARIABLE = "AIRFLOW__AWS_ECS_EXECUTOR__QUEUES"
DEFAULT_QUEUE_VARIABLE = "AIRFLOW__OPERATORS__DEFAULT_QUEUE"
EXECUTOR_VARIABLE = "AIRFLOW__CORE__EXECUTOR"
#: The scheduler's container name in the task definitions (``constructs_lib/airflow_service.py``
#: names each component's container after the component).
SCHEDULER_CONTAINER = "scheduler"
#: The names of the variables the deployment sets for its jobs (``job_variable_name``).
JOB_VARIABLE_PREFIX = job_variable_name("")
#: Environment variables that set an Airflow variable (Airflow: "Storing Variables in Environment
#: Variables").
VARIABLE_ENV_PREFIX = "AIRFLOW_VAR_"


class DeploymentError(ValueError):
    """The deployment's settings cannot be read; the message names the file or key and the fix."""


@dataclass(frozen=True)
class Deployment:
    """Queues and pools a deployment has.

    :param queues: queue names tasks may use.
    :param pools: pool names tasks may use.
    :param executor: the ``[core] executor`` the scheduler runs (the cluster policy of the bundled
        executor checks ``executor_config`` only for ECS executors).
    :param source: where these were read, for the report.
    :param job_variables: the ``ecs_job_<name>`` Airflow variables the deployment sets.
    """

    queues: frozenset[str]
    pools: frozenset[str]
    executor: str
    source: str
    job_variables: frozenset[str] = frozenset()


def from_assembly(cdk_out: Path, pools: tuple[str, ...] = ()) -> Deployment:
    """Read the scheduler container's executor environment from a cloud assembly.

    :param cdk_out: a ``cdk synth`` output directory.
    :param pools: pools created outside the configuration, on top of ``default_pool``.
    :raises DeploymentError: no assembly, no scheduler container, or an unreadable queues setting.
    """
    from cloud_assembly import AssemblyError, CloudAssembly

    try:
        assembly = CloudAssembly(Path(cdk_out))
    except AssemblyError as err:
        raise DeploymentError(str(err)) from None
    scheduler, variables = None, set()
    for stack in assembly.stacks.values():
        for resource in stack.of_type("AWS::ECS::TaskDefinition").values():
            for container in resource.get("Properties", {}).get("ContainerDefinitions", []):
                env = {e.get("Name"): e.get("Value") for e in container.get("Environment", [])}
                variables |= {name[len(VARIABLE_ENV_PREFIX):].lower() for name in env
                              if str(name).startswith(VARIABLE_ENV_PREFIX)}
                if container.get("Name") == SCHEDULER_CONTAINER and scheduler is None:
                    scheduler = (env, f"{display(cdk_out)}: scheduler environment of {stack.stack_name}")
    if scheduler is not None:
        return _deployment(scheduler[0], pools, scheduler[1],
                           frozenset(v for v in variables if v.startswith(JOB_VARIABLE_PREFIX)))
    raise DeploymentError(
        f"{display(cdk_out)} has no task definition with a {SCHEDULER_CONTAINER!r} container: "
        "synthesize this app (cdk synth -o DIR) and pass that DIR"
    )


def from_context(context: Mapping[str, Any], pools: tuple[str, ...] = (), source: str = "cdk.json") -> Deployment:
    """Build the configuration from CDK context as the app does and take its queues.

    :raises DeploymentError: the configuration is invalid (``app_config.ConfigError``'s message).
    """
    from app_config import ConfigError, load_config

    try:
        config = load_config(context)
    except ConfigError as err:
        raise DeploymentError(f"the configuration ({source}) is invalid: {err}") from None
    return Deployment(
        queues=frozenset({AIRFLOW_DEFAULT_QUEUE, *(q.name for q in config.executor.worker_queues)}),
        pools=frozenset({DEFAULT_POOL, *pools}),
        executor=config.executor.executor_class,
        source=f"{source} (stage {config.stage})",
        job_variables=frozenset(job_variable_name(job.name) for job in config.jobs),
    )


def cdk_context(cdk_json: Path = ROOT / "cdk.json", cdk_args: str = "") -> dict[str, Any]:
    """The context ``cdk synth`` would see: ``cdk.json``'s ``context`` overlaid with every
    ``-c KEY=VALUE`` / ``--context KEY=VALUE`` of ``cdk_args`` (other CDK options are ignored).

    :raises DeploymentError: ``cdk.json`` is missing or not JSON, or a ``-c`` has no ``=``.
    """
    try:
        context = dict(json.loads(Path(cdk_json).read_text()).get("context", {}))
    except (OSError, json.JSONDecodeError) as err:
        raise DeploymentError(f"cannot read the CDK context from {display(cdk_json)}: {err}") from None
    words = shlex.split(cdk_args or "")
    for i, word in enumerate(words):
        value = None
        if word in ("-c", "--context") and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith("--context="):
            value = word.split("=", 1)[1]
        if value is None:
            continue
        key, sep, item = value.partition("=")
        if not sep:
            raise DeploymentError(f"{word} {value!r}: write -c KEY=VALUE")
        context[key] = item
    return context


def _deployment(env: Mapping[str, Any], pools: tuple[str, ...], source: str,
                job_variables: frozenset[str]) -> Deployment:
    default_queue = env.get(DEFAULT_QUEUE_VARIABLE) or AIRFLOW_DEFAULT_QUEUE
    raw = env.get(QUEUES_VARIABLE)
    if isinstance(raw, dict) and set(raw) == {"Fn::Join"}:
        # Team queues name their task definition revisions, known at deploy time: only the queue
        # names matter here.
        separator, parts = raw["Fn::Join"]
        raw = separator.join(part if isinstance(part, str) else "deploy-time-value" for part in parts)
    if raw is not None and not isinstance(raw, str):
        raise DeploymentError(f"{source}: {QUEUES_VARIABLE} is not a plain string: {raw!r}")
    try:
        queues = parse_queues(raw)
    except ValueError as err:
        raise DeploymentError(f"{source}: {err}") from None
    return Deployment(
        queues=frozenset({default_queue, *queues}),
        pools=frozenset({DEFAULT_POOL, *pools}),
        executor=str(env.get(EXECUTOR_VARIABLE) or ""),
        source=source,
        job_variables=job_variables,
    )
