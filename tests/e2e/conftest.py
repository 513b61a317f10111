"""Session fixtures for the end-to-end test: PostgreSQL, moto ECS, real Airflow 3 processes, fake Fargate.

What runs, all on 127.0.0.1:
- a PostgreSQL server in a temporary directory (``standins.postgres``; as the `postgres` OS user
  when pytest runs as root);
- moto's ThreadedMotoServer inside this pytest process, serving ECS and EC2 (moto_ecs.py);
- `airflow db migrate`, then `airflow api-server`, `airflow dag-processor` and `airflow scheduler`
  as subprocesses, the scheduler hosting EXECUTOR_CLASS pointed at moto (local_airflow.py);
- FakeFargate (fargate.py), a thread that runs the containers of the ECS tasks moto holds.

The scenarios and their faults are in scenarios.py. Set E2E_KEEP=1 to keep the temporary
directory (process logs, container logs) after the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.e2e.local_airflow import AirflowDatabase, LocalAirflow
from tests.e2e.moto_ecs import MotoEcs

_ACTIVE_AIRFLOW: LocalAirflow | None = None


@pytest.fixture(scope="session")
def e2e_dir():
    path = Path(tempfile.mkdtemp(prefix="airflow-e2e-"))
    path.chmod(0o755)  # the postgres OS user must reach its data directory inside
    yield path
    if os.environ.get("E2E_KEEP"):
        print(f"\ne2e: kept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(e2e_dir):
    server = AirflowDatabase(e2e_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_ecs():
    moto = MotoEcs()
    moto.start()
    yield moto
    moto.stop()


@pytest.fixture(scope="session")
def airflow(e2e_dir, postgres, moto_ecs):
    global _ACTIVE_AIRFLOW
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.fail("Airflow 3 opens an async engine for its PostgreSQL database and needs `asyncpg` "
                    "(pinned in requirements-dev.txt): run `make deps-test`", pytrace=False)
    stack = LocalAirflow(e2e_dir, postgres, moto_ecs)
    _ACTIVE_AIRFLOW = stack
    try:
        stack.start()
    except Exception as error:
        diagnostics = stack.diagnostics()
        stack.stop()
        pytest.fail(f"could not start the Airflow stack: {error}\n{diagnostics}", pytrace=False)
    yield stack
    _ACTIVE_AIRFLOW = None
    stack.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _ACTIVE_AIRFLOW is not None and "e2e" in item.keywords:
        with contextlib.suppress(Exception):
            report.sections.append(("e2e diagnostics", _ACTIVE_AIRFLOW.diagnostics()))

