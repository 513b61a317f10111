"""The rehearsal's access probe: connections and variables from Secrets Manager, another
deployment's secret, and a team queue's own task role, with IAM enforced (issue 19, items 2 and 4;
docs/rehearsal.md, "Access probe").

The default rehearsal configuration declares two team queues (:data:`TEAM_QUEUES`) and bakes the
DAG ``local_ecs/rehearsal_dags/access_probe.py`` into its image (``local_ecs.synth``'s
``extra_dags``: users' ``dags/`` never holds it). After ``example_pipeline``, :func:`run` then

1. stores, as an operator would with the operations CLI (``airflow-ecs connections set`` and
   ``variables set``, run as a process against the AWS stand-in with the harness's administrator
   credentials), a connection and a variable of this deployment and a connection of another
   deployment (same project, another stage); and, with the CLI's own :func:`~airflow_ecs_ops.secrets.put`
   (the CLI writes only the deployment's prefixes), one secret under each team's Secrets Manager prefix;
2. triggers ``access_probe`` and waits for it: its tasks read the connection and variable
   through Airflow's secrets backend (the workers' task role), ask for the other deployment's
   secret (denied), and on the team queue write and read under their own prefix of the data bucket
   and read their own secret (allowed), then try the other team's prefix and secret (denied);
3. records which ECS task ran each Airflow task: its task definition family and task role (so a
   team task is seen to run with its queue's own), and the principal IAM checked it as.

The AWS stand-in records every refused request (``AwsStandIn.denials``): :func:`expected_denials`
gives the three lines the probe must cause, and nothing else may be refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local_ecs.podman import PROJECT_ROOT
from local_ecs.synth import REHEARSAL_DAGS

if TYPE_CHECKING:  # pragma: no cover
    from local_ecs.rest import RestClient
    from local_ecs.scenario import LocalDeployment

DAG_ID = "access_probe"
PROBE_FILE = "access_probe.py"
#: Two team queues (``worker_queues``): each gets its own task definition family and task role,
#: allowed its own prefixes only. The probe's ``team`` task runs on ``team-a`` and tries ``team-b``'s.
TEAM_QUEUES: dict[str, dict[str, Any]] = {
    "team-a": {"cpu": 1024, "memory_mib": 2048, "s3_prefixes": ["team-a/"], "secrets_prefixes": ["team-a/"]},
    "team-b": {"cpu": 1024, "memory_mib": 2048, "s3_prefixes": ["team-b/"], "secrets_prefixes": ["team-b/"]},
}
#: The name of the team secret stored under each team's Secrets Manager prefix.
TEAM_SECRET = "probe-token"
#: The object the ``team`` task writes under a prefix (the DAG's ``access-probe.txt``).
TEAM_OBJECT = "access-probe.txt"


class ProbeFailed(RuntimeError):
    """The probe could not be set up or run (the message says which step and what was seen)."""


def _dag_constant(name: str) -> str:
    """A string constant of the probe DAG (``NAME``, ``TEAM_QUEUE``): the DAG file is its one home."""
    source = (REHEARSAL_DAGS / PROBE_FILE).read_text()
    match = re.search(rf'^{name} = "([^"]+)"$', source, re.MULTILINE)
    if not match:
        raise ProbeFailed(f"{REHEARSAL_DAGS / PROBE_FILE} no longer defines {name} = \"...\"")
    return match.group(1)


def extra_dags() -> dict[str, str]:
    """``{file name: content}`` of the probe DAG, for :func:`local_ecs.synth.synthesize`."""
    return {PROBE_FILE: (REHEARSAL_DAGS / PROBE_FILE).read_text()}


def overrides() -> dict[str, str]:
    """The context overrides the probe needs: :data:`TEAM_QUEUES` as ``worker_queues``."""
    return {"worker_queues": json.dumps(TEAM_QUEUES, separators=(",", ":"))}


def in_image(deployment: "LocalDeployment") -> bool:
    """Whether the rehearsed image holds the probe DAG (its staged build context's ``dags/``)."""
    for asset_hash in deployment.rehearsed_image_assets():
        asset = deployment.assembly.images.get(asset_hash)
        if asset is not None and asset.directory is not None and (asset.directory / "dags" / PROBE_FILE).is_file():
            return True
    return False


def _scheduler_environment(deployment: "LocalDeployment") -> dict[str, str]:
    for spec in deployment.service_specs.values():
        for container in spec.containers:
            if "AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER" in container.environment:
                return container.environment
    raise ProbeFailed("no service carries the executor's settings (AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER)")


def project_and_stage(environment: dict[str, str]) -> tuple[str, str]:
    """``(project, stage)`` from ``[secrets] backend_kwargs``' ``connections_prefix``
    (``<project>/<stage>/connections``, cloud_assembly.names.secrets_prefix).

    :raises ProbeFailed: the deployment uses no Secrets Manager backend, or another prefix form.
    """
    kwargs = json.loads(environment.get("AIRFLOW__SECRETS__BACKEND_KWARGS") or "{}")
    parts = str(kwargs.get("connections_prefix", "")).split("/")
    if len(parts) != 3 or parts[2] != "connections":
        raise ProbeFailed(f"[secrets] backend_kwargs {kwargs!r}: expected connections_prefix "
                          "<project>/<stage>/connections (secrets_backend=secrets-manager)")
    return parts[0], parts[1]


def team_role(deployment: "LocalDeployment", environment: dict[str, str], queue: str) -> str:
    """The task role ARN of team queue ``queue``'s task definition, as the executor's
    ``[aws_ecs_executor] queues`` names it and ECS registered it."""
    queues = json.loads(environment.get("AIRFLOW__AWS_ECS_EXECUTOR__QUEUES") or "{}")
    definition = (queues.get(queue) or {}).get("task_definition")
    if not definition:
        raise ProbeFailed(f"[aws_ecs_executor] queues has no task definition of its own for {queue!r}: {queues}")
    described = deployment.aws.client("ecs").describe_task_definition(taskDefinition=definition)
    return described["taskDefinition"]["taskRoleArn"]


def data_bucket(deployment: "LocalDeployment", role_arn: str, prefix: str) -> str:
    """The bucket whose ``prefix`` the role may write (its team grant on the data bucket).

    :raises ProbeFailed: the role's synthesized policies grant no ``s3:PutObject`` on ``<bucket>/<prefix>*``.
    """
    pattern = re.compile(rf"^arn:aws[\w-]*:s3:::([^/]+)/{re.escape(prefix)}\*$")
    for document in deployment.aws.role_policies.get(role_arn.rsplit("/", 1)[-1], []):
        for statement in document.get("Statement", []):
            actions = statement.get("Action")
            actions = [actions] if isinstance(actions, str) else actions or []
            resources = statement.get("Resource")
            resources = [resources] if isinstance(resources, str) else resources or []
            if statement.get("Effect") == "Allow" and "s3:PutObject" in actions:
                for resource in resources:
                    match = pattern.match(resource)
                    if match:
                        return match.group(1)
    raise ProbeFailed(f"role {role_arn} may write under no bucket's {prefix}")


def airflow_ecs(deployment: "LocalDeployment", project: str, stage: str, *args: str) -> str:
    """Run the operations CLI (``airflow-ecs --project P --stage S ARGS``) as a process against the
    AWS stand-in, with the harness's administrator credentials; returns its output.

    :raises ProbeFailed: it exited non-zero (its output in the message).
    """
    executable = Path(sys.executable).with_name("airflow-ecs")
    if not executable.exists():
        raise ProbeFailed(f"{executable} not found: install the operations package (make .venv/.test-deps)")
    admin = deployment.aws.principals
    from local_ecs.aws import ADMIN_USER

    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "AIRFLOW_ECS_"))}
    env.update(admin[ADMIN_USER].environment())
    env.update({"AWS_ENDPOINT_URL": deployment.aws.url, "AWS_REGION": deployment.stand_ins.region,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                # The CLI imports the repository's cloud_assembly package, as when run in the repository.
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))})
    result = subprocess.run([str(executable), "--project", project, "--stage", stage, *args], env=env,
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180, check=False)
    if result.returncode:
        raise ProbeFailed(f"airflow-ecs {' '.join(args[:3])} exited {result.returncode}: "
                          f"{(result.stderr or result.stdout)[-600:]}")
    return result.stdout.strip()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def store(deployment: "LocalDeployment") -> dict:
    """Step 1 of the module docstring; returns what was stored (the report's ``stored``) and the
    DAG run's ``conf``."""
    from airflow_ecs_ops.secrets import put

    environment = _scheduler_environment(deployment)
    project, stage = project_and_stage(environment)
    other_stage = "prod" if stage != "prod" else "dev"
    name = _dag_constant("NAME")
    own_queue = _dag_constant("TEAM_QUEUE")
    (other_queue,) = [queue for queue in TEAM_QUEUES if queue != own_queue]
    password = secrets.token_hex(12)
    connection = {"conn_type": "postgres", "host": "db.rehearsal.internal", "port": 5432, "login": "probe_user",
                  "schema": "probe_schema", "password_sha256": _sha256(password)}
    uri = f"postgres://probe_user:{password}@db.rehearsal.internal:5432/probe_schema"
    variable = f"probe-{secrets.token_hex(4)}"
    cli = [
        airflow_ecs(deployment, project, stage, "connections", "set", name, "--uri", uri),
        airflow_ecs(deployment, project, stage, "variables", "set", name, variable),
        airflow_ecs(deployment, project, other_stage, "connections", "set", name, "--uri",
                    f"postgres://other_user:{secrets.token_hex(12)}@db.other.internal:5432/other"),
    ]
    sm = deployment.aws.client("secretsmanager")
    team_secrets = {}
    for queue in (own_queue, other_queue):
        secret_name = f"{TEAM_QUEUES[queue]['secrets_prefixes'][0]}{TEAM_SECRET}"
        value = secrets.token_hex(12)
        put(sm, secret_name, value, f"rehearsal: a secret of team queue {queue}")
        team_secrets[queue] = {"name": secret_name, "arn": sm.describe_secret(SecretId=secret_name)["ARN"],
                               "sha256": _sha256(value)}
    other_secret = f"{project}/{other_stage}/connections/{name}"
    role = team_role(deployment, environment, own_queue)
    bucket = data_bucket(deployment, role, TEAM_QUEUES[own_queue]["s3_prefixes"][0])
    stored = {
        "connection": {"name": name, "expected": connection},
        "variable": {"name": name, "value": variable},
        "other_deployment_secret": {"name": other_secret, "arn": sm.describe_secret(SecretId=other_secret)["ARN"]},
        "team_queue": own_queue, "other_team_queue": other_queue, "team_task_role": role,
        "team_secrets": team_secrets, "bucket": bucket,
        "cli": cli,
    }
    conf = {"other_deployment_secret": other_secret, "bucket": bucket,
            "own_prefix": TEAM_QUEUES[own_queue]["s3_prefixes"][0],
            "other_prefix": TEAM_QUEUES[other_queue]["s3_prefixes"][0],
            "own_secret": team_secrets[own_queue]["name"], "other_secret": team_secrets[other_queue]["name"]}
    return {"stored": stored, "conf": conf}


