"""Rules of access: users, teams, roles, API keys, sign-in and sign-out, sharing defaults.

Services take a session and an actor, keyword-only, like every other domain, and raise domain
errors (``FORBIDDEN`` through ``AccessDenied``, ``LAST_ADMIN``, ``INVALID_CREDENTIALS``,
``LOCKED``). Functions that must work before anyone is signed in (``login``) run on an
unscoped session.
"""

from __future__ import annotations

from crm_graph.auth.service.common import (
    INVALID_CREDENTIALS,
    LAST_ADMIN,
    LOCKED,
    MIN_PASSWORD,
    check_password,
    check_role,
    count_admins,
    hash_password,
    normalise_email,
    roles,
    validate_password,
)
from crm_graph.auth.service.keys import (
    KEY_ORDER,
    api_key_select,
    api_keys_by_ids,
    create_api_key,
    find_api_key,
    revoke_api_key,
)
from crm_graph.auth.service.sharing import OWNED_OBJECTS, set_sharing_default, sharing_defaults
from crm_graph.auth.service.signin import (
    LoginRefused,
    SignedIn,
    failure_delay,
    login,
    logout,
    recent_failures,
    revoke_sessions,
    sign_in,
)
from crm_graph.auth.service.users import (
    TEAM_ORDER,
    USER_ORDER,
    create_role,
    create_team,
    create_user,
    list_roles,
    team_select,
    teams_by_ids,
    update_user,
    user_by_email,
    user_select,
    users_by_ids,
)

__all__ = [
    "INVALID_CREDENTIALS", "KEY_ORDER", "LAST_ADMIN", "LOCKED", "MIN_PASSWORD", "OWNED_OBJECTS", "TEAM_ORDER",
    "USER_ORDER", "LoginRefused", "SignedIn", "api_key_select", "api_keys_by_ids", "check_password", "check_role",
    "count_admins", "create_api_key", "create_role", "create_team", "create_user", "failure_delay", "find_api_key",
    "hash_password", "list_roles", "login", "logout", "normalise_email", "recent_failures", "revoke_api_key",
    "revoke_sessions", "roles", "set_sharing_default", "sharing_defaults", "sign_in", "team_select", "teams_by_ids",
    "update_user", "user_by_email", "user_select", "users_by_ids", "validate_password",
]
