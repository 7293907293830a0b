"""GraphQL API of the webhooks domain: subscriptions, the events and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.unset import UNSET

from crm_graph.core.events import DeliveryStatus, EventDelivery as DeliveryModel, OutboxEvent, global_id
from crm_graph.core.pagination import paginate
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.inputs import DateTimeFilter, StringFilter, enum_filter, to_plain
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.core.extensions import NodeType
from crm_graph.graphql.relay import Connection, Node, decode_global_id, encode_global_id, page_args, node_resolver
from crm_graph.webhooks import service
from crm_graph.webhooks.models import WebhookSubscription as SubscriptionModel

graphql_enum(
    DeliveryStatus,
    "PENDING: waiting for its first attempt or a retry. DELIVERING: being attempted. "
    "DELIVERED: the subscriber took it. DEAD: given up (attempts exhausted, an answer that is not retried, "
    "or the subscription was deleted); `retryEventDelivery` revives it.",
    {
        "PENDING": "Waiting for its first attempt or for a retry at `nextAttemptAt`.",
        "DELIVERING": "Being attempted right now.",
        "DELIVERED": "The subscriber took it.",
        "DEAD": "Given up; `retryEventDelivery` tries it again.",
    },
)


@strawberry.type(description="An endpoint of another system that receives signed event notifications.")
class WebhookSubscription(Node):
    pk: strawberry.Private[int]
    url: str = strawberry.field(description="The http(s) URL that receives a POST per event.")
    events: list[str] = strawberry.field(description='Patterns of the event types it receives: "order.paid", "ticket.*", "*".')
    description: str | None = strawberry.field(description="Free text; null if none.")
    active: bool = strawberry.field(description="Paused subscriptions keep their deliveries waiting until reactivated.")
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="After a secret rotation: until then deliveries carry a signature with the old secret too."
    )
    created_at: datetime = strawberry.field(description="When the subscription was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")

    @classmethod
    def from_model(cls, m: SubscriptionModel) -> WebhookSubscription:
        return cls(
            id=encode_global_id("WebhookSubscription", m.id),
            pk=m.id,
            url=m.url,
            events=list(m.events or []),
            description=m.description,
            active=m.active,
            previous_secret_expires_at=m.previous_secret_expires_at,
            created_at=m.created_at,
            updated_at=m.updated_at,
            version=m.version,
        )


@strawberry.type(description="Something that happened in the CRM, as plugins and webhook receivers get it.")
class DomainEvent(Node):
    event_id: str = strawberry.field(description="Unique per event and the same on every redelivery: dedupe by it.")
    type: str = strawberry.field(description='E.g. "customer.updated"; see `eventTypes`.')
    occurred_at: datetime = strawberry.field(description="When it happened (UTC).")
    actor: str = strawberry.field(description='Who caused it, e.g. "user:42" or "system".')
    entity_type: str = strawberry.field(description='GraphQL type of the entity it is about, e.g. "Customer".')
    entity_id: strawberry.ID = strawberry.field(description="Global ID of the entity; `node(id:)` fetches it.")
    data: JSON = strawberry.field(description="The entity as the API showed it after the change.")
    changes: JSON | None = strawberry.field(description="What changed (`fields`, and `before` for updates), if known.")

    @classmethod
    def from_model(cls, m: OutboxEvent) -> DomainEvent:
        payload = m.payload or {}
        return cls(
            id=encode_global_id("DomainEvent", m.id),
            event_id=m.event_id,
            type=m.type,
            occurred_at=m.occurred_at,
            actor=m.actor,
            entity_type=m.entity_type,
            entity_id=strawberry.ID(global_id(m.entity_type, m.entity_id)),
            data=payload.get("data", {}),
            changes=payload.get("changes"),
        )


@strawberry.type(description="One event on its way to one subscriber (a plugin or a webhook subscription).")
class EventDelivery(Node):
    pk: strawberry.Private[int]
    event_pk: strawberry.Private[int]
    subscription_pk: strawberry.Private[int | None]
    subscriber: str = strawberry.field(description='"plugin:<name>" or "webhook:<subscription number>".')
    event_type: str = strawberry.field(description='Type of the event, e.g. "order.paid".')
    status: DeliveryStatus = strawberry.field(description="Where the delivery stands.")
    attempts: int = strawberry.field(description="Attempts made (since the last `retryEventDelivery`).")
    next_attempt_at: datetime | None = strawberry.field(description="When a PENDING delivery is tried next.")
    last_attempt_at: datetime | None = strawberry.field(
        description="When it was last attempted (UTC); null before the first attempt."
    )
    last_error: str | None = strawberry.field(description="Why the last attempt failed.")
    last_status_code: int | None = strawberry.field(description="HTTP status of the last webhook attempt.")
    delivered_at: datetime | None = strawberry.field(description="When the subscriber took it (UTC); null until DELIVERED.")
    created_at: datetime = strawberry.field(description="When the event was queued for this subscriber (UTC).")

    @strawberry.field(description="The plugin this delivery goes to; null for webhooks.")
    def plugin(self) -> str | None:
        return self.subscriber.partition(":")[2] if self.subscription_pk is None else None

    @strawberry.field(description="The event being delivered.")
    async def event(self, info: Info) -> DomainEvent | None:
        ctx: Context = info.context
        model = await ctx.loader("webhooks.event", service.events_by_pks).load(self.event_pk)
        return DomainEvent.from_model(model) if model is not None else None

    @strawberry.field(description="The webhook subscription; null for plugins and deleted subscriptions.")
    async def subscription(self, info: Info) -> WebhookSubscription | None:
        if self.subscription_pk is None:
            return None
        ctx: Context = info.context
        model = await ctx.loader("webhooks.subscription", service.subscriptions_by_ids).load(self.subscription_pk)
        return WebhookSubscription.from_model(model) if model is not None else None

    @classmethod
    def from_model(cls, m: DeliveryModel) -> EventDelivery:
        return cls(
            id=encode_global_id("EventDelivery", m.id),
            pk=m.id,
            event_pk=m.event_pk,
            subscription_pk=m.subscription_id,
            subscriber=m.subscriber,
            event_type=m.event_type,
            status=m.status,
            attempts=m.attempts,
            next_attempt_at=m.next_attempt_at if m.status is DeliveryStatus.PENDING else None,
            last_attempt_at=m.last_attempt_at,
            last_error=m.last_error,
            last_status_code=m.last_status_code,
            delivered_at=m.delivered_at,
            created_at=m.created_at,
        )


@strawberry.type(description="A page of webhook subscriptions.")
class WebhookSubscriptionConnection(Connection[WebhookSubscription]):
    pass


@strawberry.type(description="A page of event deliveries.")
class EventDeliveryConnection(Connection[EventDelivery]):
    pass


@strawberry.type(description="An event type the CRM raises.")
class EventType:
    type: str = strawberry.field(description='The type, e.g. "customer.updated"; usable as a subscription pattern.')
    description: str = strawberry.field(description="When the event is raised.")


NODES = [
    NodeType("WebhookSubscription", node_resolver("webhooks.subscription", service.subscriptions_by_ids, WebhookSubscription.from_model), WebhookSubscription),
    NodeType("DomainEvent", node_resolver("webhooks.event", service.events_by_pks, DomainEvent.from_model), DomainEvent),
    NodeType("EventDelivery", node_resolver("webhooks.delivery", service.deliveries_by_ids, EventDelivery.from_model), EventDelivery),
]

DeliveryStatusFilter = enum_filter(DeliveryStatus, "DeliveryStatusFilter")


@strawberry.input(description="Conditions on event deliveries; fields combine with AND, and `and`/`or`/`not` nest.")
class EventDeliveryFilter:
    and_: list[EventDeliveryFilter] | None = strawberry.field(
        default=None, name="and", description="Every one of these filters holds."
    )
    or_: list[EventDeliveryFilter] | None = strawberry.field(
        default=None, name="or", description="At least one of these filters holds."
    )
    not_: EventDeliveryFilter | None = strawberry.field(default=None, name="not", description="This filter does not hold.")
    status: DeliveryStatusFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Where the delivery stands."
    )
    event_type: StringFilter | None = strawberry.field(default=None, description='Type of the event, e.g. "order.paid".')
    event_id: StringFilter | None = strawberry.field(default=None, description="The event's `eventId`.")
    subscriber: StringFilter | None = strawberry.field(default=None, description='E.g. `{startsWith: "plugin:"}`.')
    subscription_id: strawberry.ID | None = strawberry.field(default=None, description="Deliveries of one webhook subscription.")
    created_at: DateTimeFilter | None = strawberry.field(default=None, description="When the delivery was queued.")


def _delivery_filter(plain: Any) -> Any:
    """Turn the global ID of ``subscriptionId`` into the condition the service understands."""
    if isinstance(plain, list):
        return [_delivery_filter(p) for p in plain]
    if not isinstance(plain, dict):
        return plain
    out = {}
    for key, value in plain.items():
        if key == "subscriptionId":
            out[key] = {"eq": decode_global_id(value, "WebhookSubscription")[1]}
        else:
            out[key] = _delivery_filter(value) if key in ("and", "or", "not") else value
    return out


@strawberry.type
class WebhookQuery:
    @access.query("webhooks", description="Webhook subscriptions, newest first.")
    async def webhook_subscriptions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> WebhookSubscriptionConnection:
        ctx: Context = info.context
        page = await paginate(
            ctx.db.reader, service.subscription_select(), service.SUBSCRIPTION_ORDER, page_args(first, after, last, before)
        )
        return WebhookSubscriptionConnection.from_page(page, WebhookSubscription.from_model)

    @access.query("webhooks", description="Deliveries of events to plugins and webhooks, newest first.")
    async def event_deliveries(
        self,
        info: Info,
        filter: Annotated[
            EventDeliveryFilter | None, strawberry.argument(description="Only deliveries matching these conditions.")
        ] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> EventDeliveryConnection:
        ctx: Context = info.context
        stmt = service.delivery_select(_delivery_filter(to_plain(filter)))
        page = await paginate(ctx.db.reader, stmt, service.DELIVERY_ORDER, page_args(first, after, last, before))
        return EventDeliveryConnection.from_page(page, EventDelivery.from_model)

    @access.query("webhooks", description="The event types a webhook subscription can ask for.")
    def event_types(self) -> list[EventType]:
        return [EventType(type=t, description=d) for t, d in sorted(service.event_types().items())]


@strawberry.input(description="A new webhook subscription.")
class CreateWebhookSubscriptionInput:
    url: str = strawberry.field(description="http(s) URL that receives a POST per event.")
    events: list[str] = strawberry.field(description='Patterns: "order.paid", "ticket.*", or "*" for everything.')
    secret: str | None = strawberry.field(
        default=None, description="Signing secret (16 to 200 characters); leave out to get a generated one."
    )
    description: str | None = strawberry.field(default=None, description="Free text, at most 500 characters.")
    active: bool = strawberry.field(default=True, description="false: create it paused.")


@strawberry.input(description="Fields to change; omitted fields stay as they are.")
class UpdateWebhookSubscriptionInput:
    url: str | None = strawberry.field(
        default=UNSET,
        description="New http(s) URL, at most 2000 characters; INVALID_URL if unusable, "
        "FORBIDDEN_ADDRESS for a private address.",
    )
    events: list[str] | None = strawberry.field(
        default=UNSET,
        description="Replaces the patterns: 1 to 50; one that matches no event type gives UNKNOWN_EVENT_PATTERN.",
    )
    description: str | None = strawberry.field(default=UNSET, description="Free text, at most 500 characters; null clears it.")
    active: bool | None = strawberry.field(
        default=UNSET, description="false pauses the subscription, true resumes it; null gives REQUIRED."
    )
    secret: str | None = strawberry.field(
        default=UNSET, description="A new signing secret. The old one keeps signing beside it for a grace period."
    )
    rotate_secret: bool | None = strawberry.field(default=UNSET, description="true: generate a new secret (see `secret`).")


@strawberry.type(description="The outcome of a webhook subscription mutation.")
class WebhookSubscriptionPayload:
    webhook_subscription: WebhookSubscription | None = strawberry.field(
        description="The subscription as stored; null when there are errors."
    )
    secret: str | None = strawberry.field(
        description="The signing secret, returned only by the mutation that set it: store it now."
    )
    errors: list[UserError]


@strawberry.type(description="The outcome of `retryEventDelivery`.")
class EventDeliveryPayload:
    event_delivery: EventDelivery | None = strawberry.field(description="The delivery, now PENDING; null when there are errors.")
    errors: list[UserError]


def _config(info: Info) -> service.WebhookConfig:
    settings = info.context.settings
    return service.WebhookConfig(allow_private=settings.webhook_allow_private, secret_grace=settings.webhook_secret_grace)


def _subscription_payload(result: tuple[Any, list[UserError]]) -> WebhookSubscriptionPayload:
    value, errors = result
    if value is None:
        return WebhookSubscriptionPayload(webhook_subscription=None, secret=None, errors=errors)
    model, secret = value if isinstance(value, tuple) else (value, None)
    return WebhookSubscriptionPayload(webhook_subscription=WebhookSubscription.from_model(model), secret=secret, errors=errors)


@strawberry.type
class WebhookMutation:
    @access.mutation("webhooks", "create", description="Subscribe a URL to events. Each delivery is signed with the returned secret.")
    async def create_webhook_subscription(
        self,
        info: Info,
        input: Annotated[CreateWebhookSubscriptionInput, strawberry.argument(description="The new subscription.")],
    ) -> WebhookSubscriptionPayload:
        data, actor, config = to_plain(input), info.context.actor, _config(info)
        return _subscription_payload(
            await unit_of_work(info, lambda s: service.create_subscription(s, actor=actor, data=data, config=config))
        )

    @access.mutation("webhooks", "update", description="Change a subscription, pause it (`active: false`) or rotate its secret.")
    async def update_webhook_subscription(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the WebhookSubscription.")],
        input: Annotated[UpdateWebhookSubscriptionInput, strawberry.argument(description="The fields to change.")],
        expected_version: int | None = None,
    ) -> WebhookSubscriptionPayload:
        pk = decode_global_id(id, "WebhookSubscription")[1]
        data, actor, config = to_plain(input, keep_null=True), info.context.actor, _config(info)
        return _subscription_payload(
            await unit_of_work(
                info,
                lambda s: service.update_subscription(
                    s, actor=actor, subscription_id=pk, data=data, expected_version=expected_version, config=config
                ),
            )
        )

    @access.mutation("webhooks", "delete", description="Delete a subscription; deliveries still waiting for it are dropped (DEAD).")
    async def delete_webhook_subscription(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the WebhookSubscription.")],
    ) -> WebhookSubscriptionPayload:
        pk, actor = decode_global_id(id, "WebhookSubscription")[1], info.context.actor
        return _subscription_payload(
            await unit_of_work(info, lambda s: service.delete_subscription(s, actor=actor, subscription_id=pk))
        )

    @access.mutation("webhooks", "update", description="Try a DEAD (or waiting) delivery again now, with a fresh set of attempts.")
    async def retry_event_delivery(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="Global ID of the EventDelivery. DELIVERING gives DELIVERY_IN_PROGRESS, DELIVERED "
                "ALREADY_DELIVERED, and one of a deleted subscription INVALID_STATE."
            ),
        ],
    ) -> EventDeliveryPayload:
        pk, actor = decode_global_id(id, "EventDelivery")[1], info.context.actor
        model, errors = await unit_of_work(info, lambda s: service.retry_delivery(s, actor=actor, delivery_id=pk))
        return EventDeliveryPayload(event_delivery=EventDelivery.from_model(model) if model is not None else None, errors=errors)


SCHEMA = SchemaPart(query=WebhookQuery, mutation=WebhookMutation, nodes=NODES)
