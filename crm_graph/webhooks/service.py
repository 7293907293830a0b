"""Webhook rules: subscriptions (create, change, rotate the secret, delete) and event deliveries
(list, retry). Inputs are plain mappings shaped like the GraphQL inputs (camelCase keys)."""

from __future__ import annotations

import secrets as secrets_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_graph.core import errors as codes
from crm_graph.core import filters as f
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, NotFound, ValidationFailed, VersionConflict
from crm_graph.core.events import EVENT_TYPES, DeliveryStatus, EventDelivery, OutboxEvent, known_pattern
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.core.pagination import SortKey
from crm_graph.webhooks import urls
from crm_graph.webhooks.models import WebhookSubscription

# Error codes of this domain (docs/events.md lists them with the core ones).
INVALID_URL = "INVALID_URL"
FORBIDDEN_ADDRESS = "FORBIDDEN_ADDRESS"
UNKNOWN_EVENT_PATTERN = "UNKNOWN_EVENT_PATTERN"
DELIVERY_IN_PROGRESS = "DELIVERY_IN_PROGRESS"
ALREADY_DELIVERED = "ALREADY_DELIVERED"

MAX_PATTERNS = 50
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 200


@dataclass(frozen=True)
class WebhookConfig:
    """What the webhook rules need from settings."""

    allow_private: bool = False
    secret_grace: float = 86400.0


def new_secret() -> str:
    return "whsec_" + secrets_module.token_urlsafe(32)


# --- reading -------------------------------------------------------------------------------


def subscription_select() -> sa.Select[tuple[WebhookSubscription]]:
    return sa.select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None))


SUBSCRIPTION_ORDER = [SortKey(WebhookSubscription.id, "id", descending=True)]
DELIVERY_ORDER = [SortKey(EventDelivery.id, "id", descending=True)]


async def subscriptions_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, WebhookSubscription]:
    rows = await session.scalars(subscription_select().where(WebhookSubscription.id.in_(ids)))
    return {s.id: s for s in rows}


async def get_subscription(session: AsyncSession, subscription_id: int) -> WebhookSubscription | None:
    sub = await session.get(WebhookSubscription, subscription_id)
    return None if sub is None or sub.deleted_at is not None else sub


def delivery_filter_spec() -> f.FilterSpec:
    return {
        "status": f.column_enum(EventDelivery.status, DeliveryStatus.__members__),
        "eventType": f.column_string(EventDelivery.event_type),
        "subscriber": f.column_string(EventDelivery.subscriber),
        "subscriptionId": f.column_comparable(EventDelivery.subscription_id),
        "eventId": lambda ops, path: EventDelivery.event_pk.in_(
            sa.select(OutboxEvent.id).where(f.string_condition(OutboxEvent.event_id, ops, path))
        ),
        "createdAt": f.column_comparable(EventDelivery.created_at, f.aware_datetime),
    }


def delivery_select(filter: Mapping[str, Any] | None = None) -> sa.Select[tuple[EventDelivery]]:
    """Raises ``FilterError`` for a filter that cannot be compiled."""
    stmt = sa.select(EventDelivery)
    if filter:
        stmt = stmt.where(f.compile_filter(delivery_filter_spec(), filter))
    return stmt


async def deliveries_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, EventDelivery]:
    rows = await session.scalars(sa.select(EventDelivery).where(EventDelivery.id.in_(ids)))
    return {d.id: d for d in rows}


async def events_by_pks(session: AsyncSession, pks: Sequence[int]) -> dict[int, OutboxEvent]:
    rows = await session.scalars(sa.select(OutboxEvent).where(OutboxEvent.id.in_(pks)))
    return {e.id: e for e in rows}


# --- writing -------------------------------------------------------------------------------


async def _check_url(url: Any, errors: ErrorCollector, config: WebhookConfig) -> str | None:
    try:
        await urls.check(url, allow_private=config.allow_private)
    except urls.UrlRefused as exc:
        errors.add("url", FORBIDDEN_ADDRESS if exc.forbidden else INVALID_URL, str(exc))
        return None
    return url.strip()


def _check_patterns(patterns: Any, errors: ErrorCollector) -> list[str] | None:
    if not patterns:
        errors.add("events", codes.REQUIRED, 'List the events to receive, e.g. ["ticket.*", "order.paid"] or ["*"].')
        return None
    if len(patterns) > MAX_PATTERNS:
        errors.add("events", codes.TOO_MANY, f"At most {MAX_PATTERNS} patterns.")
        return None
    clean: list[str] = []
    for i, pattern in enumerate(patterns):
        text = pattern.strip() if isinstance(pattern, str) else ""
        if not known_pattern(text):
            errors.add(
                f"events.{i}",
                UNKNOWN_EVENT_PATTERN,
                f"{pattern!r} matches no event type; use a type such as \"order.paid\", \"ticket.*\" or \"*\" "
                "(docs/events.md lists them).",
            )
        elif text not in clean:
            clean.append(text)
    return clean


def _check_secret(secret: Any, errors: ErrorCollector) -> str | None:
    if not isinstance(secret, str) or not (MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH):
        errors.add(
            "secret",
            codes.INVALID_VALUE,
            f"A secret has {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters; leave it out to get a generated one.",
        )
        return None
    return secret


