"""The load balancer stand-in plays the synthesized listener's rules (no containers needed)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from local_ecs.assembly import CloudAssembly
from local_ecs.load_balancer import ListenerStandIn, Rule, UnsupportedListener, listener_rules
from standins.postgres import free_port


@pytest.fixture(scope="module")
def assembly(cdk_out):
    return CloudAssembly(cdk_out("default"))


def test_the_execution_api_rule_comes_before_the_default_forward(assembly):
    rules, target_port = listener_rules(assembly)
    assert target_port == 8080
    first, default = rules[0], rules[-1]
    assert first.fixed is not None and first.fixed[0] == 403
    assert first.matches("/execution/task-instances/x/run") and first.matches("/execution")
    assert not first.matches("/executions") and not first.matches("/api/v2/dags")
    assert default.patterns == () and default.fixed is None  # forward to the api-server


def test_a_listener_the_stand_in_cannot_play_is_refused(assembly):
    with pytest.raises(UnsupportedListener, match="no load balancer listener on port 81"):
        listener_rules(assembly, port=81)


class _Target:
    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = f"target saw {self.path} from {self.headers.get('X-Forwarded-For')}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_fixed_responses_are_answered_and_the_rest_is_forwarded():
    target = _Target()
    port = free_port()
    rules = [Rule(1, ("/execution", "/execution/*"), (403, "text/plain", "inside only")), Rule(50_001, ())]
    stand_in = ListenerStandIn(rules, port, f"127.0.0.1:{target.server.server_address[1]}")
    stand_in.start()
    try:
        assert _get(f"http://127.0.0.1:{port}/execution/health") == (403, "inside only")
        assert _get(f"http://127.0.0.1:{port}/api/v2/version?x=1") == (200, "target saw /api/v2/version?x=1 from 127.0.0.1")
        assert [a[2:] for a in stand_in.answered] == [(403, "rule 1"), (200, "forward")]
    finally:
        stand_in.stop()
        target.server.shutdown()
    assert _get_refused(f"http://127.0.0.1:{port}/")  # stopped: nothing listens any more


def _get_refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError:
        return False
    except OSError:
        return True
    return False
