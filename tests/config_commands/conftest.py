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


def db_env(server: TlsPostgres) -> dict[str, str]:
    """The variables ECS injects from the RDS secret, pointing at ``server``."""
    return {
        "DB_HOST": server.host,
        "DB_PORT": str(server.port),
        "DB_NAME": server.dbname,
        "DB_USERNAME": server.user,
        "DB_PASSWORD": server.password,
    }



