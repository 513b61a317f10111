"""Issue 16, trust model (docs/security.md, section 1): a DAG that prints its environment at parse
time and at run time finds none of the DB password, fernet key, JWT secret, API secret key or
admin password.

The environments are the synthesized containers' (dev): the dag-processor's and the worker's
``Environment`` from the template, and every ``Secrets`` entry injected with the secret's value,
as ECS does. Secrets Manager is moto's server holding a recognizable value per secret, so the
dag-processor's ``_CMD`` helpers really read the DB credentials and the fernet key. Then:

- parse time: Airflow 3.3.2's dag-processor code path, ``DagFileProcessorProcess.start`` (the
  manager's fork of a parsing child that runs ``_parse_file``), in a process with that
  environment, after it loaded the DB URL and fernet key through the ``_CMD`` helpers;
- run time: ``airflow dags test`` in a process with the worker's environment, which runs the task
  with the Task SDK's task runner (the harness adds only a SQLite metadata DB, which
  ``dags test`` needs and a worker does not have).

Each dump holds ``os.environ``, ``/proc/self/environ`` and the parent process's environment.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: Which secret a template reference names, by the construct ID in its logical ID
#: (``constructs_lib/airflow_settings.py`` creates them in the database stack).
SECRET_KINDS = {
    "MetadataDbInstanceSecret": "db",  # the DatabaseSecret and its SecretTargetAttachment
    "AirflowSecretsFernetKey": "fernet",
    "AirflowSecretsJwtSecret": "jwt",
    "AirflowSecretsApiSecretKey": "api",
    "AirflowSecretsAdminPassword": "admin",
}
REGION = "eu-west-1"  # the region of the secrets moto's server creates (conftest.SecretsManagerServer)

DAG = textwrap.dedent('''
    import json, os
    from pathlib import Path

    from airflow.sdk import dag, task

    OUT = Path(__file__).resolve().parent.parent


    def _dump(name):
        def read(path):
            try:
                with open(path, "rb") as f:
                    return f.read().decode(errors="replace")
            except OSError as err:
                return f"unreadable: {err}"

        (OUT / f"{name}-env.json").write_text(json.dumps({
            "environ": dict(os.environ),
            "proc_self_environ": read("/proc/self/environ"),
            "parent_environ": read(f"/proc/{os.getppid()}/environ"),
        }))


    _dump("parse")


    @dag(dag_id="trust_model_print_env", schedule=None)
    def trust_model_print_env():
        @task
        def print_env():
            _dump("run")

        print_env()


    trust_model_print_env()
''')

#: The dag-processor's manager, reduced to one file: load the configuration (the _CMD helpers
#: run), then start and serve the parsing child as DagFileProcessorManager._create_process does.
PARSE = textwrap.dedent('''
    import selectors, sys, time
    from pathlib import Path

    import structlog
    from sqlalchemy.engine import make_url
    from uuid6 import uuid7

    from airflow.configuration import conf
    from airflow.dag_processing.processor import DagFileProcessorProcess
    from airflow.sdk.api.client import Client

    folder = Path(sys.argv[1])
    # the values are in this process's memory (Airflow's configuration), as in the dag-processor
    print("db-password", make_url(conf.get("database", "sql_alchemy_conn")).password)
    print("fernet-key", conf.get("core", "fernet_key"))
    with open(folder.parent / "processor.log", "ab") as handle:
        proc = DagFileProcessorProcess.start(
            id=uuid7(), path=folder / "print_env.py", bundle_path=folder, bundle_name="dags-folder",
            dag_file_rel_path="print_env.py", callbacks=[], client=Client(base_url=None, token="", dry_run=True),
            selector=selectors.DefaultSelector(), logger=structlog.get_logger(), logger_filehandle=handle,
        )
        deadline = time.monotonic() + 180
        while proc._exit_code is None and time.monotonic() < deadline:
            proc._service_subprocess(1.0)
    result = proc.parsing_result
    print("parsed", result and [d.dag_id for d in result.serialized_dags], result and result.import_errors)
    sys.exit(proc._exit_code)
''')


def _kind(reference: object) -> str | None:
    text = json.dumps(reference)
    return next((kind for construct, kind in SECRET_KINDS.items() if construct in text), None)


def _resolve(value: object, arns: dict[str, str]) -> str:
    """A template value as the container gets it: a secret's reference becomes its ARN (in
    moto), other references a placeholder."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("Ref") == "AWS::Region":
        return REGION
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve(part, arns) for part in parts)
    kind = _kind(value)
    return arns[kind] if kind else f"resolved-{abs(hash(json.dumps(value, sort_keys=True)))}"


def container_environment(templates: dict[str, dict], task_definition: str, container: str,
                          values: dict[str, str], arns: dict[str, str]) -> dict[str, str]:
    """The environment ECS gives ``container`` of the task definition whose logical ID starts with
    ``task_definition``: its ``Environment``, and each ``Secrets`` entry with the secret's value
    (a JSON key's when ``ValueFrom`` names one)."""
    (definition,) = [
        c for t in templates.values() for lid, r in t["Resources"].items()
        if r["Type"] == "AWS::ECS::TaskDefinition" and lid.startswith(task_definition)
        for c in r["Properties"]["ContainerDefinitions"] if c["Name"] == container
    ]
    env = {e["Name"]: _resolve(e["Value"], arns) for e in definition.get("Environment", [])}
    for entry in definition.get("Secrets", []):
        kind = _kind(entry["ValueFrom"])
        assert kind, f"{container}: secret {entry['Name']} from an unknown secret {entry['ValueFrom']}"
        value = values[kind]
        key = _resolve(entry["ValueFrom"], arns).split(":")[7:8]  # arn:...:secret:name:json-key::
        env[entry["Name"]] = json.loads(value)[key[0]] if key and key[0] else value
    return env


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, dict]:
    from tests.cdk.conftest import synthesize

    return synthesize({}, tmp_path_factory.mktemp("trust-model-cdk")).templates()


