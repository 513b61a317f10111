"""bench/worker_start.py's arithmetic and build context, without podman."""

from __future__ import annotations

from bench import worker_start
from bench.worker_start import STEPS, cpu_seconds, stage_context, step_seconds, summarize, summarize_cpu, table


def _marks(offset: float, parse: float) -> dict:
    t = 1000.0 + offset
    return {"host_before_run": t, "container_started": t + 0.5, "process_start": t + 0.6, "first_line": t + 0.65,
            "airflow_imported": t + 1.5, "supervisor_imported": t + 2.5, "task_runner_imported": t + 3.0,
            "dag_parsed": t + 3.0 + parse, "task_code": t + 3.0 + parse, "dag_pyc_valid": parse < 0.2,
            "cpu": {"first_line": 0.05, "airflow_imported": 0.8, "supervisor_imported": 1.6,
                    "task_runner_imported": 2.0, "dag_parsed": 2.0 + parse, "task_code": 2.0 + parse}}


def test_steps_are_differences_of_the_marks():
    steps = step_seconds(_marks(0, 0.25))
    assert round(steps["podman run -> container started"], 3) == 0.5
    assert round(steps["parse the DAG file"], 3) == 0.25
    assert round(steps["container started -> task code"], 3) == 2.75
    assert set(steps) == {name for name, _, _ in STEPS}
    cpu = cpu_seconds(_marks(0, 0.25))
    assert (cpu["python start-up"], round(cpu["import airflow"], 3), cpu["python start -> task code"]) == (
        0.05, 0.75, 2.25)


def test_summary_gives_median_and_range_and_the_table_the_ratio():
    runs_before = [_marks(0, 0.3), _marks(10, 0.5), _marks(20, 0.4)]
    runs_after = [_marks(0, 0.1), _marks(10, 0.2), _marks(20, 0.1)]
    before = {"steps": summarize(runs_before), "cpu_steps": summarize_cpu(runs_before), "uncompressed_mib": 600.0,
              "dag_pyc_valid": False}
    after = {"steps": summarize(runs_after), "cpu_steps": summarize_cpu(runs_after), "uncompressed_mib": 600.3,
             "dag_pyc_valid": True}
    assert before["steps"]["parse the DAG file"] == {"median": 0.4, "min": 0.3, "max": 0.5}
    text = table({"before": before, "after": after})
    assert "| parse the DAG file | 0.400 (0.300-0.500) | 0.100 (0.100-0.200) | 0.25 |" in text
    assert "| DAG bytecode cached and valid | False | True | |" in text
    assert "| CPU s: parse the DAG file | 0.400 (0.300-0.500) | 0.100 (0.100-0.200) | 0.25 |" in text


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_bytecode(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    for name in worker_start.CONTEXT_DIRS:
        (root / name / "__pycache__").mkdir(parents=True)
        (root / name / "f.py").write_text("x = 1\n")
        (root / name / "__pycache__" / "f.cpython-313.pyc").write_bytes(b"\0")
    (root / "tests").mkdir()
    monkeypatch.setattr(worker_start, "PROJECT_ROOT", root)
    context = stage_context(tmp_path / "context", None)
    assert sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()) == [
        "dags/f.py", "docker/f.py", "executor/f.py"]
