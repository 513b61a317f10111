"""Defect 4: submit failures classified; permanent fail at once; retries logged to the task."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
)

from airflow_ecs_fargate.errors import SubmitErrorKind, classify_exception, classify_failure_reasons
from airflow_ecs_fargate.executor import EcsFargateExecutor
from tests.executor.conftest import BOTH_STOCK_FAILS, make_workload, settle, settle_until, task_events


def client_error(code: str, message: str, op: str = "RunTask") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


PERMANENT = {
    "access-denied": client_error("AccessDeniedException", "not authorized to perform ecs:RunTask"),
    "param-validation": ParamValidationError(report="Invalid type for parameter capacityProviderStrategy"),
    "invalid-parameter": client_error("InvalidParameterException", "No Container Instances were found"),
    "missing-task-definition": client_error("ClientException", "Unable to describe task definition."),
}


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
@pytest.mark.parametrize("error", list(PERMANENT.values()), ids=list(PERMANENT))
def test_permanent_error_fails_task_at_once_with_reason(cls, error, aws, make_executor):
    ex = make_executor(cls)
    ex.ecs.script["run_task"] = [error]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    state, info = ex.event_buffer.get(w.ti.key, (None, None))
    assert state == "failed"
    assert len(ex.ecs.of("run_task")) == 1
    events = task_events(ex, w.ti.key)
    assert any(event == "ecs task submit failure" and type(error).__name__ in extra for event, extra in events)


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_capacity_failure_is_retried_and_logged_to_the_task(cls, aws, make_executor):
    ex = make_executor(cls, launch_type="FARGATE")
    ex.ecs.script["run_task"] = [{"tasks": [], "failures": [{"reason": "Capacity is unavailable at this time."}]}]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: ex.event_buffer.get(w.ti.key, ("",))[0] == "running", timeout=1)
    assert len(ex.ecs.of("run_task")) == 2
    retries = [x for e, x in task_events(ex, w.ti.key) if e == "ecs task submit retry"]
    assert retries and "Capacity is unavailable" in retries[0]


def test_capacity_failures_use_attempts_while_transient_ones_do_not(aws, make_executor):
    """Two capacity failures and any number of transient ones: the third capacity failure fails it."""
    ex = make_executor(EcsFargateExecutor, max_run_task_attempts=3)
    ex.ecs.script["run_task"] = [
        EndpointConnectionError(endpoint_url="https://ecs.us-east-1.amazonaws.com"),
        {"tasks": [], "failures": [{"reason": "RESOURCE:MEMORY"}]},
        client_error("ServerException", "internal error"),
        {"tasks": [], "failures": [{"reason": "RESOURCE:MEMORY"}]},
        EndpointConnectionError(endpoint_url="https://ecs.us-east-1.amazonaws.com"),
        {"tasks": [], "failures": [{"reason": "RESOURCE:CPU"}]},
    ]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: w.ti.key in ex.event_buffer)
    state, info = ex.event_buffer[w.ti.key]
    assert state == "failed"
    assert len(ex.ecs.of("run_task")) == 6
    assert "RESOURCE:MEMORY" in info and "RESOURCE:CPU" in info and "3 times" in info


def test_transient_retry_reuses_the_idempotency_token(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    ex.ecs.script["run_task"] = [EndpointConnectionError(endpoint_url="https://ecs")]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: w.ti.key in ex.event_buffer)
    first, second = ex.ecs.of("run_task")
    assert first["clientToken"] == second["clientToken"]


@pytest.mark.parametrize(
    "error, kind",
    [
        (client_error("ThrottlingException", "Rate exceeded"), SubmitErrorKind.THROTTLED),
        (client_error("AccessDeniedException", "no"), SubmitErrorKind.PERMANENT),
        (client_error("InvalidParameterException", "bad"), SubmitErrorKind.PERMANENT),
        (client_error("ClusterNotFoundException", "Cluster not found."), SubmitErrorKind.PERMANENT),
        (client_error("ClientException", "TaskDefinition not found."), SubmitErrorKind.PERMANENT),
        (client_error("ClientException", "You've reached the limit on the number of tasks you can run concurrently"), SubmitErrorKind.CAPACITY),
        (client_error("LimitExceededException", "limit"), SubmitErrorKind.CAPACITY),
        (client_error("ServerException", "oops"), SubmitErrorKind.TRANSIENT),
        (client_error("ExpiredTokenException", "expired"), SubmitErrorKind.TRANSIENT),
        (ParamValidationError(report="x"), SubmitErrorKind.PERMANENT),
        (NoCredentialsError(), SubmitErrorKind.TRANSIENT),
        (EndpointConnectionError(endpoint_url="https://ecs"), SubmitErrorKind.TRANSIENT),
        (KeyError("No such container found by container name: base"), SubmitErrorKind.PERMANENT),
        (client_error("SomethingNewException", "?"), SubmitErrorKind.UNKNOWN),
        (RuntimeError("unexpected"), SubmitErrorKind.UNKNOWN),
    ],
)
def test_classify_exception(error, kind):
    assert classify_exception(error) is kind


@pytest.mark.parametrize(
    "reasons, kind",
    [
        (["Capacity is unavailable at this time. Please try again later"], SubmitErrorKind.CAPACITY),
        (["RESOURCE:CPU"], SubmitErrorKind.CAPACITY),
        (["MISSING"], SubmitErrorKind.PERMANENT),
        (["AGENT"], SubmitErrorKind.TRANSIENT),
        (["SOMETHING_NEW"], SubmitErrorKind.UNKNOWN),
        (["AGENT", "SOMETHING_NEW"], SubmitErrorKind.UNKNOWN),
    ],
)
def test_classify_failure_reasons(reasons, kind):
    assert classify_failure_reasons(reasons) is kind



UNKNOWN = {
    "failure-reason": {"tasks": [], "failures": [{"arn": "x", "reason": "SOMETHING_NEW"}]},
    "exception": RuntimeError("an exception nobody classified"),
    "client-error-code": client_error("SomethingNewException", "new"),
    "empty-response": {"tasks": [], "failures": []},
}


@pytest.mark.parametrize("failure", list(UNKNOWN.values()), ids=list(UNKNOWN))
def test_unknown_failures_count_toward_max_run_task_attempts(failure, aws, make_executor):
    """Not retried until the token's deadline (about 570 s): failed after max_run_task_attempts calls."""
    ex = make_executor(EcsFargateExecutor, max_run_task_attempts=2)
    ex.ecs.script["run_task"] = [failure, failure, None]
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: w.ti.key in ex.event_buffer and ex.event_buffer[w.ti.key][0] != "running", timeout=3)
    state, info = ex.event_buffer[w.ti.key]
    assert state == "failed" and "2 times (unknown)" in info
    assert len(ex.ecs.of("run_task")) == 2
    first, second = ex.ecs.of("run_task")
    assert first["clientToken"] == second["clientToken"]  # a call ECS may have acted on is retried idempotently
