"""Command line of the local ECS runner.

Usage::

    python -m local_ecs rehearse CDK_OUT [--name NAME] [--out .rehearsal] [--dags dags] [--no-browser]
                                         [--browser-runs N]
    python -m local_ecs up CDK_OUT [--dags-mount dags]   # make local: run until Ctrl-C or `down`
    python -m local_ecs down             # make local-down: stop it and remove its containers
    python -m local_ecs upgrade [--out .rehearsal] [--scale 1.0]        # make rehearsal-upgrade
    python -m local_ecs image-rollout [--out .rehearsal] [--scale 1.0]  # make rehearsal-image-rollout

``upgrade`` and ``image-rollout`` (local_ecs/upgrade.py) exit 0 when their report has no error
and the DAG runs succeeded; the report is ``upgrade-report.json`` / ``image-rollout-report.json``.

``rehearse`` exits 0 when the run succeeded, its task log came from S3, IAM denied nothing (but
the access probe's expected refusals, when its DAG is in the image) and every browser step passed;
otherwise 1, after printing the failing container's name, exit code and last log lines. Missing
podman, a failed build or a failing container stop it, and nothing is left running.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from local_ecs.podman import PROJECT_ROOT

STATE_DIR = PROJECT_ROOT / ".rehearsal"
PID_FILE = STATE_DIR / "local.pid"


def passed(report: dict) -> bool:
    """The rehearsal's verdict on a report (with the browser step: every one of its runs passed;
    with the access probe, local_ecs/access_probe.py: its run succeeded and IAM refused exactly
    the requests it must, nothing else)."""
    browser = report.get("browser_runs")
    probe = report.get("access_probe")
    expected_denials = [] if probe is None else probe.get("expected_iam_denials")
    return (report.get("dag_run_state") == "success" and report.get("task_log_from_s3") is True
            and report.get("iam_denials") == expected_denials and not report.get("left_running")
            and "error" not in report and (browser is None or browser["passed"] == browser["runs"])
            and (probe is None or (probe.get("dag_run_state") == "success" and "error" not in probe)))


def _raise_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C, so that its clean-up (``finally``) runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _rehearse(args) -> int:
    from local_ecs.scenario import rehearse

    _raise_on_sigterm()

    try:
        report = rehearse(Path(args.cdk_out), Path(args.out), name=args.name,
                          dags_dir=Path(args.dags) if args.dags else None, browser=not args.no_browser,
                          browser_runs=args.browser_runs)
    except (Exception, KeyboardInterrupt) as error:  # the report (with the failure) is already written
        print(f"rehearsal {args.name} failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps({k: report.get(k) for k in ("dag_run_state", "task_log_from_s3", "iam_denials", "image_mib",
                                                 "browser_runs", "seconds")}, indent=2))
    return 0 if passed(report) else 1


def _up(args) -> int:
    from local_ecs.rest import RestClient
    from local_ecs.scenario import LocalDeployment

    dags_mount = Path(args.dags_mount) if args.dags_mount else None
    deployment = LocalDeployment(Path(args.cdk_out), STATE_DIR / "local", max_workers=args.max_workers,
                                 dags_mount=dags_mount)
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    PID_FILE.write_text(str(os.getpid()))
    try:
        deployment.start(dags_dir=Path(args.dags) if args.dags else None)
        deployment.wait_healthy()
        username, password = deployment.admin_login()
        print(f"Airflow UI: {deployment.ui_url}\nuser: {username}\npassword: {password}", flush=True)
        watcher = None
        if dags_mount is not None:
            from local_ecs.reload import DagFolderWatcher

            client = RestClient(deployment.ui_url, username, password)

            watcher = DagFolderWatcher(dags_mount, deployment.local_dag_folder(), client.get)
            print(f"DAGs are mounted from {dags_mount}/: an edited or new file is parsed within seconds, "
                  "no rebuild; each reload is printed here.", flush=True)
        print("Stop with Ctrl-C or `make local-down`.", flush=True)
        while not stop["now"]:
            deployment.check()
            for reload in watcher.poll() if watcher else []:
                print(reload.line(), flush=True)
            time.sleep(1)
        return 0
    except Exception as error:
        print(f"local stack failed: {error}", file=sys.stderr)
        return 1
    finally:
        deployment.stop()
        PID_FILE.unlink(missing_ok=True)


def _down(args) -> int:
    from local_ecs.podman import podman

    if PID_FILE.exists():
        pid = int(PID_FILE.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(240):
                os.kill(pid, 0)
                time.sleep(0.5)
        except ProcessLookupError:
            pass
    # Anything a crashed run left behind.
    names = podman("ps", "--all", "--format", "{{.Names}}", "--filter", "label=local_ecs.run", check=False).stdout.split()
    for name in names:
        podman("rm", "--force", "--time", "0", name, check=False)
    volumes = podman("volume", "ls", "--quiet", "--filter", "label=local_ecs.run", check=False).stdout.split()
    for volume in volumes:
        podman("volume", "rm", "--force", volume, check=False)
    print(f"removed {len(names)} containers and {len(volumes)} volumes")
    return 0


def _scenario(args) -> int:
    from local_ecs.upgrade import rehearse_image_rollout, rehearse_upgrade

    _raise_on_sigterm()
    scenario = rehearse_upgrade if args.command == "upgrade" else rehearse_image_rollout
    try:
        report = scenario(Path(args.out), scale=args.scale)
    except (Exception, KeyboardInterrupt) as error:  # the report (with the failure) is already written
        print(f"{args.command} rehearsal failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps({k: report.get(k) for k in ("dag_run_state", "dag_run_after_rollback", "dag_run_after_rollout",
                                                 "schema", "downtime", "steps", "seconds")}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_ecs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    rehearse = sub.add_parser("rehearse", help="run the rehearsal scenario and write its report")
    rehearse.add_argument("cdk_out")
    rehearse.add_argument("--name", default="default")
    rehearse.add_argument("--out", default=str(STATE_DIR))
    rehearse.add_argument("--dags", default=None, help="DAG files to upload (dag_bundle=s3)")
    rehearse.add_argument("--no-browser", action="store_true")
    rehearse.add_argument("--browser-runs", type=int, default=1, metavar="N",
                          help="run the browser step N times, each in a fresh browser (report: browser_runs)")
    up = sub.add_parser("up", help="start the stack for local development")
    up.add_argument("cdk_out")
    up.add_argument("--dags", default=None, help="DAG files to upload (dag_bundle=s3)")
    up.add_argument("--dags-mount", default=None, metavar="DIR",
                    help="mount DIR over the image's DAG folder and reload edits (dag_bundle=image)")
    up.add_argument("--max-workers", type=int, default=3)
    sub.add_parser("down", help="stop the local stack and remove its containers")
    for name, what in (("upgrade", "upgrade Airflow with a DAG in flight, then roll back"),
                       ("image-rollout", "roll out new DAG code with a DAG in flight")):
        scenario = sub.add_parser(name, help=what)
        scenario.add_argument("--out", default=str(STATE_DIR))
        scenario.add_argument("--scale", type=float, default=1.0,
                              help="the probe DAG's task durations (60, 90, 120 s) times this")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    return {"rehearse": _rehearse, "up": _up, "down": _down, "upgrade": _scenario,
            "image-rollout": _scenario}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
