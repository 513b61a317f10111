"""Value types of the single sign-on keys (``sso_*`` in :mod:`app_config.settings`): the issuer URL,
the client secret's Secrets Manager name or ARN, and the mapping of the identity provider's groups
to Airflow roles. Each refuses a bad value with the key and the fix.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, ValidationInfo

from app_config.fields import json_object, problem

#: The roles the FAB auth manager creates in every deployment that a group may map to, with the
#: spelling FAB gives them (apache-airflow-providers-fab 3.10.2,
#: ``auth_manager/security_manager/constants.py``, ``EXISTING_ROLES``; ``Public`` has no
#: permission, so it is not offered).
AIRFLOW_ROLES = ("Admin", "Op", "User", "Viewer")
GROUPS_EXAMPLE = '{"airflow-admins": "Admin", "data-engineers": "User", "analysts": "Viewer"}'
#: A Secrets Manager secret's name: 1-512 of letters, digits and ``/_+=.@-`` (CreateSecret, Name,
#: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html).
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
#: A secret's complete ARN: its name, a hyphen and the six characters Secrets Manager appends.
SECRET_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$"
)


def issuer_problem(key: str, value: str) -> str | None:
    """The problem of an issuer URL, or None: it must be ``https://host[/path]`` (the identity
    provider's ``issuer``; its discovery document is at ``<issuer>/.well-known/openid-configuration``)."""
    parts = urlsplit(value)
    if parts.scheme != "https":
        return (f"{key}={value!r}: the issuer URL must be https:// (the client secret and the users' tokens "
                "travel to it); give the provider's issuer, e.g. https://example.okta.com or "
                "https://login.microsoftonline.com/<tenant-id>/v2.0")
    if not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        return (f"{key}={value!r}: give the issuer as https://host[/path], no query, fragment or credentials, "
                "as the provider's .well-known/openid-configuration names it")
    return None


def secret_reference_problem(key: str, value: str) -> str | None:
    """The problem of a Secrets Manager secret given by name or complete ARN, or None."""
    if value.startswith("arn:"):
        if SECRET_ARN_RE.match(value):
            return None
        return (f"{key}={value!r} is not a secret's complete ARN (arn:aws:secretsmanager:<region>:<account>:"
                "secret:<name>-<6 characters>); copy it from `aws secretsmanager describe-secret --secret-id <name> "
                "--query ARN`, or give the secret's name")
    if SECRET_NAME_RE.match(value):
        return None
    return (f"{key}={value!r}: a secret's name is 1-512 letters, digits and / _ + = . @ -; or give its complete ARN")


def _roles_of(value: Any) -> Any:
    """``{"g": "Admin"}`` or ``{"g": ["Admin"]}`` -> ``{"g": ("Admin",)}`` (roles in FAB's spelling)."""
    if not isinstance(value, dict):
        return value
    canonical = {role.lower(): role for role in AIRFLOW_ROLES}
    found: dict[str, Any] = {}
    for group, roles in value.items():
        names = [roles] if isinstance(roles, str) else roles
        if not isinstance(names, list) or not names or not all(isinstance(r, str) for r in names):
            raise problem(f"sso_groups_to_roles: group {group!r} maps to {roles!r}; give a role name or a list of "
                          f"them, e.g. {GROUPS_EXAMPLE}")
        unknown = [r for r in names if r.strip().lower() not in canonical]
        if unknown:
            raise problem(f"sso_groups_to_roles: group {group!r} maps to {', '.join(map(repr, unknown))}, not an "
                          f"Airflow role; use {', '.join(AIRFLOW_ROLES)} (the FAB auth manager's roles)")
        found[str(group)] = tuple(dict.fromkeys(canonical[r.strip().lower()] for r in names))
    return found


def _groups(value: dict[str, tuple[str, ...]], info: ValidationInfo) -> dict[str, tuple[str, ...]]:
    blank = [g for g in value if not g.strip()]
    if blank:
        raise problem(f"{info.field_name}: a group name is empty; use the group names as the identity provider "
                      "puts them in the groups claim")
    return value


#: ``sso_groups_to_roles``: a JSON object of identity-provider group -> Airflow role(s).
GroupsToRoles = Annotated[
    dict[str, tuple[str, ...]],
    BeforeValidator(_roles_of),  # pydantic runs before-validators last to first: after the JSON is read
    json_object(GROUPS_EXAMPLE),
    AfterValidator(_groups),
]
