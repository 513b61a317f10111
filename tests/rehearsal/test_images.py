"""The rehearsal's images: the stand-in for the official Airflow base image and the project image.

The module builds the stand-in (cached by the hash of its inputs) and ``docker/Dockerfile``, unchanged,
from the cloud assembly's image asset, then checks what the deployment relies on: the user, the
read-only root, the Python minor, and the entrypoint's documented behaviour. The measured build
seconds and image size go to ``.rehearsal/images.json``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from cloud_assembly import CloudAssembly
from local_ecs import images
from local_ecs.images import (
    ImageBuildError,
    base_image_tag,
    build_base_image,
    build_project_image,
    context_hash,
    image_size_mib,
)
from local_ecs.podman import PROJECT_ROOT, PodmanConfig, PodmanError, PodmanNotInstalled, podman, require_podman
from tests.rehearsal.conftest import OUT

MEASUREMENTS = OUT / "images.json"
#: Environment of a container that must not touch the metadata DB (what the workers get).
NO_DB_CHECK = {"CONNECTION_CHECK_MAX_COUNT": "0"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _record(**values) -> None:
    MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else {}
    data.update(values)
    MEASUREMENTS.write_text(json.dumps(data, indent=2) + "\n")


def run(image: str, *command: str, env: dict[str, str] | None = None, user: str = "50000:0",
        check: bool = False, timeout: float = 180):
    """``podman run`` as ECS runs a container of the task definitions: read-only root without
    podman's extra tmpfs mounts, user 50000:0, host network, never a pull."""
    args = ["run", "--rm", "--pull=never", "--network=host", "--read-only", "--read-only-tmpfs=false",
            "--user", user]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    return podman(*args, image, *command, check=check, timeout=timeout)


# ---- without podman --------------------------------------------------------------------------


def test_missing_podman_names_the_install_command(tmp_path):
    with pytest.raises(PodmanNotInstalled, match=r"apt-get install podman runc mmdebstrap"):
        require_podman(path=str(tmp_path))
    # podman() checks before running anything: simulate a machine without it through PATH.
    with pytest.raises(PodmanNotInstalled, match=r"podman and runc not found on PATH"):
        podman("version", env={"PATH": str(tmp_path)}, config=PodmanConfig(state_dir=tmp_path / "state"))


def test_base_image_tag_is_what_the_dockerfile_from_resolves_to():
    args = images.dockerfile_args()
    assert base_image_tag() == f"apache/airflow:{args['AIRFLOW_VERSION']}-python{args['PYTHON_VERSION']}"
    assert base_image_tag(build_args={"PYTHON_VERSION": "3.11"}).endswith("-python3.11")


def test_stand_in_pins_are_the_projects():
    stand_in = _pins(images.BASE_IMAGE_DIR / "requirements.txt")
    lock = _pins(images.BASE_IMAGE_DIR / "requirements.lock")
    project = {**_pins(PROJECT_ROOT / "requirements-dev.txt"), **_pins(PROJECT_ROOT / "docker" / "requirements.txt")}
    assert stand_in["apache-airflow"] == images.dockerfile_args()["AIRFLOW_VERSION"]
    shared = set(stand_in) & set(project)
    assert {"apache-airflow", "apache-airflow-providers-amazon", "apache-airflow-providers-fab"} <= shared
    assert {name: stand_in[name] for name in shared} == {name: project[name] for name in shared}
    # The lock was generated from these pins: it holds each of them at the pinned version.
    assert {name: lock.get(name) for name in stand_in} == stand_in


def test_inputs_hash_follows_every_input(tmp_path, monkeypatch):
    copy = tmp_path / "base_image"
    shutil.copytree(images.BASE_IMAGE_DIR, copy)
    monkeypatch.setattr(images, "BASE_IMAGE_DIR", copy)
    before = images.base_image_inputs_hash()
    assert images.base_image_inputs_hash() == before
    for name in ("Containerfile", "entrypoint.sh", "requirements.txt", "requirements.lock"):
        path = copy / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")
        assert images.base_image_inputs_hash() != before, name
        path.write_bytes(original)
    assert images.base_image_inputs_hash() == before


