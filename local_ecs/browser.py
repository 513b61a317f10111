"""The rehearsal's browser step: log in to the Airflow UI in Chromium and open a task's log page.

Every wait here waits for what the page shows, never for the network or for a moment: Airflow's
UI is a single-page app, so the redirect to the login happens from JavaScript, after its first
script ran, which may be well after the network went idle on a loaded machine. A fresh browser
context never has a session, so the step goes to the login page directly instead of guessing
from ``page.url`` whether the app will redirect there.

The steps, each with its own deadline and, on failure, its own screenshot:

1. ``open-login``: ``/api/v2/auth/login?next=<UI>/`` (the auth manager's login entry, which the UI
   itself uses) until the login form is visible;
2. ``log-in``: fill in the user name and password, submit, wait for the page the submit loads;
   signed in means the auth manager's session cookie is set and the UI's navigation
   (``[data-testid=nav-dags-link]``) is visible. Without the cookie (a refused password, or a
   submit a loaded machine dropped) the login is tried again, up to ``LOGIN_ATTEMPTS`` times;
3. ``open-task-page``: the task's page until ``expect_text`` is visible; the login form there
   means the session was lost.
"""

from __future__ import annotations

import shutil
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # pragma: no cover - requirements-dev.txt installs it; check_task_page reports it
    PlaywrightTimeout = TimeoutError  # type: ignore[misc,assignment]

#: The login form of the FAB auth manager (``/auth/login/``).
LOGIN_FORM = "input[name=username]"
PASSWORD_INPUT = "input[name=password]"
SUBMIT = "input[type=submit], button[type=submit]"
#: The UI's navigation link to the DAG list, rendered only for a signed-in user (Airflow 3.3's UI
#: marks it ``data-testid="nav-dags-link"``).
SIGNED_IN = "[data-testid=nav-dags-link]"
#: Chromium's flags for a closed network and no sandbox (run as root): without the
#: background-networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
LOGIN_ATTEMPTS = 3
#: The JWT cookie the auth manager sets on a successful login (Airflow's ``COOKIE_NAME_JWT_TOKEN``).
SESSION_COOKIE = "_token"


class BrowserStepFailed(RuntimeError):
    """A step of the browser check did not reach the state it waits for.

    :ivar step: the step's name (``open-login``, ``log-in``, ``open-task-page``).
    """

    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step


@dataclass
class BrowserResult:
    """What one browser check saw: ``ok``, the failed ``step`` and ``error`` if any, the
    ``screenshot`` of the last step reached (the failing one on failure), seconds per step and
    the number of login attempts."""

    ok: bool = False
    step: str | None = None
    error: str | None = None
    url: str | None = None
    screenshot: str | None = None
    login_attempts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def check_task_page(ui_url: str, username: str, password: str, page_path: str, expect_text: str,
                    screenshot: Path, *, step_timeout: float = 120) -> dict:
    """Log in at ``ui_url`` and wait until ``page_path`` shows ``expect_text``.

    :param ui_url: the UI's base URL (no trailing slash), e.g. ``http://127.0.0.1:8080``.
    :param page_path: the page to open after the login, e.g. ``/dags/x/runs/y/tasks/load``.
    :param expect_text: the text the page must show (visible, not only in the DOM).
    :param screenshot: where the last step's screenshot goes; a failed step's screenshot goes
        beside it as ``<stem>-<step>.png``.
    :param step_timeout: seconds each step may wait for its state.
    :returns: :meth:`BrowserResult.as_dict` (never raises for a failed step: the report says it).
    """
    result = BrowserResult()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - requirements-dev.txt installs it
        result.error = "playwright is not installed (pip install -r requirements-dev.txt)"
        return result.as_dict()
    chromium = shutil.which("chromium")
    if not chromium:
        result.error = "Debian's chromium is not installed (apt-get install chromium)"
        return result.as_dict()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = None
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            _steps(page, result, ui_url, username, password, page_path, expect_text, step_timeout * 1000)
            page.screenshot(path=str(screenshot), full_page=True)
            result.ok, result.screenshot = True, str(screenshot)
        except Exception as error:  # a step failed (BrowserStepFailed) or Playwright did (its own error)
            result.step = getattr(error, "step", result.step)
            result.error = str(error).splitlines()[0][:500]
            if page is not None:
                failed = screenshot.with_name(f"{screenshot.stem}-{result.step or 'browser'}.png")
                try:
                    page.screenshot(path=str(failed), full_page=True)
                    result.screenshot = str(failed)
                except Exception:  # noqa: BLE001 - the page may be gone; the report still says which step
                    pass
        finally:
            if page is not None:
                result.url = page.url
            browser.close()
    return result.as_dict()


