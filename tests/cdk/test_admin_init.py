"""The api-server's init container (``db-migrate``) as synthesized, run with bash against a
stand-in ``airflow`` command: the admin creation survives the race of two api-server tasks.

On a first prod deploy both api-server tasks run ``users create`` at once; both find no user,
both insert, and the loser's command fails (FAB provider 3.10.2, ``users_create``: "Failed to
create user"). The stand-in plays the loser: its first ``users create`` fails, the next one
finds the user the winner created.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cdk.test_stacks import container

FAKE_AIRFLOW = """#!/bin/bash
echo "$*" >> "$CALLS"
case "$1 $2" in
  "db migrate") exit "${MIGRATE_EXIT:-0}" ;;
  "users create")
    n=$(grep -c '^users create' "$CALLS")
    case "$MODE" in
      loser) if [ "$n" -eq 1 ]; then echo "Failed to create user" >&2; exit 1; fi
             echo "admin already exists in the db" ;;
      broken) echo "Admin2 is not a valid role" >&2; exit 1 ;;
      *) echo 'User "admin" created with role "Admin"' ;;
    esac ;;
esac
"""
FAKE_SLEEP = '#!/bin/bash\necho "sleep $*" >> "$CALLS"\n'


def run_init(dev, tmp_path: Path, mode: str, migrate_exit: int = 0) -> tuple[int, list[str]]:
    init = container(dev.template("airflow").to_json(), "db-migrate")
    assert init["Command"][:2] == ["bash", "-c"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("airflow", FAKE_AIRFLOW), ("sleep", FAKE_SLEEP)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "MODE": mode,
        "MIGRATE_EXIT": str(migrate_exit),
        "ADMIN_PASSWORD": "secret",
    }
    result = subprocess.run([shutil.which("bash"), "-c", init["Command"][2]], env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, [line.split(" --")[0] for line in calls.read_text().splitlines()]


def test_the_race_loser_finds_the_admin_on_its_next_attempt(dev, tmp_path):
    code, calls = run_init(dev, tmp_path, "loser")
    assert code == 0
    assert calls == ["db migrate", "users create", "sleep 10", "users create"]


def test_an_admin_created_at_once_is_not_created_again(dev, tmp_path):
    code, calls = run_init(dev, tmp_path, "fresh")
    assert (code, calls) == (0, ["db migrate", "users create"])


def test_a_lasting_failure_fails_the_container_after_three_attempts(dev, tmp_path):
    code, calls = run_init(dev, tmp_path, "broken")
    assert code != 0
    assert calls.count("users create") == 3 and calls[-1] == "users create"


@pytest.mark.parametrize("mode", ["fresh", "loser"])
def test_a_failed_migration_stops_before_the_admin(dev, tmp_path, mode):
    code, calls = run_init(dev, tmp_path, mode, migrate_exit=1)
    assert (code, calls) == (1, ["db migrate"])
