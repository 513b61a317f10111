"""``make cost``: the monthly cost of a configuration, from its synthesized templates.

Usage: ``python -m cost [-c key=value ...] [--region R] [--cdk-out DIR] [--json]
[--worker-minutes-per-day N] [--awake-hours-per-week H]``. The ``-c`` options are those of ``cdk synth``; the app is
synthesized in-process into a temporary directory unless ``--cdk-out`` names an assembly already
synthesized with the same options.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import click

from cloud_assembly import AssemblyError, CloudAssembly
from cost.model import Assumptions, Report, compute
from cost.prices import CostError, load_prices

DEFAULT_REGION = "us-east-1"


def parse_context(options: tuple[str, ...]) -> dict[str, str]:
    """``("stage=prod", ...)`` -> ``{"stage": "prod"}``.

    :raises CostError: for an option without ``=``.
    """
    context = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise CostError(f"-c {option!r}: write context options as -c key=value, e.g. -c stage=prod")
        context[key.strip()] = value.strip()
    return context


def pricing_region(context: dict[str, str], region_option: str | None) -> str:
    """The region to price: ``-c region=`` (the deployment's), else ``--region``, else us-east-1.

    :raises CostError: when both are given and differ.
    """
    deployed = context.get("region")
    if deployed and region_option and deployed != region_option:
        raise CostError(
            f"region: -c region={deployed} and --region {region_option} disagree; the deployment's "
            "region is priced, so drop --region or make them equal"
        )
    return deployed or region_option or DEFAULT_REGION


def synth_context(context: dict[str, str]) -> dict[str, str]:
    """The ``-c`` options passed to synthesis: ``region`` alone (without ``account``) only chooses
    the pricing region, since the app synthesizes environment-agnostic unless both are set."""
    if "region" in context and "account" not in context:
        return {k: v for k, v in context.items() if k != "region"}
    return dict(context)


def render_table(report: Report, label: str) -> str:
    """The human-readable report: one line per resource, totals, assumptions."""
    rows = [("resource", "stack", "quantity", "idle $/mo", "workload $/mo")]
    for i in report.items:
        rows.append((i.resource, i.stack, f"{i.quantity:g} {i.unit}", f"{i.idle_usd:.2f}", f"{i.workload_usd:.2f}"))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    fmt = "  ".join(f"{{:{'<' if c < 3 else '>'}{w}}}" for c, w in enumerate(widths))
    lines = [f"Monthly cost of {label} in {report.region} (prices of {report.prices_date}, USD)", ""]
    lines.append(fmt.format(*rows[0]))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt.format(*r) for r in rows[1:]]
    lines.append("  ".join("-" * w for w in widths))
    lines.append(fmt.format("TOTAL", "", "", f"{report.idle_usd:.2f}", f"{report.workload_usd:.2f}"))
    lines.append(fmt.format("TOTAL idle, always on (no office hours)", "", "", f"{report.idle_always_on_usd:.2f}", ""))
    lines += ["", "How each line was computed:"]
    lines += [f"  {i.resource}: {i.detail}" for i in report.items]
    lines += ["", "Assumptions:"]
    lines += [f"  {k} = {v}" for k, v in dataclasses.asdict(report.assumptions).items()]
    lines += [f"  {n}" for n in report.notes]
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--context", "context", multiple=True, metavar="KEY=VALUE", help="as for cdk synth")
@click.option("--region", "region_option", default=None, help=f"pricing region when -c region is unset ({DEFAULT_REGION})")
@click.option("--cdk-out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="read this cloud assembly instead of synthesizing")
@click.option("--worker-minutes-per-day", type=float, default=Assumptions.worker_task_minutes_per_day,
              show_default=True, help="the workload: worker task-minutes a day")
@click.option("--awake-hours-per-week", type=float, default=None,
              help="override the office hours the templates schedule: hours a week every service and the DB "
                   "run; 168 = always on (default: read each one's start/stop schedules)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def main(context, region_option, cdk_out, worker_minutes_per_day, awake_hours_per_week, as_json) -> None:
    """Print the monthly cost of the deployment that `cdk synth -c ...` describes."""
    from app_config import ConfigError

    try:
        overrides = parse_context(context)
        prices = load_prices(pricing_region(overrides, region_option))
        if cdk_out is not None:
            templates = CloudAssembly(cdk_out).templates()
        else:
            from app import synthesize

            with tempfile.TemporaryDirectory(prefix="cost-cdk-out-") as tmp:
                templates = synthesize(synth_context(overrides), Path(tmp)).assembly.templates()
        if worker_minutes_per_day < 0:
            raise CostError("--worker-minutes-per-day: give 0 or more task-minutes a day")
        report = compute(templates, prices, Assumptions(
            worker_task_minutes_per_day=worker_minutes_per_day, awake_hours_per_week=awake_hours_per_week
        ))
    except (CostError, ConfigError, AssemblyError) as err:
        click.echo(f"cost: {err}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        label = " ".join(f"-c {k}={v}" for k, v in parse_context(context).items()) or "the default configuration"
        click.echo(render_table(report, label))
