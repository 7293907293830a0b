"""The built-in authentication, written as a plugin on the same hook a partner's would use.

It reads ``Authorization: Bearer crm_...`` and checks API keys and session tokens through the
server's ``Authenticator`` (``request.app.state.auth``). ``trylast``: other plugins are asked
first, so one can add single sign-on or mutual TLS in front of it.
"""

from __future__ import annotations

from typing import Any

from crm_graph import hookimpl
from crm_graph.auth.authenticate import InvalidCredentials, bearer_token


@hookimpl(trylast=True)
def crm_actor_from_request(request: Any) -> Any:
    token = bearer_token(request)
    if token is None:
        return None
    auth = getattr(getattr(request.app, "state", None), "auth", None)
    if auth is None:
        raise InvalidCredentials("This server cannot check credentials.")
    return auth.actor_for_token(token)
