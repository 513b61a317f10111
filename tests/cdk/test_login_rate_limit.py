"""Issue 16: the login and token paths are rate-limited across api-server tasks by an AWS WAF web
ACL on the UI load balancer (``login_rate_limit``), and the Execution API is refused however a
client spells its path."""

from __future__ import annotations

import pytest

from app_config import ConfigError, load_config
from constructs_lib.ingress import EXECUTION_API_ENCODED_PATH_REGEX
from constructs_lib.waf import LOGIN_PATH_PREFIXES, LOGIN_RATE_WINDOW_SECONDS, PATH_TRANSFORMATIONS

from .conftest import CONFIGURATIONS, resources_of, synthesize


def _web_acls(template: dict) -> dict[str, dict]:
    return resources_of(template, "AWS::WAFv2::WebACL")


class TestLoginRateLimit:
    def test_prod_rate_limits_the_login_and_token_paths_per_client_ip(self, prod):
        t = prod.templates()["airflow"]
        ((acl_id, acl),) = _web_acls(t).items()
        p = acl["Properties"]
        assert p["Scope"] == "REGIONAL" and p["DefaultAction"] == {"Allow": {}}
        (rule,) = p["Rules"]
        assert rule["Action"] == {"Block": {}}
        rate = rule["Statement"]["RateBasedStatement"]
        assert rate["AggregateKeyType"] == "IP"
        assert rate["Limit"] == 100 and rate["EvaluationWindowSec"] == LOGIN_RATE_WINDOW_SECONDS == 300
        matches = [s["ByteMatchStatement"] for s in rate["ScopeDownStatement"]["OrStatement"]["Statements"]]
        assert sorted(m["SearchString"] for m in matches) == ["/auth/login", "/auth/token"]
        for m in matches:
            assert m["FieldToMatch"] == {"UriPath": {}} and m["PositionalConstraint"] == "STARTS_WITH"
            # decoded as uvicorn decodes before Airflow routes: /auth/%74oken counts as /auth/token
            assert m["TextTransformations"] == [{"Priority": 0, "Type": "URL_DECODE"},
                                                {"Priority": 1, "Type": "NORMALIZE_PATH"}]
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
        (association,) = resources_of(t, "AWS::WAFv2::WebACLAssociation").values()
        (alb_id,) = resources_of(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
        assert association["Properties"] == {"ResourceArn": {"Ref": alb_id}, "WebACLArn": {"Fn::GetAtt": [acl_id, "Arn"]}}

    @pytest.mark.parametrize("name", ["dev", "lean"])
    def test_dev_and_lean_have_no_web_acl_by_default(self, synth, name):
        assert _web_acls(synth(name).templates()["airflow"]) == {}

    def test_the_key_turns_it_off_in_prod_and_on_in_dev(self, tmp_path):
        prod_off = synthesize({**CONFIGURATIONS["prod"], "login_rate_limit": "0"}, tmp_path / "off")
        assert _web_acls(prod_off.templates()["airflow"]) == {}
        dev_on = synthesize({"login_rate_limit": "25"}, tmp_path / "on")
        ((_, acl),) = _web_acls(dev_on.templates()["airflow"]).items()
        assert acl["Properties"]["Rules"][0]["Statement"]["RateBasedStatement"]["Limit"] == 25

    @pytest.mark.parametrize("value", ["5", "9", "2000000001", "-1"])
    def test_a_limit_waf_refuses_names_the_key_and_the_fix_before_synthesis(self, value):
        with pytest.raises(ConfigError) as error:
            load_config({"login_rate_limit": value})
        assert f"login_rate_limit={value}: AWS WAF's rate limit is 10 to 2000000000" in str(error.value)
        assert "login_rate_limit=0 for no web ACL" in str(error.value)

    @pytest.mark.parametrize("value", ["ten", "10.5"])
    def test_a_limit_that_is_not_a_whole_number_names_the_key(self, value):
        with pytest.raises(ConfigError, match=f"login_rate_limit='{value}': expected a whole number"):
            load_config({"login_rate_limit": value})

    def test_limits_waf_accepts_pass(self):
        for value in ("0", "10", "2000000000"):
            assert load_config({"login_rate_limit": value}).ingress.login_rate_limit == int(value)

    def test_the_prefixes_cover_the_installed_airflow_and_fab_login_routes(self):
        """Airflow 3.3.2 mounts the auth manager at /auth; FAB 3.10.2 serves POST /token and
        /token/cli there and its login form at /auth/login/."""
        from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX
        from airflow.providers.fab.auth_manager.api_fastapi.routes.login import auth_router

        token_routes = {r.path for r in auth_router.routes if "POST" in getattr(r, "methods", set())}
        assert {"/token", "/token/cli"} <= token_routes
        full = {AUTH_MANAGER_FASTAPI_APP_PREFIX + path for path in token_routes}
        assert all(any(path.startswith(prefix) for prefix in LOGIN_PATH_PREFIXES) for path in full), full

        from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

        login_url = FabAuthManager().get_url_login()
        assert any(login_url.split("://", 1)[-1].split("/", 1)[1].startswith(p.lstrip("/")) for p in LOGIN_PATH_PREFIXES), login_url
        assert PATH_TRANSFORMATIONS == ("URL_DECODE", "NORMALIZE_PATH")


class TestEncodedExecutionApiPaths:
    @pytest.mark.parametrize("name", ["dev", "prod", "issued-certificate", "private-ui-prod"])
    def test_every_listener_refuses_the_encoded_spellings_before_forwarding(self, synth, name):
        t = synth(name).templates()["airflow"]
        listeners = resources_of(t, "AWS::ElasticLoadBalancingV2::Listener")
        by_listener = {}
        for rule in resources_of(t, "AWS::ElasticLoadBalancingV2::ListenerRule").values():
            p = rule["Properties"]
            if p["Conditions"] == [{"Field": "path-pattern", "PathPatternConfig": {"RegexValues": [EXECUTION_API_ENCODED_PATH_REGEX]}}]:
                assert p["Actions"][0]["Type"] == "fixed-response"
                assert p["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "403"
                by_listener[p["ListenerArn"]["Ref"]] = p["Priority"]
        assert set(by_listener) == set(listeners) and set(by_listener.values()) == {2}

    def test_the_regex_fits_albs_limit(self):
        # ELB API reference, PathPatternConditionConfig: at most 128 characters per regex
        assert len(EXECUTION_API_ENCODED_PATH_REGEX) <= 128