def test_context_hash_follows_files_dockerfile_and_build_args(tmp_path):
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile").write_text("FROM scratch\n")
    first = context_hash(tmp_path, "docker/Dockerfile", {})
    assert context_hash(tmp_path, "docker/Dockerfile", {}) == first
    assert context_hash(tmp_path, "docker/Dockerfile", {"A": "1"}) != first
    (tmp_path / "dags.py").write_text("x = 1\n")
    assert context_hash(tmp_path, "docker/Dockerfile", {}) != first


# ---- with podman -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stand_in() -> str:
    started = time.monotonic()
    tag = build_base_image()
    seconds = time.monotonic() - started
    _record(stand_in_tag=tag, stand_in_build_seconds=round(seconds, 1),
            stand_in_mib=round(image_size_mib(tag)))
    return tag


@pytest.fixture(scope="module")
def cloud_assembly(tmp_path_factory) -> Path:
    """The default configuration synthesized once: its Image asset is the build context."""
    from app import synthesize

    return synthesize({}, tmp_path_factory.mktemp("cdk-out")).assembly.directory


def _airflow_asset(cloud_assembly: Path):
    """The Airflow image asset (docker/Dockerfile); the assembly also stages the ECS jobs' images."""
    assets = CloudAssembly(cloud_assembly).images.values()
    (asset,) = [a for a in assets if Path(a.dockerfile).as_posix() == "docker/Dockerfile"]
    return asset


@pytest.fixture(scope="module")
def project_image(stand_in, cloud_assembly) -> str:
    asset = _airflow_asset(cloud_assembly)
    started = time.monotonic()
    tag = build_project_image(asset.directory, asset.dockerfile, asset.build_args, platform=asset.platform)
    _record(project_image_tag=tag, project_build_seconds=round(time.monotonic() - started, 1),
            project_image_mib=round(image_size_mib(tag)))
    return tag


@pytest.mark.rehearsal
def test_podman_error_names_command_exit_code_and_stderr():
    with pytest.raises(PodmanError) as caught:
        podman("image", "inspect", "localhost/no-such-image:never")
    assert caught.value.returncode != 0
    assert "podman image inspect localhost/no-such-image:never" in str(caught.value)
    assert "no-such-image" in caught.value.stderr_tail


@pytest.mark.rehearsal
def test_stand_in_is_reused_while_its_inputs_are_unchanged(stand_in):
    image_id = podman("image", "inspect", "--format", "{{.Id}}", stand_in).stdout.strip()
    started = time.monotonic()
    assert build_base_image() == stand_in
    assert time.monotonic() - started < 10
    assert podman("image", "inspect", "--format", "{{.Id}}", stand_in).stdout.strip() == image_id


@pytest.mark.rehearsal
def test_stand_in_holds_exactly_the_locked_versions(stand_in):
    frozen = run(stand_in, "python", "-m", "pip", "freeze", "--all", "--exclude", "pip", env=NO_DB_CHECK,
                 check=True).stdout
    lock = (images.BASE_IMAGE_DIR / "requirements.lock").read_text()
    assert _pins_lines(frozen) == _pins_lines(lock)
    assert len(_pins_lines(lock)) > 100


def _pins_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


@pytest.mark.rehearsal
def test_stand_in_python_minor_is_the_deployed_images(stand_in):
    out = run(stand_in, "python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])", env=NO_DB_CHECK,
              check=True).stdout
    assert out.strip() == images.dockerfile_args()["PYTHON_VERSION"]


@pytest.mark.rehearsal
def test_stand_in_user_home_and_airflow_home(stand_in):
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", stand_in).stdout)
    assert config["User"] == "50000"
    assert "AIRFLOW_HOME=/opt/airflow" in config["Env"]
    assert config["Entrypoint"] == ["/usr/bin/dumb-init", "--", "/entrypoint"]
    out = podman("run", "--rm", "--pull=never", "--env", "CONNECTION_CHECK_MAX_COUNT=0", stand_in, "bash", "-c",
                 "id -un; id -u; id -g; echo $HOME; command -v curl dumb-init pip;"
                 " test -w \"$(python -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))')\" && echo pip-writable",
                 check=True).stdout.split()
    assert out[:4] == ["airflow", "50000", "0", "/home/airflow"]
    assert out[4:7] == ["/usr/bin/curl", "/usr/bin/dumb-init", "/home/airflow/.local/bin/pip"]
    assert out[7] == "pip-writable"


