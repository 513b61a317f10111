"""``make local``'s DAG reload: how long an edit of the mounted DAG folder takes to show in Airflow.

``make local`` mounts the host's ``dags/`` over the image's DAG folder in every container
(:class:`~local_ecs.scenario.LocalDeployment`, ``dags_mount``) and lets the dag-processor rescan
it every few seconds. :class:`DagFolderWatcher` tells the DAG author when each edit has been
parsed, and how long that took, from what the REST API says (``GET /api/v2/dags``: each DAG's
``fileloc`` and ``last_parsed_time``; ``GET /api/v2/importErrors``: ``filename`` and
``timestamp``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass
class Reload:
    """One edit of a DAG file and what Airflow made of it.

    :ivar file: the file's name in the DAG folder.
    :ivar seconds: from the file's modification to its parse (``last_parsed_time`` of a DAG of
        that file, or an import error's ``timestamp``), as seen by polling.
    :ivar dag_ids: the DAGs parsed from it; ``error``: the import error, if the parse failed.
    """

    file: str
    seconds: float
    dag_ids: list[str]
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"{self.file}: import error after {self.seconds:.1f} s: {self.error.strip().splitlines()[-1]}"
        return f"{self.file}: reloaded in {self.seconds:.1f} s ({', '.join(self.dag_ids)})"


class DagFolderWatcher:
    """Watches ``folder`` (mounted at ``container_folder``) for edited ``*.py`` files and reports
    each once Airflow has parsed it.

    :param folder: the host folder.
    :param container_folder: where the containers see it (the ``LocalDagBundle`` path).
    :param get: ``path -> (HTTP status, body)`` against the REST API, signed in (``/api/v2/...``).
    """

    def __init__(self, folder: Path, container_folder: str, get: Callable[[str], tuple[int, str]]):
        self.folder = Path(folder)
        self.container_folder = PurePosixPath(container_folder)
        self.get = get
        self.seen = self._mtimes()
        self.pending: dict[str, float] = {}

    def _mtimes(self) -> dict[str, float]:
        return {path.name: path.stat().st_mtime for path in self.folder.glob("*.py")}

    def poll(self) -> list[Reload]:
        """Note files changed since the last call; return the edits Airflow has parsed since."""
        now = self._mtimes()
        for name, mtime in now.items():
            if self.seen.get(name) != mtime:
                self.pending[name] = mtime
        self.seen = now
        if not self.pending:
            return []
        parsed = self._parsed()
        done = []
        for name, mtime in list(self.pending.items()):
            dag_ids, error, parsed_at = parsed.get(name, ([], None, None))
            if parsed_at is not None and parsed_at >= mtime:
                done.append(Reload(name, round(time.time() - mtime, 1), dag_ids, error))
                del self.pending[name]
        return done

    def _parsed(self) -> dict[str, tuple[list[str], str | None, float | None]]:
        """``path in the folder -> (DAG ids, import error, when parsed as epoch seconds)``."""
        found: dict[str, tuple[list[str], str | None, float | None]] = {}
        status, body = self.get("/api/v2/dags?limit=1000")
        for dag in json.loads(body).get("dags", []) if status == 200 else []:
            parsed_at = _epoch(dag.get("last_parsed_time"))
            file = self._relative(dag.get("relative_fileloc") or dag["fileloc"])
            ids, _, last = found.get(file, ([], None, None))
            found[file] = ([*ids, dag["dag_id"]], None, max(filter(None, [last, parsed_at]), default=None))
        status, body = self.get("/api/v2/importErrors?limit=1000")
        for error in json.loads(body).get("import_errors", []) if status == 200 else []:
            file, at = self._relative(error["filename"]), _epoch(error.get("timestamp"))
            previous = found.get(file, ([], None, None))[2]
            if at is not None and (previous is None or at > previous):
                found[file] = ([], error.get("stack_trace", ""), at)
        return found

    def _relative(self, path: str) -> str:
        """A file's path in the folder, from the absolute container path or the bundle-relative one."""
        posix = PurePosixPath(path)
        return str(posix.relative_to(self.container_folder)) if posix.is_relative_to(self.container_folder) else path


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