def expected_denials(probe: dict) -> list[str]:
    """The IAM denials the probe must cause, as ``AwsStandIn.denials`` lines, sorted: the workers'
    principal refused the other deployment's secret; the team task's principal refused a write
    under the other team's prefix and the other team's secret.

    :param probe: the report's ``access_probe`` (its ``stored``, ``conf`` and ``worker_tasks``).
    :raises KeyError: the probe's tasks did not all run in an ECS task of the stand-in.
    """
    stored, conf, tasks = probe["stored"], probe["conf"], probe["worker_tasks"]
    worker, team = tasks["other_deployment"]["principal"], tasks["team"]["principal"]
    deny = "AccessDenied: {} is not authorized to perform {} on {}".format
    return sorted([
        deny(worker, "secretsmanager:GetSecretValue", stored["other_deployment_secret"]["arn"]),
        deny(team, "s3:PutObject", f"arn:aws:s3:::{conf['bucket']}/{conf['other_prefix']}{TEAM_OBJECT}"),
        deny(team, "secretsmanager:GetSecretValue", stored["team_secrets"][stored["other_team_queue"]]["arn"]),
    ])


def xcom_return(client: "RestClient", run_id: str, task_id: str) -> Any:
    """The task's return value (REST ``xcomEntries/return_value``; JSON text decoded), or
    ``"HTTP <status>: <body>"`` when the API has none."""
    status, body = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
    if status != 200:
        return f"HTTP {status}: {body[:300]}"
    value = json.loads(body).get("value")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def worker_tasks(deployment: "LocalDeployment", task_instances: list[dict]) -> dict[str, dict]:
    """``{Airflow task id: the ECS task that ran it}``: the stand-in's task id, its task definition
    family and task role, and the IAM principal its containers signed as; matched through the task
    instance id in the worker's command (the executor's workload)."""
    from local_ecs.start_overhead import workload_ti_id

    by_ti = {str(ti["id"]): ti["task_id"] for ti in task_instances if ti.get("id")}
    found = {}
    runner = deployment.runner
    for task in list(runner.finished) + list(runner.tasks.values()):
        for run in task.containers.values():
            task_id = by_ti.get(workload_ti_id(run.spec.command) or "")
            if task_id is not None and task.spec.task_role_arn:
                found[task_id] = {"ecs_task": task.task_id, "family": task.spec.family,
                                  "task_role": task.spec.task_role_arn,
                                  "principal": deployment.aws.principal_of_role(task.spec.task_role_arn).arn}
    return found


