"""The cloud assembly (``cdk.out``) of the app, read once for every tool that looks at it.

``cloud_assembly.reader`` reads ``manifest.json``, each stack's template and the Docker image assets
(``*.assets.json``): the cost model, the rehearsal (``local_ecs``), the change check (``changes``),
the DAG check (``dag_checks``), the operations CLI (``airflow-ecs publish``, ``preflight``) and the
tests read the assembly through it. Standard library only: the operations CLI installs this package
(``cloud_assembly/pyproject.toml``) without the CDK app.

``app.synthesize`` (in ``app.py``, beside the app it builds) synthesizes the app in-process and
returns this package's :class:`CloudAssembly`.

What the app writes into the assembly and the tools look up there, each in one place:
``cloud_assembly.names`` (stack names ``<project>-<stage>-<role>``, the components, the secrets
prefixes) and ``cloud_assembly.airflow_image`` (the container user, the api-server's port).
"""

from cloud_assembly.reader import AssemblyError, CloudAssembly, DockerImageAsset, MissingAssembly, StackArtifact

__all__ = ["AssemblyError", "CloudAssembly", "DockerImageAsset", "MissingAssembly", "StackArtifact"]
