"""Container images for the rehearsal: the stand-in Airflow base image and the project image.

No container registry is reachable from the machines the rehearsal runs on, so ``FROM apache/airflow``
in ``docker/Dockerfile`` cannot be pulled. :func:`build_base_image` builds a stand-in from a Debian
rootfs (``mmdebstrap``) and PyPI only, tagged exactly as the Dockerfile's ``FROM`` resolves, so that
:func:`build_project_image` builds ``docker/Dockerfile`` unchanged with ``--pull=never``. Both are
cached by the hash of their inputs. docs/rehearsal.md explains the choices (Debian suite, Python).

Command line::

    python -m local_ecs.images base [VERSION]  # build (or reuse) the stand-in, print its tag
    python -m local_ecs.images lock [VERSION]  # regenerate the lock of the stand-in of that version
    python -m local_ecs.images project CDK_OUT # build every Docker image asset of a cloud assembly

VERSION is an Airflow version with a lock in ``base_image/`` (default: docker/Dockerfile's
``AIRFLOW_VERSION``): ``requirements.lock`` for that default, ``requirements-<VERSION>.lock`` for
another one (the upgrade rehearsal's previous version, :func:`stand_in_versions`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from cloud_assembly import CloudAssembly
from local_ecs.podman import PROJECT_ROOT, PodmanConfig, PodmanError, PodmanNotInstalled, podman, tail

BASE_IMAGE_DIR = Path(__file__).resolve().parent / "base_image"
PROJECT_DOCKERFILE = PROJECT_ROOT / "docker" / "Dockerfile"
#: Debian suite of the stand-in's rootfs; its python3 must have the minor version of
#: docker/Dockerfile's PYTHON_VERSION (trixie: 3.13). See docs/rehearsal.md.
DEBIAN_SUITE = "trixie"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: Debian packages of the rootfs (minbase variant plus these). ``git`` and ``openssh-client`` are
#: runtime packages of the official image too (its runtime apt dependencies): the git DAG bundle
#: (``dag_bundle=git``) runs GitPython, which runs the ``git`` program, over https or ssh.
ROOTFS_PACKAGES = ("python3", "python3-venv", "ca-certificates", "curl", "dumb-init", "git", "openssh-client")
#: mmdebstrap options: no documentation, manual pages or translations (smaller, faster), and dpkg
#: without fsync (the rootfs is a throwaway tarball; halves the time on a busy disk).
MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    "--aptopt=Acquire::Languages \"none\"",
    "--dpkgopt=force-unsafe-io",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)
#: Where the build machine keeps locally added CA certificates (Debian's update-ca-certificates).
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
#: Image label holding the hash of the inputs an image was built from.
INPUTS_LABEL = "local-ecs.inputs-hash"
PROJECT_IMAGE_REPOSITORY = "localhost/local-ecs/project"
ROOTFS_IMAGE_REPOSITORY = "localhost/local-ecs/debian-rootfs"
#: Lines of a build log quoted in an ImageBuildError.
LOG_TAIL_LINES = 40


class ImageBuildError(RuntimeError):
    """An image build failed.

    :ivar image: the tag that was being built (``str``).
    :ivar log_path: the full build log (``Path``).
    :ivar log_tail: its last lines (``str``).
    """

    def __init__(self, image: str, returncode: int, log_path: Path, log_tail: str):
        self.image, self.returncode, self.log_path, self.log_tail = image, returncode, log_path, log_tail
        super().__init__(
            f"building {image} failed with exit code {returncode} (full log: {log_path}); last lines:\n{log_tail}"
        )


def dockerfile_args(dockerfile: Path = PROJECT_DOCKERFILE) -> dict[str, str]:
    """The default values of the ``ARG`` lines before the first ``FROM`` (``dict[str, str]``)."""
    args: dict[str, str] = {}
    for line in dockerfile.read_text().splitlines():
        line = line.strip()
        if line.upper().startswith("FROM "):
            break
        m = re.match(r"ARG\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line, re.IGNORECASE)
        if m:
            args[m.group(1)] = m.group(2).strip("\"'")
    return args


def base_image_tag(dockerfile: Path = PROJECT_DOCKERFILE, build_args: Mapping[str, str] | None = None) -> str:
    """The image the first ``FROM`` of ``dockerfile`` names, with its ``ARG`` defaults (overridden by
    ``build_args``) substituted, e.g. ``apache/airflow:3.3.2-python3.13``.

    :raises ValueError: the Dockerfile has no FROM, or FROM uses an ARG without a value.
    """
    args = {**dockerfile_args(dockerfile), **(build_args or {})}
    for line in dockerfile.read_text().splitlines():
        m = re.match(r"\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", line, re.IGNORECASE)
        if m:
            ref = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda v: args.get(v.group(1), v.group(0)), m.group(1))
            if "$" in ref:
                raise ValueError(f"{dockerfile}: FROM {m.group(1)} uses an ARG without a default value")
            return ref
    raise ValueError(f"{dockerfile} has no FROM line")


def _sha256(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _local_ca_files() -> list[Path]:
    if not LOCAL_CA_DIR.is_dir():
        return []
    return sorted(p for p in LOCAL_CA_DIR.rglob("*.crt") if p.is_file())


def _image_label(tag: str, config: PodmanConfig) -> str | None:
    """The inputs-hash label of a local image, or None when the image does not exist."""
    proc = podman("image", "inspect", "--format", f'{{{{index .Labels "{INPUTS_LABEL}"}}}}', tag,
                  config=config, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_exists(tag: str, config: PodmanConfig | None = None) -> bool:
    """Whether ``tag`` is in the local image store."""
    return podman("image", "exists", tag, config=config or PodmanConfig(), check=False).returncode == 0


def secret_options(build_secrets: Mapping[str, str]) -> list[str]:
    """``podman build`` options of an image asset's build secrets, as the CDK CLI passes them to
    ``docker build``: ``--secret id=<id>,<source>`` for each (``dockerBuildSecrets`` of the asset
    manifest maps the id to its source, e.g. ``src=/home/me/.config/pip/private-index.conf``).
    The build sees the file only where a ``RUN --mount=type=secret,id=<id>`` mounts it."""
    options = []
    for secret_id, source in build_secrets.items():
        options += ["--secret", f"id={secret_id},{source}"]
    return options


def _build(tag: str, context: Path, containerfile: Path, build_args: Mapping[str, str], labels: Mapping[str, str],
           config: PodmanConfig, platform: str | None = None, build_secrets: Mapping[str, str] | None = None) -> None:
    """``podman build`` with the host network and no pulls; the log goes to ``<state>/logs``."""
    logs = config.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / ("build-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", tag) + ".log")
    args = ["build", "--network=host", "--pull=never", "--layers", "-f", str(containerfile), "-t", tag]
    if platform:
        args.append(f"--platform={platform}")
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    args += secret_options(build_secrets or {})
    proc = podman(*args, str(context), config=config, check=False)
    log_path.write_text((proc.stdout or "") + (proc.stderr or ""))
    if proc.returncode != 0:
        raise ImageBuildError(tag, proc.returncode, log_path, tail(log_path.read_text(), LOG_TAIL_LINES))


def rootfs_inputs_hash() -> str:
    """Hash of what the Debian rootfs is made from (suite, mirror, packages)."""
    return _sha256(DEBIAN_SUITE, DEBIAN_MIRROR, *ROOTFS_PACKAGES, *MMDEBSTRAP_OPTIONS)


def build_rootfs(config: PodmanConfig | None = None) -> str:
    """Build (or reuse) the Debian rootfs image: ``mmdebstrap --variant=minbase`` + ``podman import``.

    :returns: its tag, ``localhost/local-ecs/debian-rootfs:<inputs hash, 16 hex>``.
    :raises PodmanNotInstalled: podman, runc or mmdebstrap is missing.
    :raises ImageBuildError: mmdebstrap failed (last lines of its log).
    """
    config = config or PodmanConfig()
    tag = f"{ROOTFS_IMAGE_REPOSITORY}:{rootfs_inputs_hash()[:16]}"
    if image_exists(tag, config):
        return tag
    if shutil.which("mmdebstrap") is None:
        raise PodmanNotInstalled("mmdebstrap not found on PATH; it builds the stand-in's Debian rootfs. "
                                 "Install it with: apt-get install podman runc mmdebstrap (or: make rehearsal-deps)")
    work = config.state_dir / "rootfs"
    work.mkdir(parents=True, exist_ok=True)
    tarball, log_path = work / "rootfs.tar", work / "mmdebstrap.log"
    cmd = ["mmdebstrap", *MMDEBSTRAP_OPTIONS, "--include=" + ",".join(ROOTFS_PACKAGES),
           DEBIAN_SUITE, str(tarball), DEBIAN_MIRROR]
    with log_path.open("w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise ImageBuildError(tag, proc.returncode, log_path, tail(log_path.read_text(), LOG_TAIL_LINES))
    try:
        podman("import", "--change", 'CMD ["/bin/bash"]', str(tarball), tag, config=config)
    finally:
        tarball.unlink(missing_ok=True)
    return tag


def default_airflow_version() -> str:
    """docker/Dockerfile's ``ARG AIRFLOW_VERSION`` default, e.g. ``3.3.2``."""
    return dockerfile_args()["AIRFLOW_VERSION"]


