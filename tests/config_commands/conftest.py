"""A PostgreSQL server that accepts TLS connections only, like RDS with ``rds.force_ssl=1``."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from standins.postgres import TlsOnlyPostgres, free_port

#: Characters a generated password may hold that break an unencoded URL.
HOSTILE_PASSWORD = "p@ss:w/rd%20#?&=+ x"


@dataclass
class TlsPostgres:
    host: str
    port: int
    user: str
    password: str
    dbname: str


@pytest.fixture(scope="session")
def tls_postgres():
    """A server on 127.0.0.1 whose pg_hba.conf rejects every non-TLS TCP connection, with a
    login ``airflow`` whose password is :data:`HOSTILE_PASSWORD` (SCRAM)."""
    root = Path(tempfile.mkdtemp(prefix="tls-pg-"))
    root.chmod(0o755)  # the postgres OS user must reach its data directory inside
    server = TlsOnlyPostgres(root / "pg")
    try:
        server.start("airflow", HOSTILE_PASSWORD, "airflow")
        yield TlsPostgres("127.0.0.1", server.port, "airflow", HOSTILE_PASSWORD, "airflow")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


#: Placeholder ARNs (the AWS docs' account) for tests that read no real secret.
DB_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:airflow-db-AbCdEf"
FERNET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:airflow-fernet-AbCdEf"


def db_secret(server: TlsPostgres) -> dict:
    """The RDS secret's fields (as RDS writes them), pointing at ``server``."""
    return {
        "host": server.host,
        "port": server.port,
        "dbname": server.dbname,
        "username": server.user,
        "password": server.password,
        "engine": "postgres",
    }


@dataclass
class SecretsManagerServer:
    """moto's server playing Secrets Manager for the helper subprocesses.

    :ivar env: what a subprocess needs to reach it (endpoint, region, placeholder keys).
    """

    env: dict[str, str]

    def create(self, name: str, value: str) -> str:
        """Create the secret ``name`` holding ``value``; return its ARN."""
        import boto3

        client = boto3.client(
            "secretsmanager",
            region_name="eu-west-1",
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        return client.create_secret(Name=name, SecretString=value)["ARN"]


@pytest.fixture(scope="session")
def secrets_manager():
    """A moto server on 127.0.0.1; the helpers reach it through ``AWS_ENDPOINT_URL`` (botocore),
    as they reach Secrets Manager in a task, with the region taken from the secret's ARN."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # read_secret called in this process (error-path test)
    try:
        yield SecretsManagerServer(env)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()



