"""Single sign-on against a real OpenID Connect provider: ``oidc-provider-mock`` served over HTTPS
with a certificate of this test, a real ``airflow api-server`` (Airflow 3.3.2, FAB auth manager,
PostgreSQL) configured by ``docker/webserver_config.py`` through the same variables the CDK app
writes (``constructs_lib.airflow_settings.SsoSettings``), and Chromium driven by Playwright.

The provider requires a registered client: the api-server holds the registered client's secret in
``AIRFLOW_SSO_CLIENT_SECRET``, as the ECS secret puts it there; a wrong secret fails the token call.

- a user of the admin group signs in and lands in the UI as Admin (ab_user_role), and may trigger a DAG;
- a user of the viewer group signs in as Viewer, may read the DAG and is refused (403) its trigger;
- a user of no mapped group is refused: back on the login page, no token, no user row;
- an identity-provider user named like the local admin is refused, not signed in as that admin;
- the local admin still signs in with the password (break-glass), and with the local login off
  (``sso_local_admin_login=false``) that password is refused at ``/auth/token``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from airflow_ecs_fargate import sso
from local_ecs.browser import CHROMIUM_ARGS, SESSION_COOKIE, SIGNED_IN, sso_sign_in
from tests.cdk.conftest import PROJECT_ROOT
from standins.oidc import oidc_provider
from standins.postgres import free_port
from tests.e2e.local_airflow import AirflowDatabase, wait_until
from tests.e2e.fargate import tail

pytestmark = pytest.mark.e2e

WEBSERVER_CONFIG = PROJECT_ROOT / "docker" / "webserver_config.py"
DAG_ID = "sso_probe"
DAG_FILE = f"""
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), is_paused_upon_creation=False):
    EmptyOperator(task_id="noop")
