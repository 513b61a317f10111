"""Read a cloud assembly: the ``cdk synth`` output directory (``cdk.out``).

The tools that look at the deployment read what the templates say instead of restating it, so
when a template changes they follow. :class:`CloudAssembly` reads ``manifest.json`` once: the
CloudFormation stacks (artifact type ``aws:cloudformation:stack``, with their templates) and the
Docker image assets of the asset manifests (type ``cdk:asset-manifest``, the ``dockerImages`` of
each ``*.assets.json``).

Cloud assembly schema: https://github.com/aws/aws-cdk-cli/tree/main/packages/%40aws-cdk/cloud-assembly-schema
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Artifact types of ``manifest.json`` (cloud assembly schema, ``ArtifactType``).
STACK_ARTIFACT = "aws:cloudformation:stack"
ASSET_MANIFEST_ARTIFACT = "cdk:asset-manifest"


class AssemblyError(ValueError):
    """A cloud assembly cannot be read; the message names the file or the stack."""


class MissingAssembly(AssemblyError):
    """The directory holds no ``manifest.json``: nothing was synthesized into it. Tools catch this
    one to say how they want the assembly made (``make synth``, ``cdk synth -o ...``)."""


@dataclass(frozen=True)
class StackArtifact:
    """One CloudFormation stack of the assembly.

    :ivar artifact_id: the CDK construct ID of the stack (``str``), e.g. ``Airflow``.
    :ivar stack_name: the CloudFormation stack name (``str``), e.g. ``airflow-dev-airflow``.
    :ivar template: the template as parsed JSON (``dict``).
    :ivar template_path: the template's file in the assembly (``Path``), for scanners that read files.
    :ivar region: the stack's region, or None for an environment-agnostic stack.
    :ivar dependencies: the artifact IDs it depends on (its asset manifest, other stacks).
    """

    artifact_id: str
    stack_name: str
    template: dict
    template_path: Path
    region: str | None = None
    dependencies: tuple[str, ...] = ()

    @property
    def resources(self) -> dict[str, dict]:
        """``{logical ID: resource}`` of the template."""
        return self.template.get("Resources", {})

    def of_type(self, resource_type: str) -> dict[str, dict]:
        """Return ``{logical ID: resource}`` of every resource of ``resource_type``."""
        return {k: v for k, v in self.resources.items() if v.get("Type") == resource_type}


@dataclass(frozen=True)
class DockerImageAsset:
    """One ``dockerImages`` entry of an asset manifest.

    :ivar asset_hash: the asset's hash (``str``, 64 hex), also the image tag the templates use.
    :ivar directory: the staged build context (``Path``, absolute), or None for an image built by
        an executable (none of this app's).
    :ivar dockerfile: the Dockerfile, relative to ``directory`` (``str``).
    :ivar build_args: ``--build-arg`` values (``dict[str, str]``).
    :ivar platform: e.g. ``linux/amd64``, or None.
    :ivar build_secrets: ``--secret`` values (``dict[str, str]``, id -> source), e.g. a private
        package index.
    """

    asset_hash: str
    directory: Path | None
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str] = field(default_factory=dict)
    platform: str | None = None
    build_secrets: dict[str, str] = field(default_factory=dict)


class CloudAssembly:
    """The stacks and Docker image assets of a synthesized app.

    :param directory: the ``cdk.out`` directory (``cdk synth`` output).
    :ivar stacks: ``{artifact ID: StackArtifact}``.
    :ivar images: ``{asset hash: DockerImageAsset}`` of every asset manifest, deduplicated by hash.
    :ivar missing_context: the context lookups the app asked for and did not get (the manifest's
        ``missing``): empty when synthesis looked nothing up in an AWS account.
    :raises MissingAssembly: there is no ``manifest.json``.
    :raises AssemblyError: a template or asset manifest it names is missing.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        manifest_path = self.directory / "manifest.json"
        if not manifest_path.is_file():
            raise MissingAssembly(f"{manifest_path} not found: run `cdk synth` (or `make synth`) first")
        manifest = json.loads(manifest_path.read_text())
        artifacts = manifest.get("artifacts") or {}
        self.missing_context: list[dict] = list(manifest.get("missing") or [])
        self.stacks: dict[str, StackArtifact] = {}
        self.images: dict[str, DockerImageAsset] = {}
        self._images_of_manifest: dict[str, list[str]] = {}
        for artifact_id, artifact in artifacts.items():
            properties = artifact.get("properties") or {}
            if artifact.get("type") == STACK_ARTIFACT:
                self.stacks[artifact_id] = self._read_stack(artifact_id, artifact, properties)
            elif artifact.get("type") == ASSET_MANIFEST_ARTIFACT:
                self._images_of_manifest[artifact_id] = self._read_images(self._file(properties["file"], artifact_id))

    def _file(self, name: str, artifact_id: str) -> Path:
        path = self.directory / name
        if not path.is_file():
            raise AssemblyError(f"{path} of {artifact_id} is missing from the cloud assembly: synthesize it again")
        return path

    def _read_stack(self, artifact_id: str, artifact: dict, properties: dict) -> StackArtifact:
        template_path = self._file(properties.get("templateFile", f"{artifact_id}.template.json"), artifact_id)
        region = (artifact.get("environment") or "").rsplit("/", 1)[-1]
        return StackArtifact(
            artifact_id=artifact_id,
            stack_name=properties.get("stackName") or artifact.get("displayName") or artifact_id,
            template=json.loads(template_path.read_text()),
            template_path=template_path,
            region=None if region in ("", "unknown-region") else region,
            dependencies=tuple(artifact.get("dependencies") or ()),
        )

    def _read_images(self, asset_manifest: Path) -> list[str]:
        hashes = []
        for asset_hash, entry in json.loads(asset_manifest.read_text()).get("dockerImages", {}).items():
            source = entry.get("source") or {}
            directory = source.get("directory")
            self.images[asset_hash] = DockerImageAsset(
                asset_hash=asset_hash,
                directory=(self.directory / directory).resolve() if directory else None,
                dockerfile=source.get("dockerFile", "Dockerfile"),
                build_args=dict(source.get("dockerBuildArgs") or {}),
                platform=source.get("platform"),
                build_secrets=dict(source.get("dockerBuildSecrets") or {}),
            )
            hashes.append(asset_hash)
        return hashes

    def stack(self, artifact_id: str) -> StackArtifact:
        """Return the stack with construct ID ``artifact_id``.

        :raises AssemblyError: naming the stacks there are.
        """
        try:
            return self.stacks[artifact_id]
        except KeyError:
            raise AssemblyError(f"no stack {artifact_id!r} in {self.directory}; there are {sorted(self.stacks)}") from None

    def stack_named(self, stack_name: str) -> StackArtifact | None:
        """Return the stack whose CloudFormation name is ``stack_name``, or None."""
        return next((s for s in self.stacks.values() if s.stack_name == stack_name), None)

    def templates(self) -> dict[str, dict]:
        """Return ``{stack name: template}`` of every stack."""
        return {stack.stack_name: stack.template for stack in self.stacks.values()}

    def images_of(self, stack: StackArtifact) -> list[DockerImageAsset]:
        """The Docker image assets of the asset manifests ``stack`` depends on (what deploying it builds)."""
        return [self.images[h] for dependency in stack.dependencies for h in self._images_of_manifest.get(dependency, [])]

    def exports(self) -> dict[str, tuple[str, Any]]:
        """Return ``{export name: (stack ID, unresolved output value)}`` of the outputs whose export
        name is a plain string."""
        found: dict[str, tuple[str, Any]] = {}
        for stack in self.stacks.values():
            for output in stack.template.get("Outputs", {}).values():
                name = (output.get("Export") or {}).get("Name")
                if isinstance(name, str):
                    found[name] = (stack.artifact_id, output["Value"])
        return found
