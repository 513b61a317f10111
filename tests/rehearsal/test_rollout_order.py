"""LocalDeployment.roll_service replaces a service's tasks as an ECS rolling update does with the
template's minimum healthy and maximum percent (fake tasks: no podman)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from local_ecs.scenario import LocalDeployment
from local_ecs.taskdef import ContainerSpec, HealthCheck, TaskSpec


class _Run:
    def __init__(self, healthy_after: float):
        self.spec = SimpleNamespace(health_check=HealthCheck(["CMD", "true"]))
        self.ready_at = time.monotonic() + healthy_after

    @property
    def health(self):
        return "HEALTHY" if time.monotonic() >= self.ready_at else "UNKNOWN"


class _Task:
    def __init__(self, task_id: str, healthy_after: float):
        self.task_id, self.status = task_id, "RUNNING"
        self.containers = {"main": _Run(healthy_after)}


class _Deployment(LocalDeployment):
    """Only what roll_service touches; tasks are fakes that become healthy after 1.5 s."""

    def __init__(self, settings: dict, ports: list[int]):
        container = ContainerSpec(name="scheduler", image="i", ports=ports)
        self.service_specs = {"Svc": TaskSpec(family="f", cpu=None, memory=None, task_role_arn=None,
                                              execution_role_arn=None, volumes=[], containers=[container])}
        self.service_settings = {"Svc": settings}
        self.services, self.service_of, self.retired, self._serial = {}, {}, [], 0
        self.running_counts: list[tuple[int, int]] = []  # (running, healthy) after each change
        for _ in range(settings["desired"]):
            self._start_service_task("Svc", healthy_after=0)

    def check(self):
        pass

    def _note(self):
        tasks = list(self.services.values())
        self.running_counts.append((len(tasks), sum(1 for t in tasks if self.task_healthy(t))))

    def _start_service_task(self, logical_id, key=None, healthy_after=1.5):
        self._serial += 1
        key = key or f"{logical_id}#{self._serial}"
        self.services[key] = _Task(f"scheduler-{self._serial}", healthy_after)
        self.service_of[key] = logical_id
        self._note()
        return key

    def _stop_service_tasks(self, keys, reason, timeout=300):
        for key in keys:
            self.retired.append(self.services.pop(key))
        self._note()


def test_minimum_100_maximum_200_starts_the_new_task_and_stops_the_old_once_the_new_is_healthy():
    deployment = _Deployment({"desired": 1, "minimum_healthy_percent": 100, "maximum_percent": 200}, ports=[])
    events = deployment.roll_service("Svc", timeout=60)
    assert events == ["start scheduler-2", "healthy scheduler-2", "stop scheduler-1"]
    # Never fewer than one healthy task, never more than two tasks.
    assert all(running <= 2 for running, _ in deployment.running_counts)
    assert all(healthy >= 1 for _, healthy in deployment.running_counts[1:])


def test_minimum_50_with_two_tasks_replaces_one_at_a_time():
    deployment = _Deployment({"desired": 2, "minimum_healthy_percent": 50, "maximum_percent": 100}, ports=[])
    events = deployment.roll_service("Svc", timeout=60)
    assert [e.split()[0] for e in events].count("start") == 2
    assert events[0].startswith("stop")  # maximum 100 %: room only after a stop
    assert all(running <= 2 for running, _ in deployment.running_counts)
    assert all(healthy >= 1 for _, healthy in deployment.running_counts)
    assert len(deployment.services) == 2 and len(deployment.retired) == 2


def test_a_service_listening_on_a_port_is_replaced_stop_first_on_the_host_network():
    deployment = _Deployment({"desired": 1, "minimum_healthy_percent": 100, "maximum_percent": 200}, ports=[8080])
    events = deployment.roll_service("Svc", timeout=60)
    assert events == ["stop scheduler-1", "start scheduler-2", "healthy scheduler-2"]


def test_a_rollout_that_does_not_finish_fails_naming_the_service():
    deployment = _Deployment({"desired": 1, "minimum_healthy_percent": 100, "maximum_percent": 200}, ports=[])
    deployment._start_service_task = lambda logical_id, key=None: _Deployment._start_service_task(
        deployment, logical_id, key, healthy_after=3600)
    with pytest.raises(Exception, match="the rollout of scheduler did not finish"):
        deployment.roll_service("Svc", timeout=2)
