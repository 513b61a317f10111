"""make local's DAG reload watcher, against answers of the REST API (no deployment needed)."""

from __future__ import annotations

import datetime as dt
import json
import os

from local_ecs.reload import DagFolderWatcher
from local_ecs.taskdef import TaskSpec, podman_run_args

T0 = 1_800_000_000.0  # the epoch seconds of the edits below


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat().replace("+00:00", "Z")


class Api:
    def __init__(self):
        self.dags: list[dict] = []
        self.errors: list[dict] = []

    def get(self, path: str) -> tuple[int, str]:
        if path.startswith("/api/v2/dags"):
            return 200, json.dumps({"dags": self.dags, "total_entries": len(self.dags)})
        return 200, json.dumps({"import_errors": self.errors, "total_entries": len(self.errors)})


def _write(path, text: str, mtime: float) -> None:
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def test_an_edit_is_reported_once_airflow_has_parsed_it_after_the_edit(tmp_path):
    api = Api()
    _write(tmp_path / "a.py", "v1", T0 - 100)
    api.dags = [{"dag_id": "a", "fileloc": "/opt/airflow/dags/a.py", "relative_fileloc": "a.py",
                 "last_parsed_time": _iso(T0 - 90)}]
    watcher = DagFolderWatcher(tmp_path, "/opt/airflow/dags", api.get)
    assert watcher.poll() == []  # nothing edited since the start
    _write(tmp_path / "a.py", "v2", T0)
    assert watcher.poll() == []  # Airflow's last parse is older than the edit
    api.dags[0]["last_parsed_time"] = _iso(T0 + 3)
    (reload,) = watcher.poll()
    assert (reload.file, reload.dag_ids, reload.error) == ("a.py", ["a"], None)
    assert "a.py: reloaded in" in reload.line()
    assert watcher.poll() == []  # reported once


def test_a_new_file_that_fails_to_import_is_reported_with_its_error(tmp_path):
    api = Api()
    watcher = DagFolderWatcher(tmp_path, "/opt/airflow/dags", api.get)
    _write(tmp_path / "broken.py", "import nope", T0)
    assert watcher.poll() == []
    api.errors = [{"import_error_id": 1, "timestamp": _iso(T0 + 2), "filename": "broken.py", "bundle_name": "dags-folder",
                   "stack_trace": "Traceback ...\nModuleNotFoundError: No module named 'nope'\n"}]
    (reload,) = watcher.poll()
    assert reload.error and reload.line().endswith("ModuleNotFoundError: No module named 'nope'")


def test_the_mount_is_read_only_and_comes_after_the_task_volumes():
    spec = TaskSpec.parse({"family": "f", "containerDefinitions": [{"name": "c", "image": "i"}]})
    args = podman_run_args(spec.containers[0], spec, name="n", image="img", volume_names={}, hosts={}, env_names=[],
                           labels={}, bind_mounts={"/src/dags": "/opt/airflow/dags"})
    assert args[args.index("/src/dags:/opt/airflow/dags:ro") - 1] == "--volume"
    assert "/src/dags:/opt/airflow/dags:ro" not in podman_run_args(
        spec.containers[0], spec, name="n", image="img", volume_names={}, hosts={}, env_names=[], labels={})
