"""The one Airflow image that every component and every worker runs."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import DockerBuildSecret, RemovalPolicy
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from constructs import Construct

#: The build context: the repository root, so the image gets ``executor/`` and ``dags/``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "docker/Dockerfile"
#: The build context is an allowlist: everything is excluded but what the Dockerfile copies, so
#: no virtualenv, test file or local credential file can reach the image (or the asset hash).
BUILD_CONTEXT_EXCLUDES = [
    "*", "!docker", "!executor", "!dags", "**/__pycache__", "**/*.pyc", "**/*.egg-info", "**/build",
]
#: The build secret docker/Dockerfile mounts for pip (``RUN --mount=type=secret,id=pip_index``).
PIP_INDEX_SECRET_ID = "pip_index"


def build_secrets(pip_index_file: str | None) -> dict[str, str] | None:
    """The image asset's build secrets: ``pip_index`` from ``pip_index_file`` (an absolute path
    outside the repository), or None.

    CDK passes each as ``--secret id=<id>,src=<file>`` to ``docker build`` (BuildKit; podman and
    buildah take the same flag), so the cloud assembly records the file's path, never its content,
    and the file is not in the build context. ``DockerImageAsset`` ``build_secrets``:
    https://docs.aws.amazon.com/cdk/api/v2/python/aws_cdk.aws_ecr_assets/DockerImageAsset.html
    """
    if not pip_index_file:
        return None
    return {PIP_INDEX_SECRET_ID: DockerBuildSecret.from_src(pip_index_file)}


class AirflowImage(Construct):
    """An ECR repository and the container image the services and workers run.

    The image is, in order of precedence: ``image_uri`` (any registry), ``image_tag`` in the
    repository created here, or ``docker/Dockerfile`` built at deploy time as a CDK image asset
    (published to the CDK bootstrap repository; synthesis needs no Docker) with ``build_args``
    (``--build-arg`` values, e.g. ``AIRFLOW_VERSION``; part of the asset's hash) and
    ``pip_index_file`` as its build secret ``pip_index`` (:func:`build_secrets`).

    :ivar repository: ``ecr.Repository`` (scan on push, immutable tags, keeps the last
        ``keep_images`` images).
    :ivar container_image: ``ecs.ContainerImage`` for every task definition.
    :ivar asset: the ``DockerImageAsset``, or None when an existing image is used.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image_uri: str | None,
        image_tag: str | None,
        retain: bool,
        keep_images: int = 20,
        pip_index_file: str | None = None,
        build_args: dict[str, str] | None = None,
    ):
        super().__init__(scope, construct_id)
        self.repository = ecr.Repository(
            self,
            "Repository",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            lifecycle_rules=[
                ecr.LifecycleRule(description=f"Keep the last {keep_images} images", max_image_count=keep_images)
            ],
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            empty_on_delete=not retain,
        )
        self.asset: ecr_assets.DockerImageAsset | None = None
        if image_uri:
            self.container_image = ecs.ContainerImage.from_registry(image_uri)
        elif image_tag:
            self.container_image = ecs.ContainerImage.from_ecr_repository(self.repository, image_tag)
        else:
            self.asset = ecr_assets.DockerImageAsset(
                self,
                "Asset",
                directory=str(PROJECT_ROOT),
                file=DOCKERFILE,
                exclude=BUILD_CONTEXT_EXCLUDES,
                build_args=build_args or None,
                platform=ecr_assets.Platform.LINUX_AMD64,
                build_secrets=build_secrets(pip_index_file),
            )
            self.container_image = ecs.ContainerImage.from_docker_image_asset(self.asset)
