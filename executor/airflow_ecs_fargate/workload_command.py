"""A compact container command for workloads too big to pass inline, and its decoder.

Airflow 3 passes the whole serialized workload (its JWT included) in the container command:
``python -m airflow.sdk.execution_time.execute_workload --json-string '<json>'``. RunTask caps
``overrides`` at 8,192 characters, JSON formatting included
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskOverride.html), and every ``"``
of the embedded JSON costs two characters there (``\\"``). When the inline form does not fit, the
executor sends::

    python -m airflow_ecs_fargate.workload_command --zjson <base64url(zlib(json))>

and this module (installed in the worker image with the executor package) decodes it and runs the
same ``execute_workload`` entry point with the same JSON. Measured sizes: executor/README.md,
"Command size".
"""

from __future__ import annotations

import base64
import json
import sys
import zlib

#: RunTask's limit on the JSON of ``overrides`` (characters).
OVERRIDES_MAX_CHARS = 8192
INLINE_FLAG = "--json-string"
COMPACT_FLAG = "--zjson"
MODULE = "airflow_ecs_fargate.workload_command"


def encode(workload_json: str) -> str:
    """zlib-compress and base64url-encode a workload's JSON (no padding characters)."""
    return base64.urlsafe_b64encode(zlib.compress(workload_json.encode(), 9)).decode().rstrip("=")


def decode(text: str) -> str:
    """Inverse of :func:`encode`.

    :raises ValueError: not base64url, or not zlib data.
    """
    try:
        return zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))).decode()
    except (zlib.error, ValueError) as e:
        raise ValueError(f"not a compact workload ({e})") from e


def compact_command(inline_command: list[str]) -> list[str]:
    """The compact form of an ``execute_workload --json-string`` command (other commands unchanged)."""
    if INLINE_FLAG not in inline_command:
        return list(inline_command)
    workload_json = inline_command[inline_command.index(INLINE_FLAG) + 1]
    return ["python", "-m", MODULE, COMPACT_FLAG, encode(workload_json)]


def workload_json(command: list[str]) -> str | None:
    """The workload JSON a container command carries, in either form; None if it carries none."""
    for flag, transform in ((INLINE_FLAG, lambda s: s), (COMPACT_FLAG, decode)):
        if flag in command:
            try:
                return transform(command[command.index(flag) + 1])
            except (IndexError, ValueError):
                return None
    return None


def overrides_chars(overrides: dict) -> int:
    """Characters of ``overrides`` as botocore sends them (compact separators, ASCII escapes)."""
    return len(json.dumps(overrides, separators=(",", ":")))


def main(argv: list[str] | None = None) -> None:
    """Decode ``--zjson`` and run ``airflow.sdk.execution_time.execute_workload`` with the JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != COMPACT_FLAG:
        sys.exit(f"usage: python -m {MODULE} {COMPACT_FLAG} <base64url(zlib(workload json))>")
    try:
        text = decode(args[1])
    except ValueError as e:
        sys.exit(f"{MODULE}: {e}")
    from airflow.sdk.execution_time import execute_workload

    sys.argv = [f"{MODULE}", INLINE_FLAG, text]
    execute_workload.main()


if __name__ == "__main__":
    main()
