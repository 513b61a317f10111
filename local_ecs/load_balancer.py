"""A stand-in for the Application Load Balancer's HTTP listener: the template's listener rules
applied in front of the api-server, so the rehearsal reaches the UI the way a browser does.

:class:`ListenerStandIn` reads the ``AWS::ElasticLoadBalancingV2::Listener`` of the UI's port
and its ``ListenerRule`` resources from the cloud assembly and serves them on a local port:
rules in priority order, each with ``path-pattern`` conditions (ALB's wildcards: ``*`` any
characters, ``?`` one; case-sensitive; or ``RegexValues``, regular expressions) compared with the
path as the client sent it (not percent-decoded), and a ``fixed-response`` or ``forward`` action; the
listener's default action last. ``forward`` proxies to the target (the api-server's port on this
host). Anything else in the template (other conditions or actions) raises
:class:`UnsupportedListener`, so a template change the stand-in cannot play is seen, not skipped.

Responses are sent as HTTP/1.0 (each closes its connection), so a streamed body (the REST API's
``/wait``) passes through as it comes without re-chunking.
"""

from __future__ import annotations

import fnmatch
import http.client
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from local_ecs.assembly import CloudAssembly

#: Hop-by-hop headers a proxy must not pass on (RFC 9110, section 7.6.1).
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade"}


class UnsupportedListener(ValueError):
    """The template's listener uses a condition or action the stand-in does not play."""


@dataclass(frozen=True)
class Rule:
    """One listener rule: ``patterns`` (``path-pattern`` values) or ``regexes`` (its
    ``RegexValues``), both empty for the default action, and its action: ``fixed`` = (status,
    content type, body), or None to forward."""

    priority: int
    patterns: tuple[str, ...]
    fixed: tuple[int, str, str] | None = None
    regexes: tuple[str, ...] = ()

    def matches(self, path: str) -> bool:
        """Whether ``path`` (as sent, without the query string) meets the rule's condition."""
        if not self.patterns and not self.regexes:
            return True
        return (any(_path_matches(pattern, path) for pattern in self.patterns)
                or any(re.search(regex, path) is not None for regex in self.regexes))


def _path_matches(pattern: str, path: str) -> bool:
    """ALB's path pattern: ``*`` and ``?`` wildcards, case-sensitive, against the path without
    the query string."""
    return re.fullmatch(fnmatch.translate(pattern), path) is not None


def _action(action: dict) -> tuple[int, str, str] | None:
    if action["Type"] == "fixed-response":
        config = action.get("FixedResponseConfig", {})
        return int(config["StatusCode"]), config.get("ContentType", "text/plain"), config.get("MessageBody", "")
    if action["Type"] == "forward":
        return None
    raise UnsupportedListener(f"listener action {action['Type']!r} is not played by the stand-in")


def listener_rules(assembly: CloudAssembly, port: int = 80) -> tuple[list[Rule], int | None]:
    """Return the rules of the listener on ``port`` in evaluation order, its default action last,
    and the port of the target group its default action forwards to (None for a fixed response).

    :raises UnsupportedListener: no such listener, or a condition or action other than
        ``path-pattern``, ``fixed-response`` and ``forward``.
    """
    for stack in assembly.stacks.values():
        for logical_id, listener in stack.of_type("AWS::ElasticLoadBalancingV2::Listener").items():
            if listener["Properties"].get("Port") != port:
                continue
            rules = []
            for rule in stack.of_type("AWS::ElasticLoadBalancingV2::ListenerRule").values():
                properties = rule["Properties"]
                if properties["ListenerArn"] != {"Ref": logical_id}:
                    continue
                patterns: list[str] = []
                regexes: list[str] = []
                for condition in properties["Conditions"]:
                    if condition["Field"] != "path-pattern":
                        raise UnsupportedListener(f"listener condition {condition['Field']!r} is not played")
                    config = condition.get("PathPatternConfig", {})
                    patterns += config.get("Values", condition.get("Values", []))
                    regexes += config.get("RegexValues", [])
                (action,) = properties["Actions"]
                rules.append(Rule(int(properties["Priority"]), tuple(patterns), _action(action), tuple(regexes)))
            (default,) = listener["Properties"]["DefaultActions"]
            target_port = None
            if default["Type"] == "forward":
                target_group = stack.template["Resources"][default["TargetGroupArn"]["Ref"]]
                target_port = int(target_group["Properties"]["Port"])
            return sorted(rules, key=lambda r: r.priority) + [Rule(50_001, (), _action(default))], target_port
    raise UnsupportedListener(f"no load balancer listener on port {port} in the assembly")


class ListenerStandIn:
    """Serves ``rules`` on ``127.0.0.1:port``, forwarding to ``target`` (``host:port``).

    :ivar answered: ``(method, path, status, by)`` of every request, ``by`` = ``rule <priority>``
        or ``forward``.
    """

    def __init__(self, rules: list[Rule], port: int, target: str):
        self.rules = rules
        self.target = target
        self.answered: list[tuple[str, str, int, str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def _handle(self):
                path = self.path.split("?", 1)[0]
                rule = next(r for r in stand_in.rules if r.matches(path))
                if rule.fixed is not None:
                    status, content_type, body = rule.fixed
                    data = body.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    stand_in.answered.append((self.command, path, status, f"rule {rule.priority}"))
                    return
                stand_in.answered.append((self.command, path, stand_in._forward(self), "forward"))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="alb-stand-in", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _forward(self, handler: BaseHTTPRequestHandler) -> int:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["X-Forwarded-For"] = handler.client_address[0]
        headers["X-Forwarded-Proto"] = "http"
        connection = http.client.HTTPConnection(self.target, timeout=300)
        try:
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException):
            # As an ALB with no healthy target: 502 (the api-server not listening yet, or gone).
            connection.close()
            handler.send_error(502, "Bad Gateway")
            return 502
        try:
            handler.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    handler.send_header(name, value)
            handler.end_headers()
            while chunk := response.read1(65536) if handler.command != "HEAD" else b"":
                handler.wfile.write(chunk)
                handler.wfile.flush()
        except (OSError, http.client.HTTPException):
            pass  # the client or the target went away mid-response: the connection just ends
        finally:
            connection.close()
        return response.status
