"""The FAB auth manager's Flask configuration in the api-server: single sign-on through OpenID Connect.

docker/Dockerfile copies this file to ``/opt/airflow/config/webserver_config.py``; the CDK app
points ``[fab] config_file`` (``AIRFLOW__FAB__CONFIG_FILE``) at it in the api-server container only,
and only when ``sso_issuer_url`` is set, together with the ``AIRFLOW_SSO_*`` variables of
:mod:`airflow_ecs_fargate.sso` (the client secret as an ECS secret). Without them this file sets
nothing and the FAB defaults (password logins) stay.

With them (README, "Single sign-on"):

- the login page offers the identity provider (``/auth/login/oidc``) and, while the local admin
  login is kept as break-glass, the password form (``/auth/login/local``);
- a user is created at their first sign-in; their roles are those their groups map to, set again
  at every sign-in; a user in no mapped group is refused (no user row, no token);
- a single sign-on never signs in as a local user (one with a password of its own, such as the
  admin created by the api-server's init container): an identity provider user named like the
  local admin is refused instead of becoming that admin;
- with ``sso_local_admin_login=false`` every password login is refused, in the UI and at
  ``/auth/token`` (FAB's ``create_token`` tries the password of any user whatever ``AUTH_TYPE``).
"""

from __future__ import annotations

import logging
import os

from airflow.providers.fab.auth_manager.security_manager.override import FabAirflowSecurityManagerOverride
from airflow.providers.fab.auth_manager.views.auth_oauth import CustomAuthOAuthView
from flask import flash, g, request
from flask_appbuilder import expose
from flask_appbuilder.const import AUTH_OAUTH
from flask_appbuilder.security import views as fab_views
from flask_appbuilder.security.forms import LoginForm_db
from flask_login import login_user
from werkzeug.security import check_password_hash

from airflow_ecs_fargate import sso

log = logging.getLogger(__name__)

#: The login page's entry for the local (password) login, beside the identity provider.
LOCAL_LOGIN = "local"


class SsoAuthView(CustomAuthOAuthView):
    """FAB's OAuth login view, plus the local password login as break-glass (``/auth/login/local``)."""

    @expose("/login/", methods=["GET", "POST"])
    @expose("/login/<provider>", methods=["GET", "POST"])
    def login(self, provider: str | None = None):
        """The provider list (``/login/``), a provider's sign-in, or the local password form."""
        if provider == LOCAL_LOGIN:
            return self._local_login()
        if provider is None:
            if g.user is not None and g.user.is_authenticated:
                return fab_views.redirect(self.appbuilder.get_url_for_index)
            providers = list(self.appbuilder.sm.oauth_providers)
            if sso.local_login_allowed(os.environ):
                providers.append({"name": LOCAL_LOGIN, "icon": "fa-key"})
            return self.render_template(self.login_template, providers=providers, title=self.title,
                                        appbuilder=self.appbuilder)
        return super().login(provider)

    def _local_login(self):
        """FAB's ``AuthDBView.login`` (flask-appbuilder 5.2.2) at another URL; refused when the
        local login is off (the security manager's ``auth_user_db`` refuses it too)."""
        if not sso.local_login_allowed(os.environ):
            flash("The local login is turned off; sign in with single sign-on.", "warning")
            return fab_views.redirect(self.appbuilder.get_url_for_login)
        form = LoginForm_db()
        if form.validate_on_submit():
            next_url = fab_views.get_safe_redirect(request.args.get("next", ""))
            user = self.appbuilder.sm.auth_user_db(form.username.data, form.password.data)
            if not user:
                flash(self.invalid_login_message, "warning")
                return fab_views.redirect(request.url)
            login_user(user, remember=False)
            return fab_views.redirect(next_url)
        return self.render_template("appbuilder/general/security/login_db.html", title=self.title, form=form,
                                    appbuilder=self.appbuilder)


class SsoSecurityManager(FabAirflowSecurityManagerOverride):
    """The FAB security manager with the rules of this deployment's single sign-on (module docstring)."""

    authoauthview = SsoAuthView

    def get_oauth_user_info(self, provider: str, resp: dict) -> dict:
        """The user as FAB registers them, from the ID token's claims (authlib checked its
        signature, issuer, audience and nonce: ``resp["userinfo"]``), and from the provider's
        userinfo endpoint when the ID token lacks the groups claim or the e-mail.

        :returns: ``username`` (``preferred_username``, else ``email``, else ``sub``), names,
            ``email`` and ``role_keys`` (the groups claim, a list).
        """
        claims = dict(resp.get("userinfo") or {})
        groups_claim = os.environ.get(sso.GROUPS_CLAIM_ENV, "").strip() or "groups"
        if groups_claim not in claims or "email" not in claims:
            try:
                claims = {**self.oauth_remotes[provider].userinfo(token=resp), **claims}
            except Exception:  # noqa: BLE001 - the ID token's claims still decide below
                log.warning("single sign-on: the userinfo endpoint of %s failed", provider, exc_info=True)
        groups = claims.get(groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        return {
            "username": claims.get("preferred_username") or claims.get("email") or claims.get("sub", ""),
            "first_name": claims.get("given_name", ""),
            "last_name": claims.get("family_name", ""),
            "email": claims.get("email", ""),
            "role_keys": [str(group) for group in groups],
        }

    def auth_user_oauth(self, userinfo, rotate_session_id=True):
        """FAB's sign-in, refused for a user in no mapped group and for a local user's name."""
        username = userinfo.get("username") or userinfo.get("email")
        if not self.get_roles_from_keys(userinfo.get("role_keys", [])):
            log.warning("single sign-on refused %r: none of the groups %s maps to an Airflow role", username,
                        userinfo.get("role_keys", []))
            return None
        user = self.find_user(username=username) if username else None
        # A user FAB registered at a sign-in has the hash of an empty password; any other is local.
        if user is not None and user.password and not check_password_hash(user.password, ""):
            log.warning("single sign-on refused %r: a local user of that name exists", username)
            return None
        return super().auth_user_oauth(userinfo, rotate_session_id)

    def auth_user_db(self, username, password, rotate_session_id=True):
        """FAB's password check, refused for everyone when the local login is turned off."""
        if not sso.local_login_allowed(os.environ):
            log.warning("password login of %r refused: the local login is turned off", username)
            return None
        return super().auth_user_db(username, password, rotate_session_id)


_settings = sso.fab_settings(os.environ)
if _settings:
    AUTH_TYPE = AUTH_OAUTH
    SECURITY_MANAGER_CLASS = SsoSecurityManager
    globals().update(_settings)