def lock_file(version: str | None = None) -> Path:
    """The lock the stand-in of Airflow ``version`` installs: ``base_image/requirements.lock`` for
    docker/Dockerfile's ``AIRFLOW_VERSION``, ``base_image/requirements-<version>.lock`` for another."""
    if version is None or version == default_airflow_version():
        return BASE_IMAGE_DIR / "requirements.lock"
    return BASE_IMAGE_DIR / f"requirements-{version}.lock"


def stand_in_versions() -> list[str]:
    """The Airflow versions a stand-in can be built for: docker/Dockerfile's default and every
    version with a ``requirements-<version>.lock`` (``list[str]``, default first)."""
    others = sorted(p.name[len("requirements-"):-len(".lock")] for p in BASE_IMAGE_DIR.glob("requirements-*.lock"))
    return [default_airflow_version(), *others]


#: The Airflow pin of ``base_image/requirements.txt`` (the extras and ``==`` version).
_AIRFLOW_PIN = re.compile(r"^(apache-airflow(?:\[[^\]]*\])?)==(\S+)\s*$", re.MULTILINE)


#: Distributions of Airflow itself: another version brings its own (not taken from the default's lock).
_AIRFLOW_DISTRIBUTIONS = re.compile(r"^(apache-airflow|apache-airflow-core|apache-airflow-task-sdk)==", re.MULTILINE)


