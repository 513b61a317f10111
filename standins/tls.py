"""TLS for the stand-ins of tests and the rehearsal: a self-signed certificate for a host name.

Only for tests and the rehearsal (a real deployment's certificates come from ACM or the
identity provider's own CA).
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path


def self_signed_certificate(directory: Path, host: str, stem: str) -> tuple[Path, Path]:
    """Write a self-signed certificate for ``host`` (a DNS name, also valid for 127.0.0.1), good
    for two days, and its key; returns ``(certificate, key)``, PEM files ``<stem>.crt`` and
    ``<stem>.key`` in ``directory``. The certificate is its own CA: a client trusts it by naming it
    (git: ``GIT_SSL_CAINFO``; Python's ``requests``: ``REQUESTS_CA_BUNDLE``; ``ssl``: ``cafile``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = x509.SubjectAlternativeName([x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2)).add_extension(names, critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.chmod(0o644)
    return cert_path, key_path
