"""Throwaway PostgreSQL servers on 127.0.0.1: the one launcher of the e2e tests, the executor's
config-command tests and the rehearsal.

The server runs from Debian's packages (``scripts/ensure-postgres.sh`` installs them) in a data
directory of the caller, as the ``postgres`` OS user when the caller is root (PostgreSQL refuses
to run as root), with durability off (a test database). The local socket lives inside the data
directory (mode 0700), so only the server's OS user (and root) reaches the ``postgres`` superuser.

- :class:`PostgresServer`: plain TCP, every local login trusted (the e2e tests).
- :class:`TlsOnlyPostgres`: as RDS enforces it for the metadata DB (``rds.force_ssl=1``): TLS on,
  plain TCP connections refused, a login with a password (SCRAM), with a self-signed certificate
  (``sslmode=require`` encrypts without verifying, as Airflow's URL asks).
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path

#: Server settings of a throwaway test database: durability off, room for the Airflow processes.
FAST_SETTINGS = "max_connections = 200\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"


class PostgresError(RuntimeError):
    """The server could not be set up; the message holds the command's output."""


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise PostgresError(f"PostgreSQL's {name} not found: run `bash scripts/ensure-postgres.sh` (or make postgres)")
    return found[-1]


def _self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class PostgresServer:
    """A PostgreSQL server on ``127.0.0.1:port`` that trusts every login (plain TCP).

    :param root: directory for the data directory ``pgdata`` (created).
    :param port: TCP port; default: a free one.
    :raises PostgresError: from :meth:`start`, when PostgreSQL is not installed or a command fails.
    """

    def __init__(self, root: Path, port: int | None = None):
        self.root = Path(root)
        self.data = self.root / "pgdata"
        self.port = port or free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> str:
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise PostgresError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _own(self, *paths: Path) -> None:
        if self.as_user:
            for path in paths:
                shutil.chown(path, "postgres", "postgres")

    def _configure(self) -> str:
        """Extra ``postgresql.conf`` lines; a subclass also rewrites ``pg_hba.conf`` here."""
        return ""

    def start(self) -> None:
        """Initialize the data directory, configure and start the server (waits until it accepts)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the postgres OS user must reach its data directory inside
        self.data.mkdir(mode=0o700)
        self._own(self.data)
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.data}'\n{FAST_SETTINGS}{self._configure()}")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-t", "60", "start")

    def psql(self, *commands: str) -> str:
        """Run SQL ``commands`` as the ``postgres`` superuser over the local socket; returns psql's output."""
        args = [arg for command in commands for arg in ("-c", command)]
        return self._run(_pg_bin("psql"), "-h", str(self.data), "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                         "-v", "ON_ERROR_STOP=1", *args)

    @contextlib.contextmanager
    def connect(self, dbname: str = "postgres"):
        """A psycopg2 connection (autocommit) as the ``postgres`` superuser over the local socket."""
        import psycopg2

        conn = psycopg2.connect(host=str(self.data), port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def query(self, sql: str, params=(), dbname: str = "postgres") -> list[tuple]:
        """Run one statement in ``dbname``; returns its rows (``[]`` for a statement without)."""
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

    def psql_rows(self, database: str, sql: str) -> list[list[str]]:
        """Run ``sql`` in ``database`` with psql as the superuser over the server's socket; rows of
        text columns (what psql prints), for callers without psycopg2."""
        out = self._run(_pg_bin("psql"), "-h", str(self.data), "-p", str(self.port), "-U", "postgres", "-d", database,
                        "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", "\t", "-c", sql)
        return [line.split("\t") for line in out.splitlines() if line]

    def dump(self, database: str, path: Path) -> int:
        """``pg_dump --format=custom`` of ``database`` to ``path`` (what ``pg_restore`` reads); returns its bytes.

        :raises PostgresError: pg_dump failed.
        """
        result = subprocess.run([*self.as_user, _pg_bin("pg_dump"), "-h", str(self.data), "-p", str(self.port),
                                 "-U", "postgres", "--format=custom", database], capture_output=True, timeout=600)
        if result.returncode:
            raise PostgresError(f"pg_dump failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
        Path(path).write_bytes(result.stdout)
        return len(result.stdout)

    def restore(self, database: str, owner: str, path: Path) -> None:
        """Replace ``database`` by the dump at ``path`` (dropped, created for ``owner``, ``pg_restore``).

        :raises PostgresError: a command failed.
        """
        self._run(_pg_bin("psql"), "-h", str(self.data), "-p", str(self.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                  "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                  "-c", f'CREATE DATABASE "{database}" OWNER "{owner}"')
        with open(path, "rb") as dump:
            result = subprocess.run([*self.as_user, _pg_bin("pg_restore"), "-h", str(self.data), "-p", str(self.port),
                                     "-U", "postgres", "-d", database, "--no-owner", "--role", owner, "--exit-on-error"],
                                    stdin=dump, capture_output=True, timeout=600)
        if result.returncode:
            raise PostgresError(f"pg_restore failed ({result.returncode}): {result.stderr.decode(errors='replace')}")

    def stop(self) -> None:
        """Stop the server (immediate); the data directory stays (its ``server.log`` too)."""
        if self.data.exists():
            with contextlib.suppress(Exception):
                self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")


class TlsOnlyPostgres(PostgresServer):
    """A PostgreSQL server on ``127.0.0.1:port`` accepting only TLS connections with a password.

    :param root: directory for the data directory (created, removed by :meth:`stop`).
    :param port: TCP port (what the DB secret's ``port`` says); default: a free one.
    """

    def _configure(self) -> str:
        cert, key = _self_signed(self.data, "127.0.0.1")
        self._own(cert, key)
        (self.data / "pg_hba.conf").write_text(
            "# TLS only, like RDS with rds.force_ssl=1; the local socket is inside the 0700 data directory\n"
            "local   all all                trust\n"
            "hostnossl all all 0.0.0.0/0    reject\n"
            "hostssl all all 127.0.0.1/32   scram-sha-256\n"
        )
        return f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\npassword_encryption = scram-sha-256\n"

    def start(self, username: str, password: str, database: str) -> None:  # type: ignore[override]
        """Start (see :class:`PostgresServer`) and create ``username`` (with ``password``) owning ``database``.

        :raises PostgresError: also for a password holding ``$pw$`` (the SQL quotes it with it).
        """
        # Dollar quoting keeps any character of a generated password literal.
        tag = "$pw$"
        if tag in password:
            raise PostgresError("the generated password contains $pw$")
        super().start()
        self.psql(f'CREATE ROLE "{username}" LOGIN PASSWORD {tag}{password}{tag}',
                  f'CREATE DATABASE "{database}" OWNER "{username}"')

    def connect_tcp(self, user: str, password: str, database: str, sslmode: str):
        """Open a psycopg2 connection over TCP (to prove what the server accepts)."""
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=user, password=password, dbname=database,
                                sslmode=sslmode, connect_timeout=10)

    def stop(self) -> None:
        """Stop the server (immediate) and remove its directory."""
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)
