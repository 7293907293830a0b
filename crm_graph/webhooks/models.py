"""Tables of the webhooks domain: subscriptions of outside systems to domain events.

The deliveries themselves (one row per event and subscriber, plugins included) live beside the
outbox in ``crm_graph/core/events.py``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import Scope, guard_object
from crm_graph.db.base import Base, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from crm_graph.db.types import JSONType, UTCDateTime


class WebhookSubscription(IdMixin, TimestampMixin, VersionMixin, SoftDeleteMixin, Base):
    """An HTTPS endpoint that receives the events matching ``events`` (patterns like ``ticket.*``).

    Secrets are kept as given: signing needs them. After a rotation the previous secret keeps
    signing beside the new one until ``previous_secret_expires_at``.
    """

    __tablename__ = "webhook_subscriptions"

    url: Mapped[str] = mapped_column(sa.String(2000))
    events: Mapped[list[str]] = mapped_column(JSONType)
    description: Mapped[str | None] = mapped_column(sa.String(500))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    secret: Mapped[str] = mapped_column(sa.String(200))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(200))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who subscribed (``user:<id>`` or ``api_key:<id>``): events reach the subscription only for
    # records that principal may read, and only while it may still sign in.
    principal: Mapped[str | None] = mapped_column(sa.String(64), index=True)

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a delivery made at ``now``: the current one first."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets.append(self.previous_secret)
        return secrets


def _own_subscriptions(scope: Scope) -> sa.ColumnElement[bool] | None:
    """Outside administrators and integrations, a principal sees its own subscriptions only."""
    if scope.actor.view_all:
        return None
    principal = scope.actor.principal
    return WebhookSubscription.principal == principal if principal else sa.false()


guard_object(WebhookSubscription, "webhooks", extra=_own_subscriptions)
