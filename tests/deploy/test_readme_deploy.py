"""The README's deploy section runs as typed in a clean shell (no virtualenv on PATH, no make
variables, no AWS credentials) up to the first call that needs AWS, and fails there only.

Also: ``npx cdk synth`` works in such a shell (cdk.json's app runs the project's own Python).
Both run in the repository itself, after ``make test`` installed the dependencies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cloud_assembly import CloudAssembly

ROOT = Path(__file__).resolve().parents[2]
#: What the preflight prints when the first AWS call finds no credentials.
NO_CREDENTIALS = "No AWS credentials"


def deploy_commands(readme: str) -> list[str]:
    """The commands of the first ```bash block of README's "Deploying to an account" section."""
    section = readme.split("## Deploying to an account", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's deploy section has no bash block"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [c for c in commands if c]


def clean_env(home: Path) -> dict[str, str]:
    """A login-like environment: system PATH plus where node, npx and make live; no virtualenv,
    no make variables, no AWS credentials or profile (a region only, which is not a credential)."""
    venv_dirs = {str(ROOT / ".venv" / "bin"), os.environ.get("VIRTUAL_ENV", "") + "/bin"}
    path = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    for tool in ("node", "npx", "make", "git"):
        found = shutil.which(tool)
        if found and str(Path(found).parent) not in path and str(Path(found).parent) not in venv_dirs:
            path.append(str(Path(found).parent))
    env = {
        "PATH": ":".join(p for p in path if p not in venv_dirs),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    assert not any(k.startswith(("MAKE", "MFLAGS", "VIRTUAL_ENV", "PYTHON")) or k.startswith("AWS_ACCESS") for k in env)
    return env


def run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_readme_deploy_section_parses_to_the_documented_commands():
    commands = deploy_commands((ROOT / "README.md").read_text())
    assert commands[-1].startswith("make deploy")
    assert all(c.startswith(("make ", "npx ")) for c in commands), commands


def test_readme_deploy_section_runs_up_to_the_first_aws_call(tmp_path):
    env = clean_env(tmp_path)
    ran = []
    for command in deploy_commands((ROOT / "README.md").read_text()):
        result = run(command, env)
        ran.append(command)
        output = result.stdout + result.stderr
        if result.returncode == 0:
            continue
        # The only failure allowed: the first AWS call, for want of credentials.
        assert NO_CREDENTIALS in output, f"{command!r} failed for another reason:\n{output[-4000:]}"
        assert "cdk deploy" not in output.split(NO_CREDENTIALS)[0].split("preflight")[-1]
        break
    else:
        pytest.fail(f"no command reached AWS: {ran}")
    assert ran[-1].startswith("make deploy"), ran


def test_npx_cdk_synth_works_in_a_fresh_shell(tmp_path):
    env = clean_env(tmp_path / "home")
    out = tmp_path / "cdk.out"
    result = run(f"npx cdk synth --quiet --output {out}", env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert {s.stack_name for s in CloudAssembly(out).stacks.values()} == {
        f"airflow-dev-{role}" for role in ("network", "database", "image", "cluster", "airflow")
    }


def test_cdk_app_names_the_fix_when_the_virtualenv_is_missing(tmp_path):
    """scripts/cdk-app.sh from a checkout without .venv/ (a copy of the script in an empty tree)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "cdk-app.sh", tmp_path / "scripts" / "cdk-app.sh")
    result = subprocess.run(["bash", str(tmp_path / "scripts" / "cdk-app.sh")], capture_output=True, text=True,
                            env=clean_env(tmp_path))
    assert result.returncode == 1 and "make deps-synth" in result.stderr
    assert json.loads((ROOT / "cdk.json").read_text())["app"] == "bash scripts/cdk-app.sh"