"""
ADMIN_GROUP, VIEWER_GROUP = "airflow-admins", "analysts"
GROUPS_TO_ROLES = {ADMIN_GROUP: ["Admin"], VIEWER_GROUP: ["Viewer"]}
LOCAL_ADMIN, LOCAL_PASSWORD = "admin", "break-glass-" + secrets.token_urlsafe(8)
#: sub -> claims of the provider's users.
USERS = {
    "alice": {"preferred_username": "alice", "email": "alice@example.com", "groups": [ADMIN_GROUP, "staff"]},
    "victor": {"preferred_username": "victor", "email": "victor@example.com", "groups": [VIEWER_GROUP]},
    "nora": {"preferred_username": "nora", "email": "nora@example.com", "groups": ["marketing"]},
    "mallory": {"preferred_username": LOCAL_ADMIN, "email": "mallory@example.com", "groups": [ADMIN_GROUP]},
}
STEP_TIMEOUT_MS = 90_000


class ApiServer:
    """``airflow api-server`` with the FAB auth manager and single sign-on, as the CDK app sets it up."""

    def __init__(self, root: Path, postgres: AirflowDatabase, issuer: str, ca: Path):
        self.root, self.postgres, self.issuer, self.ca = root, postgres, issuer, ca
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home, dags = root / "airflow-home", root / "dags"
        home.mkdir()
        dags.mkdir()
        (home / "airflow.cfg").write_text("")
        (dags / f"{DAG_ID}.py").write_text(DAG_FILE)
        self.bin = Path(sys.executable).parent
        self.proc: subprocess.Popen | None = None
        self.log = root / "api-server.log"
        from cryptography.fernet import Fernet

        self.env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", str(root)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
            "AIRFLOW__API__BASE_URL": self.url,
            # The provider's certificate (authlib fetches discovery, token and JWKS with requests).
            "REQUESTS_CA_BUNDLE": str(ca),
            "SSL_CERT_FILE": str(ca),
        }

    def sso_environment(self, client_id: str, client_secret: str, local_login: bool) -> dict[str, str]:
        """What the CDK app gives the api-server container (SsoSettings), pointed at this checkout."""
        from app_config.model import SsoConfig
        from constructs_lib.airflow_settings import SsoSettings

        config = SsoConfig(self.issuer, client_id, "unused-secret-name",
                           tuple((g, tuple(r)) for g, r in GROUPS_TO_ROLES.items()), "groups",
                           "openid email profile", local_login)
        env = SsoSettings(config).environment()
        env["AIRFLOW__FAB__CONFIG_FILE"] = str(WEBSERVER_CONFIG)
        env[sso.CLIENT_SECRET_ENV] = client_secret
        return env

    def airflow(self, *args: str, extra: dict[str, str] | None = None) -> str:
        result = subprocess.run([str(self.bin / "airflow"), *args], env={**self.env, **(extra or {})},
                                capture_output=True, text=True, timeout=300)
        if result.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}")
        return result.stdout

    def start(self, extra: dict[str, str]) -> None:
        self.stop()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(self.bin / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1"],
                env={**self.env, **extra}, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        wait_until(self._healthy, 180, what=f"the api-server on {self.url}")

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"api-server exited {self.proc.returncode}:\n{tail(self.log, 60)}")
        try:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def stack():
    if not shutil.which("chromium"):
        pytest.fail("Debian's chromium is not installed: run `bash scripts/ensure-rehearsal-deps.sh`")
    # Not pytest's tmp_path: its parents are private to this user, and PostgreSQL runs as another.
    root = Path(tempfile.mkdtemp(prefix="airflow-sso-"))
    root.chmod(0o755)
    postgres = AirflowDatabase(root)
    postgres.start()
    try:
        with oidc_provider(root / "idp", USERS) as idp:
            api = ApiServer(root, postgres, idp.issuer, idp.certificate)
            client = idp.register_client([f"{api.url}{sso.REDIRECT_PATH}"])
            api.airflow("db", "migrate")
            api.airflow("users", "create", "--role", "Admin", "--username", LOCAL_ADMIN, "--password", LOCAL_PASSWORD,
                        "--firstname", "Airflow", "--lastname", "Admin", "--email", "admin@example.invalid")
            api.airflow("dags", "reserialize")
            api.start(api.sso_environment(client["client_id"], client["client_secret"], local_login=True))
            yield api, client
            api.stop()
    finally:
        postgres.stop()
        if os.environ.get("E2E_KEEP"):
            print(f"\nsso: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _sign_in(browser, api: ApiServer, sub: str):
    return sso_sign_in(browser, api.url, api.issuer, sub, timeout_ms=STEP_TIMEOUT_MS)


def _roles(api: ApiServer, username: str) -> list[str]:
    return sorted(row[0] for row in api.postgres.query(
        "SELECT r.name FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id JOIN ab_role r ON r.id = ur.role_id "
        "WHERE u.username = %s", (username,)))


def _trigger(api: ApiServer, token: str) -> requests.Response:
    return requests.post(f"{api.url}/api/v2/dags/{DAG_ID}/dagRuns", headers={"Authorization": f"Bearer {token}"},
                         json={"logical_date": None}, timeout=30)


def test_a_user_of_the_admin_group_lands_in_the_ui_as_admin(stack, browser, tmp_path):
    api, _ = stack
    page, token = _sign_in(browser, api, "alice")
    page.locator(SIGNED_IN).first.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
    page.screenshot(path=str(tmp_path / "alice.png"))
    assert token, page.url
    assert _roles(api, "alice") == ["Admin", "Public"]
    response = _trigger(api, token)
    assert response.status_code == 200, response.text


def test_a_user_of_the_viewer_group_cannot_trigger_a_dag(stack, browser):
    api, _ = stack
    page, token = _sign_in(browser, api, "victor")
    page.locator(SIGNED_IN).first.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
    assert token, page.url
    assert _roles(api, "victor") == ["Public", "Viewer"]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{api.url}/api/v2/dags/{DAG_ID}", headers=headers, timeout=30).status_code == 200
    response = _trigger(api, token)
    assert response.status_code == 403, response.text


def test_a_user_of_no_mapped_group_is_refused(stack, browser, tmp_path):
    api, _ = stack
    page, token = _sign_in(browser, api, "nora")  # ends on the login page again, or (wrongly) the UI
    page.screenshot(path=str(tmp_path / "nora.png"))
    assert token is None
    assert "/auth/login" in page.url
    assert "Invalid login" in page.inner_text("body")
    assert api.postgres.query("SELECT id FROM ab_user WHERE username = 'nora'") == []


def test_an_sso_user_named_like_the_local_admin_is_refused(stack, browser):
    api, _ = stack
    page, token = _sign_in(browser, api, "mallory")
    assert token is None, page.url
    assert api.postgres.query("SELECT email FROM ab_user WHERE username = %s", (LOCAL_ADMIN,)) == [
        ("admin@example.invalid",)]


def test_the_local_admin_signs_in_with_the_password_as_break_glass(stack, browser):
    api, _ = stack
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{api.url}/auth/login/", wait_until="domcontentloaded", timeout=STEP_TIMEOUT_MS)
    page.locator("#btn-signin-local").click(timeout=STEP_TIMEOUT_MS)
    page.fill("input[name=username]", LOCAL_ADMIN)
    page.fill("input[name=password]", LOCAL_PASSWORD)
    with page.expect_navigation(wait_until="domcontentloaded", timeout=STEP_TIMEOUT_MS):
        page.locator("input[type=submit], button[type=submit]").first.click()
    page.locator(SIGNED_IN).first.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
    assert any(c["name"] == SESSION_COOKIE for c in context.cookies())
    token = requests.post(f"{api.url}/auth/token", json={"username": LOCAL_ADMIN, "password": LOCAL_PASSWORD},
                          timeout=30)
    assert token.status_code == 201, token.text


def test_without_break_glass_the_password_is_refused(stack):
    api, client = stack
    api.start(api.sso_environment(client["client_id"], client["client_secret"], local_login=False))
    refused = requests.post(f"{api.url}/auth/token", json={"username": LOCAL_ADMIN, "password": LOCAL_PASSWORD},
                            timeout=30)
    assert refused.status_code == 401, refused.text
    page = requests.get(f"{api.url}/auth/login/", timeout=30)
    assert f"btn-signin-{sso.PROVIDER_NAME}" in page.text and "btn-signin-local" not in page.text


def test_a_wrong_client_secret_signs_nobody_in(stack, browser):
    """The secret the api-server holds is the one the provider checks (the ECS secret's path matters)."""
    api, client = stack
    api.start(api.sso_environment(client["client_id"], "not-" + client["client_secret"], local_login=True))
    page, token = _sign_in(browser, api, "alice")
    assert token is None, page.url
    assert "/auth/login" in page.url