#: Packages of the default lock that another Airflow version requires at other versions, so
#: :func:`pins` leaves them to the resolver. 3.2.2: ``apache-airflow-core`` 3.2.2's wheel metadata
#: requires ``aiosqlite>=0.20.0,<0.22.0`` (the 3.3.2 lock has 0.22.1); no other package of that
#: lock conflicts with 3.2.2's requirements (checked against the wheels' Requires-Dist).
REQUIRED_OTHERWISE: dict[str, tuple[str, ...]] = {"3.2.2": ("aiosqlite",)}


def pins(version: str | None = None) -> str:
    """The pins the stand-in of Airflow ``version`` is locked from: ``base_image/requirements.txt``
    (the project's pins, one home) with its ``apache-airflow`` pin set to ``version``; the provider
    pins stay, so another version gets the same providers (they must support it: the install
    refuses otherwise, naming the conflict, when the lock is generated). For a version other than
    the Dockerfile's, every other package of the Dockerfile version's lock is pinned too: Airflow's
    constraints files, which fix the versions a release was tested with, are not reachable here,
    and today's newest versions break 3.2.2 (seen: its dag-processor exits with ``PydanticUserError:
    Model 'TITerminalStatePayload' needs a discriminator field`` with cadwyn 9.0.0 and fastapi
    0.165.0, resolved freely; the 3.3.2 lock has cadwyn 7.0.0 and fastapi 0.136.3).

    :raises ValueError: requirements.txt has no ``apache-airflow[...]==`` pin.
    """
    text = (BASE_IMAGE_DIR / "requirements.txt").read_text()
    if not _AIRFLOW_PIN.search(text):
        raise ValueError(f"{BASE_IMAGE_DIR / 'requirements.txt'} has no apache-airflow==<version> pin")
    if version is None or version == default_airflow_version():
        return text
    other = REQUIRED_OTHERWISE.get(version, ())
    tested = [line for line in (BASE_IMAGE_DIR / "requirements.lock").read_text().splitlines()
              if line and not line.startswith("#") and not _AIRFLOW_DISTRIBUTIONS.match(line)
              and line.split("==")[0].lower() not in other]
    return (_AIRFLOW_PIN.sub(lambda m: f"{m.group(1)}=={version}", text)
            + "# The other packages at the versions of requirements.lock (see local_ecs.images.pins)\n"
            + "\n".join(tested) + "\n")


