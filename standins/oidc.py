"""A real OpenID Connect provider on this machine for the single sign-on tests and rehearsal:
``oidc-provider-mock`` (PyPI; authlib's authorization server with discovery, JWKS, the
authorization-code flow and dynamic client registration) served over HTTPS with a self-signed
certificate for a host name.

Only for tests and the rehearsal. Clients must register (``POST /oauth2/clients``, RFC 7591) and
send a nonce, as a production provider's confidential client does; the users are given up front
and chosen on the provider's authorize page by their ``sub`` (no password), which is what a
browser test drives.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from standins.tls import self_signed_certificate


@dataclass(frozen=True)
class OidcProvider:
    """A running provider.

    :ivar issuer: ``https://<host>:<port>``, the issuer URL its discovery document announces for
        requests to that host (the provider builds it from the request's host).
    :ivar local_url: ``https://127.0.0.1:<port>``, the same server for clients on this machine that
        cannot resolve ``host``.
    :ivar certificate: the server's certificate (PEM file; its own CA, valid for ``host`` and 127.0.0.1).
    """

    issuer: str
    local_url: str
    certificate: Path

    def register_client(self, redirect_uris: list[str], scope: str = "openid email profile") -> dict:
        """Register a confidential client; returns the provider's answer (``client_id``,
        ``client_secret``, ...).

        :raises requests.HTTPError: the provider refused the registration.
        """
        answer = requests.post(f"{self.local_url}/oauth2/clients", verify=str(self.certificate),
                               json={"redirect_uris": redirect_uris, "scope": scope}, timeout=10)
        answer.raise_for_status()
        return answer.json()


@contextlib.contextmanager
def oidc_provider(directory: Path, users: Mapping[str, Mapping[str, object]], *, host: str = "localhost",
                  bind: str = "127.0.0.1") -> Iterator[OidcProvider]:
    """Serve ``oidc-provider-mock`` over HTTPS on ``bind`` and a free port until the block ends.

    :param directory: where the certificate and key are written (``idp.crt``, ``idp.key``).
    :param users: ``sub`` -> the claims of the ID token and userinfo (e.g. ``preferred_username``,
        ``email``, ``groups``).
    :param host: the name clients reach the provider by (it must resolve to ``bind`` where they run).
    """
    import oidc_provider_mock
    import werkzeug.serving

    certificate, key = self_signed_certificate(directory, host, "idp")
    app = oidc_provider_mock.app(
        require_client_registration=True, require_nonce=True,
        user_claims=[oidc_provider_mock.User(sub=sub, claims=dict(claims)) for sub, claims in users.items()],
    )
    server = werkzeug.serving.make_server(bind, 0, app, threaded=True, ssl_context=(str(certificate), str(key)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name="oidc-provider")
    thread.start()
    try:
        yield OidcProvider(f"https://{host}:{server.server_port}", f"https://127.0.0.1:{server.server_port}",
                           certificate)
    finally:
        server.shutdown()
        thread.join(5)