def _steps(page, result: BrowserResult, ui_url: str, username: str, password: str, page_path: str,
           expect_text: str, timeout_ms: float) -> None:
    login_url = f"{ui_url}/api/v2/auth/login?next={urllib.parse.quote(ui_url + '/', safe='')}"

    started = _start(result, "open-login")
    page.goto(login_url, wait_until="domcontentloaded", timeout=timeout_ms)
    _visible(page, page.locator(LOGIN_FORM), timeout_ms, "open-login", "the login form")
    result.seconds["open-login"] = round(time.monotonic() - started, 1)

    started = _start(result, "log-in")
    while True:
        result.login_attempts += 1
        page.fill(LOGIN_FORM, username)
        page.fill(PASSWORD_INPUT, password)
        try:
            # Until the browser has left it, the old form stays visible: wait for the page the
            # submit loads (a redirect to the UI with the session cookie, or the login page again).
            with page.expect_navigation(wait_until="domcontentloaded", timeout=timeout_ms):
                page.locator(SUBMIT).first.click()
        except PlaywrightTimeout:
            pass  # the submit started no navigation: judged below by the session, like a refused one
        if _has_session(page):
            _visible(page, page.locator(SIGNED_IN), timeout_ms, "log-in", "the UI's navigation after the login")
            break
        if result.login_attempts >= LOGIN_ATTEMPTS:
            raise BrowserStepFailed("log-in", f"no session after {result.login_attempts} attempts; the page "
                                              f"at {page.url} says: {_text(page)[:300]!r}")
        page.goto(login_url, wait_until="domcontentloaded", timeout=timeout_ms)
        _visible(page, page.locator(LOGIN_FORM), timeout_ms, "log-in", "the login form for another attempt")
    result.seconds["log-in"] = round(time.monotonic() - started, 1)

    started = _start(result, "open-task-page")
    page.goto(f"{ui_url}{page_path}", wait_until="domcontentloaded", timeout=timeout_ms)
    wanted = page.get_by_text(expect_text)
    _visible(page, wanted.or_(page.locator(LOGIN_FORM)), timeout_ms, "open-task-page", f"the text {expect_text!r}")
    if not wanted.first.is_visible():
        raise BrowserStepFailed("open-task-page", f"the session was lost: the login form shows at {page.url}")
    result.seconds["open-task-page"] = round(time.monotonic() - started, 1)


def _start(result: BrowserResult, step: str) -> float:
    result.step = step
    return time.monotonic()


def _has_session(page) -> bool:
    """Whether the browser holds the auth manager's JWT cookie (``_token``, set by the login's
    redirect: ``COOKIE_NAME_JWT_TOKEN`` of Airflow's base auth manager)."""
    return any(cookie["name"] == SESSION_COOKIE for cookie in page.context.cookies())


def _text(page) -> str:
    try:
        return " ".join(page.inner_text("body").split())
    except Exception:  # noqa: BLE001 - only for the error message
        return ""


def _visible(page, locator, timeout_ms: float, step: str, what: str) -> None:
    """Wait until the first element of ``locator`` is visible.

    :raises BrowserStepFailed: naming ``step`` and ``what``, with the page's URL and text.
    """
    try:
        locator.first.wait_for(state="visible", timeout=timeout_ms)
    except PlaywrightTimeout:
        raise BrowserStepFailed(step, f"{what} did not show within {timeout_ms / 1000:.0f} s at {page.url}; "
                                      f"the page says: {_text(page)[:300]!r}") from None


def sso_sign_in(browser, ui_url: str, issuer: str, sub: str, *, timeout_ms: float = 90_000):
    """Sign in through the OpenID Connect provider as the provider's user ``sub``, in a fresh
    context of ``browser`` (Playwright's ``Browser``): the UI's login entry, the provider's button
    of the FAB login page (``#btn-signin-<provider>``, :data:`airflow_ecs_fargate.sso.PROVIDER_NAME`),
    the provider's authorize page (``oidc-provider-mock``: one button per user, ``name=sub``), and
    back to the UI, signed in or refused.

    :param ui_url: the UI's base URL as the browser reaches it (no trailing slash).
    :param issuer: the provider's issuer URL (its authorize page is ``<issuer>/oauth2/authorize``).
    :returns: ``(page, token)``: the page where the browser ended (once the UI's navigation or the
        login page shows) and the auth manager's JWT cookie, None when no session was set.
    :raises playwright.sync_api.TimeoutError: a page did not show within ``timeout_ms`` (milliseconds).
    """
    from airflow_ecs_fargate import sso

    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{ui_url}/api/v2/auth/login?next={urllib.parse.quote(ui_url + '/', safe='')}",
              wait_until="domcontentloaded", timeout=timeout_ms)
    provider_button = page.locator(f"#btn-signin-{sso.PROVIDER_NAME}")
    provider_button.click(timeout=timeout_ms)
    page.wait_for_url(f"{issuer}/oauth2/authorize*", timeout=timeout_ms)
    with page.expect_navigation(url=f"{ui_url}/**", wait_until="domcontentloaded", timeout=timeout_ms):
        page.locator(f"button[name=sub][value={sub}]").click(timeout=timeout_ms)
    # Whichever page the sign-in ends on: the UI (signed in) or the login page again (refused).
    provider_button.or_(page.locator(SIGNED_IN)).first.wait_for(state="visible", timeout=timeout_ms)
    return page, next((c["value"] for c in context.cookies() if c["name"] == SESSION_COOKIE), None)
