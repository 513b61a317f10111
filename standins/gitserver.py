"""A real git server on localhost for the git DAG bundle's tests and rehearsal: git's own ``git
http-backend`` (the smart HTTP protocol, as GitHub, GitLab and CodeCommit speak it) run as a CGI
program behind a small threaded WSGI server with HTTP basic auth, and helpers to push to it.

Only for tests and the rehearsal: on 127.0.0.1, plain HTTP or (``tls_host``) HTTPS with a
self-signed certificate for that host name, one user, the accepted token changeable at run time
(:attr:`GitHttpServer.token`) to play a revoked token.
"""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from standins.tls import self_signed_certificate

#: git's CGI program (``git --exec-path`` holds it).
def http_backend() -> Path:
    """git's CGI program (``git --exec-path`` holds it).

    :raises FileNotFoundError: git is not installed.
    """
    return Path(subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()) \
        / "git-http-backend"


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run git with a fixed identity and no global or system configuration; return stdout.

    :raises subprocess.CalledProcessError: git failed (its stderr in the exception).
    """
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd or Path.cwd()), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "dag author", "GIT_AUTHOR_EMAIL": "author@example.com",
            "GIT_COMMITTER_NAME": "dag author", "GIT_COMMITTER_EMAIL": "author@example.com"}
    done = subprocess.run(["git", *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout


class GitHttpServer:
    """``git http-backend`` over ``root`` (bare repositories), basic auth ``user``/:attr:`token`.

    Every request without the right credentials gets 401 with ``WWW-Authenticate: Basic``, as a
    git host answers a missing or revoked token.

    :param tls_host: serve HTTPS with a self-signed certificate for this host name
        (:attr:`certificate`; the name must resolve to 127.0.0.1 where it is used), else HTTP.
    :ivar url: ``http://127.0.0.1:<port>`` or ``https://<tls_host>:<port>``; a repository
        ``x.git`` is at ``<url>/x.git``.
    :ivar requests: how many requests were answered, by status code.
    :ivar certificate: the server's certificate (PEM file) with ``tls_host``, else None.
    """

    def __init__(self, root: Path, user: str, token: str, *, tls_host: str | None = None):
        self.root, self.user, self.token = root, user, token
        self.requests: dict[int, int] = {}
        self.backend = http_backend()
        self._server = make_server("127.0.0.1", 0, self._app, server_class=_ThreadingWSGIServer,
                                   handler_class=_QuietHandler)
        self.certificate: Path | None = None
        if tls_host is None:
            self.url = f"http://127.0.0.1:{self._server.server_port}"
        else:
            self.certificate, key = self_signed_certificate(root / ".tls", tls_host, "git-server")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.certificate, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.url = f"https://{tls_host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> GitHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _authorized(self, environ: dict) -> bool:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return (user, password) == (self.user, self.token)

    def _count(self, status: str) -> None:
        code = int(status.split()[0])
        self.requests[code] = self.requests.get(code, 0) + 1

    def _app(self, environ, start_response):
        if not self._authorized(environ):
            self._count("401")
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")])
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        cgi_env = {
            "PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": self.user, "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""), "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""), "CONTENT_LENGTH": str(len(body)),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "HOME": str(self.root),
        }
        for key, value in environ.items():
            if key.startswith("HTTP_") and key != "HTTP_AUTHORIZATION":
                cgi_env[key] = value
        out = subprocess.run([str(self.backend)], input=body, env=cgi_env, capture_output=True, timeout=60).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name, value.strip()))
        self._count(status)
        start_response(status, headers)
        return [payload]


def new_repository(root: Path, name: str, files: dict[str, str], branch: str = "main") -> Path:
    """Create the bare repository ``root/<name>.git`` served over HTTP (pushes allowed) and a
    working clone ``root/<name>-work`` with ``files`` committed and pushed to ``branch``.

    :returns: the working clone.
    """
    bare = root / f"{name}.git"
    git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare), cwd=root)
    git("config", "http.receivepack", "true", cwd=bare)
    work = root / f"{name}-work"
    git("clone", "--quiet", str(bare), str(work), cwd=root)
    git("checkout", "--quiet", "-b", branch, cwd=work)
    commit_files(work, files, "first DAGs")
    git("push", "--quiet", "origin", branch, cwd=work)
    return work


def commit_files(work: Path, files: dict[str, str], message: str) -> str:
    """Write ``files`` (path -> text) into the working clone, commit them; return the commit."""
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


def push_over_http(work: Path, server: GitHttpServer, name: str, branch: str = "main",
                   resolve: Iterable[str] = ()) -> None:
    """Push ``branch`` of the working clone through the HTTP(S) server, as a DAG author would.

    :param resolve: with a TLS server whose host name the machine does not resolve, e.g.
        ``["git.example.test:8443:127.0.0.1"]`` (git's ``http.curloptResolve``).
    """
    scheme, _, rest = server.url.partition("://")
    options = ["-c", f"http.sslCAInfo={server.certificate}"] if server.certificate else []
    for entry in resolve:
        options += ["-c", f"http.curloptResolve={entry}"]
    git(*options, "push", "--quiet", f"{scheme}://{server.user}:{server.token}@{rest}/{name}.git", branch, cwd=work)