def base_image_inputs_hash(requirements: str = "requirements.lock", version: str | None = None) -> str:
    """Hash of every input of the stand-in of Airflow ``version`` (default: the Dockerfile's): the
    rootfs recipe, the Containerfile, the entrypoint, the pins, the lock (``requirements``, a file
    name in ``base_image/``; the lock of ``version`` when that is given), the Dockerfile's version
    ARGs and the local CA certificates."""
    if version is not None and requirements == "requirements.lock":
        requirements = lock_file(version).name
    files = [BASE_IMAGE_DIR / n for n in ("Containerfile", "entrypoint.sh", "requirements.txt")]
    parts: list[bytes | str] = [rootfs_inputs_hash(), requirements]
    parts += [f.name.encode() + b"\0" + f.read_bytes() for f in files]
    lock = BASE_IMAGE_DIR / requirements
    parts.append(requirements.encode() + b"\0" + (lock.read_bytes() if lock.exists() else pins(version).encode()))
    parts += [f"{k}={v}" for k, v in sorted(dockerfile_args().items())]
    parts += [p.name.encode() + b"\0" + p.read_bytes() for p in _local_ca_files()]
    if version not in (None, default_airflow_version()):
        parts.append(f"AIRFLOW_VERSION={version}")
    return _sha256(*parts)


def build_base_image(config: PodmanConfig | None = None, *, requirements: str = "requirements.lock",
                     tag: str | None = None, version: str | None = None) -> str:
    """Build (or reuse) the stand-in for the official Airflow image.

    :param requirements: the file of ``base_image/`` that pip installs (the lock; a pins file only
        when generating the lock, see :func:`generate_lock`).
    :param tag: default: what docker/Dockerfile's ``FROM`` resolves to for ``version``, e.g.
        ``apache/airflow:3.3.2-python3.13`` (stored as ``localhost/apache/airflow:...``).
    :param version: the Airflow version (default: the Dockerfile's ``AIRFLOW_VERSION``); it
        installs :func:`lock_file` of that version.
    :returns: the tag. Reused when an image with that tag carries the same inputs hash.
    :raises ImageBuildError: the build failed (last lines of the build log).
    :raises FileNotFoundError: no lock for ``version`` (generate it: ``python -m local_ecs.images lock VERSION``).
    """
    config = config or PodmanConfig()
    version = version or default_airflow_version()
    if requirements == "requirements.lock":
        requirements = lock_file(version).name
        if not (BASE_IMAGE_DIR / requirements).exists():
            raise FileNotFoundError(f"no lock for Airflow {version} ({BASE_IMAGE_DIR / requirements}); generate it "
                                    f"with: python -m local_ecs.images lock {version}")
    tag = tag or base_image_tag(build_args={"AIRFLOW_VERSION": version})
    inputs = base_image_inputs_hash(requirements, version)
    if _image_label(tag, config) == inputs:
        return tag
    rootfs = build_rootfs(config)
    context = config.state_dir / "build" / f"base-{version}"
    if context.exists():
        shutil.rmtree(context)
    shutil.copytree(BASE_IMAGE_DIR, context)
    if not (context / requirements).exists():  # the pins of a version without a lock yet
        (context / requirements).write_text(pins(version))
    ca_dir = context / "local-ca-certificates"
    ca_dir.mkdir()
    for ca in _local_ca_files():
        shutil.copy2(ca, ca_dir / ca.name)
    _build(tag, context, context / "Containerfile",
           {"ROOTFS": rootfs, "AIRFLOW_VERSION": version,
            "PYTHON_VERSION": dockerfile_args()["PYTHON_VERSION"], "REQUIREMENTS": requirements},
           {INPUTS_LABEL: inputs}, config)
    return tag


