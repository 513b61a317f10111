"""podman, set up to run on a build machine without systemd, a registry or a container engine.

Everything podman stores (images, containers, volumes, its run state and event log) lives under one
state directory inside the work tree (default ``<repository>/.rehearsal/containers``), selected with
``CONTAINERS_CONF`` / ``CONTAINERS_STORAGE_CONF`` / ``CONTAINERS_REGISTRIES_CONF`` so that the
machine's own podman configuration and images are left alone, and ``rm -rf .rehearsal`` removes it.

The settings, and why each is needed on a machine of this project's kind (see docs/rehearsal.md):

- ``runtime = "runc"``: crun refuses a host with a hybrid cgroup v1/v2 layout.
- ``cgroup_manager = "cgroupfs"`` and ``events_logger = "file"``: there is no systemd.
- ``default_ulimits``: podman's defaults exceed the host's hard limits ("setrlimit RLIMIT_NOFILE:
  Operation not permitted"); these stay below the 20000 open files of the build machines.
- ``driver = "overlay"`` with graphroot/runroot in the state directory.
- a registries.conf of its own, so short names (``FROM apache/airflow:...``, stored locally as
  ``localhost/apache/airflow:...``) resolve alike on every machine; every build and run passes
  ``--pull=never``, since no registry is reachable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The repository root (this package sits at its top level).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Default state directory for podman's storage and configuration.
DEFAULT_STATE_DIR = PROJECT_ROOT / ".rehearsal" / "containers"
#: How to get podman on Debian (the Makefile's ``rehearsal-deps`` target runs this).
INSTALL_HINT = "apt-get install podman runc mmdebstrap (or: make rehearsal-deps)"
#: Where podman looks for runc besides PATH (containers.conf's default runtime paths).
RUNC_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/sbin", "/bin")
#: Lines of stderr quoted in a PodmanError.
STDERR_TAIL_LINES = 30


class PodmanError(RuntimeError):
    """A podman command failed.

    :ivar command: the argument list that was run (``list[str]``, starting with ``podman``).
    :ivar returncode: its exit code (``int``).
    :ivar stderr_tail: the last lines of its stderr (``str``; of stdout when stderr is empty).
    """

    def __init__(self, command: Sequence[str], returncode: int, stderr_tail: str):
        self.command = list(command)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(
            f"`{' '.join(self.command)}` exited with code {returncode}; last lines of its output:\n{stderr_tail}"
        )


class PodmanNotInstalled(RuntimeError):
    """podman (or runc, which the configuration selects) is not on PATH."""


def tail(text: str | bytes | None, lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text`` (``str``; bytes are decoded as UTF-8, replacing errors)."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def require_podman(path: str | None = None) -> str:
    """Return the path of the podman binary, after checking that podman and runc are installed.

    :param path: the ``PATH`` to search (``str``); default the process's ``PATH`` (and, for runc,
        the system directories podman searches).
    :raises PodmanNotInstalled: with the command that installs them.
    """
    search = path if path is not None else os.environ.get("PATH", "")
    # podman finds runc in the system directories even when they are not on a user's PATH.
    runc_search = os.pathsep.join([search, *RUNC_DIRS]) if path is None else search
    missing = [tool for tool, where in (("podman", search), ("runc", runc_search))
               if shutil.which(tool, path=where) is None]
    if missing:
        raise PodmanNotInstalled(
            f"{' and '.join(missing)} not found on PATH; the rehearsal builds and runs containers with podman. "
            f"Install it with: {INSTALL_HINT}"
        )
    return shutil.which("podman", path=path)  # type: ignore[return-value]


@dataclass(frozen=True)
class PodmanConfig:
    """Where podman keeps its state, and the configuration files that put it there.

    :ivar state_dir: directory for images, containers, volumes, run state (``Path``).
    :ivar nofile: open-files limit of every container (soft = hard), below the host's hard limit.
    :ivar nproc: process limit of every container (soft = hard).
    """

    state_dir: Path = DEFAULT_STATE_DIR
    nofile: int = 20000
    nproc: int = 32768

    @property
    def containers_conf(self) -> Path:
        return self.state_dir / "containers.conf"

    @property
    def storage_conf(self) -> Path:
        return self.state_dir / "storage.conf"

    @property
    def registries_conf(self) -> Path:
        return self.state_dir / "registries.conf"

    def write(self) -> None:
        """Create the state directory and (re)write the three configuration files."""
        root = self.state_dir.resolve()
        for sub in ("storage", "run", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.containers_conf.write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={self.nofile}:{self.nofile}", "nproc={self.nproc}:{self.nproc}"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{root / "events.log"}"\n'
            f'tmp_dir = "{root / "tmp"}"\n'
        )
        self.storage_conf.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{root / "storage"}"\n'
            f'runroot = "{root / "run"}"\n'
        )
        self.registries_conf.write_text('unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n')

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a podman process: ``base`` (default ``os.environ``) plus the three
        ``CONTAINERS_*`` variables pointing at this state directory."""
        env = dict(os.environ if base is None else base)
        env["CONTAINERS_CONF"] = str(self.containers_conf.resolve())
        env["CONTAINERS_STORAGE_CONF"] = str(self.storage_conf.resolve())
        env["CONTAINERS_REGISTRIES_CONF"] = str(self.registries_conf.resolve())
        return env


_written: set[Path] = set()


def podman(
    *args: str,
    config: PodmanConfig | None = None,
    check: bool = True,
    timeout: float | None = None,
    input: str | None = None,
    capture: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``podman *args`` with this project's configuration and return the finished process.

    :param args: podman's arguments, e.g. ``("run", "--rm", "--pull=never", image, "true")``.
    :param config: state directory and limits (default: ``.rehearsal/containers`` of the work tree).
    :param check: raise on a non-zero exit code (default True).
    :param timeout: seconds before the command is killed (``subprocess.TimeoutExpired``).
    :param input: text written to the command's stdin.
    :param capture: capture stdout/stderr as text (default True); False streams them to ours.
    :param env: environment to start from (default ``os.environ``).
    :returns: ``subprocess.CompletedProcess[str]`` with ``stdout`` and ``stderr`` when captured.
    :raises PodmanNotInstalled: podman or runc is missing (with how to install them).
    :raises PodmanError: the command failed (naming it, its exit code and the tail of its stderr).
    """
    config = config or PodmanConfig()
    run_env = config.env(env)
    exe = require_podman(run_env.get("PATH"))
    state = config.state_dir.resolve()
    if state not in _written or not config.containers_conf.exists():
        config.write()
        _written.add(state)
    command = [exe, *args]
    proc = subprocess.run(
        command,
        env=run_env,
        text=True,
        input=input,
        timeout=timeout,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        check=False,
    )
    if check and proc.returncode != 0:
        raise PodmanError(["podman", *args], proc.returncode, tail(proc.stderr) or tail(proc.stdout))
    return proc
