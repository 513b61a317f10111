"""The single sign-on keys (``sso_*``): each bad input refused before synthesis with the key and the fix,
and a good one read into :class:`app_config.model.SsoConfig`."""

from __future__ import annotations

import pytest

from app_config import ConfigError, load_config

DOMAIN = {"domain_name": "airflow.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
          "hosted_zone_name": "example.com"}
SSO = {**DOMAIN, "sso_issuer_url": "https://example.okta.com", "sso_client_id": "0oa1b2c3d4",
       "sso_client_secret": "airflow/sso-client-secret", "sso_groups_to_roles": '{"airflow-admins": "Admin"}'}


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return info.value.problems


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({**SSO, "sso_issuer_url": "http://example.okta.com"},
         "sso_issuer_url='http://example.okta.com': the issuer URL must be https://"),
        ({**SSO, "sso_issuer_url": "example.okta.com"}, "sso_issuer_url='example.okta.com': the issuer URL must be https://"),
        ({**SSO, "sso_issuer_url": "https://example.okta.com/?x=1"}, "give the issuer as https://host[/path]"),
        ({**SSO, "sso_groups_to_roles": '{"airflow-admins": "Administrator"}'},
         "sso_groups_to_roles: group 'airflow-admins' maps to 'Administrator', not an Airflow role; use Admin, Op, "
         "User, Viewer"),
        ({**SSO, "sso_groups_to_roles": '{"ops": ["Op", "Superuser"]}'}, "group 'ops' maps to 'Superuser', not an Airflow role"),
        ({**SSO, "sso_groups_to_roles": '{"ops": []}'}, "group 'ops' maps to []; give a role name or a list of them"),
        ({**SSO, "sso_groups_to_roles": "[1]"}, "sso_groups_to_roles must be a JSON object"),
        ({**SSO, "sso_groups_to_roles": "{"}, "sso_groups_to_roles is not valid JSON"),
        ({k: v for k, v in SSO.items() if k != "sso_client_id"},
         "sso_client_id: with sso_issuer_url give the client (application) ID"),
        ({k: v for k, v in SSO.items() if k != "sso_client_secret"},
         "sso_client_secret: with sso_issuer_url give the name or ARN of the Secrets Manager secret"),
        ({k: v for k, v in SSO.items() if k != "sso_groups_to_roles"},
         "sso_groups_to_roles: with sso_issuer_url map at least one group to an Airflow role"),
        ({k: v for k, v in SSO.items() if k not in DOMAIN},
         "sso_issuer_url: set domain_name (with hosted_zone_id and hosted_zone_name) too"),
        ({**SSO, "sso_client_secret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:airflow/sso"},
         "is not a secret's complete ARN"),
        ({**SSO, "sso_client_secret": "my secret"}, "sso_client_secret='my secret': a secret's name is 1-512"),
        ({**SSO, "sso_scopes": "email profile"}, "sso_scopes='email profile': add openid"),
        ({**SSO, "sso_client_id": "has space"}, "sso_client_id='has space': a client ID is 1-255 printable characters"),
        ({"sso_client_id": "0oa1b2c3d4"}, "sso_client_id: set sso_issuer_url too"),
        ({"sso_local_admin_login": "false"}, "sso_local_admin_login: set sso_issuer_url too"),
    ],
)
def test_bad_sso_input_names_the_key_and_the_fix(raw, expected):
    found = problems_of(raw)
    assert any(expected in p for p in found), found


def test_a_missing_client_id_is_the_only_problem_reported():
    assert problems_of({k: v for k, v in SSO.items() if k != "sso_client_id"}) == [
        'sso_client_id: with sso_issuer_url give the client (application) ID the identity provider gave Airflow, '
        'e.g. -c sso_client_id=0oa1b2c3d4 (README, "Single sign-on")']


def test_sso_keys_are_read_into_the_config():
    config = load_config({**SSO, "sso_groups_to_roles": {"b-viewers": "viewer", "a-admins": ["Admin", "admin", "Op"]},
                          "sso_local_admin_login": "false"})
    assert config.sso is not None
    assert config.sso.groups_to_roles == (("a-admins", ("Admin", "Op")), ("b-viewers", ("Viewer",)))
    assert config.sso.local_admin_login is False
    assert config.sso.scopes == "openid email profile" and config.sso.groups_claim == "groups"
    assert load_config({}).sso is None
