"""A stand-in for the Application Load Balancer's UI listener: the template's listener rules
applied in front of the api-server, so the rehearsal reaches the UI the way a browser does.

:class:`ListenerStandIn` reads an ``AWS::ElasticLoadBalancingV2::Listener`` (the UI's: port 443
when the template has an HTTPS listener, i.e. with ``domain_name``, else port 80) and its
``ListenerRule`` resources from the cloud assembly and serves them on a local port: rules in
priority order, each with ``path-pattern`` conditions (ALB's wildcards: ``*`` any characters, ``?``
one; case-sensitive; or ``RegexValues``, regular expressions) compared with the path as the client
sent it (not percent-decoded), and a ``fixed-response``, ``redirect`` or ``forward`` action; the
listener's default action last. ``forward`` proxies to the target (the api-server's port on this
host); ``redirect`` answers with the ``RedirectConfig``'s URL, ALB's ``#{protocol}``, ``#{host}``,
``#{port}``, ``#{path}`` and ``#{query}`` filled from the request. Anything else in the template
(other conditions or actions) raises :class:`UnsupportedListener`, so a template change the
stand-in cannot play is seen, not skipped.

The HTTPS listener's certificate (ACM's, in AWS) is played by a self-signed certificate for the
certificate's ``DomainName`` (:func:`https_domain`), which clients of the rehearsal name as their CA.

Responses are sent as HTTP/1.0 (each closes its connection), so a streamed body (the REST API's
``/wait``) passes through as it comes without re-chunking.
"""

from __future__ import annotations

