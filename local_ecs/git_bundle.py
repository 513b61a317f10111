"""The git DAG bundle and the private package index, rehearsed together (``make rehearsal-git``).

One synthesis of the app with ``dag_bundle=git`` and ``pip_index_file``, run as ECS would run it
(:class:`~local_ecs.scenario.LocalDeployment`):

- a real git server on this machine (:class:`standins.gitserver.GitHttpServer`: git's own ``git
  http-backend`` behind HTTPS with basic auth, a self-signed certificate for the host name
  :data:`GIT_HOST`) holds the DAG repository; ``dag_bundle_git_url`` names it;
- the git connection (user and token) is the Secrets Manager secret ``dag_bundle_git_secret``
  names, created in moto before the services start, as a user creates it before ``make deploy``;
  ECS hands it to the dag-processor and the workers (``AIRFLOW_CONN_GIT_DAGS``) with their
  execution roles, IAM enforced;
- a private PEP 503 index (:class:`standins.pypi_index.PrivateIndex`: pypiserver, basic auth)
  serves a package of ours, ``teamlib``, at a version new in every run (so no layer cache can
  stand in for the install); the staged ``docker/requirements.txt`` asks for it and the pip
  configuration with the token is ``pip_index_file``, a file outside the repository: the image
  asset's build secret ``pip_index``, passed to ``podman build`` as the CDK CLI passes it to
  ``docker build`` (:func:`local_ecs.images.secret_options`).

:func:`rehearse_git_bundle` then checks that the token is in no file of ``cdk.out`` and in no
layer, history or configuration of the built image (``podman save``); that the dag-processor
fetched the bundle and a run of ``git_probe`` succeeds in worker containers, its task returning
the DAG file's version and ``teamlib``'s (the worker imported the package from the private
index); pushes a new version of the DAG while a run is in flight (that run ends on the version it
started with: git bundles are versioned), and measures the seconds from the push to the new
version parsed and to a run of it finished, whose task must return the new version.

Stand-in plumbing (not in the templates): the containers resolve :data:`GIT_HOST` to 127.0.0.1
(``--add-host``) and trust the server's certificate (mounted read-only, ``GIT_SSL_CAINFO``), as
they would trust a real git host's certificate through the image's CA bundle.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from local_ecs.rest import RestClient
from local_ecs.scenario import LOCAL_ADDRESS, LocalDeployment, RehearsalFailed, _wait_for, wait_parsed
from local_ecs.synth import synthesize
from standins.gitserver import GitHttpServer, commit_files, git, new_repository, push_over_http
from standins.pypi_index import PrivateIndex, wheel

#: The git host's name in the rehearsal (``.test``: a name reserved for tests, RFC 2606).
GIT_HOST = "git.rehearsal.test"
#: Where the containers find the git server's certificate (``GIT_SSL_CAINFO``).
GIT_CA_IN_CONTAINER = "/etc/rehearsal/git-server.crt"
GIT_USER = "x-access-token"
#: The secret ``dag_bundle_git_secret`` names (a user creates it before the deploy).
GIT_SECRET_NAME = "airflow/dev/git-dags"
INDEX_USER = "team"
#: The package of ours the private index serves (the DAG imports it).
PACKAGE = "teamlib"
PROBE_DAG = "git_probe"
#: The dag-processor's fetch interval in this rehearsal (``dag_bundle_git_refresh_seconds``, the
#: key's minimum): the measured push-to-run time is at most this plus the fetch, parse and run.
REFRESH_SECONDS = 5
#: The probe task's duration (seconds): long enough for a push while it runs.
HOLD_SECONDS = 30

PROBE_SOURCE = '''"""A DAG from the git bundle (local_ecs/git_bundle.py writes it into the DAG repository)."""
import datetime
import time

import pendulum
from airflow.sdk import dag, task

CODE_VERSION = "VERSION"


@dag(dag_id="git_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
     description=f"git bundle probe {CODE_VERSION}", params={"code_version": CODE_VERSION, "hold": 0},
     default_args={"retries": 2, "retry_delay": datetime.timedelta(seconds=5)})
def git_probe():
    @task
    def version(params=None):
        import teamlib

        time.sleep(int(params["hold"]))
        return f"code={CODE_VERSION} teamlib={teamlib.VERSION}"

    version()


git_probe()
'''


def probe_source(version: str) -> str:
    """The probe DAG file with ``CODE_VERSION = version``."""
    return PROBE_SOURCE.replace('CODE_VERSION = "VERSION"', f'CODE_VERSION = "{version}"')


class GitBundleDeployment(LocalDeployment):
    """A :class:`LocalDeployment` whose containers reach the rehearsal's git server: its host name
    resolves to 127.0.0.1 and its certificate is trusted (module docstring); before the services
    start, the git connection secret is created in moto.

    :param git_certificate: the server's certificate (PEM file), mounted read-only.
    :param git_connection: the connection JSON stored in the secret :data:`GIT_SECRET_NAME`.
    """

    def __init__(self, cdk_out: Path, work_dir: Path, *, git_certificate: Path, git_connection: dict, **kwargs):
        super().__init__(cdk_out, work_dir, **kwargs)
        self.git_connection = git_connection
        self.bind_mounts = {str(Path(git_certificate).resolve()): GIT_CA_IN_CONTAINER}
        self.hosts[GIT_HOST] = LOCAL_ADDRESS
        self.git_secret_arn: str | None = None

    def before_services(self) -> None:
        self.git_secret_arn = self.aws.client("secretsmanager").create_secret(
            Name=GIT_SECRET_NAME, SecretString=json.dumps(self.git_connection))["ARN"]

    def environment_for(self, task, container) -> dict[str, str]:
        env = super().environment_for(task, container)
        env["GIT_SSL_CAINFO"] = GIT_CA_IN_CONTAINER
        return env


def files_holding(directory: Path, needle: bytes) -> list[str]:
    """Files under ``directory`` whose bytes contain ``needle`` (relative paths)."""
    return sorted(str(p.relative_to(directory)) for p in Path(directory).rglob("*")
                  if p.is_file() and not p.is_symlink() and needle in p.read_bytes())


def _xcom(client: RestClient, run_id: str) -> str:
    """The probe task's return value (``code=<version> teamlib=<version>``), or the HTTP error."""
    status, body = client.get(f"/api/v2/dags/{PROBE_DAG}/dagRuns/{run_id}/taskInstances/version/xcomEntries/"
                              "return_value")
    return str(json.loads(body).get("value")) if status == 200 else f"HTTP {status}: {body[:200]}"


