"""Single sign-on, rehearsed (``make rehearsal-sso``): the deployment with ``domain_name`` and the
``sso_*`` keys, run as ECS would run it, and a real OpenID Connect provider.

- a real OpenID Connect provider on this machine (:func:`standins.oidc.oidc_provider`:
  ``oidc-provider-mock`` over HTTPS, a self-signed certificate for :data:`IDP_HOST`) knows three
  users: one of the admin group, one of a viewer group, one of a group no key maps;
- Airflow is registered there as a confidential client whose redirect URI is
  ``https://<domain_name>/auth/oauth-authorized/oidc``, as a user registers it; its secret is the
  Secrets Manager secret ``sso_client_secret`` names, created in moto before the services start,
  and ECS hands it to the api-server with its execution role, IAM enforced;
- the UI is the template's HTTPS listener (:mod:`local_ecs.load_balancer`: its rules on TLS with a
  certificate for ``domain_name``), and port 80 redirects there;
- Chromium signs each user in through the provider (:func:`local_ecs.browser.sso_sign_in`), reaching
  ``domain_name`` and the provider by name (``--host-resolver-rules``, as DNS would).

:func:`rehearse_sso` then records, per user, whether a session was set, the Airflow roles the
auth manager gave (``GET /auth/fab/v1/users/<name>`` as the local admin), and what the user's own
token may do through the load balancer: read the example DAG, unpause it, trigger it. The admin group's run
must succeed in worker containers. The local admin (break-glass, ``sso_local_admin_login``)
signs in with the password from its secret.

Stand-in plumbing (not in the templates): the containers resolve :data:`IDP_HOST` to 127.0.0.1
(``--add-host``) and the api-server trusts the provider's certificate (mounted read-only,
``REQUESTS_CA_BUNDLE``), as it would trust a real provider's certificate through the image's CA
bundle.
"""

from __future__ import annotations

import http.client
import json
import shutil
import time
from pathlib import Path

from airflow_ecs_fargate import sso
from local_ecs.browser import CHROMIUM_ARGS, SIGNED_IN, sso_sign_in
from local_ecs.rest import RestClient, tls_context
from local_ecs.rest import http as rest_call
from local_ecs.scenario import DAG_ID, LOCAL_ADDRESS, LocalDeployment, wait_parsed
from local_ecs.synth import synthesize
from standins.oidc import oidc_provider

#: The UI's name (``domain_name``) and its zone (``.test``: reserved for tests, RFC 2606).
DOMAIN = "airflow.rehearsal.test"
ZONE_NAME = "rehearsal.test"
#: A well-formed Route 53 hosted zone ID; the rehearsal creates no record (DNS is Chromium's
#: ``--host-resolver-rules``).
ZONE_ID = "Z0123456789ABCDEFGHIJ"
#: The identity provider's host name.
IDP_HOST = "idp.rehearsal.test"
#: Where the api-server finds the provider's certificate (``REQUESTS_CA_BUNDLE``).
IDP_CA_IN_CONTAINER = "/etc/rehearsal/idp.crt"
#: The secret ``sso_client_secret`` names (a user creates it before the deploy).
CLIENT_SECRET_NAME = "airflow/dev/sso-client"
ADMIN_GROUP, VIEWER_GROUP = "airflow-admins", "analysts"
GROUPS_TO_ROLES = {ADMIN_GROUP: ["Admin"], VIEWER_GROUP: ["Viewer"]}
#: The provider's users (``sub`` -> claims): one per case of the scenario.
USERS = {
    "alice": {"preferred_username": "alice", "email": "alice@example.com", "groups": [ADMIN_GROUP, "staff"]},
    "victor": {"preferred_username": "victor", "email": "victor@example.com", "groups": [VIEWER_GROUP]},
    "nora": {"preferred_username": "nora", "email": "nora@example.com", "groups": ["marketing"]},
}
STEP_TIMEOUT_MS = 120_000


def overrides(issuer: str, client_id: str) -> dict[str, str]:
    """The configuration of this rehearsal: ``domain_name`` and single sign-on with ``issuer``."""
    return {"domain_name": DOMAIN, "hosted_zone_id": ZONE_ID, "hosted_zone_name": ZONE_NAME,
            "sso_issuer_url": issuer, "sso_client_id": client_id, "sso_client_secret": CLIENT_SECRET_NAME,
            "sso_groups_to_roles": json.dumps(GROUPS_TO_ROLES)}


class SsoDeployment(LocalDeployment):
    """A :class:`LocalDeployment` whose api-server reaches the rehearsal's identity provider: its
    host name resolves to 127.0.0.1 and its certificate is trusted (module docstring); before the
    services start, the client secret is created in moto.

    :param idp_certificate: the provider's certificate (PEM file), mounted read-only.
    :param client_secret: the secret's value (the provider's ``client_secret``).
    """

    def __init__(self, cdk_out: Path, work_dir: Path, *, idp_certificate: Path, client_secret: str, **kwargs):
        super().__init__(cdk_out, work_dir, **kwargs)
        self.client_secret = client_secret
        self.bind_mounts = {str(Path(idp_certificate).resolve()): IDP_CA_IN_CONTAINER}
        self.hosts[IDP_HOST] = LOCAL_ADDRESS

    def before_services(self) -> None:
        self.aws.client("secretsmanager").create_secret(Name=CLIENT_SECRET_NAME, SecretString=self.client_secret)

    def environment_for(self, task, container) -> dict[str, str]:
        env = super().environment_for(task, container)
        if sso.enabled(env):  # the api-server: authlib fetches discovery, token and keys with requests
            env["REQUESTS_CA_BUNDLE"] = IDP_CA_IN_CONTAINER
        return env


