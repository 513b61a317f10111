"""The Airflow side of the end-to-end harness: its metadata database and its processes."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from standins.postgres import PostgresServer, free_port
from tests.e2e.fargate import FakeFargate, tail
from tests.e2e.moto_ecs import MotoEcs
from tests.e2e.scenarios import (
    CLUSTER,
    DAGS_FOLDER,
    E2E_DAG_IDS,
    EXECUTOR_CLASS,
    MAX_CONTAINERS,
    REGION,
    TERMINAL_TI_STATES,
    WORKER_CONTAINER,
    WORKER_LOG_GROUP,
    WORKER_LOG_STREAM_PREFIX,
    WORKER_TASK_FAMILY,
    chaos,
)

log = logging.getLogger("e2e")


def wait_until(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class AirflowDatabase(PostgresServer):
    """The metadata database: database ``airflow`` on a PostgreSQL server that trusts every login."""

    def start(self) -> None:
        super().start()
        self.psql("CREATE DATABASE airflow")

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Airflow connects with (TCP, user ``postgres``)."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def query(self, sql: str, params=(), dbname: str = "airflow") -> list[tuple]:
        return super().query(sql, params, dbname)


class LocalAirflow:
    """Real Airflow 3 processes on this machine (``db migrate``, api-server, dag-processor,
    scheduler hosting :data:`~tests.e2e.scenarios.EXECUTOR_CLASS`) against ``postgres`` and the
    moto ECS endpoint, with :class:`~tests.e2e.fargate.FakeFargate` running the workers' containers.

    Not the CDK ``AirflowStack``: nothing here is deployed.
    """

    def __init__(self, root: Path, postgres: AirflowDatabase, moto: MotoEcs):
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