def generate_lock(config: PodmanConfig | None = None, version: str | None = None) -> Path:
    """Regenerate the lock of the stand-in of Airflow ``version`` (default: the Dockerfile's):
    build the stand-in from :func:`pins` alone, then ``pip freeze`` inside it. Commit the result;
    builds install from it.

    :returns: the lock's path (:func:`lock_file`).
    """
    config = config or PodmanConfig()
    version = version or default_airflow_version()
    unlocked = "requirements.txt" if version == default_airflow_version() else f"requirements-{version}.txt"
    tag = build_base_image(config, requirements=unlocked, version=version,
                           tag=f"localhost/local-ecs/airflow-unlocked:{version}")
    frozen = podman("run", "--rm", "--pull=never", "--network=none", "--entrypoint", "pip", tag,
                    "freeze", "--all", "--exclude", "pip", config=config).stdout
    lock = lock_file(version)
    lock.write_text(
        f"# Generated by `python -m local_ecs.images lock{'' if version == default_airflow_version() else ' ' + version}`"
        " inside the stand-in (pip freeze after installing\n"
        f"# requirements.txt{'' if version == default_airflow_version() else ' with apache-airflow==' + version}); "
        "the stand-in installs exactly these versions. Do not edit by hand.\n" + frozen
    )
    return lock


def context_hash(directory: Path, dockerfile: str, build_args: Mapping[str, str]) -> str:
    """Hash of a build context's files (paths, modes, contents), the Dockerfile path and build args."""
    parts: list[bytes | str] = [dockerfile, json.dumps(dict(build_args), sort_keys=True)]
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            rel = path.relative_to(directory).as_posix()
            parts.append(f"{rel}:{path.stat().st_mode & 0o777:o}".encode() + b"\0" + path.read_bytes())
        elif path.is_symlink():
            parts.append(f"{path.relative_to(directory).as_posix()}->{path.readlink()}")
    return _sha256(*parts)


def build_project_image(context_dir: str | Path, dockerfile: str = "Dockerfile",
                        build_args: Mapping[str, str] | None = None, *, platform: str | None = None,
                        config: PodmanConfig | None = None, build_secrets: Mapping[str, str] | None = None) -> str:
    """Build the project image (``docker/Dockerfile``, unchanged) with podman on the stand-in base.

    :param context_dir: the build context, e.g. a CDK asset staged in ``cdk.out/asset.<hash>``.
    :param dockerfile: the Dockerfile, relative to ``context_dir``.
    :param build_args: ``--build-arg`` values (``dict[str, str]``), as the asset manifest gives them.
    :param platform: e.g. ``linux/amd64`` (the asset's platform), or None.
    :param build_secrets: the asset's build secrets, ``{id: source}`` (``{"pip_index":
        "src=<file>"}`` with ``pip_index_file``), passed as the CDK CLI passes them
        (:func:`secret_options`).
    :returns: ``localhost/local-ecs/project:<hash, 16 hex>``; the hash covers the context's files,
        the Dockerfile path, the build args, the build secrets' ids and sources (not their content,
        as the asset's own hash) and the base image's inputs, and a built image is reused.
    :raises ImageBuildError: the build failed (with the last lines of the build log).
    """
    config = config or PodmanConfig()
    context = Path(context_dir).resolve()
    build_args = dict(build_args or {})
    wanted = base_image_tag(context / dockerfile, build_args)
    # A stand-in is built for what docker/Dockerfile's FROM names with each version that has a
    # lock (the build arg AIRFLOW_VERSION picks it); any other base must be local.
    stand_ins = {base_image_tag(build_args={"AIRFLOW_VERSION": v}): v for v in stand_in_versions()}
    base = build_base_image(config, version=stand_ins[wanted]) if wanted in stand_ins else wanted
    base_inputs = _image_label(base, config) or ""
    secrets_spec = [json.dumps(dict(build_secrets), sort_keys=True)] if build_secrets else []
    inputs = _sha256(context_hash(context, dockerfile, build_args), base, base_inputs, platform or "", *secrets_spec)
    tag = f"{PROJECT_IMAGE_REPOSITORY}:{inputs[:16]}"
    if _image_label(tag, config) == inputs:
        return tag
    _build(tag, context, context / dockerfile, build_args, {INPUTS_LABEL: inputs}, config, platform, build_secrets)
    return tag


