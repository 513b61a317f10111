"""Create-only properties and primary identifiers from the registry schemas cfn-lint ships.

cfn-lint bundles the CloudFormation resource provider schemas:
``cfnlint/data/schemas/providers/<region>.json`` maps a resource type to the file name of its
schema under ``cfnlint/data/schemas/resources/``; each schema lists ``createOnlyProperties``
(changing one replaces the resource) and ``primaryIdentifier`` as JSON pointers
(``/properties/CidrBlock``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: Region whose provider list is read when a template's region is not known.
DEFAULT_REGION = "us-east-1"


class SchemaError(Exception):
    """cfn-lint or its schema files are missing."""


@dataclass(frozen=True)
class TypeSchema:
    """What the check needs of one resource type's schema.

    :param create_only: JSON pointers below ``/properties`` (``("CidrBlock",)``, nested paths as
        tuples, ``*`` for every list item).
    :param primary_identifier: the same form, the properties that name the resource.
    """

    create_only: tuple[tuple[str, ...], ...]
    primary_identifier: tuple[tuple[str, ...], ...]


def _schemas_dir() -> Path:
    try:
        import cfnlint.data.schemas as schemas_pkg
    except ImportError as err:  # pragma: no cover - cfn-lint is a requirement of this package
        raise SchemaError("cfn-lint is not installed: pip install -r changes/requirements.txt") from err
    return Path(schemas_pkg.__file__).parent


def _pointers(values: list[str] | None) -> tuple[tuple[str, ...], ...]:
    paths = []
    for pointer in values or []:
        parts = pointer.strip("/").split("/")
        if parts and parts[0] == "properties":
            paths.append(tuple(parts[1:]))
    return tuple(paths)


@lru_cache(maxsize=None)
def _provider_index(region: str) -> dict[str, str]:
    root = _schemas_dir() / "providers"
    path = root / f"{region}.json"
    if not path.exists():
        path = root / f"{DEFAULT_REGION}.json"
    return json.loads(path.read_text())


@lru_cache(maxsize=None)
def type_schema(resource_type: str, region: str = DEFAULT_REGION) -> TypeSchema | None:
    """Return the :class:`TypeSchema` of ``resource_type`` (e.g. ``AWS::EC2::VPC``), or None for a
    type the registry does not list (custom resources, ``AWS::CDK::Metadata``)."""
    name = _provider_index(region).get(resource_type)
    if not name:
        return None
    schema = json.loads((_schemas_dir() / "resources" / f"{name}.json").read_text())
    return TypeSchema(_pointers(schema.get("createOnlyProperties")), _pointers(schema.get("primaryIdentifier")))
