"""The browser step against a stand-in of the UI's login flow, in real Chromium.

The stand-in behaves as Airflow's single-page app does on a slow machine: ``/`` answers 200 at
once and its script asks for ``/ui/config`` only ``APP_START_SECONDS`` later (after the network
has gone idle); a 401 there sends the browser to ``/api/v2/auth/login?next=...``, which redirects
to the FAB login form; a good login sets the ``_token`` cookie and redirects to ``next``. The old
step decided "already logged in" from ``page.url`` at network idle and never logged in here.
"""

from __future__ import annotations

import html
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from local_ecs.browser import check_task_page

USER, PASSWORD = "admin", "s3cret"
LOG_LINE = "Returned value was: 55"
TASK_PAGE = "/dags/example_pipeline/runs/manual__1/tasks/load"
APP_START_SECONDS = 2.0

_APP = """<!doctype html><html><body><div id=root>loading</div><script>
setTimeout(async () => {
  const answer = await fetch('/ui/config');
  if (answer.status === 401) {
    location.href = '/api/v2/auth/login?next=' + encodeURIComponent(location.href);
    return;
  }
  const nav = '<nav><a data-testid="nav-dags-link" href="/dags">Dags</a></nav>';
  const log = location.pathname.includes('/tasks/') && SHOW_LOG ? '<pre>[2026] INFO - LOG_LINE</pre>' : '';
  document.getElementById('root').innerHTML = nav + log;
}, DELAY);
</script></body></html>"""

_FORM = """<!doctype html><html><body><p>MESSAGE</p><form method=post action="/auth/login/?next=NEXT">
<input name=username><input name=password type=password><input type=submit value="Sign In"></form></body></html>"""


class FakeUi:
    """The stand-in UI; ``drop_posts`` login posts are answered with the form again, as if lost."""

    def __init__(self, *, drop_posts: int = 0, show_log: bool = True):
        self.drop_posts = drop_posts
        self.show_log = show_log
        self.posts = 0
        ui = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: str = "", headers: dict | None = None):
                data = body.encode()
                self.send_response(status)
                for name, value in {"Content-Type": "text/html", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                if url.path == "/ui/config":
                    signed_in = "_token=good" in (self.headers.get("Cookie") or "")
                    return self._send(200 if signed_in else 401, "{}", {"Content-Type": "application/json"})
                if url.path == "/api/v2/auth/login":
                    return self._send(307, headers={"Location": f"/auth/login/?{url.query}"})
                if url.path == "/auth/login/":
                    return self._send(200, ui.form("", query.get("next", ["/"])[0]))
                app = (_APP.replace("DELAY", str(int(APP_START_SECONDS * 1000)))
                       .replace("SHOW_LOG", "true" if ui.show_log else "false").replace("LOG_LINE", LOG_LINE))
                return self._send(200, app)

            def do_POST(self):
                url = urllib.parse.urlsplit(self.path)
                next_url = urllib.parse.parse_qs(url.query).get("next", ["/"])[0]
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                ui.posts += 1
                if ui.posts <= ui.drop_posts:
                    return self._send(200, ui.form("", next_url))
                if form.get("username") == [USER] and form.get("password") == [PASSWORD]:
                    return self._send(302, headers={"Location": next_url,
                                                    "Set-Cookie": "_token=good; Path=/; HttpOnly; SameSite=Lax"})
                return self._send(200, ui.form("Invalid login. Please try again.", next_url))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def form(message: str, next_url: str) -> str:
        return _FORM.replace("MESSAGE", message).replace("NEXT", html.escape(urllib.parse.quote(next_url, safe="")))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_ui(request):
    ui = FakeUi(**getattr(request, "param", {}))
    yield ui
    ui.close()


def _check(ui: FakeUi, tmp_path, password: str = PASSWORD, step_timeout: float = 60) -> dict:
    return check_task_page(ui.url, USER, password, TASK_PAGE, LOG_LINE, tmp_path / "shot.png",
                           step_timeout=step_timeout)


def test_logs_in_although_the_app_redirects_to_the_login_late(fake_ui, tmp_path):
    result = _check(fake_ui, tmp_path)
    assert result["ok"], result
    assert result["login_attempts"] == 1 and fake_ui.posts == 1
    assert result["screenshot"] == str(tmp_path / "shot.png")
    assert (tmp_path / "shot.png").stat().st_size > 1_000
    assert set(result["seconds"]) == {"open-login", "log-in", "open-task-page"}


@pytest.mark.parametrize("fake_ui", [{"drop_posts": 1}], indirect=True)
def test_a_login_the_server_did_not_take_is_tried_again(fake_ui, tmp_path):
    result = _check(fake_ui, tmp_path)
    assert result["ok"], result
    assert result["login_attempts"] == 2 and fake_ui.posts == 2


def test_a_refused_password_fails_the_log_in_step_with_its_screenshot(fake_ui, tmp_path):
    result = _check(fake_ui, tmp_path, password="wrong")
    assert not result["ok"]
    assert result["step"] == "log-in"
    assert "Invalid login" in result["error"]
    assert result["screenshot"] == str(tmp_path / "shot-log-in.png")
    assert (tmp_path / "shot-log-in.png").exists() and not (tmp_path / "shot.png").exists()


@pytest.mark.parametrize("fake_ui", [{"show_log": False}], indirect=True)
def test_a_task_page_without_the_log_line_fails_the_open_task_page_step(fake_ui, tmp_path):
    result = _check(fake_ui, tmp_path, step_timeout=APP_START_SECONDS + 8)
    assert not result["ok"]
    assert result["step"] == "open-task-page"
    assert LOG_LINE in result["error"]
    assert (tmp_path / "shot-open-task-page.png").exists()


def test_an_unreachable_ui_fails_the_open_login_step(tmp_path):
    ui = FakeUi()
    ui.close()
    result = _check(ui, tmp_path, step_timeout=10)
    assert not result["ok"]
    assert result["step"] == "open-login"
