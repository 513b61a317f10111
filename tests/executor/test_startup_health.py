"""The start-up health check (``check_health_on_startup``) classifies its failure like any ECS call.

Permanent (access denied, no such cluster): the scheduler does not start, with the reason, as with the
stock executor. Transient (endpoint unreachable, 5xx, throttled): the stock executor raises and the
scheduler crash-loops through the outage; ours starts, and checks again until ECS answers.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from airflow.providers.amazon.aws.executors.ecs.ecs_executor import AwsEcsExecutor
from airflow_ecs_fargate.executor import EcsFargateExecutor
from tests.executor.conftest import BOTH_STOCK_FAILS, make_workload, settle_until


def client_error(code: str, message: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "StopTask"
    )


HEALTHY = client_error("InvalidParameterException", "The referenced task was not found.")

TRANSIENT = {
    "unreachable": EndpointConnectionError(endpoint_url="https://ecs.us-east-1.amazonaws.com/"),
    "5xx": client_error("ServiceUnavailableException", "Service unavailable", 503),
    "throttled": client_error("ThrottlingException", "Rate exceeded"),
}
PERMANENT = {
    "access-denied": client_error("AccessDeniedException", "not authorized to perform: ecs:StopTask"),
    "no-cluster": client_error("ClusterNotFoundException", "Cluster not found."),
}


def started(cls, make_executor, script):
    ex = make_executor(cls, check_health_on_startup="True")
    ex.IS_BOTO_CONNECTION_HEALTHY = False
    ex.ecs.script["stop_task"] = list(script)
    ex.start()
    return ex


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
@pytest.mark.parametrize("error", list(TRANSIENT.values()), ids=list(TRANSIENT))
def test_a_transient_failure_lets_the_executor_start_and_it_keeps_checking(cls, error, aws, make_executor, capfd):
    ex = started(cls, make_executor, [error, error, HEALTHY])
    out = ""
    deadline = time.monotonic() + 5
    while "ECS answers again" not in out:
        assert time.monotonic() < deadline, out
        time.sleep(0.01)
        out += capfd.readouterr().out
    assert len(ex.ecs.of("stop_task")) == 3
    lines = [line for line in out.splitlines() if "health check has failed" in line]
    assert len(lines) == 2 and all("warning" in line for line in lines), out
    assert "starting anyway" in lines[0] and "still checking" in lines[1]
    # Launches go on meanwhile (as transient RunTask failures, retried).
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: ex.event_buffer.get(w.ti.key, ("",))[0] == "running")


@pytest.mark.parametrize("cls", [AwsEcsExecutor, EcsFargateExecutor], ids=["stock", "ours"])
@pytest.mark.parametrize("error", list(PERMANENT.values()), ids=list(PERMANENT))
def test_a_permanent_failure_stops_the_scheduler_with_the_reason(cls, error, aws, make_executor):
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(AirflowException, match=error.response["Error"]["Message"]):
        started(cls, make_executor, [error])


def test_a_healthy_start_makes_one_call(aws, make_executor):
    ex = started(EcsFargateExecutor, make_executor, [HEALTHY])
    assert len(ex.ecs.of("stop_task")) == 1 and ex.IS_BOTO_CONNECTION_HEALTHY


def test_rechecks_stop_when_the_executor_ends(aws, make_executor):
    unreachable = TRANSIENT["unreachable"]
    ex = started(EcsFargateExecutor, make_executor, [unreachable] * 1000)
    time.sleep(0.2)
    ex.end()
    calls = len(ex.ecs.of("stop_task"))
    time.sleep(0.2)
    assert len(ex.ecs.of("stop_task")) == calls
