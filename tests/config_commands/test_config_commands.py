"""The _CMD helpers the containers run: the DB URL from the RDS secret, and the fernet key, both
read from Secrets Manager by ARN (never from the container's environment)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from airflow_ecs_fargate.config_commands import (
    DB_SECRET_ARN_ENV,
    FERNET_KEY_SECRET_ARN_ENV,
    MissingSettingError,
    SecretReadError,
    fernet_key,
    read_secret,
    sql_alchemy_conn,
    sql_alchemy_conn_async,
)
from tests.config_commands.conftest import HOSTILE_PASSWORD, DB_ARN, FERNET_ARN, db_secret

DB_SECRET = {
    "host": "db.abc.eu-west-1.rds.amazonaws.com",
    "port": 5432,
    "dbname": "airflow",
    "username": "airflow",
    "password": HOSTILE_PASSWORD,
    "engine": "postgres",
}
DB_ENV = {DB_SECRET_ARN_ENV: DB_ARN}


def reader(secrets: dict[str, str]):
    """A SecretReader over ``secrets`` (ARN -> SecretString) that records what it was asked."""
    asked = []

    def read(arn: str) -> str:
        asked.append(arn)
        return secrets[arn]

    read.asked = asked
    return read


def test_password_with_url_characters_survives_the_round_trip():
    read = reader({DB_ARN: json.dumps(DB_SECRET)})
    url = make_url(sql_alchemy_conn(DB_ENV, read))
    assert read.asked == [DB_ARN]
    assert url.password == HOSTILE_PASSWORD
    assert (url.host, url.port, url.database, url.username) == (DB_SECRET["host"], 5432, "airflow", "airflow")
    assert url.query["sslmode"] == "require"
    assert url.drivername == "postgresql+psycopg2"


def test_missing_arn_names_the_variable():
    with pytest.raises(MissingSettingError, match=f"{DB_SECRET_ARN_ENV} is not set"):
        sql_alchemy_conn({}, reader({}))


def test_missing_field_names_the_field():
    secret = {k: v for k, v in DB_SECRET.items() if k != "password"}
    with pytest.raises(MissingSettingError, match="the DB secret has no password field"):
        sql_alchemy_conn(DB_ENV, reader({DB_ARN: json.dumps(secret)}))


def test_a_secret_that_is_not_json_is_refused_with_its_arn():
    with pytest.raises(ValueError, match=f"the secret {DB_ARN} is not JSON"):
        sql_alchemy_conn(DB_ENV, reader({DB_ARN: "plain"}))


def test_generated_fernet_body_becomes_a_valid_key():
    # Secrets Manager without punctuation: letters and digits only, 43 of them.
    body = "Ab3" * 14 + "Z"
    key = fernet_key({FERNET_KEY_SECRET_ARN_ENV: FERNET_ARN}, reader({FERNET_ARN: body}))
    token = Fernet(key.encode()).encrypt(b"connection password")
    assert Fernet(key.encode()).decrypt(token) == b"connection password"


def test_a_full_key_is_accepted_unchanged():
    key = Fernet.generate_key().decode()
    assert fernet_key({FERNET_KEY_SECRET_ARN_ENV: FERNET_ARN}, reader({FERNET_ARN: key})) == key


@pytest.mark.parametrize("body", ["short", "A" * 50])
def test_wrong_length_is_rejected(body):
    with pytest.raises(ValueError, match="Fernet key is 32 bytes|not url-safe base64"):
        fernet_key({FERNET_KEY_SECRET_ARN_ENV: FERNET_ARN}, reader({FERNET_ARN: body}))


def test_read_secret_refuses_what_is_not_a_secret_arn():
    with pytest.raises(SecretReadError, match="not a Secrets Manager secret ARN"):
        read_secret("arn:aws:s3:::bucket")


def test_read_secret_names_the_secret_and_the_permission_when_refused(secrets_manager):
    """Secrets Manager answers: the secret does not exist (what AccessDenied also looks like to
    the helper: a ClientError). The message says which secret and which permission."""
    missing = DB_ARN.replace("airflow-db", "no-such-secret")
    with pytest.raises(SecretReadError, match=f"cannot read {missing}.*secretsmanager:GetSecretValue"):
        read_secret(missing)


def test_airflow_reads_the_options_through_cmd_from_secrets_manager(tmp_path, secrets_manager):
    """The real Airflow config layer runs our commands for *_CMD options; they read the secrets
    from Secrets Manager (moto's server) by ARN: no value is in the environment."""
    db_arn = secrets_manager.create("airflow-db", json.dumps(DB_SECRET))
    fernet_arn = secrets_manager.create("airflow-fernet", "x" * 43)
    env = {
        **secrets_manager.env,
        "PATH": "/usr/bin:/bin",
        "AIRFLOW_HOME": str(tmp_path),
        DB_SECRET_ARN_ENV: db_arn,
        FERNET_KEY_SECRET_ARN_ENV: fernet_arn,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": f"{sys.executable} -m airflow_ecs_fargate.config_commands sql_alchemy_conn",
        "AIRFLOW__CORE__FERNET_KEY_CMD": f"{sys.executable} -m airflow_ecs_fargate.config_commands fernet_key",
    }
    assert HOSTILE_PASSWORD not in json.dumps(env) and "x" * 43 not in json.dumps(env)
    script = (
        "from airflow.configuration import conf;"
        "print(conf.get('database','sql_alchemy_conn'));print(conf.get('core','fernet_key'))"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    url_line, key_line = [line for line in out.splitlines() if line.strip()][-2:]
    assert make_url(url_line).password == HOSTILE_PASSWORD
    assert key_line == "x" * 43 + "="


def test_cli_exits_2_with_a_message_on_bad_input():
    result = subprocess.run(
        [sys.executable, "-m", "airflow_ecs_fargate.config_commands", "fernet_key"],
        env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert f"{FERNET_KEY_SECRET_ARN_ENV} is not set" in result.stderr


# -- [database] sql_alchemy_conn_async -------------------------------------------------------------

#: Opens a session on Airflow's own async engine and asks the server whether it is TLS.
ASYNC_SESSION_SCRIPT = """
import asyncio
from sqlalchemy import text
from airflow import settings
if settings.AsyncSession is None:
    settings.configure_orm()
from airflow.utils.session import create_session_async

async def main():
    async with create_session_async() as session:
        row = await session.execute(text("select ssl from pg_stat_ssl where pid = pg_backend_pid()"))
        print("ASYNC_SSL", row.scalar())

print("ASYNC_URL", settings.SQL_ALCHEMY_CONN_ASYNC.split("@")[-1])
asyncio.run(main())
"""


def test_async_url_uses_asyncpg_with_its_own_tls_parameter():
    url = make_url(sql_alchemy_conn_async(DB_ENV, reader({DB_ARN: json.dumps(DB_SECRET)})))
    assert url.drivername == "postgresql+asyncpg"
    assert url.password == HOSTILE_PASSWORD
    assert dict(url.query) == {"ssl": "require"}


def test_async_url_is_accepted_by_the_asyncpg_dialect():
    # SQLAlchemy's asyncpg dialect hands every query parameter to asyncpg.connect() as a keyword.
    import inspect

    import asyncpg
    from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

    url = sql_alchemy_conn_async(DB_ENV, reader({DB_ARN: json.dumps(DB_SECRET)}))
    _, kwargs = PGDialect_asyncpg().create_connect_args(make_url(url))
    accepted = set(inspect.signature(asyncpg.connect).parameters)
    assert set(kwargs) <= accepted, set(kwargs) - accepted
    assert kwargs["ssl"] == "require" and kwargs["password"] == HOSTILE_PASSWORD


def _airflow_env(tmp_path, server, secrets_manager, with_async_cmd: bool) -> dict[str, str]:
    env = {
        **secrets_manager.env,
        DB_SECRET_ARN_ENV: secrets_manager.create(f"db-{tmp_path.name}", json.dumps(db_secret(server))),
        "PATH": "/usr/bin:/bin",
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": f"{sys.executable} -m airflow_ecs_fargate.config_commands sql_alchemy_conn",
    }
    if with_async_cmd:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC_CMD"] = (
            f"{sys.executable} -m airflow_ecs_fargate.config_commands sql_alchemy_conn_async"
        )
    return env


def test_airflow_async_engine_connects_over_tls_with_the_hostile_password(tmp_path, tls_postgres, secrets_manager):
    """Airflow's config layer runs the _CMD, its async engine opens a TLS session (asyncpg) to a
    server that rejects plain TCP, logging in with a password full of URL characters."""
    env = _airflow_env(tmp_path, tls_postgres, secrets_manager, with_async_cmd=True)
    result = subprocess.run([sys.executable, "-c", ASYNC_SESSION_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"ASYNC_URL 127.0.0.1:{tls_postgres.port}/airflow?ssl=require" in result.stdout
    assert "ASYNC_SSL True" in result.stdout


def test_without_the_async_command_airflow_derives_a_url_asyncpg_rejects(tmp_path, tls_postgres, secrets_manager):
    # The defect the command fixes: Airflow swaps the driver and keeps sslmode.
    env = _airflow_env(tmp_path, tls_postgres, secrets_manager, with_async_cmd=False)
    result = subprocess.run([sys.executable, "-c", ASYNC_SESSION_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "unexpected keyword argument 'sslmode'" in result.stderr
