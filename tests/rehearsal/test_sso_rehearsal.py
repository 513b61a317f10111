"""Single sign-on in the rehearsal (local_ecs/sso_login.py, docs/rehearsal.md, ``make
rehearsal-sso``): the deployment with ``domain_name`` and the ``sso_*`` keys, a real OpenID
Connect provider and Chromium; the scenario runs once per session, the tests read its report
(``.rehearsal/report-sso.json``).

In ``make test`` (marker ``rehearsal``): about 5-6 minutes on a 2-core machine.
"""

from __future__ import annotations

import pytest

from local_ecs.sso_login import DOMAIN
from tests.rehearsal.conftest import OUT, report_of

pytestmark = pytest.mark.rehearsal


@pytest.fixture(scope="session")
def sso_report():
    from local_ecs.sso_login import rehearse_sso

    return report_of(lambda: rehearse_sso(OUT), "report-sso.json")


def _user(report: dict, sub: str) -> dict:
    assert sub in report.get("users", {}), report.get("error")
    return report["users"][sub]


def test_a_user_of_the_admin_group_lands_in_the_ui_as_admin_and_runs_a_dag(sso_report):
    alice = _user(sso_report, "alice")
    assert alice["session"] and alice["signed_in"], alice
    assert alice["roles"] == ["Admin", "Public"]  # Public: FAB's registration role, no permission
    assert (alice["read_dag"], alice["unpause"], alice["trigger"]) == (200, 200, 200)
    assert alice["run_state"] == "success"  # the run she triggered ran in worker containers


def test_a_user_of_a_viewer_group_reads_but_cannot_trigger(sso_report):
    victor = _user(sso_report, "victor")
    assert victor["session"] and victor["signed_in"], victor
    assert victor["roles"] == ["Public", "Viewer"]
    assert victor["read_dag"] == 200
    assert (victor["unpause"], victor["trigger"]) == (403, 403)


def test_a_user_of_no_mapped_group_is_refused(sso_report):
    nora = _user(sso_report, "nora")
    assert not nora["session"] and not nora["signed_in"], nora
    assert nora["url"].startswith("/auth/login"), nora
    assert "Invalid login" in nora["page_says"]
    assert not nora["user_row"] and nora["roles"] == []


def test_the_ui_is_https_only_and_the_local_admin_keeps_the_password_login(sso_report):
    assert sso_report.get("break_glass") == "ok", sso_report.get("error")
    assert sso_report["port_80"] == {"status": 301, "location": f"https://{DOMAIN}:443/home"}
    assert sso_report["iam_denials"] == [] and sso_report["left_running"] == []