@pytest.fixture(scope="module")
def planted(secrets_manager) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """``(sentinels, secret values, ARNs)`` per kind: each secret in moto holds a value no one
    could find by chance."""
    sentinels = {kind: f"{kind}{secrets.token_hex(12)}" for kind in set(SECRET_KINDS.values())}
    sentinels["fernet"] = secrets.token_urlsafe(32)[:43]  # a Fernet key's 43 characters (without "=")
    db = {"engine": "postgres", "host": "db.invalid", "port": 5432, "username": "airflow",
          "password": sentinels["db"], "dbname": "airflow"}
    values = {kind: sentinels[kind] for kind in sentinels} | {"db": json.dumps(db)}
    suffix = secrets.token_hex(4)
    arns = {kind: secrets_manager.create(f"trust-{kind}-{suffix}", value) for kind, value in values.items()}
    return sentinels, values, arns


def _harness(tmp_path: Path, secrets_manager, folder: Path) -> dict[str, str]:
    """What the test machine needs and a container has otherwise: the venv's ``python`` on PATH
    (the ``_CMD`` commands call ``python``), an AIRFLOW_HOME and TMPDIR, the DAG folder as the
    bundle, the Secrets Manager endpoint."""
    bundle = [{"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
               "kwargs": {"path": str(folder)}}]
    return {
        **secrets_manager.env,
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundle),
    }


def _dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "print_env.py").write_text(DAG)
    return folder


def _found(dump_file: Path, sentinels: dict[str, str]) -> dict[str, list[str]]:
    dump = json.loads(dump_file.read_text())
    text = {"environ": json.dumps(dump["environ"]), "/proc/self/environ": dump["proc_self_environ"],
            "parent's /proc/<pid>/environ": dump["parent_environ"]}
    assert not dump["parent_environ"].startswith("unreadable"), dump["parent_environ"]
    return {kind: [where for where, t in text.items() if value in t] for kind, value in sentinels.items()
            if any(value in t for t in text.values())}


def test_the_harness_injects_ecs_secrets_with_their_values(templates, planted):
    """The check can fail: the scheduler's container gets the JWT secret from ECS, and its
    environment as built here holds the JWT sentinel."""
    sentinels, values, arns = planted
    kinds = {_kind(lid) for t in templates.values() for lid, r in t["Resources"].items()
             if r["Type"] == "AWS::SecretsManager::Secret"}
    assert kinds == set(SECRET_KINDS.values()), "every secret of the templates is planted"
    scheduler = container_environment(templates, "SchedulerTaskDefinition", "scheduler", values, arns)
    assert scheduler["AIRFLOW__API_AUTH__JWT_SECRET"] == sentinels["jwt"]


def test_a_dag_parsed_by_the_dag_processor_finds_no_secret_in_its_environment(
        templates, planted, secrets_manager, tmp_path):
    sentinels, values, arns = planted
    folder = _dags(tmp_path)
    env = container_environment(templates, "DagProcessorTaskDefinition", "dag-processor", values, arns)
    assert env["AIRFLOW_DB_SECRET_ARN"] == arns["db"] and env["AIRFLOW_FERNET_KEY_SECRET_ARN"] == arns["fernet"]
    assert not {"DB_HOST", "DB_USERNAME", "DB_PASSWORD"} & set(env), "no raw DB_* fields"
    env |= _harness(tmp_path, secrets_manager, folder)
    (tmp_path / "parse.py").write_text(PARSE)
    result = subprocess.run([sys.executable, str(tmp_path / "parse.py"), str(folder)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # the process did read the DB password and the fernet key through the _CMD helpers ...
    assert f"db-password {sentinels['db']}" in result.stdout
    assert f"fernet-key {sentinels['fernet']}" in result.stdout
    assert "parsed ['trust_model_print_env'] {}" in result.stdout, result.stdout[-3000:]
    # ... and the DAG file, parsed in the dag-processor's child, finds none of them
    assert _found(tmp_path / "parse-env.json", sentinels) == {}


def test_a_task_run_with_the_workers_environment_finds_no_secret_in_it(templates, planted, secrets_manager, tmp_path):
    sentinels, values, arns = planted
    folder = _dags(tmp_path)
    env = container_environment(templates, "WorkersTaskDefinition", "worker", values, arns)
    assert not [name for name in env if name.endswith("_CMD") or name.startswith("DB_")]
    env |= _harness(tmp_path, secrets_manager, folder)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tmp_path / 'airflow.db'}"  # for `dags test` only
    airflow = str(Path(sys.executable).parent / "airflow")
    for command in ([airflow, "db", "migrate"], [airflow, "dags", "test", "trust_model_print_env"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "run-env.json").is_file(), "the task ran"
    assert _found(tmp_path / "run-env.json", sentinels) == {}
