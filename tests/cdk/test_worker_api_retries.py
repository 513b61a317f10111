"""Workers ride out an Execution API outage as long as ECS takes to replace the api-server's task,
and give up before the scheduler's heartbeat timeout would fail them anyway."""

from __future__ import annotations

import inspect
import json

from airflow.configuration import conf
from airflow.sdk.api import client as sdk_client

from tests.cdk.conftest import resources_of

#: The shortest api-server outage a worker must ride out (seconds): ECS replacing a lone
#: api-server task (provision, pull, start, health check), more than the 31 s of Airflow's defaults.
MUST_RIDE_OUT = 120


def _worker_containers(synthesized) -> list[dict]:
    found = []
    for stack in ("cluster", "airflow"):
        template = synthesized.template(stack).to_json()
        for definition in resources_of(template, "AWS::ECS::TaskDefinition").values():
            for container in definition["Properties"]["ContainerDefinitions"]:
                if container["Name"] == "worker":
                    found.append(container)
    return found


def _bounds(retries: int, wait_min: float, wait_max: float) -> tuple[float, float]:
    """The shortest and longest time (seconds) a request retries: tenacity's
    ``wait_random_exponential`` draws wait ``n`` (1-based) between ``wait_min`` and
    ``max(wait_min, min(wait_max, 2 ** (n - 1)))``; ``stop_after_attempt(retries)`` makes
    ``retries - 1`` waits."""
    highs = [max(wait_min, min(wait_max, 2 ** (n - 1))) for n in range(1, retries)]
    return wait_min * (retries - 1), sum(highs)


def test_the_task_sdk_retries_the_way_the_bounds_assume():
    source = inspect.getsource(sdk_client)
    assert "stop=stop_after_attempt(API_RETRIES)" in source
    assert "wait=wait_random_exponential(min=API_RETRY_WAIT_MIN, max=API_RETRY_WAIT_MAX)" in source
    assert 'conf.getint("workers", "execution_api_retries")' in source


def test_every_worker_rides_out_an_api_server_replacement_and_gives_up_before_the_heartbeat_timeout(any_config):
    heartbeat_timeout = conf.getint("scheduler", "task_instance_heartbeat_timeout")
    containers = _worker_containers(any_config)
    assert containers
    for container in containers:
        env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
        assert "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT" not in env
        shortest, longest = _bounds(int(env["AIRFLOW__WORKERS__EXECUTION_API_RETRIES"]),
                                    float(env["AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN"]),
                                    float(env["AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX"]))
        assert shortest >= MUST_RIDE_OUT, json.dumps(env, indent=1)
        assert longest < heartbeat_timeout


def test_airflows_defaults_would_give_up_within_a_minute():
    """The reason for the setting: Airflow's own defaults stop retrying after about 31 s."""
    defaults = (conf.get_default_value("workers", "execution_api_retries"),
                conf.get_default_value("workers", "execution_api_retry_wait_min"),
                conf.get_default_value("workers", "execution_api_retry_wait_max"))
    shortest, longest = _bounds(int(defaults[0]), float(defaults[1]), float(defaults[2]))
    assert longest < MUST_RIDE_OUT
