"""moto's ECS in server mode inside the pytest process, as strict as ECS (standins.moto_ecs), with
the faults of the throttling and outage scenarios (tests/e2e/scenarios.py)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import time

from standins.moto_ecs import ecs_stop_task, strict_run_task
from tests.e2e.fargate import workload_of
from tests.e2e.scenarios import (
    ACCOUNT,
    CLUSTER,
    OUTAGE_DAG,
    OUTAGE_SECONDS,
    REGION,
    THROTTLED_DAG,
    THROTTLES_PER_TASK,
    WORKER_CONTAINER,
    WORKER_LOG_GROUP,
    WORKER_LOG_STREAM_PREFIX,
    WORKER_TASK_FAMILY,
)


class MotoEcs:
    """moto in server mode, in this process, with the ECS resources the executor expects."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        self.throttled: dict[str, int] = {}  # ti id -> ThrottlingExceptions answered
        self.outage_started: float | None = None
        self.outage_refused: dict[str, int] = {}  # ti id/try -> 503s answered during the outage
        self.run_task_calls = 0
        self._lock = threading.Lock()
        self._patches: list[tuple[type, str, object]] = []

    def start(self) -> None:
        import boto3
        from moto.backends import get_backend
        from moto.moto_api import state_manager

        # moto advances a task's status by itself on every DescribeTasks; only the harness may.
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
        self._patch_backend()
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.backend = get_backend("ecs")[ACCOUNT][REGION]

        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name=REGION)
        ec2 = session.client("ec2", endpoint_url=self.url)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's awsvpc ENIs need it
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        self.security_group = ec2.create_security_group(
            GroupName="airflow-worker", Description="Airflow workers", VpcId=vpc
        )["GroupId"]
        self.ecs = session.client("ecs", endpoint_url=self.url)
        self.ecs.create_cluster(clusterName=CLUSTER)
        self.logs = session.client("logs", endpoint_url=self.url)
        self.logs.create_log_group(logGroupName=WORKER_LOG_GROUP)

    def register_worker_task_definition(self, environment: dict[str, str]) -> None:
        self.ecs.register_task_definition(
            family=WORKER_TASK_FAMILY,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="512",
            memory="1024",
            containerDefinitions=[
                {
                    "name": WORKER_CONTAINER,
                    "image": "airflow-e2e:local",
                    "memory": 1024,  # moto needs it on every container definition
                    "essential": True,
                    "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": WORKER_LOG_GROUP,
                            "awslogs-region": REGION,
                            "awslogs-stream-prefix": WORKER_LOG_STREAM_PREFIX,
                        },
                    },
                }
            ],
        )

    def _patch(self, cls: type, name: str, replacement) -> None:
        self._patches.append((cls, name, getattr(cls, name)))
        setattr(cls, name, replacement)

    def _patch_backend(self) -> None:
        from moto.ecs.models import EC2ContainerServiceBackend

        from moto.core.exceptions import JsonRESTError

        moto = self
        # ECS's rules where moto is lenient: no exit code before exit, no INACTIVE task definition.
        original_run_task = strict_run_task(EC2ContainerServiceBackend.run_task)

        class ServiceUnavailable(JsonRESTError):
            code = 503
        original_stop_task = EC2ContainerServiceBackend.stop_task

        run_task_signature = inspect.signature(original_run_task)

        @functools.wraps(original_run_task)
        def run_task(backend, *args, **kwargs):
            overrides = run_task_signature.bind(backend, *args, **kwargs).arguments.get("overrides") or {}
            with moto._lock:
                moto.run_task_calls += 1
                for override in overrides.get("containerOverrides", []):
                    ti = (workload_of(override.get("command") or []) or {}).get("ti") or {}
                    if ti.get("dag_id") == OUTAGE_DAG:
                        now = time.monotonic()
                        moto.outage_started = moto.outage_started or now
                        if now - moto.outage_started < OUTAGE_SECONDS:
                            key = f"{ti.get('id')}/{ti.get('try_number')}"
                            moto.outage_refused[key] = moto.outage_refused.get(key, 0) + 1
                            raise ServiceUnavailable("ServiceUnavailableException", "Service Unavailable (e2e outage)")
                    if ti.get("dag_id") == THROTTLED_DAG:
                        key = f"{ti.get('id')}/{ti.get('try_number')}"
                        if moto.throttled.get(key, 0) < THROTTLES_PER_TASK:
                            moto.throttled[key] = moto.throttled.get(key, 0) + 1
                            raise JsonRESTError("ThrottlingException", "Rate exceeded")
            return original_run_task(backend, *args, **kwargs)

        self._patch(EC2ContainerServiceBackend, "run_task", run_task)
        self._patch(EC2ContainerServiceBackend, "stop_task", ecs_stop_task(original_stop_task))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.stop()
        for cls, name, original in reversed(self._patches):
            setattr(cls, name, original)

