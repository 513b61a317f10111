"""Synthesize the CDK app for the rehearsal, in process (no ``cdk`` CLI, no Docker).

:func:`synthesize` is what ``cdk synth -c key=value ...`` does with cdk.json's context. For the
upgrade and image-rollout rehearsals it can also add DAG files that exist only in the rehearsal
(``local_ecs/rehearsal_dags/``) to the image: the app's image build context (the repository root,
filtered to ``docker/``, ``executor/`` and ``dags/`` by ``constructs_lib.image``) is then a staged
copy of those three folders with the extra files in its ``dags/``, so the image asset, its hash
and the task definitions' image URI are what CDK makes of that content, and the user's ``dags/``
never holds them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from unittest import mock

from local_ecs.podman import PROJECT_ROOT

#: DAGs only the rehearsal runs (never in ``dags/``, which users deploy).
REHEARSAL_DAGS = Path(__file__).resolve().parent / "rehearsal_dags"
#: What the image build context holds (constructs_lib/image.py copies nothing else).
_CONTEXT_FOLDERS = ("docker", "executor", "dags")


def stage_build_context(target: Path, extra_dags: dict[str, str], extra_requirements: tuple[str, ...] = ()) -> Path:
    """Copy ``docker/``, ``executor/`` and ``dags/`` to ``target``, add ``extra_dags``
    (file name -> content) to its ``dags/`` and ``extra_requirements`` (lines) to its
    ``docker/requirements.txt``; returns ``target``."""
    if target.exists():
        shutil.rmtree(target)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for folder in _CONTEXT_FOLDERS:
        shutil.copytree(PROJECT_ROOT / folder, target / folder, ignore=ignore)
    for name, content in extra_dags.items():
        (target / "dags" / name).write_text(content)
    if extra_requirements:
        requirements = target / "docker" / "requirements.txt"
        requirements.write_text(requirements.read_text() + "# Added by the rehearsal (local_ecs.synth)\n"
                                + "".join(f"{line}\n" for line in extra_requirements))
    return target


def synthesize(overrides: dict[str, str], outdir: Path, *, extra_dags: dict[str, str] | None = None,
               extra_requirements: tuple[str, ...] = ()) -> Path:
    """Synthesize the app with ``overrides`` over cdk.json's context into ``outdir``
    (:func:`app.synthesize`, the one in-process synthesis).

    :param extra_dags: file name -> content of DAG files baked into the image beside ``dags/``
        (rehearsal only; see the module docstring). The staged context is ``<outdir>.context``.
    :param extra_requirements: lines added to the staged ``docker/requirements.txt`` (the
        private-index rehearsal's package of ours), also in the staged context.
    :returns: ``outdir``.
    :raises app_config.ConfigError: an override is refused (the key and the fix in the message).
    """
    import constructs_lib.image
    from app import synthesize as app_synthesize

    outdir = Path(outdir)
    if extra_dags or extra_requirements:
        context = stage_build_context(outdir.with_name(outdir.name + ".context"), extra_dags or {},
                                      extra_requirements)
        with mock.patch.object(constructs_lib.image, "PROJECT_ROOT", context):
            app_synthesize(overrides, outdir)
    else:
        app_synthesize(overrides, outdir)
    return outdir
