"""Fixtures for the executor tests: real Airflow (no DB needed), moto ECS, an ECS client proxy.

AIRFLOW_HOME must point at a scratch directory before Airflow is imported, so it is set here,
at import time of this conftest (pytest imports it before the test modules).
"""

from __future__ import annotations

import os
import tempfile

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-executor-tests-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = "aws://"
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_SESSION_TOKEN"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)

import datetime  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import weakref  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.backends import get_backend  # noqa: E402
from moto.moto_api import state_manager  # noqa: E402

from airflow.executors.workloads import BundleInfo, ExecuteTask, TaskInstanceDTO  # noqa: E402
from airflow.models.taskinstancekey import TaskInstanceKey  # noqa: E402
from airflow.providers.amazon.aws.executors.ecs.ecs_executor import AwsEcsExecutor  # noqa: E402
from airflow_ecs_fargate.executor import EcsFargateExecutor  # noqa: E402

ACCOUNT = "123456789012"
CLUSTER = "airflow"
CONTAINER = "base"
TASK_FAMILY = "airflow-worker"

#: Parametrize over both classes; the stock side is expected to fail (strict), which proves
#: the stock defect is real and that the test can fail.
STOCK_DEFECT = pytest.param(AwsEcsExecutor, marks=pytest.mark.xfail(strict=True, reason="stock defect"), id="stock")
OURS = pytest.param(EcsFargateExecutor, id="ours")
BOTH_STOCK_FAILS = [STOCK_DEFECT, OURS]
BOTH_PASS = [pytest.param(AwsEcsExecutor, id="stock"), OURS]


@dataclass
class Aws:
    """The moto account the tests run against."""

    region: str
    subnet: str
    security_group: str
    ecs: Any
    task_definition_arn: str

    def backend(self, region: str | None = None):
        return get_backend("ecs")[ACCOUNT][region or self.region]

    def task(self, arn: str):
        for tasks in self.backend(arn.split(":")[3]).tasks.values():
            if arn in tasks:
                return tasks[arn]
        raise KeyError(arn)

    def stop_task(
        self,
        arn: str,
        *,
        started: bool = True,
        exit_codes: dict[str, int | None] | None = None,
        reasons: dict[str, str] | None = None,
        stopped_reason: str = "Essential container in task exited",
        stop_code: str | None = "EssentialContainerExited",
    ) -> None:
        """Finish a moto task the way ECS would (moto never finishes tasks by itself)."""
        task = self.task(arn)
        task.started_at = datetime.datetime.now(datetime.timezone.utc) if started else None
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        task.stopped_reason = stopped_reason
        if stop_code:
            task.stop_code = stop_code
        exit_codes = exit_codes if exit_codes is not None else {CONTAINER: 0}
        for container in task.containers:
            container.exitCode = exit_codes.get(container.name) if exit_codes else None
            if reasons and container.name in reasons:
                container.reason = reasons[container.name]

    def start_task(self, arn: str) -> None:
        self.task(arn).started_at = datetime.datetime.now(datetime.timezone.utc)

    def add_sidecar(self, arn: str, name: str = "sidecar") -> None:
        """moto creates only the first container of a task definition; add another one."""
        from moto.ecs.models import Container

        task = self.task(arn)
        td = self.backend().describe_task_definition(task.task_definition_arn)
        extra = Container(td)
        extra.name = name
        task.containers.append(extra)


def _make_network(region: str) -> tuple[str, str]:
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="workers", Description="workers", VpcId=vpc)["GroupId"]
    return subnet, sg


