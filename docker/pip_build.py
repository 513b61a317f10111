"""Two steps of the image build's ``pip install`` of docker/requirements.txt
(docker/install_requirements.sh runs them in the base image; standard library only).

``python pip_build.py constraints <requirements file>`` reads ``pip list --format=freeze`` of the
base image on stdin, i.e. what Airflow's constraints resolved to for the pinned version (the
official image is built with them; the offline stand-in installs
local_ecs/base_image/requirements.lock), and prints one ``name==version`` per package the
requirements file does not name itself. With these as constraints pip refuses, naming the conflict
("The user requested (constraint) ..."), a requirement that would move one of Airflow's
dependencies, while a line of the file may still choose the version of a package it names.

``python pip_build.py check-indexes`` reads ``pip config list`` on stdin and asks every index URL
configured there (``index-url``, ``extra-index-url``) for its root page with the URL's credentials.
pip itself says only "Could not find a version ... (from versions: none)" when an index refuses the
token; this says which index refused it (token masked) and exits 1 on HTTP 401 or 403.

``python pip_build.py explain <requirements file>`` reads a failed ``pip install``'s output on
stdin and prints what pip leaves out: the file and line of a requirement no index has a version of,
and that a conflict with ``(constraint)`` is one with the base image's pins.
"""

from __future__ import annotations

import base64
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

#: A requirement line's project name (PEP 508), then anything.
_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
#: Never constrained: pip's own tools.
_TOOLS = {"pip", "setuptools", "wheel"}
#: ``pip config list`` lines naming indexes, e.g. ``global.index-url='https://...'``.
_INDEX_LINE = re.compile(r"^[\w:.-]*\.(?:extra-)?index-url='(.*)'$")
#: Seconds to wait for an index's answer.
TIMEOUT_SECONDS = 30


def canonical(name: str) -> str:
    """PEP 503 normalized name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def named(requirements_text: str) -> set[str]:
    """The canonical names the requirement lines of a requirements file name (options, comments
    and blank lines skipped; a trailing backslash joins lines as pip does)."""
    names = set()
    for line in requirements_text.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line or line.startswith("-"):
            continue
        match = _NAME.match(line)
        if match:
            names.add(canonical(match.group(1)))
    return names


def constraints(freeze_text: str, requirements_text: str) -> list[str]:
    """The ``name==version`` lines of ``freeze_text`` whose name ``requirements_text`` does not
    name, and that are not pip's own tools."""
    skip = named(requirements_text) | _TOOLS
    kept = []
    for line in freeze_text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and canonical(name) not in skip:
            kept.append(f"{name}=={version}")
    return kept


def index_urls(pip_config_text: str) -> list[str]:
    """The index URLs of ``pip config list`` output (extra-index-url may hold several)."""
    urls = []
    for line in pip_config_text.splitlines():
        match = _INDEX_LINE.match(line.strip())
        if match:
            urls.extend(match.group(1).split())
    return urls


def masked(url: str) -> str:
    """``url`` with the password of its user information replaced by ``****``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:****@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def index_problem(url: str, opener=urllib.request.urlopen) -> str | None:
    """Ask ``url`` for its root page with the credentials of its user information.

    :returns: a sentence when the index refuses them (HTTP 401 or 403) or cannot be reached, else
        None (any other answer: pip goes on and reports what it finds).
    """
    parts = urllib.parse.urlsplit(url)
    bare = urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
    request = urllib.request.Request(bare, headers={"User-Agent": "pip_build.py"})
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with opener(request, timeout=TIMEOUT_SECONDS):
            return None
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            return (f"the package index {masked(url)} refused the credentials (HTTP {err.code}): renew the token in "
                    "the pip configuration given as the build secret pip_index (the key pip_index_file) and build again")
        return None
    except (urllib.error.URLError, OSError) as err:
        return f"the package index {masked(url)} cannot be reached ({getattr(err, 'reason', err)}); check its URL"


def requirement_lines(requirements_text: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of each requirement line (comments, options and blanks skipped)."""
    found = []
    for number, raw in enumerate(requirements_text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line and not line.startswith("-"):
            found.append((number, line))
    return found


def explain(pip_output: str, requirements_text: str, requirements_path: str) -> list[str]:
    """Sentences naming the line of each unresolvable requirement, and the pins behind a conflict."""
    sentences = []
    for missing in re.findall(r"No matching distribution found for (\S+)", pip_output):
        match = _NAME.match(missing)
        name = canonical(match.group(1)) if match else missing
        lines = [(n, text) for n, text in requirement_lines(requirements_text)
                 if (m := _NAME.match(text)) and canonical(m.group(1)) == name]
        if lines:
            for number, text in lines:
                sentences.append(f"{requirements_path}:{number}: {text!r} cannot be resolved: no version of {name} "
                                 "that matches it on the configured indexes (a typo, a version not published, or a "
                                 "private package without the build secret pip_index)")
        else:
            sentences.append(f"{missing!r}, a dependency of {requirements_path}, cannot be resolved: no version on "
                             "the configured indexes")
    if "The user requested (constraint)" in pip_output:
        sentences.append(f"a line of {requirements_path} needs another version of a package the base image pins "
                         "(the conflict is above: '(constraint)' is the base image's version); allow the pinned "
                         "version, or remove the line")
    return sentences


def main(argv: list[str]) -> int:
    if argv[:1] == ["constraints"] and len(argv) == 2:
        with open(argv[1]) as requirements:
            print("\n".join(constraints(sys.stdin.read(), requirements.read())))
        return 0
    if argv == ["check-indexes"]:
        problems = [p for p in map(index_problem, index_urls(sys.stdin.read())) if p]
        for problem in problems:
            print(f"ERROR: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if argv[:1] == ["explain"] and len(argv) == 2:
        with open(argv[1]) as requirements:
            for sentence in explain(sys.stdin.read(), requirements.read(), argv[1]):
                print(f"ERROR: {sentence}", file=sys.stderr)
        return 0
    print("usage: pip_build.py constraints <requirements file> | check-indexes | explain <requirements file>",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
