"""``python -m changes``: the change check's command line (README "Operating").

Exit status: 0 nothing blocks (or ``--report-only``), 1 the change loses data or would fail
(the report says which resources; ``--allow-replace`` accepts them by logical ID), 2 bad input
(one line on stderr).
"""

from __future__ import annotations

import sys

import click

from changes.check import CheckError, Report, StackTemplates, compare


def _ids(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _conclude(report: Report, allow_replace: str | None, report_only: bool) -> None:
    click.echo(report.text())
    allowed = _ids(allow_replace)
    unknown = [i for i in allowed if i not in {f.logical_id for f in report.findings}]
    if unknown:
        click.echo(f"ALLOW_REPLACE names no finding: {', '.join(unknown)}", err=True)
    blocking = report.blocking(allowed)
    if report_only or not blocking:
        accepted = [f for f in report.findings if f.logical_id in allowed]
        if accepted:
            click.echo(f"Accepted on purpose (ALLOW_REPLACE): {', '.join(sorted({f.logical_id for f in accepted}))}")
        return
    ids = ",".join(sorted({f.logical_id for f in blocking}))
    click.echo(
        f"\nRefused: {len(blocking)} finding(s) above lose data or fail the deploy. Undo the configuration "
        "change that causes them; to replace the resources on purpose (their data is lost), run again with "
        f"ALLOW_REPLACE={ids} (python -m changes ... --allow-replace {ids}).",
        err=True,
    )
    sys.exit(1)


@click.group()
def main() -> None:
    """What a deploy would replace, remove or fail on, before CloudFormation runs."""


@main.command()
@click.option("--before", "before_dir", required=True, type=click.Path(file_okay=False), help="cloud assembly deployed now")
@click.option("--after", "after_dir", required=True, type=click.Path(file_okay=False), help="cloud assembly to deploy")
@click.option("--allow-replace", default=None, help="logical IDs to replace on purpose, comma-separated")
@click.option("--report-only", is_flag=True, help="print the report, exit 0 whatever it finds")
def diff(before_dir: str, after_dir: str, allow_replace: str | None, report_only: bool) -> None:
    """Compare two cloud assemblies (cdk.out directories)."""
    try:
        report = compare(StackTemplates.from_assembly(before_dir), StackTemplates.from_assembly(after_dir))
    except CheckError as err:
        raise SystemExit(_error(err))
    _conclude(report, allow_replace, report_only)


@main.command("check-deployed")
@click.option("--cdk-out", default="cdk.out", show_default=True, type=click.Path(file_okay=False), help="cloud assembly to deploy")
@click.option("--region", envvar="AWS_REGION", default=None,
              help="region of the stacks when the assembly names none (default: AWS_REGION, else the profile's)")
@click.option("--allow-replace", default=None, help="logical IDs to replace on purpose, comma-separated")
@click.option("--report-only", is_flag=True, help="print the report, exit 0 whatever it finds")
def check_deployed(cdk_out: str, region: str | None, allow_replace: str | None, report_only: bool) -> None:
    """Compare the deployed stacks (CloudFormation GetTemplate) with a cloud assembly."""
    from changes import deployed

    try:
        after = StackTemplates.from_assembly(cdk_out)
        before = deployed.deployed_templates(after, region=region)
    except CheckError as err:
        raise SystemExit(_error(err))
    if not before.stacks:
        names = ", ".join(s.name for s in after.stacks.values())
        click.echo(f"New deployment: none of {names} is deployed yet; nothing to check.")
        return
    _conclude(compare(before, after), allow_replace, report_only)


def _error(err: CheckError) -> int:
    click.echo(f"change check: {err}", err=True)
    return 2
