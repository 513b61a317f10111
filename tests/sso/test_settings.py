"""The api-server's SSO environment (airflow_ecs_fargate.sso) and docker/webserver_config.py as the FAB
provider loads it (Flask's ``config.from_pyfile``)."""

from __future__ import annotations

import pytest

from airflow_ecs_fargate import sso
from tests.cdk.conftest import PROJECT_ROOT

ENV = {
    sso.ISSUER_ENV: "https://idp.example.com/",
    sso.CLIENT_ID_ENV: "client-1",
    sso.CLIENT_SECRET_ENV: "s3cret",
    sso.ROLES_ENV: '{"admins": ["Admin"], "analysts": ["Viewer"]}',
}


def test_without_the_issuer_nothing_is_set():
    assert sso.fab_settings({}) == {}
    assert sso.local_login_allowed({sso.LOCAL_LOGIN_ENV: "false"})  # no SSO: the password is the way in


def test_the_provider_comes_from_the_issuers_discovery_document():
    settings = sso.fab_settings(ENV)
    (provider,) = settings["OAUTH_PROVIDERS"]
    assert provider["name"] == sso.PROVIDER_NAME and provider["token_key"] == "access_token"
    assert provider["remote_app"]["server_metadata_url"] == "https://idp.example.com/.well-known/openid-configuration"
    assert provider["remote_app"]["client_secret"] == "s3cret"
    assert settings["AUTH_ROLES_MAPPING"] == {"admins": ["Admin"], "analysts": ["Viewer"]}
    assert settings["AUTH_ROLES_SYNC_AT_LOGIN"] is True and settings["AUTH_USER_REGISTRATION"] is True
    assert settings["AUTH_USER_REGISTRATION_ROLE"] == "Public"


@pytest.mark.parametrize("missing", [sso.CLIENT_ID_ENV, sso.CLIENT_SECRET_ENV, sso.ROLES_ENV])
def test_a_missing_variable_is_named(missing):
    with pytest.raises(sso.SsoConfigError, match=missing):
        sso.fab_settings({k: v for k, v in ENV.items() if k != missing})


@pytest.mark.parametrize("roles", ["[]", "{}", '{"admins": "Admin"}', "{"])
def test_a_malformed_mapping_is_refused(roles):
    with pytest.raises(sso.SsoConfigError, match=sso.ROLES_ENV):
        sso.fab_settings({**ENV, sso.ROLES_ENV: roles})


def _loaded(monkeypatch, env: dict[str, str]) -> dict:
    from flask import Flask

    for name in (*ENV, sso.LOCAL_LOGIN_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = Flask(__name__)
    assert app.config.from_pyfile(str(PROJECT_ROOT / "docker" / "webserver_config.py"))
    return dict(app.config)


def test_the_webserver_config_sets_nothing_without_sso(monkeypatch):
    config = _loaded(monkeypatch, {})
    assert not {"AUTH_TYPE", "OAUTH_PROVIDERS", "SECURITY_MANAGER_CLASS", "AUTH_ROLES_MAPPING"} & set(config)


def test_the_webserver_config_turns_on_oauth_with_the_security_manager(monkeypatch):
    from airflow.providers.fab.auth_manager.security_manager.override import FabAirflowSecurityManagerOverride
    from flask_appbuilder.const import AUTH_OAUTH

    config = _loaded(monkeypatch, ENV)
    assert config["AUTH_TYPE"] == AUTH_OAUTH
    assert issubclass(config["SECURITY_MANAGER_CLASS"], FabAirflowSecurityManagerOverride)
    assert config["OAUTH_PROVIDERS"][0]["remote_app"]["client_id"] == "client-1"
