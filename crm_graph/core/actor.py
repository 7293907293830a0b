"""Who performs an action. Services take one explicitly; events and audit records carry it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "api_key", "system", "anonymous"
    id: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}" if self.id else self.kind


SYSTEM = Actor("system", name="crm-graph")
ANONYMOUS = Actor("anonymous")
