"""Container images for the rehearsal: the stand-in Airflow base image and the project image.

No container registry is reachable from the machines the rehearsal runs on, so ``FROM apache/airflow``
in ``docker/Dockerfile`` cannot be pulled. :func:`build_base_image` builds a stand-in from a Debian
rootfs (``mmdebstrap``) and PyPI only, tagged exactly as the Dockerfile's ``FROM`` resolves, so that
:func:`build_project_image` builds ``docker/Dockerfile`` unchanged with ``--pull=never``. Both are
cached by the hash of their inputs. docs/rehearsal.md explains the choices (Debian suite, Python).

Command line::

    python -m local_ecs.images base            # build (or reuse) the stand-in, print its tag
    python -m local_ecs.images lock            # regenerate base_image/requirements.lock
    python -m local_ecs.images project CDK_OUT # build every Docker image asset of a cloud assembly
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
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
#: Debian packages of the rootfs (minbase variant plus these).
ROOTFS_PACKAGES = ("python3", "python3-venv", "ca-certificates", "curl", "dumb-init")
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


def _build(tag: str, context: Path, containerfile: Path, build_args: Mapping[str, str], labels: Mapping[str, str],
           config: PodmanConfig, platform: str | None = None) -> None:
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


def base_image_inputs_hash(requirements: str = "requirements.lock") -> str:
    """Hash of every input of the stand-in: the rootfs recipe, the Containerfile, the entrypoint,
    the pins, the lock, the Dockerfile's version ARGs and the local CA certificates."""
    files = [BASE_IMAGE_DIR / n for n in ("Containerfile", "entrypoint.sh", "requirements.txt", requirements)]
    parts: list[bytes | str] = [rootfs_inputs_hash(), requirements]
    parts += [f.name.encode() + b"\0" + f.read_bytes() for f in files]
    parts += [f"{k}={v}" for k, v in sorted(dockerfile_args().items())]
    parts += [p.name.encode() + b"\0" + p.read_bytes() for p in _local_ca_files()]
    return _sha256(*parts)


def build_base_image(config: PodmanConfig | None = None, *, requirements: str = "requirements.lock",
                     tag: str | None = None) -> str:
    """Build (or reuse) the stand-in for the official Airflow image.

    :param requirements: the file of ``base_image/`` that pip installs (the lock; the pins file
        only when generating the lock).
    :param tag: default: what docker/Dockerfile's ``FROM`` resolves to, e.g.
        ``apache/airflow:3.3.2-python3.13`` (stored as ``localhost/apache/airflow:...``).
    :returns: the tag. Reused when an image with that tag carries the same inputs hash.
    :raises ImageBuildError: the build failed (last lines of the build log).
    """
    config = config or PodmanConfig()
    tag = tag or base_image_tag()
    inputs = base_image_inputs_hash(requirements)
    if _image_label(tag, config) == inputs:
        return tag
    rootfs = build_rootfs(config)
    context = config.state_dir / "build" / "base"
    if context.exists():
        shutil.rmtree(context)
    shutil.copytree(BASE_IMAGE_DIR, context)
    ca_dir = context / "local-ca-certificates"
    ca_dir.mkdir()
    for ca in _local_ca_files():
        shutil.copy2(ca, ca_dir / ca.name)
    versions = dockerfile_args()
    _build(tag, context, context / "Containerfile",
           {"ROOTFS": rootfs, "AIRFLOW_VERSION": versions["AIRFLOW_VERSION"],
            "PYTHON_VERSION": versions["PYTHON_VERSION"], "REQUIREMENTS": requirements},
           {INPUTS_LABEL: inputs}, config)
    return tag


def generate_lock(config: PodmanConfig | None = None) -> Path:
    """Regenerate ``base_image/requirements.lock``: build the stand-in from the pins alone, then
    ``pip freeze`` inside it. Commit the result; builds install from it.

    :returns: the lock's path.
    """
    config = config or PodmanConfig()
    tag = build_base_image(config, requirements="requirements.txt", tag="localhost/local-ecs/airflow-unlocked:latest")
    frozen = podman("run", "--rm", "--pull=never", "--network=none", "--entrypoint", "pip", tag,
                    "freeze", "--all", "--exclude", "pip", config=config).stdout
    lock = BASE_IMAGE_DIR / "requirements.lock"
    lock.write_text(
        "# Generated by `python -m local_ecs.images lock` inside the stand-in (pip freeze after installing\n"
        "# requirements.txt); the stand-in installs exactly these versions. Do not edit by hand.\n" + frozen
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
                        config: PodmanConfig | None = None) -> str:
    """Build the project image (``docker/Dockerfile``, unchanged) with podman on the stand-in base.

    :param context_dir: the build context, e.g. a CDK asset staged in ``cdk.out/asset.<hash>``.
    :param dockerfile: the Dockerfile, relative to ``context_dir``.
    :param build_args: ``--build-arg`` values (``dict[str, str]``), as the asset manifest gives them.
    :param platform: e.g. ``linux/amd64`` (the asset's platform), or None.
    :returns: ``localhost/local-ecs/project:<hash, 16 hex>``; the hash covers the context's files,
        the Dockerfile path, the build args and the base image's inputs, and a built image is reused.
    :raises ImageBuildError: the build failed (with the last lines of the build log).
    """
    config = config or PodmanConfig()
    context = Path(context_dir).resolve()
    build_args = dict(build_args or {})
    wanted = base_image_tag(context / dockerfile, build_args)
    # The stand-in is built for what docker/Dockerfile's FROM names; any other base must be local.
    base = build_base_image(config) if wanted == base_image_tag() else wanted
    base_inputs = _image_label(base, config) or ""
    inputs = _sha256(context_hash(context, dockerfile, build_args), base, base_inputs, platform or "")
    tag = f"{PROJECT_IMAGE_REPOSITORY}:{inputs[:16]}"
    if _image_label(tag, config) == inputs:
        return tag
    _build(tag, context, context / dockerfile, build_args, {INPUTS_LABEL: inputs}, config, platform)
    return tag


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
        a.asset_hash: build_project_image(a.directory, a.dockerfile, a.build_args, platform=a.platform, config=config)
        for a in assets
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in {"base", "lock", "project"} or (argv[0] == "project" and len(argv) != 2):
        print(__doc__, file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        if argv[0] == "base":
            print(build_base_image())
        elif argv[0] == "lock":
            print(generate_lock())
        else:
            for asset_hash, tag in build_assembly_images(argv[1]).items():
                print(f"{asset_hash} {tag} {image_size_mib(tag):.0f} MiB")
    except (ImageBuildError, PodmanError, PodmanNotInstalled) as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
