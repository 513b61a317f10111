"""The rehearsal's one client of Airflow's REST API: sign in once, sign in again when the token
expires, and the trigger-and-wait every scenario uses.

Airflow 3's public API takes a JWT from ``POST /auth/token`` (the auth manager's token endpoint,
FAB here) as ``Authorization: Bearer``; a token that expired or that another api-server signed
with a rotated key answers 401, and the client then signs in once more and repeats the request.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


class RestError(RuntimeError):
    """A REST call answered what the caller cannot go on with (message: method, path, status, body)."""


def tls_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """For ``https://`` URLs of the rehearsal: a client context that trusts the CA (PEM file) that
    signed the server's certificate (the load balancer stand-in's, whose certificate plays ACM's)
    instead of the system's CAs; None (the system's) without ``ca_file``."""
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file else None


def http(method: str, url: str, body: dict | None = None, token: str | None = None, timeout: float = 30,
         accept: str = "application/json", context: ssl.SSLContext | None = None) -> tuple[int, str]:
    """One HTTP request; returns ``(status, body)``, status 0 when nothing answered (the error's text as body).

    :param context: for ``https://``, see :func:`tls_context`.
    """
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", accept)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error)


def sign_in(ui_url: str, username: str, password: str, context: ssl.SSLContext | None = None) -> str:
    """``POST /auth/token``; returns the access token (``context`` as for :func:`http`).

    :raises RestError: the login was refused or nothing answered (status and body in the message).
    """
    status, body = http("POST", f"{ui_url}/auth/token", {"username": username, "password": password},
                        context=context)
    if status not in (200, 201):
        raise RestError(f"login as {username} at {ui_url}/auth/token answered {status}: {body[:500]}")
    return json.loads(body)["access_token"]


class RestClient:
    """Airflow's REST API at ``ui_url`` as ``username``; signs in on first use and again on a 401.

    :param ui_url: the UI URL (the template's output, through the load balancer).
    :param ca_file: see :func:`tls_context` (an ``https://`` UI URL of the rehearsal).
    """

    def __init__(self, ui_url: str, username: str, password: str, ca_file: Path | None = None):
        self.ui_url, self.username, self.password = ui_url, username, password
        self.context = tls_context(ca_file)
        self.token: str | None = None

    def request(self, method: str, path: str, body: dict | None = None, *, timeout: float = 30,
                accept: str = "application/json") -> tuple[int, str]:
        """``(status, body)`` of ``method path`` (``path`` from ``/api/v2/...``), signed in."""
        if self.token is None:
            self.token = sign_in(self.ui_url, self.username, self.password, self.context)
        status, text = http(method, self.ui_url + path, body, self.token, timeout, accept, self.context)
        if status == 401:  # the token expired (or another api-server signed it): sign in again
            self.token = sign_in(self.ui_url, self.username, self.password, self.context)
            status, text = http(method, self.ui_url + path, body, self.token, timeout, accept, self.context)
        return status, text

    def get(self, path: str, **kwargs) -> tuple[int, str]:
        return self.request("GET", path, **kwargs)

    def json(self, path: str) -> dict:
        """GET ``path`` and return its JSON; :raises RestError: on any status but 200."""
        status, body = self.get(path)
        if status != 200:
            raise RestError(f"GET {path} answered {status}: {body[:300]}")
        return json.loads(body)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Unpause ``dag_id`` and trigger a run; returns its run ID.

        :raises RestError: unpausing or triggering was refused.
        """
        status, body = self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        if status != 200:
            raise RestError(f"unpausing {dag_id} answered {status}: {body[:300]}")
        status, body = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                                    {"logical_date": None, **({"conf": conf} if conf else {})})
        if status not in (200, 201):
            raise RestError(f"triggering {dag_id} answered {status}: {body[:300]}")
        return json.loads(body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The run's state, or None when the API did not answer 200 (e.g. the api-server is being replaced)."""
        status, body = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return json.loads(body).get("state") if status == 200 else None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """The run's task instances (REST ``taskInstances``: ``task_id``, ``map_index``, ``state``, ``try_number``...)."""
        return self.json(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").get("task_instances", [])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, check: Callable[[], None] | None = None,
                     interval: float = 2.0) -> str:
        """Wait until the run is ``success`` or ``failed``; returns that state.

        :param check: called every poll; may raise (a service task failed).
        :raises TimeoutError: the run had not ended after ``timeout`` seconds (the last state seen in the message).
        """
        deadline, state = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if check:
                check()
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for run {run_id} of {dag_id} (last state {state})")

    def trigger_and_wait(self, dag_id: str, timeout: float, check: Callable[[], None] | None = None,
                         conf: dict | None = None) -> tuple[str, str]:
        """Trigger ``dag_id`` and wait for its run to end; returns ``(run ID, final state)``."""
        run_id = self.trigger(dag_id, conf)
        return run_id, self.wait_for_run(dag_id, run_id, timeout, check)
