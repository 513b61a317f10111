"""The rehearsal's REST client against a stand-in of Airflow's API: it signs in once, signs in
again when a token is refused (401), and triggers and waits for a run."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from local_ecs.rest import RestClient, RestError


class _Airflow:
    def __init__(self):
        self.logins = 0
        self.valid = set()
        self.polls = 0
        self.seen: list[tuple[str, str]] = []


@pytest.fixture
def airflow():
    state = _Airflow()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.seen.append((self.command, self.path))
            if self.path == "/auth/token":
                if body != {"username": "admin", "password": "pw"}:
                    return self._answer(401, {"detail": "Invalid credentials"})
                state.logins += 1
                token = f"t{state.logins}"
                state.valid = {token}
                return self._answer(201, {"access_token": token})
            if self.headers.get("Authorization", "").removeprefix("Bearer ") not in state.valid:
                return self._answer(401, {"detail": "expired"})
            if self.command == "PATCH":
                return self._answer(200, {"is_paused": False})
            if self.command == "POST" and self.path.endswith("/dagRuns"):
                return self._answer(200, {"dag_run_id": "manual__1"})
            if self.path.endswith("/dagRuns/manual__1"):
                state.polls += 1
                if state.polls == 2:  # the token expires mid-wait
                    state.valid = set()
                return self._answer(200, {"state": "success" if state.polls >= 3 else "running"})
            return self._answer(404, {"detail": "not found"})

        do_GET = do_POST = do_PATCH = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()


def test_trigger_and_wait_signs_in_again_when_the_token_is_refused(airflow):
    client = RestClient(airflow.url, "admin", "pw")
    run_id, state = client.trigger_and_wait("probe", timeout=30)
    assert (run_id, state) == ("manual__1", "success")
    assert airflow.logins == 2  # once at the start, once after the 401
    assert ("PATCH", "/api/v2/dags/probe") in airflow.seen  # unpaused before the trigger


def test_a_refused_login_names_the_user_and_the_status(airflow):
    with pytest.raises(RestError, match=r"login as admin at .*/auth/token answered 401"):
        RestClient(airflow.url, "admin", "wrong").get("/api/v2/dags/probe")


def test_waiting_gives_up_with_the_last_state(airflow):
    airflow.polls = -1000
    with pytest.raises(TimeoutError, match="last state running"):
        RestClient(airflow.url, "admin", "pw").wait_for_run("probe", "manual__1", timeout=0.5, interval=0.1)
