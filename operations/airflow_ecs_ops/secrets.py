"""``airflow-ecs connections|variables set|get|list|delete``: the deployment's connections and
variables in AWS Secrets Manager, where Airflow's ``[secrets] backend`` (the amazon provider's
``SecretsManagerBackend``, configured by ``constructs_lib/airflow_settings.py``) reads them.

Names: a connection ``<conn_id>`` is the secret ``<project>/<stage>/connections/<conn_id>``, a
variable ``<key>`` is ``<project>/<stage>/variables/<key>`` (the backend joins prefix and id with
``/``). A connection's value is what the backend accepts: an Airflow connection URI
(``postgres://user:pass@host:5432/db``) or a JSON object whose keys the backend maps to the
connection's fields (``conn_type``, ``login``, ``password``, ``host``, ``port``, ``schema``,
``extra``, and their aliases).

Values are never printed unless asked for (``get --show``); ``list`` prints names and dates only.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import click
from botocore.exceptions import BotoCoreError, ClientError

from airflow_ecs_ops.deployment import OpsError, aws_error
from cloud_assembly.names import secrets_prefix

#: Characters Secrets Manager allows in a secret name, and its length limit (CreateSecret, ``Name``:
#: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html).
NAME_CHARACTERS = re.compile(r"[A-Za-z0-9/_+=.@-]+")
NAME_RULE = "letters, digits and / _ + = . @ - only"
MAX_NAME_LENGTH = 512
#: Keys the provider's ``SecretsManagerBackend`` reads as the connection type of a JSON
#: connection (``_standardize_secret_keys`` in airflow/providers/amazon/aws/secrets/secrets_manager.py).
CONN_TYPE_KEYS = ("conn_type", "conn_id", "connection_type", "engine")
#: Days a deleted secret can be restored (``DeleteSecret`` default, 7-30).
RECOVERY_WINDOW_DAYS = 30
KINDS = {"connections": "connection", "variables": "variable"}


def secret_name(project: str, stage: str, kind: str, name: str) -> str:
    """Return the secret name of connection id or variable key ``name``.

    :raises OpsError: ``name`` is empty, has a character Secrets Manager refuses, starts or ends
        with ``/``, or makes the full name longer than 512 characters.
    """
    what = KINDS[kind]
    if not name:
        raise OpsError(f"The {what} name is empty: use {NAME_RULE}.")
    if not NAME_CHARACTERS.fullmatch(name):
        bad = "".join(sorted({c for c in name if not NAME_CHARACTERS.fullmatch(c)}))
        raise OpsError(
            f"The {what} name {name!r} has characters Secrets Manager refuses ({bad!r}): use {NAME_RULE}."
        )
    if name.startswith("/") or name.endswith("/") or "//" in name:
        raise OpsError(f"The {what} name {name!r} starts or ends with / or has //: Airflow would not find it.")
    full = f"{secrets_prefix(project, stage, kind)}/{name}"
    if len(full) > MAX_NAME_LENGTH:
        raise OpsError(
            f"The {what} name {name!r} makes the secret name {len(full)} characters long; Secrets Manager "
            f"allows {MAX_NAME_LENGTH}: use a shorter name."
        )
    return full


def connection_value(uri: str | None, json_text: str | None) -> str:
    """Return the secret string of a connection given as ``--uri`` or ``--json`` (one of the two).

    :raises OpsError: neither or both given; a URI without ``<type>://``; JSON that is not an
        object, or has no connection type key (:data:`CONN_TYPE_KEYS`), or an ``extra`` that is
        neither an object nor a JSON string.
    """
    if (uri is None) == (json_text is None):
        raise OpsError("Give the connection as --uri 'type://login:password@host:port/schema' or --json '{...}' (one).")
    if uri is not None:
        if not re.match(r"^[A-Za-z][A-Za-z0-9+._-]*://", uri):
            raise OpsError("--uri: an Airflow connection URI starts with the connection type, e.g. postgres://...")
        return uri
    assert json_text is not None  # exactly one of the two, checked above
    try:
        value: Any = json.loads(json_text)
    except ValueError as err:
        raise OpsError(f"--json: not valid JSON ({err}).") from err
    if not isinstance(value, dict):
        raise OpsError("--json: a connection is a JSON object, e.g. {\"conn_type\": \"postgres\", \"host\": \"db\"}.")
    if not any(value.get(key) for key in CONN_TYPE_KEYS):
        raise OpsError(f"--json: name the connection type with one of the keys {', '.join(CONN_TYPE_KEYS)}.")
    extra = value.get("extra")
    if extra is not None and not isinstance(extra, dict):
        try:
            parsed = json.loads(extra) if isinstance(extra, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise OpsError("--json: extra must be a JSON object (or a string holding one).")
    return json.dumps(value, separators=(",", ":"))


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def put(client, name: str, value: str, description: str) -> str:
    """Create the secret ``name`` with ``value``, or store ``value`` as its new version; a secret
    scheduled for deletion (which refuses new values, and a new secret of its name) is restored
    first. Returns ``created``, ``updated`` or ``restored``."""
    try:
        client.create_secret(Name=name, SecretString=value, Description=description)
        return "created"
    except ClientError as err:
        if _code(err) not in ("ResourceExistsException", "InvalidRequestException"):
            raise
    result = "updated"
    if client.describe_secret(SecretId=name).get("DeletedDate"):
        client.restore_secret(SecretId=name)
        result = "restored"
    client.put_secret_value(SecretId=name, SecretString=value)
    return result


def names(client, name_prefix: str) -> list[tuple[str, Any]]:
    """Return ``(name after the prefix, last changed date)`` of the secrets under ``name_prefix/``,
    sorted, without the ones scheduled for deletion."""
    found = []
    paginator = client.get_paginator("list_secrets")
    for page in paginator.paginate(Filters=[{"Key": "name", "Values": [f"{name_prefix}/"]}]):
        for secret in page.get("SecretList", []):
            full = secret["Name"]
            if full.startswith(f"{name_prefix}/") and not secret.get("DeletedDate"):
                found.append((full[len(name_prefix) + 1:], secret.get("LastChangedDate") or secret.get("CreatedDate")))
    return sorted(found, key=lambda item: item[0])


def _not_found(kind: str, name: str, name_prefix: str) -> OpsError:
    return OpsError(f"No {KINDS[kind]} {name!r} (secret {name_prefix}/{name}): list them with airflow-ecs {kind} list.")


def commands(context: Callable[[click.Context], Any]) -> list[click.Group]:
    """Return the ``connections`` and ``variables`` command groups.

    :param context: click context -> the CLI's ``Ctx`` (``project``, ``stage``, ``client(name)``).
    """
    groups = []
    for kind in ("connections", "variables"):
        groups.append(_group(kind, context))
    return groups


#: A request on one secret: (Secrets Manager client, the secret's full name) -> the response.
_Request = Callable[[Any, str], Any]
#: Runs a request on the secret of NAME: (click context, what it does, NAME, request) ->
#: (the response, the secret's full name); an AWS error names what was asked.
_Call = Callable[[click.Context, str, str, _Request], "tuple[Any, str]"]


def _group(kind: str, context: Callable[[click.Context], Any]) -> click.Group:
    """The ``connections`` or ``variables`` group (``kind``): set, get, list, delete."""
    what = KINDS[kind]

    @click.group(name=kind, help=f"The deployment's {kind} in AWS Secrets Manager (<project>/<stage>/{kind}/<name>).")
    def group() -> None:
        pass

    def resolve(click_ctx: click.Context, name: str | None = None):
        ctx = context(click_ctx.find_root())
        name_prefix = secrets_prefix(ctx.project, ctx.stage, kind)
        full = secret_name(ctx.project, ctx.stage, kind, name) if name is not None else None
        return ctx.client("secretsmanager"), name_prefix, full

    def guarded(action: str, name: str | None, name_prefix: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ClientError as err:
            if _code(err) == "ResourceNotFoundException" and name is not None:
                raise _not_found(kind, name, name_prefix) from err
            raise aws_error(err, f"{action} {what} {name}" if name else f"{action} {kind}") from err
        except BotoCoreError as err:
            raise aws_error(err, f"{action} {what} {name}" if name else f"{action} {kind}") from err

    def call(click_ctx: click.Context, action: str, name: str, request: _Request) -> tuple[Any, str]:
        client, name_prefix, full = resolve(click_ctx, name)
        return guarded(action, name, name_prefix, lambda: request(client, full)), full

    (_add_set_connection if kind == "connections" else _add_set_variable)(group, call)

    @group.command(name="get")
    @click.argument("name")
    @click.option("--show", is_flag=True, help="Print the value (hidden otherwise).")
    @click.pass_context
    def get(click_ctx: click.Context, name: str, show: bool) -> None:
        """Show NAME's secret and when it last changed; its value only with --show."""
        response, full = call(click_ctx, "reading", name, lambda client, full: client.get_secret_value(SecretId=full))
        if show:
            click.echo(response.get("SecretString", ""))
            return
        click.echo(f"{what} {name}: secret {full}, version created {response.get('CreatedDate')}; "
                   "value hidden (use --show)")

    @group.command(name="list")
    @click.pass_context
    def list_(click_ctx: click.Context) -> None:
        """List the names and last-changed dates (never the values)."""
        client, name_prefix, _ = resolve(click_ctx)
        found = guarded("listing", None, name_prefix, lambda: names(client, name_prefix))
        if not found:
            click.echo(f"no {kind} under {name_prefix}/")
        for name, changed in found:
            click.echo(f"{name}\t{changed}")

    @group.command(name="delete")
    @click.argument("name")
    @click.option("--force", is_flag=True, help="Delete at once, without the 30-day recovery window.")
    @click.pass_context
    def delete(click_ctx: click.Context, name: str, force: bool) -> None:
        """Delete NAME (restorable for 30 days unless --force; `set` restores it)."""
        options: dict[str, Any] = (
            {"ForceDeleteWithoutRecovery": True} if force else {"RecoveryWindowInDays": RECOVERY_WINDOW_DAYS})
        _, full = call(click_ctx, "deleting", name, lambda client, full: client.delete_secret(SecretId=full, **options))
        click.echo(f"deleted {what} {name} ({full})" + ("" if force else f"; restorable for {RECOVERY_WINDOW_DAYS} days"))

    return group