@pytest.mark.rehearsal
def test_project_image_builds_unchanged_dockerfile_on_the_stand_in(project_image, cloud_assembly):
    asset = _airflow_asset(cloud_assembly)
    assert (asset.directory / asset.dockerfile).read_text() == (PROJECT_ROOT / "docker" / "Dockerfile").read_text()
    assert 100 < image_size_mib(project_image) < 2000
    # Cached by the hash of its inputs: a second build is a look-up.
    started = time.monotonic()
    assert build_project_image(asset.directory, asset.dockerfile, asset.build_args, platform=asset.platform) \
        == project_image
    assert time.monotonic() - started < 10


@pytest.mark.rehearsal
def test_failed_build_raises_with_the_end_of_the_build_log(stand_in, tmp_path):
    (tmp_path / "Dockerfile").write_text(f"FROM {stand_in}\nRUN echo build-step-marker && exit 3\n")
    with pytest.raises(ImageBuildError) as caught:
        build_project_image(tmp_path, "Dockerfile")
    assert "build-step-marker" in caught.value.log_tail
    assert caught.value.returncode != 0
    assert caught.value.log_path.exists()
    assert "last lines" in str(caught.value)


@pytest.mark.rehearsal
def test_image_runs_as_50000_0_on_a_read_only_root(project_image):
    out = run(project_image, "bash", "-c", "id -u; id -g; touch /opt/airflow/x 2>&1 || true",
              env=NO_DB_CHECK, check=True).stdout
    uid, gid, touch = out.splitlines()
    assert (uid, gid) == ("50000", "0")
    assert "Read-only file system" in touch
    # The image's own default user is 50000 (a task definition without `user` runs as it too).
    assert podman("image", "inspect", "--format", "{{.Config.User}}", project_image).stdout.strip() == "50000"


@pytest.mark.rehearsal
def test_entrypoint_passes_bash_and_python_through(project_image):
    assert run(project_image, "bash", "-c", "echo $((6 * 7))", env=NO_DB_CHECK, check=True).stdout.strip() == "42"
    out = run(project_image, "python", "-c", "import airflow_ecs_fargate, sys; print(sys.argv[1:])", "a b",
              env=NO_DB_CHECK, check=True).stdout
    assert out.strip() == "['a b']"


@pytest.mark.rehearsal
@pytest.mark.parametrize("command", [("version",), ("airflow", "version")])
def test_entrypoint_runs_airflow_otherwise(project_image, command):
    out = run(project_image, *command, env=NO_DB_CHECK, check=True).stdout
    assert out.strip().splitlines()[-1] == images.dockerfile_args()["AIRFLOW_VERSION"]


#: A metadata DB nobody serves: nothing listens on port 9 of the loopback interface.
UNREACHABLE_DB = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:pw@127.0.0.1:9/airflow"}


@pytest.mark.rehearsal
def test_entrypoint_retries_db_check_then_fails_with_its_output(project_image):
    env = {"CONNECTION_CHECK_MAX_COUNT": "2", "CONNECTION_CHECK_SLEEP_TIME": "1", **UNREACHABLE_DB}
    proc = run(project_image, "bash", "-c", "echo command-ran", env=env)
    assert proc.returncode == 1
    assert "command-ran" not in proc.stdout
    assert re.findall(r"try (\d) of 2", proc.stderr) == ["1", "2"]
    assert "unreachable after 2 tries" in proc.stderr
    assert "Connection refused" in proc.stderr  # the last output of `airflow db check`


@pytest.mark.rehearsal
def test_entrypoint_skips_the_db_check_when_max_count_is_0(project_image):
    proc = run(project_image, "bash", "-c", "echo command-ran", env={**NO_DB_CHECK, **UNREACHABLE_DB})
    assert (proc.returncode, proc.stdout.strip()) == (0, "command-ran")
    assert "db check" not in proc.stderr


@pytest.mark.rehearsal
def test_entrypoint_requires_group_0(project_image):
    proc = run(project_image, "bash", "-c", "echo command-ran", env=NO_DB_CHECK, user="50000:50000")
    assert proc.returncode == 1
    assert "group 0" in proc.stderr
    assert "command-ran" not in proc.stdout


