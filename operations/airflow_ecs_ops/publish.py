"""Build the Airflow image and push it into the app's own ECR repository with a version tag.

The build context is the one CDK staged into the cloud assembly (``cdk.out``) for the image
stack, so the published image is built from exactly what ``cdk deploy`` would build (the same
allowlisted files and Dockerfile), and deploying it with ``-c image_tag=<tag>`` runs it.
"""

from __future__ import annotations

import base64
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from airflow_ecs_ops.deployment import OpsError, aws_error
from cloud_assembly import AssemblyError, CloudAssembly, MissingAssembly

#: A semantic version (https://semver.org), optionally with a leading ``v``: the prod tags.
SEMVER_RE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")
#: ECR image tags: up to 128 of letters, digits, ``_ . -``, not starting with ``.`` or ``-``.
ECR_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class StagedImage:
    """The image asset of the image stack in a cloud assembly.

    :param context: the staged build context directory.
    :param dockerfile: the Dockerfile, relative to ``context``.
    :param platform: e.g. ``linux/amd64``, or None.
    :param build_secrets: build secret id -> ``src=<file>`` (the asset's ``dockerBuildSecrets``,
        e.g. ``pip_index`` from the key ``pip_index_file``), passed as ``--secret id=<id>,src=<file>``.
    """

    context: Path
    dockerfile: str
    platform: str | None
    build_secrets: tuple[tuple[str, str], ...] = ()


def staged_image(assembly_dir: Path, image_stack: str) -> StagedImage:
    """Find the Docker image asset of the stack named ``image_stack`` in ``assembly_dir``.

    :raises OpsError: no assembly (run ``make synth``), no such stack, or no image asset (the app
        was synthesized with ``image_tag`` or ``image_uri``).
    """
    try:
        assembly = CloudAssembly(assembly_dir)
    except MissingAssembly:
        raise OpsError(f"No cloud assembly at {assembly_dir}: run make synth first.") from None
    except AssemblyError as err:
        raise OpsError(str(err)) from None
    stack = assembly.stack_named(image_stack)
    if stack is None:
        raise OpsError(f"{assembly_dir} holds no stack {image_stack}: synthesize the same project and stage.")
    for image in assembly.images_of(stack):
        if image.directory is not None:
            return StagedImage(context=image.directory, dockerfile=image.dockerfile, platform=image.platform,
                               build_secrets=tuple(sorted(image.build_secrets.items())))
    raise OpsError(
        f"Stack {image_stack} in {assembly_dir} builds no image (synthesized with image_tag or image_uri?): "
        "run make synth without them first."
    )


def default_tag(stage: str, git_commit: str | None, git_dirty: bool, version: str | None) -> str:
    """The tag to publish: ``version`` when given (required in prod, a semantic version), else
    ``git-<short commit>`` (dev).

    :raises OpsError: prod without a semantic version; a dev build from a tree with uncommitted
        changes (the tag would not say what the image holds); an invalid tag.
    """
    if version:
        if stage == "prod" and not SEMVER_RE.match(version):
            raise OpsError(f"--version {version!r}: prod images are tagged with a semantic version, e.g. 1.4.0.")
        if not ECR_TAG_RE.match(version):
            raise OpsError(f"--version {version!r}: an ECR tag is 1-128 of A-Z a-z 0-9 _ . - characters.")
        return version
    if stage == "prod":
        raise OpsError("prod images are tagged with a semantic version: pass --version 1.2.3 (make publish VERSION=1.2.3).")
    if not git_commit:
        raise OpsError("Not a git checkout: pass --version to name the image's tag.")
    if git_dirty:
        raise OpsError(
            "The work tree has uncommitted changes, so git-<commit> would not describe the image: "
            "commit them, or pass --version."
        )
    return f"git-{git_commit}"


def git_state(root: Path) -> tuple[str | None, bool]:
    """Return (short commit, whether tracked files have uncommitted changes) of the checkout at ``root``."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return commit, bool(dirty)


def tag_exists(ecr, repository_name: str, tag: str) -> bool:
    """Whether ``repository_name`` already holds ``tag`` (its tags are immutable)."""
    try:
        ecr.describe_images(repositoryName=repository_name, imageIds=[{"imageTag": tag}])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ImageNotFoundException":
            return False
        raise aws_error(err, f"looking up {repository_name}:{tag}") from err
    return True


def registry_login(ecr) -> tuple[str, str, str]:
    """Return (registry host, user, password) from ECR's GetAuthorizationToken (valid 12 hours)."""
    try:
        data = ecr.get_authorization_token()["authorizationData"][0]
    except ClientError as err:
        raise aws_error(err, "getting an ECR login (GetAuthorizationToken)") from err
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return data["proxyEndpoint"].removeprefix("https://"), user, password


def publish(ecr, engine: str, staged: StagedImage, repository_uri: str, tag: str, run=subprocess.run) -> str:
    """Build ``staged`` with ``engine`` (``docker`` or ``podman``), log in to ECR and push
    ``<repository_uri>:<tag>``. Returns that image reference.

    :raises OpsError: the tag exists already (ECR tags here are immutable), or a step failed.
    """
    repository_name = repository_uri.split("/", 1)[1]
    if tag_exists(ecr, repository_name, tag):
        raise OpsError(f"{repository_uri}:{tag} exists already and tags are immutable: deploy it with -c image_tag={tag}.")
    image = f"{repository_uri}:{tag}"
    build = [engine, "build", "--tag", image, "--file", str(staged.context / staged.dockerfile)]
    if staged.platform:
        build += ["--platform", staged.platform]
    for secret_id, source in staged.build_secrets:
        build += ["--secret", f"id={secret_id},{source}"]
    _step(run, build + [str(staged.context)], f"{engine} build")
    registry, user, password = registry_login(ecr)
    _step(run, [engine, "login", "--username", user, "--password-stdin", registry], f"{engine} login", stdin=password)
    _step(run, [engine, "push", image], f"{engine} push")
    return image


def _step(run, argv: list[str], what: str, stdin: str | None = None) -> None:
    try:
        result = run(argv, input=stdin, text=True)
    except FileNotFoundError as err:
        raise OpsError(f"{argv[0]} is not installed: install Docker or podman, or pass --engine.") from err
    if result.returncode != 0:
        raise OpsError(f"{what} failed with exit status {result.returncode}.")