def _add_set_connection(group: click.Group, call: _Call) -> None:
    """``connections set CONN_ID --uri|--json``."""

    @group.command(name="set")
    @click.argument("conn_id")
    @click.option("--uri", default=None, help="An Airflow connection URI, e.g. postgres://user:pass@host:5432/db.")
    @click.option("--json", "json_text", default=None, help="A JSON object: conn_type, host, login, password, port, schema, extra.")
    @click.pass_context
    def set_connection(click_ctx: click.Context, conn_id: str, uri: str | None, json_text: str | None) -> None:
        """Create or update connection CONN_ID."""
        value = connection_value(uri, json_text)
        result, full = call(click_ctx, "setting", conn_id,
                            lambda client, full: put(client, full, value, f"Airflow connection {conn_id}"))
        click.echo(f"{result} connection {conn_id} ({full})")


def _add_set_variable(group: click.Group, call: _Call) -> None:
    """``variables set KEY VALUE``."""

    @group.command(name="set")
    @click.argument("key")
    @click.argument("value")
    @click.pass_context
    def set_variable(click_ctx: click.Context, key: str, value: str) -> None:
        """Create or update variable KEY with VALUE (a string; JSON for Variable.get(deserialize_json=True))."""
        result, full = call(click_ctx, "setting", key, lambda client, full: put(client, full, value, f"Airflow variable {key}"))
        click.echo(f"{result} variable {key} ({full})")
