"""Single sign-on through OpenID Connect for the FAB auth manager: the api-server's environment
contract and the Flask settings made from it.

The CDK app (``constructs_lib/airflow_settings.py``, ``SsoSettings``) writes these variables into
the api-server container only, and points ``[fab] config_file`` at the image's
``webserver_config.py`` (``docker/webserver_config.py``), which calls :func:`fab_settings`. The FAB
provider loads that file into its Flask app (apache-airflow-providers-fab 3.10.2,
``www/app.py``: ``flask_app.config.from_pyfile(conf.get("fab", "config_file"), silent=True)``)
and reads ``AUTH_TYPE``, ``OAUTH_PROVIDERS``, ``AUTH_ROLES_MAPPING``, ``AUTH_ROLES_SYNC_AT_LOGIN``,
``AUTH_USER_REGISTRATION`` and ``AUTH_USER_REGISTRATION_ROLE`` from its config
(``auth_manager/security_manager/override.py``). Dependency-free: the CDK app imports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: The identity provider's issuer URL (``https://``).
ISSUER_ENV = "AIRFLOW_SSO_ISSUER_URL"
#: The OAuth client ID.
CLIENT_ID_ENV = "AIRFLOW_SSO_CLIENT_ID"
#: The OAuth client secret (an ECS secret from Secrets Manager).
CLIENT_SECRET_ENV = "AIRFLOW_SSO_CLIENT_SECRET"
#: JSON object: group -> list of Airflow roles.
ROLES_ENV = "AIRFLOW_SSO_GROUPS_TO_ROLES"
#: The claim that lists a user's groups.
GROUPS_CLAIM_ENV = "AIRFLOW_SSO_GROUPS_CLAIM"
#: Scopes, space-separated.
SCOPES_ENV = "AIRFLOW_SSO_SCOPES"
#: ``true``: the local (password) login stays as break-glass; ``false``: every password login is refused.
LOCAL_LOGIN_ENV = "AIRFLOW_SSO_LOCAL_LOGIN"
#: The FAB OAuth provider's name: it appears in the redirect URI the identity provider must allow,
#: ``<base_url>/auth/oauth-authorized/oidc``.
PROVIDER_NAME = "oidc"
#: The path of that redirect URI below the UI's base URL.
REDIRECT_PATH = f"/auth/oauth-authorized/{PROVIDER_NAME}"
#: Where the image keeps ``docker/webserver_config.py`` (docker/Dockerfile copies it there).
WEBSERVER_CONFIG_PATH = "/opt/airflow/config/webserver_config.py"
#: The role FAB gives every self-registered user beside the mapped ones: ``Public`` holds no
#: permission (apache-airflow-providers-fab 3.10.2, ``EXISTING_ROLES``), so only the groups count.
REGISTRATION_ROLE = "Public"


class SsoConfigError(ValueError):
    """The api-server's SSO environment is incomplete or malformed (names the variable)."""


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether single sign-on is configured (the issuer variable is set and not empty)."""
    return bool(environ.get(ISSUER_ENV, "").strip())


def local_login_allowed(environ: Mapping[str, str]) -> bool:
    """Whether password logins are allowed: always without SSO; with SSO unless
    :data:`LOCAL_LOGIN_ENV` is ``false``."""
    return not enabled(environ) or environ.get(LOCAL_LOGIN_ENV, "true").strip().lower() != "false"


def roles_mapping(environ: Mapping[str, str]) -> dict[str, list[str]]:
    """``AUTH_ROLES_MAPPING``: group -> FAB role names, from :data:`ROLES_ENV`.

    :raises SsoConfigError: not a JSON object of group -> list of role names.
    """
    try:
        value = json.loads(environ.get(ROLES_ENV, ""))
    except ValueError as err:
        raise SsoConfigError(f"{ROLES_ENV} is not JSON ({err})") from None
    if not isinstance(value, dict) or not value or not all(
        isinstance(roles, list) and roles and all(isinstance(r, str) for r in roles) for roles in value.values()
    ):
        raise SsoConfigError(f'{ROLES_ENV} must be a JSON object of group -> list of roles, e.g. {{"admins": ["Admin"]}}')
    return value


def fab_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The Flask settings of the FAB auth manager for OpenID Connect, or ``{}`` without SSO
    (``AUTH_TYPE`` is set by ``webserver_config.py``).

    - ``OAUTH_PROVIDERS``: one provider, :data:`PROVIDER_NAME`, registered with authlib from the
      issuer's discovery document (``server_metadata_url``), so the authorization, token,
      userinfo and JWKS endpoints and the ID token's issuer come from the provider itself;
      ``token_key`` ``access_token`` (FAB's default is OAuth 1's ``oauth_token``).
    - ``AUTH_ROLES_MAPPING`` from :data:`ROLES_ENV`; ``AUTH_ROLES_SYNC_AT_LOGIN``: a user's roles
      follow their groups at every sign-in (removed from a group, the role goes at the next one);
      ``AUTH_USER_REGISTRATION`` with the permission-less :data:`REGISTRATION_ROLE`: a user is
      created at their first sign-in with their groups' roles only.

    :raises SsoConfigError: a variable SSO needs is missing (the message names it).
    """
    if not enabled(environ):
        return {}
    missing = [name for name in (CLIENT_ID_ENV, CLIENT_SECRET_ENV, ROLES_ENV) if not environ.get(name, "").strip()]
    if missing:
        raise SsoConfigError(f"single sign-on ({ISSUER_ENV} is set) needs {', '.join(missing)} too")
    issuer = environ[ISSUER_ENV].strip().rstrip("/")
    scopes = environ.get(SCOPES_ENV, "").strip() or "openid email profile"
    return {
        "OAUTH_PROVIDERS": [{
            "name": PROVIDER_NAME,
            "icon": "fa-sign-in",
            "token_key": "access_token",
            "remote_app": {
                "client_id": environ[CLIENT_ID_ENV].strip(),
                "client_secret": environ[CLIENT_SECRET_ENV],
                "server_metadata_url": f"{issuer}/.well-known/openid-configuration",
                "client_kwargs": {"scope": scopes},
            },
        }],
        "AUTH_ROLES_MAPPING": roles_mapping(environ),
        "AUTH_ROLES_SYNC_AT_LOGIN": True,
        "AUTH_USER_REGISTRATION": True,
        "AUTH_USER_REGISTRATION_ROLE": REGISTRATION_ROLE,
    }
