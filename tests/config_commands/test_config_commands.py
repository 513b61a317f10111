"""The _CMD helpers the containers run: the DB URL from the RDS secret's fields, and the fernet key."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from airflow_ecs_fargate.config_commands import MissingSettingError, fernet_key, sql_alchemy_conn

#: Characters a generated password may hold that break an unencoded URL.
HOSTILE_PASSWORD = "p@ss:w/rd%20#?&=+ x"
DB_ENV = {
    "DB_HOST": "db.abc.eu-west-1.rds.amazonaws.com",
    "DB_PORT": "5432",
    "DB_NAME": "airflow",
    "DB_USERNAME": "airflow",
    "DB_PASSWORD": HOSTILE_PASSWORD,
}


def test_password_with_url_characters_survives_the_round_trip():
    url = make_url(sql_alchemy_conn(DB_ENV))
    assert url.password == HOSTILE_PASSWORD
    assert (url.host, url.port, url.database, url.username) == (DB_ENV["DB_HOST"], 5432, "airflow", "airflow")
    assert url.query["sslmode"] == "require"
    assert url.drivername == "postgresql+psycopg2"


def test_missing_field_names_the_variable():
    env = {k: v for k, v in DB_ENV.items() if k != "DB_PASSWORD"}
    with pytest.raises(MissingSettingError, match="DB_PASSWORD is not set"):
        sql_alchemy_conn(env)


def test_generated_fernet_body_becomes_a_valid_key():
    # Secrets Manager without punctuation: letters and digits only, 43 of them.
    body = "Ab3" * 14 + "Z"
    key = fernet_key({"AIRFLOW_FERNET_KEY_BODY": body})
    token = Fernet(key.encode()).encrypt(b"connection password")
    assert Fernet(key.encode()).decrypt(token) == b"connection password"


def test_a_full_key_is_accepted_unchanged():
    key = Fernet.generate_key().decode()
    assert fernet_key({"AIRFLOW_FERNET_KEY_BODY": key}) == key


@pytest.mark.parametrize("body", ["short", "A" * 50])
def test_wrong_length_is_rejected(body):
    with pytest.raises(ValueError, match="Fernet key is 32 bytes|not url-safe base64"):
        fernet_key({"AIRFLOW_FERNET_KEY_BODY": body})


def test_airflow_reads_the_options_through_cmd(tmp_path):
    """The real Airflow config layer runs our commands for *_CMD options."""
    env = {
        **DB_ENV,
        "PATH": "/usr/bin:/bin",
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW_FERNET_KEY_BODY": "x" * 43,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": f"{sys.executable} -m airflow_ecs_fargate.config_commands sql_alchemy_conn",
        "AIRFLOW__CORE__FERNET_KEY_CMD": f"{sys.executable} -m airflow_ecs_fargate.config_commands fernet_key",
    }
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
    assert "AIRFLOW_FERNET_KEY_BODY is not set" in result.stderr
