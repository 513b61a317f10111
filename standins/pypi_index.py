"""A private PEP 503 package index on localhost for the private-index tests and the rehearsal:
``pypiserver`` (requirements-dev.txt) with HTTP basic auth on every request, serving wheels
written by :func:`wheel`. Plain HTTP on 127.0.0.1; only for tests and the rehearsal.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from standins.postgres import free_port


class PrivateIndexError(RuntimeError):
    """pypiserver did not start; the message holds its log."""


def wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = (),
          module: str | None = None) -> Path:
    """Write a minimal pure-Python wheel of ``name`` whose module (``name``, or ``module``) holds
    ``VERSION = "<version>"`` and which requires ``requires``; returns its path."""
    dist = f"{name}-{version}"
    files = {
        f"{module or name}/__init__.py": f'VERSION = "{version}"\n',
        f"{dist}.dist-info/METADATA": "Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    out = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return out


class PrivateIndex:
    """pypiserver over ``root/packages`` (put wheels there), user ``user`` with password
    ``token``, authentication required to list, download and upload; no fallback to PyPI.

    Use as a context manager. :attr:`url` is the index's ``/simple/`` URL; :meth:`pip_conf`
    writes the pip configuration a team keeps outside the repository (the key ``pip_index_file``).

    :raises PrivateIndexError: the server did not answer within 60 s (its log in the message).
    """

    def __init__(self, root: Path, user: str, token: str):
        from passlib.apache import HtpasswdFile  # type: ignore[import-untyped]

        self.root, self.user, self.token = Path(root), user, token
        self.packages = self.root / "packages"
        self.packages.mkdir(parents=True, exist_ok=True)
        htpasswd = HtpasswdFile(str(self.root / "htpasswd"), new=True)
        htpasswd.set_password(user, token)
        htpasswd.save()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/simple/"
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> PrivateIndex:
        log = (self.root / "pypiserver.log").open("w")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pypiserver", "run", "--host", "127.0.0.1", "--port", str(self.port),
             "--passwords", str(self.root / "htpasswd"), "--authenticate", "download,list,update",
             "--disable-fallback", str(self.packages)],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=5)  # noqa: S310 - our own local URL
                return self
            except urllib.error.HTTPError as answer:
                if answer.code in (401, 403):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.__exit__()
                raise PrivateIndexError(f"pypiserver did not start: {(self.root / 'pypiserver.log').read_text()[-2000:]}")
            time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def pip_conf(self, directory: Path, token: str | None = None) -> Path:
        """Write ``directory/private-index.conf``: ``[global] index-url`` with the user and
        ``token`` (default: the accepted one) in the URL, as a team keeps it outside the
        repository for the key ``pip_index_file``; returns its path."""
        user_url = self.url.replace("http://", f"http://{self.user}:{token or self.token}@")
        path = Path(directory) / "private-index.conf"
        path.write_text(f"[global]\nindex-url = {user_url}\n")
        path.chmod(0o600)
        return path