#: Imports each DAG file's code object as Airflow's DAG import does (``SourceFileLoader``), without
#: running it, and prints the files Python had to compile: no valid cached bytecode next to them.
_COMPILED_DAG_FILES = """
import glob, json, importlib.machinery as machinery
compiled = []
original = machinery.SourceFileLoader.source_to_code
def record(self, data, path, *args, **kwargs):
    compiled.append(path)
    return original(self, data, path, *args, **kwargs)
machinery.SourceFileLoader.source_to_code = record
files = sorted(glob.glob('/opt/airflow/dags/**/*.py', recursive=True))
for i, path in enumerate(files):
    machinery.SourceFileLoader(f'dag_{i}', path).get_code(f'dag_{i}')
print(json.dumps({'files': files, 'compiled': compiled}))
"""


@pytest.mark.rehearsal
def test_dag_bytecode_is_compiled_at_build_and_valid_for_its_sources(project_image):
    # The root filesystem is read-only: a DAG file without valid cached bytecode is compiled again
    # at every worker start and every dag-processor parse (docs/worker-start.md).
    out = run(project_image, "python", "-c", _COMPILED_DAG_FILES, env=NO_DB_CHECK, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert "/opt/airflow/dags/example_pipeline.py" in result["files"]
    assert result["compiled"] == []


#: What docker/Dockerfile may add on top of the base image, besides the DAG authors' extra packages
#: (its ``pip install … -r requirements.txt`` layer): bytes, uncompressed. Measured 0.9 MB on
#: 2026-12-07 (docs/worker-start.md): the executor package, the SSO settings, the DAGs and their
#: bytecode. Every worker task pulls it; a pip cache or a compiler left in a layer exceeds it.
OWN_LAYERS_BUDGET_BYTES = 5_000_000
_SIZE_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9}


def own_layers(image: str, base: str) -> list[tuple[int, str]]:
    """``(bytes, created by)`` of each history entry of ``image`` above ``base`` (``podman history``)."""
    def history(tag: str) -> list[tuple[int, str]]:
        out = podman("history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", tag).stdout
        entries = []
        for line in out.splitlines():
            size, created_by = line.split("\t", 1)
            number, unit = size.split()
            entries.append((round(float(number) * _SIZE_UNITS[unit]), created_by))
        return entries

    return history(image)[: -len(history(base))]


@pytest.mark.rehearsal
def test_the_projects_own_layers_stay_within_budget(stand_in, project_image):
    layers = own_layers(project_image, stand_in)
    assert any("compileall" in created_by for _, created_by in layers)
    counted = [(size, created_by) for size, created_by in layers if "-r /opt/airflow/requirements.txt" not in created_by]
    assert sum(size for size, _ in counted) < OWN_LAYERS_BUDGET_BYTES, "\n".join(
        f"{size:>12,} {created_by[:120]}" for size, created_by in counted)


def test_another_airflow_version_has_its_own_lock_with_the_same_providers():
    """The previous version's stand-in (the upgrade rehearsal's): its own lock, generated from
    requirements.txt with the Airflow pin set, the same provider pins, and every other package at
    the default lock's version but those that Airflow version requires otherwise."""
    versions = images.stand_in_versions()
    assert versions[0] == images.default_airflow_version() and len(versions) >= 2
    for version in versions[1:]:
        pins = images.pins(version)
        assert f"apache-airflow[amazon,postgres]=={version}" in pins.splitlines()
        lock = _pins(images.lock_file(version))
        default = _pins(images.BASE_IMAGE_DIR / "requirements.lock")
        assert lock["apache-airflow"] == lock["apache-airflow-core"] == version
        for provider in ("apache-airflow-providers-amazon", "apache-airflow-providers-fab"):
            assert lock[provider] == default[provider]
        differing = {name for name in lock if name in default and lock[name] != default[name]}
        assert differing <= {"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk",
                             *images.REQUIRED_OTHERWISE.get(version, ())}, differing
        assert images.base_image_tag(build_args={"AIRFLOW_VERSION": version}) == \
            f"apache/airflow:{version}-python{images.dockerfile_args()['PYTHON_VERSION']}"