def _user_case(browser, deployment: SsoDeployment, admin: RestClient, issuer: str, sub: str,
               screenshots: Path) -> dict:
    """Sign ``sub`` in and record what the UI and the REST API let that user do."""
    ui = f"https://{DOMAIN}"
    page, token = sso_sign_in(browser, ui, issuer, sub, timeout_ms=STEP_TIMEOUT_MS)
    case: dict = {"session": token is not None, "url": page.url.replace(ui, ""),
                  "signed_in": page.locator(SIGNED_IN).first.is_visible()}
    if not case["signed_in"]:
        case["page_says"] = " ".join(page.inner_text("body").split())[:300]
    page.screenshot(path=str(screenshots / f"sso-{sub}.png"))
    page.context.close()
    status, body = admin.get(f"/auth/fab/v1/users/{USERS[sub]['preferred_username']}")
    case["user_row"] = status == 200
    case["roles"] = sorted(r["name"] for r in json.loads(body).get("roles", [])) if status == 200 else []
    if token is not None:
        base, context = deployment.ui_url, tls_context(deployment.ui_certificate)
        case["read_dag"] = rest_call("GET", f"{base}/api/v2/dags/{DAG_ID}", token=token, context=context)[0]
        case["unpause"] = rest_call("PATCH", f"{base}/api/v2/dags/{DAG_ID}", {"is_paused": False}, token=token,
                                    context=context)[0]
        status, body = rest_call("POST", f"{base}/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None},
                                 token=token, context=context)
        case["trigger"] = status
        if status == 200:
            case["run_id"] = json.loads(body)["dag_run_id"]
    return case


def _port_80(deployment: SsoDeployment) -> dict:
    """What the port-80 listener answers a browser's first request for ``http://<domain>/home``."""
    connection = http.client.HTTPConnection(LOCAL_ADDRESS, deployment.http_redirect_port, timeout=30)
    try:
        connection.request("GET", "/home", headers={"Host": DOMAIN})
        response = connection.getresponse()
        return {"status": response.status, "location": response.getheader("Location")}
    finally:
        connection.close()


def rehearse_sso(out_dir: Path, *, healthy_timeout: float = 1500, run_timeout: float = 600,
                 parse_timeout: float = 300) -> dict:
    """Play the scenario of the module docstring; always cleans up.

    :param out_dir: the report (``report-sso.json``), screenshots, the synthesis and the
        container logs go here.
    :returns: the report: ``users`` (``sub`` -> ``session``, ``signed_in``, ``roles``,
        ``user_row``, ``read_dag``, ``unpause`` and ``trigger`` HTTP statuses, ``run_state``), ``break_glass``
        (the local admin's password login), ``port_80`` (status and ``Location``),
        ``iam_denials``, ``left_running``, ``seconds``.
    :raises local_ecs.scenario.RehearsalFailed: a step did not reach its state in time.
    """
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"configuration": "sso", "iam_denials": [], "users": {}}
    work = out_dir / "sso"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    deployment: SsoDeployment | None = None
    try:
        with oidc_provider(work / "idp", USERS, host=IDP_HOST) as idp:
            client = idp.register_client([f"https://{DOMAIN}{sso.REDIRECT_PATH}"])
            cdk_out = synthesize(overrides(idp.issuer, client["client_id"]), work / "cdk.out")
            deployment = SsoDeployment(cdk_out, work / "run", idp_certificate=idp.certificate,
                                       client_secret=client["client_secret"])
            deployment.start()
            deployment.wait_healthy(timeout=healthy_timeout)
            report["healthy_after_seconds"] = round(time.monotonic() - started, 1)
            report["domain"] = DOMAIN
            admin = RestClient(deployment.ui_url, *deployment.admin_login(), ca_file=deployment.ui_certificate)
            wait_parsed(admin, DAG_ID, parse_timeout, deployment.check)
            report["break_glass"] = "ok"  # the local admin's password signed in at /auth/token (wait_parsed)
            report["port_80"] = _port_80(deployment)
            rules = f"MAP {DOMAIN} {LOCAL_ADDRESS}:{deployment.load_balancer_port}, MAP {IDP_HOST} {LOCAL_ADDRESS}"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                     args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"])
                try:
                    for sub in USERS:
                        report["users"][sub] = _user_case(browser, deployment, admin, idp.issuer, sub, out_dir)
                finally:
                    browser.close()
            for case in report["users"].values():
                if "run_id" in case:
                    case["run_state"] = admin.wait_for_run(DAG_ID, case["run_id"], run_timeout, deployment.check)
    except Exception as error:
        report["error"] = str(error)
        raise
    finally:
        if deployment is not None:
            report["left_running"] = deployment.stop()
            report["iam_denials"] = sorted({d.line() for d in deployment.aws.denials})
        report["seconds"] = round(time.monotonic() - started, 1)
        (out_dir / "report-sso.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report
