"""The api-server's log page of a DEFERRED task: a clear note, never a served-log fetch error.

Runs Airflow 3.3.2's own ``FileTaskHandler._read`` (the code the api-server runs for a log page)
on a task instance in the DEFERRED state whose triggerer's log server cannot be reached, as on
Fargate (nothing listens on the port; the api-server may not reach the triggerer's task).
"""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace

import pytest
from airflow._shared.module_loading import import_string
from airflow.utils.log.file_task_handler import FileTaskHandler
from airflow.utils.state import TaskInstanceState

from airflow_ecs_fargate.log_config_class import LOGGING_CONFIG_CLASS
from airflow_ecs_fargate.log_reader import DEFERRED_NOTE, EcsFargateTaskHandler

REL_PATH = "dag_id=d/run_id=r/task_id=t/attempt=1.log"


def _closed_port() -> int:
    """A localhost port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def deferred_ti(monkeypatch):
    """A task instance as the api-server sees it while its trigger runs in a triggerer."""
    port = _closed_port()
    monkeypatch.setenv("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", str(port))
    monkeypatch.setenv("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(port))
    monkeypatch.setenv("AIRFLOW__API__LOG_FETCH_TIMEOUT_SEC", "2")
    return SimpleNamespace(
        state=TaskInstanceState.DEFERRED,
        try_number=1,
        hostname="127.0.0.1",
        triggerer_job=SimpleNamespace(hostname="127.0.0.1", id=7),
    )


def _page(handler: FileTaskHandler, ti, monkeypatch) -> str:
    """The text of the log page ``handler`` serves for ``ti`` (what the REST API returns)."""
    monkeypatch.setattr(handler, "_render_filename", lambda ti, try_number: REL_PATH)
    stream, metadata = handler._read(ti, 1)
    # A deferred task's page keeps polling; a finished one's does not.
    assert metadata["end_of_log"] is (ti.state != TaskInstanceState.DEFERRED)
    return "\n".join(json.dumps(line.model_dump(mode="json")) if hasattr(line, "model_dump") else str(line)
                     for line in stream)


def test_airflows_own_handler_shows_a_fetch_error_for_a_deferred_task(deferred_ti, tmp_path, monkeypatch):
    """The defect this module fixes, as Airflow 3.3.2 behaves without it."""
    text = _page(FileTaskHandler(base_log_folder=str(tmp_path)), deferred_ti, monkeypatch)
    assert "Could not read served logs" in text
    assert DEFERRED_NOTE not in text


def test_the_deferred_page_says_deferred_and_fetches_nothing(deferred_ti, tmp_path, monkeypatch):
    handler = EcsFargateTaskHandler(base_log_folder=str(tmp_path))
    monkeypatch.setattr(FileTaskHandler, "_read_from_logs_server",
                        lambda *a: pytest.fail("a DEFERRED task's served logs were fetched"))
    text = _page(handler, deferred_ti, monkeypatch)
    assert DEFERRED_NOTE in text
    assert "Could not read served logs" not in text


def test_other_states_keep_airflows_served_log_path(deferred_ti, tmp_path, monkeypatch):
    """A finished task without remote or local logs still asks the worker, as Airflow does."""
    deferred_ti.state = TaskInstanceState.SUCCESS
    text = _page(EcsFargateTaskHandler(base_log_folder=str(tmp_path)), deferred_ti, monkeypatch)
    assert "Could not read served logs" in text
    assert DEFERRED_NOTE not in text


def test_the_api_servers_logging_config_class_loads_the_handler():
    """The dotted path the CDK app sets is importable and swaps only the task handler."""
    from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG

    config = import_string(LOGGING_CONFIG_CLASS)
    assert import_string(config["handlers"]["task"]["class"]) is EcsFargateTaskHandler
    assert {k: v for k, v in config["handlers"].items() if k != "task"} == {
        k: v for k, v in DEFAULT_LOGGING_CONFIG["handlers"].items() if k != "task"}
