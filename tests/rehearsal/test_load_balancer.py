"""The load balancer stand-in plays the synthesized listener's rules (no containers needed)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from local_ecs.assembly import CloudAssembly
from local_ecs.load_balancer import (ListenerStandIn, Rule, UnsupportedListener, https_domain, listener_rules,
                                      redirect_location)
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


# -- the Execution API however a client spells its path ---------------------------------------

#: Spellings of the Execution API's health route as raw request targets: plain, percent-encoded
#: letters, an encoded slash, another case, extra slashes and dot segments, double encoding.
SPELLINGS = [
    "/execution/health",
    "/%65xecution/health",
    "/%65%78%65%63%75%74%69%6F%6E/health",
    "/%65%78%65%63%75%74%69%6f%6e/health",
    "/execution%2Fhealth",
    "/execution%2fhealth",
    "/EXECUTION/health",
    "/Execution/health",
    "//execution/health",
    "/%2Fexecution/health",
    "/./execution/health",
    "/execution/./health",
    "/execution//health",
    "/%2565xecution/health",
]


@pytest.fixture(scope="module")
def airflow_execution_api():
    """Airflow 3.3.2's own Execution API app (``create_app(apps="execution")``, mounted at
    ``/execution`` as the api-server mounts it) behind uvicorn, which percent-decodes the path
    before routing as in the api-server. Returns ``raw path -> True`` when the request reached
    the Execution API's health route."""
    import time

    import uvicorn

    from airflow.api_fastapi.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(apps="execution"), host="127.0.0.1", port=port,
                                           log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)

    def reaches(raw_path: str, timeout: float = 10) -> bool:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", raw_path)  # http.client sends the target as given
            response = connection.getresponse()
            return response.status == 200 and response.read() == b'{"status":"healthy"}'
        finally:
            connection.close()

    reaches("/execution/health", timeout=120)  # the first request initializes the app (about 11 s)
    yield reaches
    server.should_exit = True
    thread.join(timeout=10)


def test_every_spelling_that_reaches_the_execution_api_is_refused_by_the_listener(assembly, airflow_execution_api):
    rules, _ = listener_rules(assembly)
    reached = [raw for raw in SPELLINGS if airflow_execution_api(raw)]
    # the probe is live: uvicorn decodes before routing, so encoded letters and slashes get through
    assert {"/execution/health", "/%65xecution/health", "/execution%2Fhealth"} <= set(reached), reached
    for raw in reached:
        rule = next(r for r in rules if r.matches(raw))
        assert rule.fixed is not None and rule.fixed[0] == 403, f"{raw} reaches the Execution API through rule {rule}"
    # and the UI's paths still go to the api-server
    for path in ("/", "/api/v2/dags", "/auth/login/", "/dags/execution/grid", "/executions", "/ui/config"):
        assert next(r for r in rules if r.matches(path)).fixed is None, path


def test_the_stand_in_refuses_an_encoded_execution_path_with_the_templates_regex(assembly):
    target = _Target()
    port = free_port()
    rules, _ = listener_rules(assembly)
    stand_in = ListenerStandIn(rules, port, f"127.0.0.1:{target.server.server_address[1]}")
    stand_in.start()
    try:
        import http.client

        statuses = {}
        for raw in ("/%65xecution/health", "/execution%2Fhealth", "//execution/health", "/api/v2/version"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", raw)
            statuses[raw] = connection.getresponse().status
            connection.close()
        assert statuses == {"/%65xecution/health": 403, "/execution%2Fhealth": 403, "//execution/health": 403,
                            "/api/v2/version": 200}
        # the encoded spellings meet the regex rule (http.server folds the leading "//" itself)
        assert [a[3] for a in stand_in.answered[:2]] == ["rule 2", "rule 2"]
    finally:
        stand_in.stop()
        target.server.shutdown()


# -- with domain_name: the HTTPS listener and port 80's redirect --------------------------------

DOMAIN = "airflow.rehearsal.test"


@pytest.fixture(scope="module")
def domain_assembly(tmp_path_factory):
    from local_ecs.synth import synthesize

    return CloudAssembly(synthesize({"domain_name": DOMAIN, "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
                                     "hosted_zone_name": "rehearsal.test"}, tmp_path_factory.mktemp("cdk-out-domain")))


def test_the_https_listener_is_the_uis_with_a_domain_and_port_80_redirects(assembly, domain_assembly):
    assert https_domain(assembly) is None  # no domain: the HTTP listener is the UI's
    assert https_domain(domain_assembly) == DOMAIN
    rules, target_port = listener_rules(domain_assembly, 443)
    assert target_port == 8080 and rules[0].fixed is not None and rules[0].fixed[0] == 403
    assert rules[-1].fixed is None and rules[-1].redirect is None  # forward
    http_rules, _ = listener_rules(domain_assembly, 80)
    assert http_rules[0].fixed is not None  # the Execution API is refused on port 80 too
    assert dict(http_rules[-1].redirect or ()) == {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"}


def test_a_redirect_fills_albs_keywords_from_the_request():
    config = {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"}
    assert redirect_location(config, "http", DOMAIN, 80, "/dags/x", "a=1") == f"https://{DOMAIN}:443/dags/x?a=1"
    assert redirect_location(config, "http", DOMAIN, 80, "/", "") == f"https://{DOMAIN}:443/"
    custom = {"Protocol": "#{protocol}", "Host": "ui.#{host}", "Path": "/new/#{path}", "Query": "from=#{port}"}
    assert redirect_location(custom, "HTTP", DOMAIN, 80, "/a", "q=2") == f"http://ui.{DOMAIN}:80/new/a?from=80"


def test_the_https_stand_in_serves_the_domains_certificate_and_port_80_redirects(domain_assembly, tmp_path):
    import http.client
    import ssl

    from standins.tls import self_signed_certificate

    target = _Target()
    target_address = f"127.0.0.1:{target.server.server_address[1]}"
    tls = self_signed_certificate(tmp_path, DOMAIN, "load-balancer")
    https_port, http_port = free_port(), free_port()
    https = ListenerStandIn(listener_rules(domain_assembly, 443)[0], https_port, target_address, tls=tls)
    redirect = ListenerStandIn(listener_rules(domain_assembly, 80)[0], http_port, target_address)
    https.start()
    redirect.start()
    try:
        trusted = ssl.create_default_context(cafile=str(tls[0]))
        with urllib.request.urlopen(f"https://127.0.0.1:{https_port}/api/v2/version", timeout=10,
                                    context=trusted) as response:
            assert response.read().decode() == "target saw /api/v2/version from 127.0.0.1"
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(f"https://127.0.0.1:{https_port}/", timeout=10)  # the system's CAs only
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(f"https://127.0.0.1:{https_port}/execution/health", timeout=10, context=trusted)
        connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        connection.request("GET", "/dags?tags=a", headers={"Host": DOMAIN})
        response = connection.getresponse()
        assert (response.status, response.getheader("Location")) == (301, f"https://{DOMAIN}:443/dags?tags=a")
        connection.close()
    finally:
        https.stop()
        redirect.stop()
        target.server.shutdown()