def _check_description(description: Any, errors: ErrorCollector) -> str | None:
    if description is None:
        return None
    text = str(description).strip()
    if len(text) > 500:
        errors.add("description", codes.INVALID_VALUE, "At most 500 characters.")
    return text or None


async def create_subscription(
    session: AsyncSession, *, actor: Actor, data: Mapping[str, Any], config: WebhookConfig
) -> tuple[WebhookSubscription, str]:
    """Create a subscription; returns it and its secret (shown to the client this once)."""
    errors = ErrorCollector()
    url = await _check_url(data.get("url"), errors, config)
    patterns = _check_patterns(data.get("events"), errors)
    secret = _check_secret(data["secret"], errors) if data.get("secret") is not None else new_secret()
    description = _check_description(data.get("description"), errors)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="webhook_subscription", data=data, actor=actor)
    now = utcnow()
    sub = WebhookSubscription(
        url=url,
        events=patterns,
        description=description,
        active=data.get("active", True) is not False,
        secret=secret,
        # Events reach the subscription only for records this principal may read.
        principal=actor.principal,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(sub)
    await session.flush()
    return sub, sub.secret


async def update_subscription(
    session: AsyncSession,
    *,
    actor: Actor,
    subscription_id: int,
    data: Mapping[str, Any],
    expected_version: int | None,
    config: WebhookConfig,
) -> tuple[WebhookSubscription, str | None]:
    """Change a subscription. A new ``secret`` (or ``rotateSecret: true``) replaces the secret;
    the old one keeps signing beside it for ``secret_grace`` seconds. Returns the new secret, if any."""
    sub = await get_subscription(session, subscription_id)
    if sub is None:
        raise NotFound("Webhook subscription")
    if expected_version is not None and expected_version != sub.version:
        raise VersionConflict(expected_version, sub.version)
    errors = ErrorCollector()
    changes: dict[str, Any] = {}
    if "url" in data:
        changes["url"] = await _check_url(data["url"], errors, config)
    if "events" in data:
        changes["events"] = _check_patterns(data["events"], errors)
    if "description" in data:
        changes["description"] = _check_description(data["description"], errors)
    if "active" in data:
        if data["active"] is None:
            errors.add("active", codes.REQUIRED, "Say true or false.")
        else:
            changes["active"] = bool(data["active"])
    secret: str | None = None
    if data.get("secret") is not None:
        secret = _check_secret(data["secret"], errors)
        if data.get("rotateSecret"):
            errors.add("rotateSecret", codes.INVALID_VALUE, "Give a new secret or ask for a generated one, not both.")
    elif data.get("rotateSecret"):
        secret = new_secret()
    errors.raise_if_any()
    await validate_with_plugins(session, entity="webhook_subscription", data={**data, "id": subscription_id}, actor=actor)
    for key, value in changes.items():
        setattr(sub, key, value)
    now = utcnow()
    if secret is not None and secret != sub.secret:
        sub.previous_secret = sub.secret
        sub.previous_secret_expires_at = now + timedelta(seconds=config.secret_grace)
        sub.secret = secret
    sub.updated_at = now
    try:
        await session.flush()
    except StaleDataError:
        fresh = await session.scalar(sa.select(WebhookSubscription.version).where(WebhookSubscription.id == subscription_id))
        raise VersionConflict(expected_version or sub.version, fresh or 0) from None
    return sub, secret


async def delete_subscription(session: AsyncSession, *, actor: Actor, subscription_id: int) -> WebhookSubscription:
    """Soft delete. Deliveries still waiting for this subscription become DEAD."""
    sub = await get_subscription(session, subscription_id)
    if sub is None:
        raise NotFound("Webhook subscription")
    now = utcnow()
    sub.deleted_at = now
    sub.updated_at = now
    sub.active = False
    await session.flush()
    await session.execute(
        sa.update(EventDelivery)
        .where(
            EventDelivery.subscription_id == subscription_id,
            EventDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.DELIVERING]),
        )
        .values(status=DeliveryStatus.DEAD, last_error="subscription deleted", claim_token=None)
    )
    return sub


async def retry_delivery(session: AsyncSession, *, actor: Actor, delivery_id: int) -> EventDelivery:
    """Schedule a delivery for now, with a fresh set of attempts. For a DEAD delivery (after
    fixing the receiver) or a PENDING one waiting out its backoff."""
    delivery = await session.get(EventDelivery, delivery_id)
    if delivery is None:
        raise NotFound("Event delivery")
    if delivery.status is DeliveryStatus.DELIVERING:
        raise ValidationFailed([FieldError("id", DELIVERY_IN_PROGRESS, "The delivery is being attempted right now.")])
    if delivery.status is DeliveryStatus.DELIVERED:
        raise ValidationFailed(
            [FieldError("id", ALREADY_DELIVERED, "The delivery succeeded already; receivers dedupe by event id.")]
        )
    if delivery.subscription_id is not None and await get_subscription(session, delivery.subscription_id) is None:
        raise ValidationFailed([FieldError("id", codes.INVALID_STATE, "Its webhook subscription was deleted.")])
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.claim_token = None
    await session.flush()
    return delivery


def event_types() -> dict[str, str]:
    return dict(EVENT_TYPES)
