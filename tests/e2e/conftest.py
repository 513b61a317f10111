"""Session fixtures for the end-to-end test: PostgreSQL, moto ECS, real Airflow 3 processes, fake Fargate.

What runs, all on 127.0.0.1:
- a PostgreSQL server in a temporary directory (as the `postgres` OS user when pytest runs as root);
- moto's ThreadedMotoServer inside this pytest process, serving ECS and EC2;
- `airflow db migrate`, then `airflow api-server`, `airflow dag-processor` and `airflow scheduler`
  as subprocesses, the scheduler hosting EXECUTOR_CLASS pointed at moto;
- FakeFargate (fargate.py), a thread that runs the containers of the ECS tasks moto holds.

Set E2E_KEEP=1 to keep the temporary directory (process logs, container logs) after the session.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import inspect
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from bench.strict_moto import strict_run_task
from tests.e2e.fargate import Container, FakeFargate, Kill, tail, workload_of

# The executor under test. The stock one is
# "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor".
EXECUTOR_CLASS = "airflow_ecs_fargate.executor.EcsFargateExecutor"
STOCK_EXECUTOR_CLASS = "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"

DAGS_FOLDER = Path(__file__).parent / "dags"
E2E_DAG_IDS = sorted(p.stem for p in DAGS_FOLDER.glob("e2e_*.py"))
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
CLUSTER = "airflow-e2e"
WORKER_CONTAINER = "worker"
WORKER_TASK_FAMILY = "airflow-worker"
# Two cores: each execute_workload costs 3-5 s of CPU, beside scheduler, api-server and PostgreSQL.
MAX_CONTAINERS = int(os.environ.get("E2E_MAX_CONTAINERS", "4"))
# The OOM scenario: the container of this task is killed while the task's own code runs (a moment
# after the task runner logs the end of its pre-execute group).
OOM_TASK = ("e2e_oom", "hog_memory")
OOM_KILL = dict(after_output='"event":"::endgroup::"', after_seconds=1.0, deadline_seconds=90.0)
# The throttling scenario: the first THROTTLES_PER_TASK RunTask requests for each task of this DAG
# answer ThrottlingException. That is more than botocore's own retries absorb (the executor's client:
# [aws_ecs_executor] api_retry_mode standard, api_max_attempts 3), so the executor itself sees
# throttling at least once per task.
THROTTLED_DAG = "e2e_burst"
THROTTLES_PER_TASK = 6
# The outage scenario: from the first RunTask for a task of this DAG, every RunTask for its tasks
# answers HTTP 503 ServiceUnavailableException for OUTAGE_SECONDS (botocore's own retries included).
OUTAGE_DAG = "e2e_outage"
OUTAGE_SECONDS = 60.0
# Where the workers' awslogs driver writes (the task definition's logConfiguration).
WORKER_LOG_GROUP = "/e2e/airflow-workers"
WORKER_LOG_STREAM_PREFIX = "worker"
TERMINAL_TI_STATES = {"success", "failed", "skipped", "upstream_failed", "removed"}

log = logging.getLogger("e2e")
_ACTIVE_STACK: "AirflowStack | None" = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# -- temporary directory -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_dir():
    path = Path(tempfile.mkdtemp(prefix="airflow-e2e-"))
    path.chmod(0o755)  # the postgres OS user must reach its data directory inside
    yield path
    if os.environ.get("E2E_KEEP"):
        print(f"\ne2e: kept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


# -- PostgreSQL ----------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.fail(f"PostgreSQL's {name} not found: run `bash scripts/ensure-postgres.sh` first")
    return found[-1]


class Postgres:
    def __init__(self, root: Path):
        self.data = root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"
        # PostgreSQL refuses to run as root: run it as the postgres OS user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        self.data.mkdir(mode=0o700)
        if self.as_user:
            shutil.chown(self.data, "postgres", "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c max_connections=200 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.data / "server.log"),
                  "-w", "-t", "60", "start")
        with self.connect("postgres") as conn:
            conn.cursor().execute("CREATE DATABASE airflow")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    @contextlib.contextmanager
    def connect(self, dbname: str = "airflow"):
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def query(self, sql: str, params=()) -> list[tuple]:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def postgres(e2e_dir):
    server = Postgres(e2e_dir)
    server.start()
    yield server
    server.stop()


# -- moto ECS ------------------------------------------------------------------------------------


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
        from moto.ecs.exceptions import InvalidParameterException
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

        def stop_task(backend, cluster_str, task_str, reason):
            # moto answers 500 for an unknown task; ECS answers InvalidParameterException, which the
            # executors' startup health check relies on.
            try:
                return original_stop_task(backend, cluster_str, task_str, reason)
            except InvalidParameterException:
                raise
            except Exception as error:
                if "Could not find task" in str(error) or "has no registered tasks" in str(error):
                    raise InvalidParameterException("The referenced task was not found.") from error
                raise

        self._patch(EC2ContainerServiceBackend, "run_task", run_task)
        self._patch(EC2ContainerServiceBackend, "stop_task", stop_task)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.stop()
        for cls, name, original in reversed(self._patches):
            setattr(cls, name, original)


@pytest.fixture(scope="session")
def moto_ecs():
    moto = MotoEcs()
    moto.start()
    yield moto
    moto.stop()


# -- Airflow -------------------------------------------------------------------------------------


def chaos(container: Container) -> Kill | None:
    ti = (container.workload or {}).get("ti") or {}
    if (ti.get("dag_id"), ti.get("task_id")) == OOM_TASK:
        return Kill(**OOM_KILL)
    return None


class AirflowStack:
    def __init__(self, root: Path, postgres: Postgres, moto: MotoEcs):
        self.root = root
        self.postgres = postgres
        self.moto = moto
        self.logs = root / "process-logs"
        self.logs.mkdir()
        self.home = root / "airflow-home"
        self.home.mkdir()
        (self.home / "airflow.cfg").write_text("")  # everything comes from the environment below
        self.task_logs = root / "task-logs"
        self.task_logs.mkdir()
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.execution_api_url = f"{self.api_url}/execution/"
        self.bin = Path(sys.executable).parent
        self.procs: dict[str, subprocess.Popen] = {}
        self.log_files: dict[str, Path] = {}
        self.scheduler_generation = 0
        self.fargate: FakeFargate | None = None
        self._trigger_counter = 0

        from cryptography.fernet import Fernet

        path = f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
        # What a worker container gets in the real deployment: the Execution API URL, DAG code and
        # (stand-in for remote) logging; no database, no fernet key, no JWT secret, no AWS keys.
        self.worker_env = {
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": self.execution_api_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Its own disk, as on Fargate: the api-server cannot read it, only CloudWatch (awslogs).
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(root / "worker-task-logs"),
            "CONNECTION_CHECK_MAX_COUNT": "0",
        }
        worker_home = root / "worker-home"
        worker_home.mkdir()
        (worker_home / "airflow.cfg").write_text("")
        # What the container image itself provides.
        self.container_base_env = {
            "PATH": path,
            "HOME": str(worker_home),
            "AIRFLOW_HOME": str(worker_home),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }
        self.env = {
            "PATH": path,
            "HOME": os.environ.get("HOME", str(root)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": self.execution_api_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": EXECUTOR_CLASS,
            "AIRFLOW__CORE__PARALLELISM": "32",
            # The REST API without a login (SimpleAuthManager), for reading task logs in the tests.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.task_logs),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            # Short intervals, so the test is fast.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            # The ECS executor, pointed at moto.
            "AIRFLOW__AWS_ECS_EXECUTOR__REGION_NAME": REGION,
            "AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER": CLUSTER,
            "AIRFLOW__AWS_ECS_EXECUTOR__CONTAINER_NAME": WORKER_CONTAINER,
            "AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION": WORKER_TASK_FAMILY,
            "AIRFLOW__AWS_ECS_EXECUTOR__LAUNCH_TYPE": "FARGATE",
            "AIRFLOW__AWS_ECS_EXECUTOR__SUBNETS": moto.subnet,
            "AIRFLOW__AWS_ECS_EXECUTOR__SECURITY_GROUPS": moto.security_group,
            "AIRFLOW__AWS_ECS_EXECUTOR__ASSIGN_PUBLIC_IP": "False",
            # EcsFargateExecutor's DescribeTasks round (default 10 s); the stock one ignores it.
            "AIRFLOW__AWS_ECS_EXECUTOR__DESCRIBE_TASKS_INTERVAL_SECONDS": "2",
            # Live logs of running tasks: the api-server's executor reads the workers' awslogs streams.
            "AIRFLOW__AWS_ECS_EXECUTOR__WORKER_LOG_GROUP": WORKER_LOG_GROUP,
            "AIRFLOW__AWS_ECS_EXECUTOR__WORKER_LOG_STREAM_PREFIX": WORKER_LOG_STREAM_PREFIX,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_ENDPOINT_URL_ECS": moto.url,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    # -- processes ---------------------------------------------------------------------------

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.bin / "airflow"), *args], env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode:
            raise RuntimeError(
                f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
            )
        return result

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        path = self.logs / f"{name}.log"
        with open(path, "ab") as out:
            proc = subprocess.Popen([str(self.bin / "airflow"), *args], env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        self.log_files[name] = path
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def start_scheduler(self) -> str:
        self.scheduler_generation += 1
        name = f"scheduler-{self.scheduler_generation}"
        self.spawn(name, "scheduler")
        return name

    @property
    def scheduler(self) -> str:
        return f"scheduler-{self.scheduler_generation}"

    def start(self) -> None:
        started = time.monotonic()
        self.run("db", "migrate")
        log.info("db migrate took %.1fs", time.monotonic() - started)
        self.moto.register_worker_task_definition(self.worker_env)
        self.fargate = FakeFargate(self.moto.backend, CLUSTER, self.root / "containers",
                                   self.container_base_env, max_running=MAX_CONTAINERS, chaos=chaos,
                                   logs_client=self.moto.logs)
        self.fargate.start()
        self.spawn("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port),
                   "--workers", "1")
        self.spawn("dag-processor", "dag-processor")
        self.start_scheduler()
        wait_until(self._api_healthy, 120, what=f"the api-server on {self.api_url}")
        wait_until(self._dags_parsed, 180, what=f"the dag-processor to serialize {E2E_DAG_IDS}")

    def _api_healthy(self) -> bool:
        self.assert_alive()
        try:
            with urllib.request.urlopen(f"{self.api_url}/api/v2/monitor/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def _dags_parsed(self) -> bool:
        self.assert_alive()
        rows = self.postgres.query("SELECT dag_id FROM serialized_dag")
        return set(E2E_DAG_IDS) <= {row[0] for row in rows}

    def assert_alive(self) -> None:
        for name in ("api-server", "dag-processor", self.scheduler):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail(self.log_files[name], 80)}")

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)
        if self.fargate:
            self.fargate.stop()

    # -- DAG runs ----------------------------------------------------------------------------

    def trigger(self, *dag_ids: str) -> dict[str, str]:
        """Trigger each DAG once (in parallel CLI processes); returns dag_id -> run_id."""
        procs = {}
        for dag_id in dag_ids:
            self._trigger_counter += 1
            run_id = f"e2e__{dag_id}__{self._trigger_counter}"
            procs[dag_id] = (run_id, subprocess.Popen(
                [str(self.bin / "airflow"), "dags", "trigger", dag_id, "--run-id", run_id],
                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        runs = {}
        for dag_id, (run_id, proc) in procs.items():
            output, _ = proc.communicate(timeout=180)
            if proc.returncode:
                raise RuntimeError(f"airflow dags trigger {dag_id} exited {proc.returncode}:\n{output[-4000:]}")
            runs[dag_id] = run_id
        return runs

    def task_instances(self, dag_id: str, run_id: str) -> dict[tuple[str, int], dict]:
        rows = self.postgres.query(
            "SELECT task_id, map_index, state, try_number, id::text FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            (dag_id, run_id),
        )
        return {(r[0], r[1]): {"state": r[2], "try_number": r[3], "id": r[4]} for r in rows}

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.postgres.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s",
                                   (dag_id, run_id))
        return rows[0][0] if rows else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[tuple[str, int], dict]:
        """Wait until the run is finished and every one of its task instances is in a final state."""

        def finished():
            self.assert_alive()
            tis = self.task_instances(dag_id, run_id)
            done = self.run_state(dag_id, run_id) in ("success", "failed") and tis and all(
                ti["state"] in TERMINAL_TI_STATES for ti in tis.values())
            return tis if done else None

        try:
            return wait_until(finished, timeout, interval=1.0, what=f"run {run_id} to finish")
        except TimeoutError as error:
            tis = self.task_instances(dag_id, run_id)
            stuck = {f"{k[0]}[{k[1]}]": v["state"] for k, v in tis.items() if v["state"] not in TERMINAL_TI_STATES}
            raise AssertionError(
                f"{error}: dag run state {self.run_state(dag_id, run_id)!r}; "
                f"{len(stuck)} of {len(tis)} task instances not final: {stuck}"
            ) from None

    def events(self, dag_id: str) -> list[tuple[str, str, str]]:
        """Task events (Airflow 3's `log` table, where `log_task_event` writes)."""
        return self.postgres.query(
            "SELECT coalesce(task_id, ''), event, coalesce(extra, '') FROM log WHERE dag_id = %s ORDER BY id",
            (dag_id,),
        )

    # -- diagnostics -------------------------------------------------------------------------

    def diagnostics(self, lines: int = 60) -> str:
        out = [f"e2e directory: {self.root} (set E2E_KEEP=1 to keep it)"]
        for name, proc in self.procs.items():
            status = "running" if proc.poll() is None else f"exited {proc.returncode}"
            n = lines if name.startswith("scheduler") else lines // 3
            out.append(f"===== {name} ({status}), last {n} lines of {self.log_files[name]}")
            out.append(tail(self.log_files[name], n))
        with contextlib.suppress(Exception):
            rows = self.postgres.query(
                "SELECT dag_id, run_id, state FROM dag_run ORDER BY id")
            out.append("===== dag runs")
            out += [f"    {r}" for r in rows]
            rows = self.postgres.query(
                "SELECT dag_id, state, count(*) FROM task_instance GROUP BY dag_id, state ORDER BY 1, 2")
            out.append("===== task instances by state")
            out += [f"    {r}" for r in rows]
            rows = self.postgres.query(
                "SELECT dttm, dag_id, task_id, map_index, event, left(extra, 300) FROM log "
                "WHERE event LIKE 'ecs%' ORDER BY id DESC LIMIT 20")
            out.append("===== last executor task events (log table)")
            out += [f"    {r}" for r in reversed(rows)]
        if self.fargate:
            out.append("===== " + self.fargate.summary())
        out.append(f"===== moto: {self.moto.run_task_calls} RunTask calls, "
                   f"{sum(self.moto.throttled.values())} answered ThrottlingException, "
                   f"{sum(self.moto.outage_refused.values())} answered 503 (outage)")
        return "\n".join(out)


@pytest.fixture(scope="session")
def airflow(e2e_dir, postgres, moto_ecs):
    global _ACTIVE_STACK
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.fail("Airflow 3 opens an async engine for its PostgreSQL database and needs `asyncpg` "
                    "(pinned in requirements-dev.txt): run `make deps-test`", pytrace=False)
    stack = AirflowStack(e2e_dir, postgres, moto_ecs)
    _ACTIVE_STACK = stack
    try:
        stack.start()
    except Exception as error:
        diagnostics = stack.diagnostics()
        stack.stop()
        pytest.fail(f"could not start the Airflow stack: {error}\n{diagnostics}", pytrace=False)
    yield stack
    _ACTIVE_STACK = None
    stack.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _ACTIVE_STACK is not None and "e2e" in item.keywords:
        with contextlib.suppress(Exception):
            report.sections.append(("e2e diagnostics", _ACTIVE_STACK.diagnostics()))


def is_stock_executor() -> bool:
    return EXECUTOR_CLASS == STOCK_EXECUTOR_CLASS

