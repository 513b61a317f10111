"""A local ECS runner: builds the images of a cloud assembly and runs its task definitions with
podman, as ECS would (the rehearsal tests and ``make local`` use it).

``local_ecs.assembly`` resolves the intrinsics of ``cdk.out`` (read by ``cloud_assembly``) to stand-in values;
``local_ecs.aws`` is moto with the templates' resources and IAM enforced; ``local_ecs.taskdef`` and
``local_ecs.runner`` run task definitions as podman containers with ECS semantics (and an ECS
stand-in for RunTask); ``local_ecs.scenario`` is the rehearsal. See docs/rehearsal.md.
``local_ecs.podman`` sets up and calls podman; ``local_ecs.images`` builds the stand-in for the
official Airflow base image and the project image; ``base_image/`` holds the stand-in's files.
"""

import importlib

_EXPORTS = {
    "ImageBuildError": "local_ecs.images",
    "base_image_tag": "local_ecs.images",
    "build_assembly_images": "local_ecs.images",
    "build_base_image": "local_ecs.images",
    "build_project_image": "local_ecs.images",
    "image_size_mib": "local_ecs.images",
    "PodmanConfig": "local_ecs.podman",
    "PodmanError": "local_ecs.podman",
    "PodmanNotInstalled": "local_ecs.podman",
    "podman": "local_ecs.podman",
    "require_podman": "local_ecs.podman",
}


def __getattr__(name: str):
    # Lazy, so that `python -m local_ecs.images` does not import the module twice.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'local_ecs' has no attribute {name!r}")


__all__ = [
    "ImageBuildError",
    "PodmanConfig",
    "PodmanError",
    "PodmanNotInstalled",
    "base_image_tag",
    "build_assembly_images",
    "build_base_image",
    "build_project_image",
    "image_size_mib",
    "podman",
    "require_podman",
]
