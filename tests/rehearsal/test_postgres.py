"""The stand-in for RDS with rds.force_ssl=1: TLS connections with the secret's password work,
plain ones are refused, and the password may hold any character the generator produces."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg2
import pytest

from local_ecs.aws import HOSTILE_PASSWORD_CHARS
from standins.postgres import TlsOnlyPostgres, free_port


@pytest.fixture()
def server():
    # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="local-ecs-pg-"))
    root.chmod(0o755)
    pg = TlsOnlyPostgres(root / "pg", free_port())
    yield pg
    pg.stop()
    root.rmdir()


def test_tls_only_with_a_hostile_password(server):
    password = f"a{HOSTILE_PASSWORD_CHARS}$b'c]"
    server.start("airflow", password, "airflow")
    with server.connect_tcp("airflow", password, "airflow", "require") as conn, conn.cursor() as cur:
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone() == (True,)
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        server.connect_tcp("airflow", password, "airflow", "disable")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        server.connect_tcp("airflow", "wrong", "airflow", "require")
