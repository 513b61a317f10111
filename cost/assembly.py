"""Read the CloudFormation templates of a cloud assembly (``cdk.out``), or synthesize one.

The cost model reads what the templates say (task sizes, counts, capacity providers, instance
classes), so it follows every change of the app without restating it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def read_templates(assembly_dir: Path) -> dict[str, dict]:
    """Return ``{stack name: template}`` of every stack in the assembly at ``assembly_dir``.

    :raises FileNotFoundError: when ``assembly_dir`` holds no ``manifest.json``.
    """
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    templates = {}
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        props = artifact["properties"]
        name = props.get("stackName") or artifact.get("displayName")
        templates[name] = json.loads((assembly_dir / props["templateFile"]).read_text())
    return templates


def cdk_json_context() -> dict:
    """The ``context`` of the project's ``cdk.json``."""
    return json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]


def synthesize(overrides: Mapping[str, str], outdir: Path) -> tuple[object, dict[str, dict]]:
    """Synthesize the app as ``cdk synth -c key=value ...`` would, into ``outdir``.

    :param overrides: the ``-c`` options, over ``cdk.json``'s context.
    :returns: ``(DeploymentConfig, {stack name: template})``.
    :raises app_config.ConfigError: for a bad configuration (every bad key named).
    """
    import aws_cdk as cdk

    from app import build_app
    from app_config import load_config

    app = cdk.App(context={**cdk_json_context(), **overrides}, outdir=str(outdir))
    config = load_config(app.node.get_all_context())
    build_app(app, config)
    assembly = app.synth()
    return config, read_templates(Path(assembly.directory))
