"""The DAG author's harness: run Airflow code in a child Python with a scratch AIRFLOW_HOME.

Airflow reads its configuration once, when it is first imported, and ``make test`` runs every test
in one process where other tests import Airflow with settings of their own. So each test here runs
its Airflow code in a fresh interpreter whose AIRFLOW_HOME, metadata database (SQLite) and HOME are
in the test's ``tmp_path``: nothing is read from or written to ``~/airflow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The folder the image's DAG bundle holds (docker/Dockerfile copies it to /opt/airflow/dags).
DAGS = ROOT / "dags"
#: Marks the child's result on its standard output.
RESULT = "RESULT "


@pytest.fixture
def run_airflow(tmp_path):
    """Return ``run(code) -> object``: ``code`` runs in a child Python with a scratch Airflow home
    (``tmp_path``, SQLite metadata database there, ``dags/`` as the DAG folder) and calls
    ``result(value)`` once; ``run`` returns that value (JSON round-trip).

    :raises AssertionError: the child failed or gave no result; the message has its output.
    """

    def run(code: str, timeout: float = 600):
        home, airflow_home = tmp_path / "home", tmp_path / "airflow"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({
            "HOME": str(home),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        })
        prelude = f"import json\ndef result(value):\n    print({RESULT!r} + json.dumps(value), flush=True)\n"
        child = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=timeout)
        output = child.stdout + child.stderr
        assert child.returncode == 0, output[-6000:]
        found = [line[len(RESULT):] for line in child.stdout.splitlines() if line.startswith(RESULT)]
        assert found, f"no result from the child:\n{output[-6000:]}"
        assert not list(home.iterdir()), "Airflow wrote into HOME instead of AIRFLOW_HOME"
        return json.loads(found[-1])

    return run