def make_ecs(region: str, subnet: str, sg: str, **cluster_kwargs) -> Aws:
    """Reset moto's ECS backend of ``region`` and create the cluster and task definition."""
    get_backend("ecs")[ACCOUNT][region].reset()
    ecs = boto3.client("ecs", region_name=region)
    ecs.create_cluster(clusterName=CLUSTER, **cluster_kwargs)
    td = ecs.register_task_definition(
        family=TASK_FAMILY,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": CONTAINER, "image": "airflow:test", "memory": 512, "essential": True},
            {"name": "sidecar", "image": "sidecar:test", "memory": 64, "essential": False},
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return Aws(region, subnet, sg, ecs, td)


@pytest.fixture(scope="package")
def moto_session():
    """One moto session for the executor tests (creating moto's EC2 backend costs about 2 s).

    Package scope, not session: while a ``mock_aws`` is active, a later ``mock_aws()`` does not
    reset moto's state, so tests of other packages run after these would see their tasks."""
    with mock_aws():
        # moto advances lastStatus on every DescribeTasks (RUNNING -> ... -> STOPPED) while
        # desiredStatus stays RUNNING; ECS does not. Freeze it: tests drive the lifecycle.
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
        networks = {}

        def network(region: str) -> tuple[str, str]:
            if region not in networks:
                networks[region] = _make_network(region)
            return networks[region]

        try:
            yield network
        finally:
            state_manager.unset_transition("ecs::task")


_CLIENTS: dict[tuple, Any] = {}


class CachedEcsHook:
    """EcsHook whose ``.conn`` is built once per (conn_id, region): building a boto3 client costs
    about 0.3 s, which dominated the suite. Connection and region are still honoured. The
    stock ``ecs_executor_config.EcsHook`` (its bare cluster lookup, defect 9) is left alone."""

    def __init__(self, aws_conn_id: str | None = "aws_default", region_name: str | None = None, config=None, **kwargs):
        self._config = config
        self._key = (aws_conn_id, region_name, getattr(config, "max_pool_connections", None), repr(getattr(config, "retries", None)))

    @property
    def conn(self):
        if self._key not in _CLIENTS:
            from airflow.providers.amazon.aws.hooks.ecs import EcsHook

            _CLIENTS[self._key] = EcsHook(aws_conn_id=self._key[0], region_name=self._key[1], config=self._config).conn
        return _CLIENTS[self._key]


@pytest.fixture(scope="package", autouse=True)
def _cached_clients(moto_session):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("airflow.providers.amazon.aws.executors.ecs.ecs_executor.EcsHook", CachedEcsHook)
        mp.setattr("airflow_ecs_fargate.executor.EcsHook", CachedEcsHook)
        yield


@pytest.fixture
def aws(moto_session):
    """A fresh ECS backend (cluster + two-container task definition) in a moto VPC."""
    return make_ecs("us-east-1", *moto_session("us-east-1"))


class EcsProxy:
    """Wraps a boto3 ECS client: records calls and injects latency, errors or canned responses.

    ``script[op]`` is a list consumed one item per call: an exception (raised), a dict (returned
    instead of calling moto) or None (call moto). ``latency[op]`` is seconds to sleep per call.
    """

    def __init__(self, client):
        self._client = client
        self.calls: list[tuple[str, dict, float, str]] = []
        self.script: dict[str, list] = {}
        self.latency: dict[str, float] = {}
        self._lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    @property
    def meta(self):
        return self._client.meta

    def __getattr__(self, name):
        target = getattr(self._client, name)
        if name.startswith("_") or not callable(target):
            return target

        def call(*args, **kwargs):
            with self._lock:
                self.calls.append((name, kwargs, time.monotonic(), threading.current_thread().name))
                item = self.script[name].pop(0) if self.script.get(name) else None
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            try:
                if self.latency.get(name):
                    time.sleep(self.latency[name])
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, dict):
                    return item
                return target(*args, **kwargs)
            finally:
                with self._lock:
                    self.active -= 1

        return call

    def of(self, op: str) -> list[dict]:
        return [kw for name, kw, _, _ in self.calls if name == op]


@pytest.fixture
def configure(monkeypatch, aws):
    """Set ``[aws_ecs_executor]`` keys through AIRFLOW__AWS_ECS_EXECUTOR__* env vars."""

    def _configure(**settings):
        base = {
            "cluster": CLUSTER,
            "container_name": CONTAINER,
            "task_definition": TASK_FAMILY,
            "launch_type": "FARGATE",
            "subnets": aws.subnet,
            "security_groups": aws.security_group,
            "region_name": aws.region,
            "check_health_on_startup": "False",
            # Fast retries so tests do not wait; the production defaults are in settings.py.
            "submit_retry_base_seconds": "0.02",
            "submit_retry_max_seconds": "0.05",
            # One heartbeat takes every queued workload in (the first task event configures
            # SQLAlchemy's mappers, seconds): tests of the budget set it themselves.
            "queue_budget_seconds": "60",
        }
        base.update(settings)
        for key, value in base.items():
            env = f"AIRFLOW__AWS_ECS_EXECUTOR__{key.upper()}"
            if value is None:
                monkeypatch.delenv(env, raising=False)
            else:
                monkeypatch.setenv(env, str(value))

    _configure()
    return _configure


