#!/usr/bin/env python3
"""The CDK app: reads the context, builds the typed configuration, composes the five stacks.

This is the only module that reads CDK context or the environment. :func:`synthesize` is
``cdk synth -c key=value ...`` in-process, for the cost report and the tests.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from app_config import ConfigError, DeploymentConfig, load_config
from changes.check import CONFIGURATION_METADATA_KEY, configuration_context
from cloud_assembly import CloudAssembly
from stacks.airflow_stack import AirflowStack
from stacks.cluster_stack import ClusterStack
from stacks.database_stack import DatabaseStack
from stacks.image_stack import ImageStack
from stacks.network_stack import NetworkStack

PROJECT_ROOT = Path(__file__).resolve().parent
StackT = TypeVar("StackT", bound=cdk.Stack)


def build_app(app: cdk.App, config: DeploymentConfig) -> dict[str, cdk.Stack]:
    """Compose every stack of ``config`` into ``app``.

    :returns: the stacks by role: ``network``, ``database``, ``image``, ``cluster``, ``airflow``.
    """
    env = cdk.Environment(account=config.account, region=config.region) if config.account else None
    tags = {"project": config.project_name, "stage": config.stage}

    def add(stack_class: Callable[..., StackT], construct_id: str, role: str, **props) -> StackT:
        """The stack of ``role`` (stack name ``<project>-<stage>-<role>``), built from ``props``."""
        return stack_class(app, construct_id, stack_name=config.stack_name(role), config=config, env=env, **props)

    network = add(NetworkStack, "Network", "network")
    database = add(DatabaseStack, "Database", "database", network=network.props)
    image = add(ImageStack, "Image", "image")
    container_image = image.image.container_image
    cluster = add(ClusterStack, "Cluster", "cluster", network=network.props, image=container_image)
    airflow = add(AirflowStack, "Airflow", "airflow", network=network.props, cluster=cluster.props,
                  database=database.props, image=container_image)
    # The image must be published before the stacks that run it are deployed.
    cluster.add_stack_dependency(image)
    airflow.add_stack_dependency(image)
    stacks = {"network": network, "database": database, "image": image, "cluster": cluster, "airflow": airflow}
    for stack in stacks.values():
        for key, value in tags.items():
            cdk.Tags.of(stack).add(key, value)
        # The configuration behind each template, for the change check (changes/, "make diff").
        stack.template_options.metadata = {CONFIGURATION_METADATA_KEY: configuration_context(app)}
    return stacks


@dataclass(frozen=True)
class Synthesis:
    """An app synthesized in-process.

    :ivar app: the ``cdk.App`` (``app.node`` holds the context it was built with).
    :ivar config: the configuration it was built from.
    :ivar stacks: the stacks by role, as :func:`build_app` returns them.
    :ivar assembly: the cloud assembly it wrote (``assembly.directory`` is ``outdir``).
    """

    app: cdk.App
    config: DeploymentConfig
    stacks: dict[str, cdk.Stack]
    assembly: CloudAssembly


def cdk_json_context() -> dict:
    """The ``context`` of the project's ``cdk.json`` (what ``cdk synth`` passes the app)."""
    return json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]


def synthesize(overrides: Mapping[str, str], outdir: str | Path) -> Synthesis:
    """Synthesize the app as ``cdk synth -c key=value ... -o outdir`` would (without cdk-nag's checks).

    :param overrides: the ``-c`` options, over ``cdk.json``'s context.
    :param outdir: where the cloud assembly is written.
    :raises app_config.ConfigError: for a bad configuration (every bad key named).
    """
    app = cdk.App(context={**cdk_json_context(), **overrides}, outdir=str(outdir))
    config = load_config(app.node.get_all_context())
    stacks = build_app(app, config)
    app.synth()
    return Synthesis(app, config, stacks, CloudAssembly(outdir))


def main() -> None:
    app = cdk.App()
    try:
        config = load_config(app.node.get_all_context())
    except ConfigError as err:
        print(err, file=sys.stderr)
        sys.exit(1)
    build_app(app, config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
