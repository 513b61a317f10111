"""A PostgreSQL server that accepts TLS connections only, like RDS with ``rds.force_ssl=1``."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Characters a generated password may hold that break an unencoded URL.
HOSTILE_PASSWORD = "p@ss:w/rd%20#?&=+ x"


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.fail(f"PostgreSQL's {name} not found: run `bash scripts/ensure-postgres.sh` first")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    data = root / "data"
    data.mkdir(mode=0o700)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(*args: str) -> None:
        result = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    if as_user:
        shutil.chown(data, "postgres", "postgres")
    run(_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-days", "1", "-nodes", "-subj", "/CN=localhost",
         "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")],
        check=True, capture_output=True,
    )
    (data / "server.key").chmod(0o600)
    if as_user:
        for f in ("server.key", "server.crt"):
            shutil.chown(data / f, "postgres", "postgres")
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        "hostnossl all all 0.0.0.0/0 reject\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
    )
    port = _free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c ssl=on -c fsync=off"
    run(_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "server.log"), "-w", "-t", "60", "start")
    try:
        import psycopg2

        conn = psycopg2.connect(host=str(data), port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE ROLE airflow LOGIN PASSWORD %s", (HOSTILE_PASSWORD,))
            cur.execute("CREATE DATABASE airflow OWNER airflow")
        conn.close()
        yield TlsPostgres("127.0.0.1", port, "airflow", HOSTILE_PASSWORD, "airflow")
    finally:
        with contextlib.suppress(Exception):
            run(_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
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

    port = _free_port()
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



