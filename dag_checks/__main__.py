"""Command line: ``python -m dag_checks check DIR`` and ``python -m dag_checks requirements``.

Exit status: 0 when everything passes, 1 when a DAG or a requirements line is refused, 2 when the
check cannot run as asked (this Python lacks the image's versions, the deployment's settings
cannot be read).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from dag_checks import pins
from dag_checks.deployment import Deployment, DeploymentError, cdk_context, from_assembly, from_context

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _requirements_options(command):
    command = click.option("--dockerfile", type=_FILE, default=pins.DOCKERFILE, show_default=True,
                           help="The image's Dockerfile (ARG AIRFLOW_VERSION, ARG PYTHON_VERSION).")(command)
    command = click.option("--lock", type=_FILE, default=pins.LOCK, show_default=True,
                           help="The pins of what Airflow installs (the base image's lock).")(command)
    command = click.option("--requirements", type=_FILE, default=pins.REQUIREMENTS, show_default=True,
                           help="The image's extra packages.")(command)
    return command


@click.group()
def main() -> None:
    """Check DAGs and the image's extra packages before they ship (README, "Writing DAGs")."""


@main.command()
@click.argument("dag_folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--cdk-out", type=click.Path(path_type=Path), default=None,
              help="A synthesized cloud assembly: queues and job variables from its task definitions (preferred).")
@click.option("--cdk-args", default="", metavar="ARGS", envvar="CDK_ARGS",
              help="Without --cdk-out: the -c KEY=VALUE options cdk synth gets, over cdk.json's context "
                   "(default: $CDK_ARGS, which make passes).")
@click.option("--pool", "extra_pools", multiple=True, metavar="NAME",
              help="A pool created outside the configuration (airflow pools set); repeatable.")
@_requirements_options
def check(dag_folder: Path, cdk_out: Path | None, cdk_args: str, extra_pools: tuple[str, ...],
          requirements: Path, lock: Path, dockerfile: Path) -> None:
    """Import every DAG of DAG_FOLDER as the deployment's dag-processor would and fail on import
    errors (file, line, error), cycles, tasks on a pool or queue the deployment does not have, and
    references to the variable of an ECS job it does not configure.

    Runs in this Python, which must have the image's Airflow, providers and extra packages
    (checked first); docker/requirements.txt is checked against the lock as well.
    """
    # The image's own requirements first: a conflicting line would also show as a version mismatch.
    requirement_problems = _requirements_problems(requirements, lock, dockerfile)
    if requirement_problems:
        for problem in requirement_problems:
            click.echo(f"FAIL requirements: {problem}")
        click.echo(f"{len(requirement_problems)} problem(s) in {pins.display(requirements)}; fix them first.")
        sys.exit(1)
    mismatched, absent = pins.version_problems(requirements, lock, dockerfile)
    if mismatched:
        for problem in mismatched:
            click.echo(f"refused: {problem}", err=True)
        airflow = pins.dockerfile_args(dockerfile).get("AIRFLOW_VERSION", "?")
        click.echo(
            "The check imports DAGs with the image's exact versions. Install them here: `make .venv/.test-deps` "
            "(requirements-dev.txt pins the same), or in a fresh virtualenv: pip install "
            f"-c {pins.display(lock)} apache-airflow=={airflow} -r {pins.display(requirements)} ./executor",
            err=True,
        )
        sys.exit(2)
    try:
        deployment = (from_assembly(cdk_out, extra_pools) if cdk_out is not None
                      else from_context(cdk_context(cdk_args=cdk_args), extra_pools,
                                        "cdk.json" + (f" with {cdk_args}" if cdk_args.strip() else "")))
    except DeploymentError as err:
        click.echo(f"refused: {err}", err=True)
        sys.exit(2)

    args = pins.dockerfile_args(dockerfile)
    click.echo(f"Checking {dag_folder} with apache-airflow {args.get('AIRFLOW_VERSION')} and the image's packages "
               f"from {sys.prefix} (Python {sys.version_info.major}.{sys.version_info.minor}; the image runs "
               f"{args.get('PYTHON_VERSION', '?')}); versions match {pins.display(lock)} and {pins.display(requirements)}")
    if absent:
        click.echo(f"Not installed here (the image has them; a DAG importing one fails here): {', '.join(absent)}")
    click.echo(f"Queues {sorted(deployment.queues)}, pools {sorted(deployment.pools)}, "
               f"job variables {sorted(deployment.job_variables)} ({deployment.source})")

    report = _parse(dag_folder, deployment)
    failing = {f.file for f in report.findings}
    for file, dag_ids in sorted(report.dags.items()):
        if file not in failing:
            click.echo(f"ok {file}: {', '.join(dag_ids)}")
    problems = [str(f) for f in report.findings]
    for problem in problems:
        click.echo(f"FAIL {problem}")
    dag_count = sum(len(d) for d in report.dags.values())
    if problems:
        click.echo(f"{len(problems)} problem(s); {dag_count} DAG(s) loaded. Fix them before deploying.")
        sys.exit(1)
    click.echo(f"All {dag_count} DAG(s) pass.")


@main.command("requirements")
@_requirements_options
def requirements_command(requirements: Path, lock: Path, dockerfile: Path) -> None:
    """Check that every line of the image's requirements parses and allows the locked versions."""
    problems = _requirements_problems(requirements, lock, dockerfile)
    for problem in problems:
        click.echo(f"FAIL {problem}")
    if problems:
        sys.exit(1)
    click.echo(f"{pins.display(requirements)}: every line parses and allows the pins of {pins.display(lock)}")


def _requirements_problems(requirements: Path, lock: Path, dockerfile: Path) -> list[str]:
    """:func:`pins.requirements_problems`; a lock that cannot be read stops the command (exit 2)."""
    try:
        return pins.requirements_problems(requirements, lock, dockerfile)
    except ValueError as err:
        click.echo(f"refused: {err}; regenerate it with python -m local_ecs.images lock", err=True)
        sys.exit(2)


def _parse(dag_folder: Path, deployment: Deployment):
    """Parse in a scratch AIRFLOW_HOME (Airflow reads its configuration once, at import)."""
    if "airflow" in sys.modules:
        raise click.ClickException("Airflow was imported before its environment was set; run python -m dag_checks")
    from dag_checks.dag_folder import airflow_environment, parse

    with tempfile.TemporaryDirectory(prefix="dag-checks-") as home:
        os.environ.update(airflow_environment(dag_folder, Path(home), deployment))
        return parse(dag_folder, deployment)


if __name__ == "__main__":
    main()