def run(deployment: "LocalDeployment", client: "RestClient", timeout: float) -> dict:
    """Steps 1-3 of the module docstring; returns the report's ``access_probe``.

    :raises ProbeFailed: a step could not be set up (the CLI failed, the team queue is not there).
    :raises TimeoutError: the run did not end within ``timeout`` seconds.
    """
    from local_ecs.scenario import wait_parsed

    started = time.monotonic()
    probe: dict[str, Any] = store(deployment)
    wait_parsed(client, DAG_ID, 300, deployment.check)
    run_id, state = client.trigger_and_wait(DAG_ID, timeout, deployment.check, conf=probe["conf"])
    instances = client.task_instances(DAG_ID, run_id)
    probe.update({
        "dag_run_id": run_id, "dag_run_state": state,
        "task_instances": {ti["task_id"]: ti["state"] for ti in instances},
        "returned": {ti["task_id"]: xcom_return(client, run_id, ti["task_id"]) for ti in instances},
        "worker_tasks": worker_tasks(deployment, instances),
        "seconds": round(time.monotonic() - started, 1),
    })
    try:
        probe["expected_iam_denials"] = expected_denials(probe)
    except KeyError as error:
        probe["expected_iam_denials"] = None
        probe["error"] = f"a probe task ran in no ECS task of the stand-in: {error}"
    return probe
