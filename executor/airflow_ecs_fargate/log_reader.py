"""The api-server's task log reader: Airflow's ``FileTaskHandler``, except for DEFERRED tasks.

Airflow 3.3.2's ``FileTaskHandler._read`` fetches a DEFERRED task instance's "served logs" over
HTTP, from the triggerer's host on ``[logging] trigger_log_server_port`` (8794) once a triggerer
holds the trigger, else from the worker's host on 8793. On Fargate the worker task has ended when
its task defers, and no security group lets the api-server reach the triggerer's log server (which
would also need the ``[api] secret_key`` that only the scheduler and the api-server hold; see
docs/security.md). So the page of every deferred task showed ``Could not read served logs`` after a
5 s timeout per refresh. This handler answers that one fetch with a clear "deferred" note instead;
everything else (the worker's lines up to the deferral from S3 remote logging, RUNNING tasks
through the executor's ``get_task_log``, finished tasks) is Airflow's own code path.

The api-server selects it with ``AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS`` =
:data:`LOGGING_CONFIG_CLASS` (set by the CDK app). The config module re-exports Airflow's
``REMOTE_TASK_LOG``, so remote logging reads back exactly as with the default configuration.
Test: ``tests/executor/test_log_reader.py``.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from airflow.config_templates import airflow_local_settings
from airflow.utils.log.file_task_handler import FileTaskHandler, _get_compatible_log_stream
from airflow.utils.state import TaskInstanceState


#: The line a DEFERRED task's log page shows where Airflow would fetch the served logs.
DEFERRED_NOTE = (
    "This task is deferred: its worker has ended and the triggerer is waiting for its trigger "
    "(for an ECS job, until the job stops). The lines above were written before the deferral. "
    "The trigger's own lines appear on this page when the task resumes; until then they are in the "
    "triggerer service's CloudWatch Logs stream (and an ECS job's in the job's log group)."
)


class EcsFargateTaskHandler(FileTaskHandler):
    """``FileTaskHandler`` that does not fetch served logs for a DEFERRED task instance.

    Airflow calls :meth:`_read_from_logs_server` for RUNNING and DEFERRED task instances (RUNNING ones
    do not reach it when the executor's ``get_task_log`` answers) and for finished ones without
    remote or local logs; only the DEFERRED case changes.
    """

    def _read_from_logs_server(self, ti: Any, worker_log_rel_path: str) -> Any:
        """Return ``(sources, streams)``: for DEFERRED, one source and :data:`DEFERRED_NOTE`."""
        if ti.state == TaskInstanceState.DEFERRED:
            return ["deferred: no served logs to read"], [_get_compatible_log_stream([DEFERRED_NOTE + "\n"])]
        return super()._read_from_logs_server(ti, worker_log_rel_path)


#: Airflow's default logging configuration with :class:`EcsFargateTaskHandler` as the ``task`` handler.
LOGGING_CONFIG: dict[str, Any] = deepcopy(airflow_local_settings.DEFAULT_LOGGING_CONFIG)
LOGGING_CONFIG["handlers"]["task"]["class"] = f"{__name__}.{EcsFargateTaskHandler.__name__}"

#: Airflow's remote log IO for this configuration (S3 remote logging), unchanged.
REMOTE_TASK_LOG = airflow_local_settings.REMOTE_TASK_LOG

