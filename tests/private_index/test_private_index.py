"""The team's packages from a private index, as the image build installs them.

A real PEP 503 index (pypiserver, basic auth) on localhost serves packages of ours; a small image
built by podman runs docker/install_requirements.sh, the step of docker/Dockerfile that installs
docker/requirements.txt, with the index's pip configuration as the build secret ``pip_index``.
Shown: the package installs; the token is in no layer of the saved image, nor in its history or
environment; a package that would move a pin of the base image is refused naming the conflict; a
refused token and a line that cannot be resolved each fail the build with a clear error; with no
secret at all the build still works (the default, public PyPI).

Needs podman, runc and mmdebstrap (the rehearsal's tools; ``make rehearsal-deps``): marked
``rehearsal``, it builds the rehearsal's Debian rootfs once (about 3 minutes) and small images.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from local_ecs.images import build_rootfs, layers_holding, secret_options
from local_ecs.podman import PROJECT_ROOT, PodmanConfig, PodmanNotInstalled, podman, require_podman
from standins.pypi_index import PrivateIndex, wheel

pytestmark = pytest.mark.rehearsal

HERE = Path(__file__).resolve().parent
USER, TOKEN = "team", "pypi-tok-7d3e9a1b-not-real"
TAG = "localhost/private-index-test:latest"


@pytest.fixture(scope="module")
def podman_config():
    try:
        require_podman()
        if shutil.which("mmdebstrap") is None:
            raise PodmanNotInstalled("mmdebstrap")
    except PodmanNotInstalled as err:
        pytest.fail(f"podman, runc and mmdebstrap are needed ({err}); install them with make rehearsal-deps")
    return PodmanConfig()


@pytest.fixture(scope="module")
def rootfs(podman_config):
    return build_rootfs(podman_config)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """pypiserver on 127.0.0.1 with basic auth for every request (:class:`standins.pypi_index.PrivateIndex`)."""
    private = PrivateIndex(tmp_path_factory.mktemp("index"), USER, TOKEN)
    wheel(private.packages, "teamlib", "1.0", ("basepin<2",))  # needs an older basepin than the base has
    wheel(private.packages, "teamlib", "1.1", ("basepin>=2",))
    wheel(private.packages, "basepin", "1.0")  # what an unconstrained resolver would downgrade to
    wheel(private.packages, "basepin", "2.0")
    with private:
        yield private


def pip_conf(directory: Path, index: PrivateIndex, token: str) -> Path:
    """The file a team keeps outside the repository and names with the key pip_index_file."""
    return index.pip_conf(directory, token)


def build(tmp_path: Path, rootfs: str, config: PodmanConfig, requirements: str, secret: Path | None):
    """Build the small image from a fresh context; return the finished podman process."""
    context = tmp_path / "context"
    (context / "docker").mkdir(parents=True)
    (context / "base-wheels").mkdir()
    for name in ("install_requirements.sh", "pip_build.py"):
        shutil.copy2(PROJECT_ROOT / "docker" / name, context / "docker" / name)
    (context / "docker" / "requirements.txt").write_text(requirements)
    wheel(context / "base-wheels", "basepin", "2.0")
    args = ["build", "--network=host", "--pull=never", "--no-cache", "--tag", TAG, "--build-arg", f"ROOTFS={rootfs}",
            "--file", str(HERE / "Containerfile")]
    if secret is not None:
        args += secret_options({"pip_index": f"src={secret}"})
    return podman(*args, str(context), config=config, check=False, timeout=600)


def output(proc) -> str:
    return (proc.stdout or "") + (proc.stderr or "")


def test_a_package_of_ours_installs_and_the_token_is_in_no_layer(tmp_path, rootfs, podman_config, index):
    secret = pip_conf(tmp_path, index, TOKEN)
    proc = build(tmp_path, rootfs, podman_config, "teamlib==1.1\n", secret)
    assert proc.returncode == 0, output(proc)[-3000:]
    assert "Successfully installed teamlib-1.1" in output(proc)

    archive = tmp_path / "image.tar"
    podman("save", "--format", "docker-archive", "--output", str(archive), TAG, config=podman_config)
    assert archive.stat().st_size > 10_000_000  # the whole image, layers and all
    assert layers_holding(archive, TOKEN.encode()) == []
    history = podman("history", "--no-trunc", TAG, config=podman_config).stdout
    inspect = podman("image", "inspect", TAG, config=podman_config).stdout
    assert TOKEN not in history and TOKEN not in inspect
    assert "pip_index" in history  # the secret was mounted in that step, only by name
    run = podman("run", "--rm", "--pull=never", "--network=none", TAG, "python", "-c",
                 "import teamlib, basepin, os; print(teamlib.VERSION, basepin.__file__, os.path.exists('/run/secrets/pip_index'))",
                 config=podman_config)
    assert run.stdout.split()[0] == "1.1" and run.stdout.split()[-1] == "False"


def test_a_package_that_moves_a_pin_of_the_base_is_refused_naming_the_conflict(tmp_path, rootfs, podman_config, index):
    proc = build(tmp_path, rootfs, podman_config, "teamlib==1.0\n", pip_conf(tmp_path, index, TOKEN))
    assert proc.returncode != 0
    log = output(proc)
    assert "teamlib 1.0 depends on basepin<2" in log, log[-3000:]
    assert "The user requested (constraint) basepin==2.0" in log
    assert "ERROR: a line of /home/airflow/build/requirements.txt needs another version of a package the base " \
           "image pins" in log


def test_an_index_that_refuses_the_token_fails_the_build_saying_so(tmp_path, rootfs, podman_config, index):
    proc = build(tmp_path, rootfs, podman_config, "teamlib==1.1\n", pip_conf(tmp_path, index, "revoked-token"))
    assert proc.returncode != 0
    log = output(proc)
    # pypiserver answers wrong credentials with 403 (no credentials: 401)
    assert f"ERROR: the package index {index.url.replace('http://', f'http://{USER}:****@')} refused the credentials " \
           "(HTTP 403): renew the token in the pip configuration given as the build secret pip_index" in log, log[-3000:]
    assert "revoked-token" not in log
    assert "Looking in indexes" not in log, "refused before pip runs"


def test_a_line_that_cannot_be_resolved_fails_the_build_naming_the_line(tmp_path, rootfs, podman_config, index):
    proc = build(tmp_path, rootfs, podman_config, "# ours\nteamlib==9.9\n", pip_conf(tmp_path, index, TOKEN))
    assert proc.returncode != 0
    log = output(proc)
    assert "ERROR: /home/airflow/build/requirements.txt:2: 'teamlib==9.9' cannot be resolved: no version of teamlib " \
           "that matches it on the configured indexes" in log, log[-3000:]


def test_without_the_secret_the_build_runs_as_before(tmp_path, rootfs, podman_config):
    proc = build(tmp_path, rootfs, podman_config, "# nothing of ours yet\n", None)
    assert proc.returncode == 0, output(proc)[-3000:]