def _bundle_versions(client: RestClient) -> list[str]:
    """The git commits of the probe's DAG versions the dag-processor stored (REST ``dagVersions``)."""
    status, body = client.get(f"/api/v2/dags/{PROBE_DAG}/dagVersions")
    if status != 200:
        return []
    return [v.get("bundle_version") or "" for v in json.loads(body).get("dag_versions", [])]


def _task_state(client: RestClient, run_id: str) -> str | None:
    instances = client.task_instances(PROBE_DAG, run_id)
    return instances[0]["state"] if instances else None


def _token_in_image(deployment: GitBundleDeployment, archive: Path, token: str) -> dict:
    """Search the built image for ``token``: every layer of ``podman save`` (written to
    ``archive``, removed after), its history and its configuration. Returns the report's
    ``token_in_image`` (what holds it, empty when nothing does) and ``image_archive_mib``."""
    from local_ecs.images import layers_holding
    from local_ecs.podman import PodmanConfig, podman

    config = PodmanConfig()
    (tag,) = set(deployment.image_tags.values())
    podman("save", "--format", "docker-archive", "--output", str(archive), tag, config=config, timeout=900)
    history = podman("history", "--no-trunc", tag, config=config).stdout
    inspect = podman("image", "inspect", tag, config=config).stdout
    found = {"token_in_image": layers_holding(archive, token.encode()) +
             [what for what, text in (("history", history), ("inspect", inspect)) if token in text],
             "image_archive_mib": round(archive.stat().st_size / 2**20)}
    archive.unlink()
    return found


def _push_during_a_run(deployment: GitBundleDeployment, client: RestClient, server: GitHttpServer, repo: Path,
                       resolve: list[str], runs: dict, run_timeout: float, parse_timeout: float) -> dict:
    """A run in flight, then a push of ``CODE_VERSION = "v2"``: that run keeps its version, the
    run triggered once the new commit is parsed runs the new one. Adds ``in_flight`` and
    ``after_push`` to ``runs``; returns the report's ``push`` (``commit``, ``push_seconds``,
    ``parsed_seconds`` and ``run_seconds`` from the push)."""
    in_flight = client.trigger(PROBE_DAG, {"hold": HOLD_SECONDS})
    _wait_for(lambda: _task_state(client, in_flight) == "running", run_timeout,
              "the in-flight run's task to be running", deployment.check)
    new_commit = commit_files(repo, {"git_probe.py": probe_source("v2")}, "git_probe v2")
    pushed = time.monotonic()
    push_over_http(repo, server, "dags", resolve=resolve)
    push = {"commit": new_commit, "push_seconds": round(time.monotonic() - pushed, 2)}
    _wait_for(lambda: new_commit in _bundle_versions(client), parse_timeout,
              f"the dag-processor to parse {PROBE_DAG} at {new_commit[:8]}", deployment.check, interval=0.5)
    push["parsed_seconds"] = round(time.monotonic() - pushed, 1)
    after_push = client.trigger(PROBE_DAG)
    state = client.wait_for_run(PROBE_DAG, after_push, run_timeout, deployment.check, interval=1)
    push["run_seconds"] = round(time.monotonic() - pushed, 1)
    runs["after_push"] = {"state": state, "returned": _xcom(client, after_push)}
    runs["in_flight"] = {"state": client.wait_for_run(PROBE_DAG, in_flight, run_timeout, deployment.check),
                         "returned": _xcom(client, in_flight)}
    return push


