"""Rehearsal only (``local_ecs/rehearsal_dags/``, never in ``dags/``): what a task may reach with
its task role, with IAM enforced by the rehearsal's AWS stand-in (docs/rehearsal.md, "Access
probe"; ``local_ecs/access_probe.py`` stores the secrets and triggers this DAG with its conf).

- ``connection_and_variable`` (default queue, the workers' task role): reads the connection and
  the variable the operations CLI stored in Secrets Manager, through Airflow's configured secrets
  backend, and returns what it read (the password as its SHA-256 only);
- ``other_deployment`` (default queue): asks Secrets Manager for another deployment's secret by
  its name, as DAG code could; returns whether it was allowed or denied;
- ``team`` (queue ``conf["team_queue"]``, a team queue: its own task definition family and task
  role): writes and reads under its own prefix of the data bucket and reads its own secret
  (allowed), then writes under another team's prefix and reads that team's secret (denied).

Each task returns what happened and succeeds either way: the rehearsal's test judges the returns
and the stand-in's record of IAM denials.
"""

import hashlib

import pendulum
from airflow.sdk import Connection, Variable, dag, get_current_context, task

#: The connection id and variable key the rehearsal stores (local_ecs/access_probe.py).
NAME = "rehearsal_probe"
#: The queue of the ``team`` task; the rehearsal's configuration declares it (TEAM_QUEUES).
TEAM_QUEUE = "team-a"


def _sha256(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text is not None else None


def _attempt(call) -> dict:
    """Run ``call()``: ``{"outcome": "allowed", "value": ...}`` or, when AWS refused it,
    ``{"outcome": "denied", "status": <HTTP status>, "code": <error code>}``."""
    from botocore.exceptions import ClientError

    try:
        return {"outcome": "allowed", "value": call()}
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code", "")
        return {"outcome": "denied" if status == 403 else "failed", "status": status, "code": code}


@dag(dag_id="access_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
     params={"other_deployment_secret": "", "bucket": "", "own_prefix": "", "other_prefix": "",
             "own_secret": "", "other_secret": ""})
def access_probe():
    @task
    def connection_and_variable() -> dict:
        connection = Connection.get(NAME)
        return {"conn_type": connection.conn_type, "host": connection.host, "port": connection.port,
                "login": connection.login, "schema": connection.schema,
                "password_sha256": _sha256(connection.password), "variable": Variable.get(NAME)}

    @task
    def other_deployment() -> dict:
        import boto3

        secret = get_current_context()["params"]["other_deployment_secret"]
        result = _attempt(lambda: boto3.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"])
        result.pop("value", None)  # never return another deployment's value, were it allowed
        return {"secret": secret, **result}

    @task(queue=TEAM_QUEUE)
    def team() -> dict:
        import boto3

        params = get_current_context()["params"]
        s3, secrets = boto3.client("s3"), boto3.client("secretsmanager")
        bucket, body = params["bucket"], b"written by the access probe"
        own_key, other_key = f"{params['own_prefix']}access-probe.txt", f"{params['other_prefix']}access-probe.txt"

        def write_and_read(key: str) -> str:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            return _sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())

        def secret(name: str) -> str:
            return _sha256(secrets.get_secret_value(SecretId=name)["SecretString"])

        return {
            "own_prefix": {"key": own_key, **_attempt(lambda: write_and_read(own_key))},
            "other_prefix": {"key": other_key, **_attempt(lambda: write_and_read(other_key))},
            "own_secret": {"name": params["own_secret"], **_attempt(lambda: secret(params["own_secret"]))},
            "other_secret": {"name": params["other_secret"], **_attempt(lambda: secret(params["other_secret"]))},
        }

    connection_and_variable()
    other_deployment()
    team()


access_probe()