@pytest.fixture
def make_executor(configure):
    """Build an executor of the given class with its ECS client wrapped in an EcsProxy."""
    made = []

    def _make(cls, parallelism: int = 512, **settings):
        if settings:
            configure(**settings)
        executor = cls(parallelism=parallelism)
        executor.ecs = EcsProxy(executor.ecs)
        record_task_events(executor)
        # Skip the stock startup health check (it calls StopTask on the heartbeat when unhealthy).
        executor.IS_BOTO_CONNECTION_HEALTHY = True
        made.append(executor)
        return executor

    yield _make
    for executor in made:
        if isinstance(executor, EcsFargateExecutor):
            executor.close()


def make_workload(task_id: str = "t1", executor_config: dict | None = None, try_number: int = 1) -> ExecuteTask:
    """An ExecuteTask workload as the scheduler would queue it, built without a database."""
    ti = TaskInstanceDTO(
        id=uuid.uuid4(),
        task_id=task_id,
        dag_id="dag",
        run_id="run",
        try_number=try_number,
        dag_version_id=uuid.uuid4(),
        map_index=-1,
        queue="default",
        pool_slots=1,
        priority_weight=1,
        executor_config=executor_config,
    )
    return ExecuteTask(
        ti=ti,
        dag_rel_path="dag.py",
        token=f"token-{task_id}",
        log_path=f"dag/{task_id}.log",
        bundle_info=BundleInfo(name="dags-folder"),
    )


def settle(executor, rounds: int = 1) -> None:
    """One scheduler loop; for ours also wait for the background calls it started and apply them."""
    for _ in range(rounds):
        executor.heartbeat()
        if isinstance(executor, EcsFargateExecutor):
            executor.flush(10)


def settle_until(executor, predicate, timeout: float = 5.0) -> None:
    """Run scheduler loops until ``predicate()`` holds (retries wait out their backoff)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        settle(executor)
        time.sleep(0.005)


def poll(executor) -> None:
    """Make the executor read ECS task state now (ours polls on an interval, stock every loop)."""
    if isinstance(executor, EcsFargateExecutor):
        executor.poll_now()
    settle(executor)


def arn_of(executor, key) -> str:
    if isinstance(executor, EcsFargateExecutor):
        arn = executor.tracker.arn_for(key)
        assert arn is not None, f"no ECS task tracked for {key}"
        return arn
    return executor.active_workers.key_to_arn[key]


#: executor -> (key, event, extra) of each task event it logged, in order (see record_task_events).
_TASK_EVENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def record_task_events(executor) -> None:
    """Record every task event ``executor`` hands Airflow (``log_task_event``, the public hook of
    both executors), after Airflow's own ``log_task_event`` took it; callback keys are skipped, as
    Airflow skips them."""
    events: list[tuple[Any, str, str]] = []
    _TASK_EVENTS[executor] = events
    logged = executor.log_task_event

    def log_task_event(*, event: str, extra: str, ti_key) -> None:
        logged(event=event, extra=extra, ti_key=ti_key)
        if isinstance(ti_key, TaskInstanceKey):
            events.append((ti_key, event, extra))

    executor.log_task_event = log_task_event


def task_events(executor, key=None) -> list[tuple[str, str]]:
    """(event, extra) of the task events ``executor`` logged, for the try of ``key`` (all if None)."""
    return [
        (event, extra)
        for logged_key, event, extra in _TASK_EVENTS[executor]
        if key is None or (logged_key.task_id == key.task_id and logged_key.try_number == key.try_number)
    ]


@pytest.fixture
def queue_and_launch():
    """Queue workloads on an executor and run one loop so they are launched."""

    def _go(executor, *workloads):
        for w in workloads:
            executor.queue_workload(w, session=None)
        settle(executor)

    return _go


__all__ = [
    "BOTH_PASS",
    "BOTH_STOCK_FAILS",
    "CONTAINER",
    "EcsProxy",
    "arn_of",
    "make_workload",
    "poll",
    "settle",
    "task_events",
]