import fnmatch
import http.client
import re
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
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
    content type, body), ``redirect`` = the ``RedirectConfig`` (CloudFormation's keys), or
    neither to forward."""

    priority: int
    patterns: tuple[str, ...]
    fixed: tuple[int, str, str] | None = None
    regexes: tuple[str, ...] = ()
    redirect: tuple[tuple[str, str], ...] | None = None

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


def _rule(priority: int, action: dict, patterns: tuple[str, ...] = (), regexes: tuple[str, ...] = ()) -> Rule:
    if action["Type"] == "fixed-response":
        config = action.get("FixedResponseConfig", {})
        fixed = int(config["StatusCode"]), config.get("ContentType", "text/plain"), config.get("MessageBody", "")
        return Rule(priority, patterns, fixed, regexes)
    if action["Type"] == "redirect":
        return Rule(priority, patterns, None, regexes, tuple(sorted(action["RedirectConfig"].items())))
    if action["Type"] == "forward":
        return Rule(priority, patterns, None, regexes)
    raise UnsupportedListener(f"listener action {action['Type']!r} is not played by the stand-in")


def redirect_location(config: dict[str, str], protocol: str, host: str, port: int, path: str, query: str) -> str:
    """The ``Location`` of an ALB ``redirect`` action for a request: ``config`` is its
    ``RedirectConfig`` (``Protocol``, ``Port``, ``Host``, ``Path``, ``Query``; ALB's defaults
    ``#{protocol}``, ``#{port}``, ``#{host}``, ``/#{path}``, ``#{query}``), the other arguments
    the request's (``path`` with its leading ``/``, ``query`` without ``?``).

    :returns: e.g. ``https://airflow.example.com:443/home?a=1``.
    """
    values = {"#{protocol}": protocol.lower(), "#{host}": host, "#{port}": str(port), "#{path}": path.lstrip("/"),
              "#{query}": query}

    def fill(text: str) -> str:
        for keyword, value in values.items():
            text = text.replace(keyword, value)
        return text

    location = (f"{fill(config.get('Protocol', '#{protocol}')).lower()}://{fill(config.get('Host', '#{host}'))}"
                f":{fill(config.get('Port', '#{port}'))}{fill(config.get('Path', '/#{path}'))}")
    filled_query = fill(config.get("Query", "#{query}"))
    return f"{location}?{filled_query}" if filled_query else location


def https_domain(assembly: CloudAssembly) -> str | None:
    """The ``DomainName`` of the certificate of the template's port-443 HTTPS listener, or None
    when the template has no such listener (no ``domain_name``).

    :raises UnsupportedListener: the listener's certificate is not an ``AWS::CertificateManager::Certificate``
        of the same stack (``certificate_arn`` given: the rehearsal names the domain itself).
    """
    for stack in assembly.stacks.values():
        for listener in stack.of_type("AWS::ElasticLoadBalancingV2::Listener").values():
            properties = listener["Properties"]
            if properties.get("Port") != 443 or properties.get("Protocol") != "HTTPS":
                continue
            (certificate,) = properties["Certificates"]
            reference = certificate["CertificateArn"]
            if not isinstance(reference, dict) or "Ref" not in reference:
                raise UnsupportedListener(f"the HTTPS listener's certificate {reference!r} is not one of the template's")
            return stack.template["Resources"][reference["Ref"]]["Properties"]["DomainName"]
    return None


def listener_rules(assembly: CloudAssembly, port: int = 80) -> tuple[list[Rule], int | None]:
    """Return the rules of the listener on ``port`` in evaluation order, its default action last,
    and the port of the target group its default action forwards to (None for a fixed response).

    :raises UnsupportedListener: no such listener, or a condition or action other than
        ``path-pattern``, ``fixed-response``, ``redirect`` and ``forward``.
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
                rules.append(_rule(int(properties["Priority"]), action, tuple(patterns), tuple(regexes)))
            (default,) = listener["Properties"]["DefaultActions"]
            target_port = None
            if default["Type"] == "forward":
                target_group = stack.template["Resources"][default["TargetGroupArn"]["Ref"]]
                target_port = int(target_group["Properties"]["Port"])
            return sorted(rules, key=lambda r: r.priority) + [_rule(50_001, default)], target_port
    raise UnsupportedListener(f"no load balancer listener on port {port} in the assembly")


class _HttpsServer(ThreadingHTTPServer):
    """HTTPS, the TLS handshake in each connection's own thread: a browser's preconnected socket
    that sends nothing yet must not hold up the accepting loop."""

    def __init__(self, address: tuple[str, int], handler, tls: tuple[Path, Path]):
        super().__init__(address, handler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2  # the listener's policy: TLS 1.2 and 1.3
        self.context.load_cert_chain(*tls)

    def finish_request(self, request, client_address) -> None:
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that left or refused the certificate: nothing to answer
        try:
            super().finish_request(request, client_address)
        finally:
            request.close()  # the end of an HTTP/1.0 body without Content-Length


class ListenerStandIn:
    """Serves ``rules`` on ``127.0.0.1:port``, forwarding to ``target`` (``host:port``).

    :param tls: ``(certificate, key)`` PEM files: serve HTTPS with them (the port-443 HTTPS
        listener), else HTTP (port 80); a ``redirect``'s ``#{port}`` stands for that port.
    :ivar answered: ``(method, path, status, by)`` of every request, ``by`` = ``rule <priority>``
        or ``forward``.
    """

    def __init__(self, rules: list[Rule], port: int, target: str, *, tls: tuple[Path, Path] | None = None):
        self.rules = rules
        self.target = target
        self.protocol = "https" if tls else "http"
        self.listener_port = 443 if tls else 80
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
                    self._answer(rule, path, status, {"Content-Type": content_type}, body.encode())
                elif rule.redirect is not None:
                    config = dict(rule.redirect)
                    query = self.path.split("?", 1)[1] if "?" in self.path else ""
                    host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                    location = redirect_location(config, stand_in.protocol, host, stand_in.listener_port, path, query)
                    self._answer(rule, path, 302 if config.get("StatusCode") == "HTTP_302" else 301,
                                 {"Location": location}, b"")
                else:
                    stand_in._forward(self, path)

            def _answer(self, rule: Rule, path: str, status: int, headers: dict[str, str], data: bytes) -> None:
                """The load balancer's own answer (a rule's fixed response or redirect), recorded
                before it is sent: a client that has the answer finds it in :attr:`answered`."""
                stand_in.answered.append((self.command, path, status, f"rule {rule.priority}"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler) if tls is None else \
            _HttpsServer(("127.0.0.1", port), Handler, tls)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="alb-stand-in", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _forward(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        """Proxy the request to :attr:`target` and record it in :attr:`answered` once the
        target's status is known, before the response is sent on."""
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["X-Forwarded-For"] = handler.client_address[0]
        headers["X-Forwarded-Proto"] = self.protocol
        headers["X-Forwarded-Port"] = str(self.listener_port)
        connection = http.client.HTTPConnection(self.target, timeout=300)
        try:
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException):
            # As an ALB with no healthy target: 502 (the api-server not listening yet, or gone).
            connection.close()
            self.answered.append((handler.command, path, 502, "forward"))
            handler.send_error(502, "Bad Gateway")
            return
        self.answered.append((handler.command, path, response.status, "forward"))
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
