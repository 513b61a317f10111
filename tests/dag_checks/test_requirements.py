"""``docker/requirements.txt`` against the lock of what Airflow installs, and the virtualenv against
the image's pins (dag_checks.pins; no Airflow import needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dag_checks import pins

ROOT = Path(__file__).resolve().parents[2]


def problems_of(tmp_path: Path, text: str) -> list[str]:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(text)
    return pins.requirements_problems(requirements)


def test_the_shipped_requirements_pass():
    assert pins.requirements_problems() == []


def test_a_line_that_conflicts_with_a_lock_pin_is_refused_naming_the_conflict(tmp_path):
    where = tmp_path / "requirements.txt"
    assert problems_of(tmp_path, "# ours\npandas==2.3.3\nsqlalchemy<2\n") == [
        f"{where}:3: 'sqlalchemy<2' conflicts with the image's pin SQLAlchemy==2.1.9 "
        "(local_ecs/base_image/requirements.lock: what apache-airflow 3.3.2 and its providers install); "
        "allow 2.1.9 or remove the line"
    ]


def test_a_provider_pinned_to_another_version_is_refused(tmp_path):
    assert problems_of(tmp_path, "apache-airflow-providers-amazon==9.38.0\n")[0].endswith(
        "'apache-airflow-providers-amazon==9.38.0' conflicts with the image's pin apache-airflow-providers-amazon==9.39.0 "
        "(local_ecs/base_image/requirements.lock: what apache-airflow 3.3.2 and its providers install); "
        "allow 9.39.0 or remove the line")


def test_compatible_ranges_markers_for_other_pythons_and_new_packages_pass(tmp_path):
    assert problems_of(tmp_path, (
        "requests>=2.30,<3  # inline comment\n"
        "SQLAlchemy[asyncio]>=2.0\n"
        "sqlalchemy<2; python_version < '3.12'\n"   # not the image's Python (3.13)
        "pendulum==3.3.0 \\\n"
        "    ; sys_platform == 'linux'\n"
        "some-package-of-ours==1.0\n"
        "--extra-index-url https://pypi.example.com/simple\n"
    )) == []


def test_a_line_that_cannot_be_parsed_is_refused_naming_the_line(tmp_path):
    where = tmp_path / "requirements.txt"
    found = problems_of(tmp_path, "pandas==2.3.3\npandas ==== 2\n")
    assert len(found) == 1
    assert found[0].startswith(f"{where}:2: cannot parse 'pandas ==== 2' (")
    assert found[0].endswith("write one requirement per line, e.g. pandas==2.3.3 or pandas>=2.2,<3")


@pytest.mark.parametrize(("line", "expected"), [
    ("-r more.txt", "1: '-r more.txt': the option -r is not allowed here (the build copies only this file)"),
    ("-e ./ours", "1: '-e ./ours': the option -e is not allowed here"),
    ("--extra-index-url https://me:s3cret@pypi.example.com/simple",
     "1: a URL with a user or token in it would be stored in the image layer; pass the index credentials as a "
     "build secret instead"),
])
def test_options_the_build_cannot_honour_and_credentials_are_refused(tmp_path, line, expected):
    found = problems_of(tmp_path, line + "\n")
    assert len(found) == 1 and f"{tmp_path / 'requirements.txt'}:{expected}" in found[0], found


def test_the_requirements_command_exits_1_on_a_conflict(tmp_path):
    (tmp_path / "requirements.txt").write_text("sqlalchemy<2\n")
    result = subprocess.run([sys.executable, "-m", "dag_checks", "requirements", "--requirements",
                             str(tmp_path / "requirements.txt")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout.startswith(f"FAIL {tmp_path / 'requirements.txt'}:1: 'sqlalchemy<2' conflicts with")
    ok = subprocess.run([sys.executable, "-m", "dag_checks", "requirements"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_this_venv_has_the_image_versions():
    problems, absent = pins.version_problems()
    assert problems == []
    assert all(a.startswith("apache-airflow") for a in absent)


def test_a_pin_this_venv_lacks_or_has_at_another_version_is_a_problem(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("apache-airflow-providers-fab==3.10.1\nsome-package-not-installed-here==1.0\n")
    problems, _ = pins.version_problems(requirements=requirements)
    assert problems == [
        f"apache-airflow-providers-fab: this Python ({sys.prefix}) has 3.10.2, the image installs "
        f"apache-airflow-providers-fab==3.10.1 ({requirements}:1)",
        f"some-package-not-installed-here is not installed in this Python ({sys.prefix}) but the image installs "
        f"some-package-not-installed-here==1.0 ({requirements}:2)",
    ]


def test_the_lock_rejects_a_line_that_is_not_name_version(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\nfoo==1.0\nbar>=2\n")
    with pytest.raises(ValueError, match=r"requirements.lock:3: 'bar>=2' is not name==version"):
        pins.read_lock(lock)


def test_the_commands_refuse_an_unreadable_lock_naming_the_line(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("foo==1.0\nbar>=2\n")
    for command in (["requirements"], ["check", "dags"]):
        result = subprocess.run([sys.executable, "-m", "dag_checks", *command, "--lock", str(lock)], cwd=ROOT,
                                capture_output=True, text=True)
        assert result.returncode == 2, command
        assert f"refused: {lock}:2: 'bar>=2' is not name==version; regenerate it with python -m local_ecs.images lock" \
            in result.stderr