def rehearse_git_bundle(out_dir: Path, *, healthy_timeout: float = 1500, run_timeout: float = 600,
                        parse_timeout: float = 300) -> dict:
    """Play the scenario of the module docstring; always cleans up.

    :param out_dir: the report (``report-git.json``), the synthesis and the container logs go here.
    :returns: the report: ``token_in_cdk_out`` and ``token_in_image`` (lists of what holds a
        token, empty when none does), ``runs`` (``first``, ``in_flight``, ``after_push``: state,
        task's return value, bundle version), ``push`` (``parsed_seconds``, ``run_seconds``: from
        the push to the new version parsed and to its run's end), ``iam_denials``, ``seconds``.
    :raises RehearsalFailed: a step did not reach its state in time (the report says which).
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    git_token = "git-tok-" + secrets.token_hex(12)
    index_token = "pypi-tok-" + secrets.token_hex(12)
    package_version = f"1.0.{int(time.time())}"
    report: dict = {"configuration": "git", "iam_denials": [], "package": f"{PACKAGE}=={package_version}",
                    "refresh_seconds": REFRESH_SECONDS}
    work = out_dir / "git"
    shutil.rmtree(work, ignore_errors=True)
    (work / "server").mkdir(parents=True)
    # pip_index_file must be outside the repository (the key refuses a file inside it).
    outside = Path(tempfile.mkdtemp(prefix="rehearsal-pip-index-"))
    deployment: GitBundleDeployment | None = None
    try:
        with GitHttpServer(work / "server", GIT_USER, git_token, tls_host=GIT_HOST) as server, \
                PrivateIndex(work / "index", INDEX_USER, index_token) as index:
            assert server.certificate is not None
            resolve = [f"{GIT_HOST}:{server.url.rsplit(':', 1)[1]}:{LOCAL_ADDRESS}"]
            wheel(index.packages, PACKAGE, package_version)
            repo = new_repository(server.root, "dags", {"git_probe.py": probe_source("v1")})
            first_commit = git("rev-parse", "HEAD", cwd=repo).strip()
            pip_conf = index.pip_conf(outside)

            cdk_out = synthesize({"dag_bundle": "git", "dag_bundle_git_url": f"{server.url}/dags.git",
                                  "dag_bundle_git_branch": "main",
                                  "dag_bundle_git_refresh_seconds": str(REFRESH_SECONDS),
                                  "dag_bundle_git_secret": GIT_SECRET_NAME, "pip_index_file": str(pip_conf)},
                                 work / "cdk.out", extra_requirements=(f"{PACKAGE}=={package_version}",))
            report["token_in_cdk_out"] = files_holding(cdk_out, index_token.encode()) + \
                files_holding(cdk_out, git_token.encode())

            deployment = GitBundleDeployment(cdk_out, work / "run", git_certificate=server.certificate,
                                             git_connection={"conn_type": "git", "login": GIT_USER,
                                                             "password": git_token})
            deployment.start()
            report["images"] = deployment.image_tags
            report["timings"] = {k: round(v, 1) for k, v in deployment.timings.items()}
            report.update(_token_in_image(deployment, work / "image.tar", index_token))

            deployment.wait_healthy(timeout=healthy_timeout)
            report["healthy_after_seconds"] = round(time.monotonic() - started, 1)
            client = RestClient(deployment.ui_url, *deployment.admin_login())
            parse_started = time.monotonic()
            wait_parsed(client, PROBE_DAG, parse_timeout, deployment.check)
            report["first_parse_seconds_after_healthy"] = round(time.monotonic() - parse_started, 1)

            runs = report["runs"] = {}
            run_id, state = client.trigger_and_wait(PROBE_DAG, run_timeout, deployment.check)
            runs["first"] = {"state": state, "returned": _xcom(client, run_id), "commit": first_commit}

            report["push"] = _push_during_a_run(deployment, client, server, repo, resolve, runs, run_timeout,
                                                parse_timeout)
            report["git_requests"] = {str(k): v for k, v in sorted(server.requests.items())}
            report["worker_tasks_launched"] = deployment.ecs.launched if deployment.ecs else 0
    except Exception as error:
        report["error"] = str(error)
        raise
    finally:
        shutil.rmtree(outside, ignore_errors=True)
        if deployment is not None:
            report["left_running"] = deployment.stop()
            report["iam_denials"] = sorted({d.line() for d in deployment.aws.denials})
            report["ecs_failures"] = deployment.ecs.failures if deployment.ecs else []
        report["seconds"] = round(time.monotonic() - started, 1)
        (out_dir / "report-git.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if not all(r.get("state") == "success" for r in report.get("runs", {}).values()):
        raise RehearsalFailed(f"a git_probe run did not succeed: {report.get('runs')}")
    return report
