"""Who performs an action. Services take one explicitly; events and audit records carry it.

An ``Actor`` is built once per request (``crm_actor_from_request``) and is immutable. It carries
the principal (a user, an API key, the system), the role and the permissions that role grants
(already narrowed by an API key's scopes), and what record-level rules need: the user the actor
acts as, that user's team, and whether the actor sees every record regardless of sharing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL = "*"


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "api_key", "system", "anonymous"
    id: str | None = None
    name: str | None = None
    role: str | None = None
    # "object:action" strings ("customers:read"), "object:*", or "*" for everything.
    permissions: frozenset[str] = field(default_factory=frozenset)
    # An API key's scopes as given (None: the key's role, unnarrowed). For display only:
    # ``permissions`` already holds the intersection.
    scopes: tuple[str, ...] | None = None
    user_id: int | None = None  # the user acting (for a key: the user it belongs to, if any)
    team_id: int | None = None
    manages_team: bool = False  # a MANAGER-like role: sees the PRIVATE records of its team
    view_all: bool = False  # sees and edits every record whatever the sharing defaults
    key_id: int | None = None
    session_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}" if self.id else self.kind

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def principal(self) -> str | None:
        """What records made by this actor store as their principal (``api_key:3``, ``user:5``);
        None for the system and for actors that are no user or key of this server."""
        if self.key_id is not None:
            return f"api_key:{self.key_id}"
        if self.kind == "user" and self.user_id is not None:
            return f"user:{self.user_id}"
        return None

    def can(self, obj: str, action: str) -> bool:
        """Whether the role (and key scopes) allow ``action`` on objects of type ``obj``."""
        perms = self.permissions
        return ALL in perms or f"{obj}:{action}" in perms or f"{obj}:*" in perms or f"*:{action}" in perms


SYSTEM = Actor("system", name="crm-graph", role="SYSTEM", permissions=frozenset({ALL}), view_all=True)
ANONYMOUS = Actor("anonymous")
