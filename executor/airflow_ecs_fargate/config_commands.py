"""Commands that Airflow runs to read a sensitive option (``AIRFLOW__<SECTION>__<KEY>_CMD``).

ECS injects secrets as plain environment values; two options need more than a value:

- ``[database] sql_alchemy_conn``: built from the RDS secret's fields, injected as
  ``DB_HOST``, ``DB_PORT``, ``DB_NAME``, ``DB_USERNAME``, ``DB_PASSWORD``. The user name and
  password are URL-encoded, since a generated password may hold ``:`` ``%`` ``@`` ``/`` ``#``
  or ``?``; ``sslmode=require`` because the DB enforces TLS (``rds.force_ssl``).
- ``[database] sql_alchemy_conn_async``: the same DB for Airflow's asyncpg engine. Airflow
  derives it from the sync URL by swapping the driver and keeps ``sslmode``, which asyncpg's
  ``connect()`` rejects (``unexpected keyword argument 'sslmode'``); asyncpg names the same
  setting ``ssl`` with the same values (``require``: TLS only, no certificate check).
- ``[core] fernet_key``: Secrets Manager generates 43 letters and digits
  (``AIRFLOW_FERNET_KEY_BODY``); a Fernet key is the 44-character url-safe base64 form of 32
  bytes, so ``=`` is appended. 43 base64 characters carry 258 bits, of which the decoder keeps
  256.

Usage, as the CDK app sets it::

    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD="python -m airflow_ecs_fargate.config_commands sql_alchemy_conn"
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC_CMD="python -m airflow_ecs_fargate.config_commands sql_alchemy_conn_async"
    AIRFLOW__CORE__FERNET_KEY_CMD="python -m airflow_ecs_fargate.config_commands fernet_key"

Airflow reads ``_CMD`` variants only for options listed as sensitive in its config reference
(https://airflow.apache.org/docs/apache-airflow/stable/howto/set-config.html); all three are.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Mapping
from urllib.parse import quote


class MissingSettingError(KeyError):
    """Raised when an environment variable that a command needs is not set."""


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise MissingSettingError(
            f"{name} is not set; the task definition must inject it as an ECS secret"
        )
    return value


def _db_url(env: Mapping[str, str], driver: str, tls_parameter: str) -> str:
    user = quote(_require(env, "DB_USERNAME"), safe="")
    password = quote(_require(env, "DB_PASSWORD"), safe="")
    host = _require(env, "DB_HOST")
    port = env.get("DB_PORT") or "5432"
    name = quote(_require(env, "DB_NAME"), safe="")
    sslmode = env.get("DB_SSLMODE") or "require"
    return f"postgresql+{driver}://{user}:{password}@{host}:{port}/{name}?{tls_parameter}={sslmode}"


def sql_alchemy_conn(env: Mapping[str, str]) -> str:
    """Return the SQLAlchemy URL of the metadata DB.

    :param env: environment with ``DB_HOST``, ``DB_PORT`` (default 5432), ``DB_NAME``,
        ``DB_USERNAME``, ``DB_PASSWORD`` and optionally ``DB_SSLMODE`` (default ``require``).
    :returns: ``postgresql+psycopg2://<user>:<password>@<host>:<port>/<dbname>?sslmode=require`` with the
        user and password percent-encoded (RFC 3986 userinfo).
    :raises MissingSettingError: if a required variable is missing or empty.
    """
    return _db_url(env, "psycopg2", "sslmode")


def sql_alchemy_conn_async(env: Mapping[str, str]) -> str:
    """Return the SQLAlchemy URL of the metadata DB for Airflow's asyncpg engine.

    :param env: as for :func:`sql_alchemy_conn`; ``DB_SSLMODE`` takes libpq's values
        (``disable``, ``allow``, ``prefer``, ``require``, ``verify-ca``, ``verify-full``), which
        asyncpg accepts unchanged as ``ssl``.
    :returns: ``postgresql+asyncpg://<user>:<password>@<host>:<port>/<dbname>?ssl=require`` with
        the user and password percent-encoded. SQLAlchemy's asyncpg dialect passes every query
        parameter to ``asyncpg.connect()`` as a keyword; ``ssl`` is asyncpg's name for the TLS
        mode (``sslmode`` is a ``TypeError`` there).
    :raises MissingSettingError: if a required variable is missing or empty.
    """
    return _db_url(env, "asyncpg", "ssl")


def fernet_key(env: Mapping[str, str]) -> str:
    """Return the Fernet key made from ``AIRFLOW_FERNET_KEY_BODY``.

    :param env: environment with ``AIRFLOW_FERNET_KEY_BODY``: 43 url-safe base64 characters
        (the form Secrets Manager generates without punctuation), or a full 44-character key.
    :returns: a key that ``cryptography.fernet.Fernet`` accepts.
    :raises MissingSettingError: if the variable is missing or empty.
    :raises ValueError: if it does not decode to 32 bytes.
    """
    body = _require(env, "AIRFLOW_FERNET_KEY_BODY").strip()
    key = body if body.endswith("=") else body + "="
    try:
        decoded = base64.urlsafe_b64decode(key)
    except ValueError as err:
        raise ValueError(f"AIRFLOW_FERNET_KEY_BODY is not url-safe base64: {err}") from None
    if len(decoded) != 32:
        raise ValueError(
            f"AIRFLOW_FERNET_KEY_BODY decodes to {len(decoded)} bytes; a Fernet key is 32 bytes "
            "(43 base64 characters)"
        )
    return key


COMMANDS = {
    "sql_alchemy_conn": sql_alchemy_conn,
    "sql_alchemy_conn_async": sql_alchemy_conn_async,
    "fernet_key": fernet_key,
}


def main(argv: list[str]) -> int:
    """Print the value of the option named in ``argv[0]``; exit status 2 on bad usage or input."""
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(f"usage: python -m airflow_ecs_fargate.config_commands {{{'|'.join(COMMANDS)}}}", file=sys.stderr)
        return 2
    try:
        print(COMMANDS[argv[0]](os.environ))
    except (MissingSettingError, ValueError) as err:
        print(f"airflow_ecs_fargate.config_commands {argv[0]}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