def layers_holding(archive: Path, needle: bytes) -> list[str]:
    """Members of a ``podman save --format docker-archive`` file (layers, config, manifest) whose
    bytes, or the bytes of any file inside a layer, contain ``needle``: a token that must be in no
    layer of an image gives ``[]``."""
    found = []
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            handle = outer.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            data = handle.read()
            if needle in data:
                found.append(member.name)
                continue
            try:
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for inner in layer.getmembers():
                        inner_handle = layer.extractfile(inner) if inner.isfile() else None
                        if inner_handle is not None and needle in inner_handle.read():
                            found.append(f"{member.name}:{inner.name}")
            except tarfile.ReadError:
                pass
    return found


def image_size_mib(tag: str, config: PodmanConfig | None = None) -> float:
    """Size of a local image in MiB (2**20 bytes), as ``podman image inspect`` reports it (all layers)."""
    size = podman("image", "inspect", "--format", "{{.Size}}", tag, config=config or PodmanConfig()).stdout
    return int(size.strip()) / 2**20


def build_assembly_images(
    cdk_out: str | Path, config: PodmanConfig | None = None, only: set[str] | None = None
) -> dict[str, str]:
    """Build the Docker image assets of a cloud assembly: every one, or those whose hash is in ``only``.

    :returns: ``{asset hash: local image tag}``; a template's image URI ends in ``:<asset hash>``.
    :raises ValueError: a hash of ``only`` that the assembly has no image asset for, or an image asset
        built by an executable (it has no build context to build).
    """
    assets = list(CloudAssembly(cdk_out).images.values())
    if only is not None:
        unknown = only - {a.asset_hash for a in assets}
        if unknown:
            raise ValueError(f"no Docker image asset with hash {sorted(unknown)} in {cdk_out}")
        assets = [a for a in assets if a.asset_hash in only]
    for a in assets:
        if a.directory is None:
            raise ValueError(f"{cdk_out}: image asset {a.asset_hash} has no source directory "
                             "(executable image assets are not supported)")
    return {
        a.asset_hash: build_project_image(a.directory, a.dockerfile, a.build_args, platform=a.platform, config=config,
                                          build_secrets=a.build_secrets)
        for a in assets
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if (not argv or argv[0] not in {"base", "lock", "project"} or (argv[0] == "project" and len(argv) != 2)
            or len(argv) > 2):
        print(__doc__, file=sys.stderr)
        return 2
    started = time.monotonic()
    version = argv[1] if len(argv) == 2 and argv[0] != "project" else None
    try:
        if argv[0] == "base":
            print(build_base_image(version=version))
        elif argv[0] == "lock":
            print(generate_lock(version=version))
        else:
            for asset_hash, tag in build_assembly_images(argv[1]).items():
                print(f"{asset_hash} {tag} {image_size_mib(tag):.0f} MiB")
    except (ImageBuildError, PodmanError, PodmanNotInstalled, FileNotFoundError) as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
