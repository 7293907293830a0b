"""GraphQL inputs of the support domain: the ticket filter and ordering, and mutation inputs."""

from __future__ import annotations

import enum
from datetime import time
from typing import Any

import strawberry
from strawberry.types.unset import UNSET

from crm_graph.customers.schema import ExternalRefInput
from crm_graph.graphql.inputs import (
    DateTimeFilter,
    StringFilter,
    TagsFilter,
    enum_filter,
    order_input,
)
from crm_graph.graphql.relay import decode_global_id
from crm_graph.support.models import (
    TicketAuthorKind,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    Weekday,
)
from crm_graph.support.schema import enums  # noqa: F401  (the GraphQL enums, registered once)

TicketStatusFilter = enum_filter(TicketStatus, "TicketStatusFilter")
TicketPriorityFilter = enum_filter(TicketPriority, "TicketPriorityFilter")
TicketChannelFilter = enum_filter(TicketChannel, "TicketChannelFilter")


@strawberry.input(description="Conditions on a customer reference of a ticket, by customer ID.")
class TicketCustomerFilter:
    eq: strawberry.ID | None = None
    in_: list[strawberry.ID] | None = strawberry.field(default=None, name="in")


@strawberry.input(description="Conditions on a ticket number such as `T-000123` (zero padding and case do not matter).")
class TicketNumberFilter:
    eq: str | None = None
    in_: list[str] | None = strawberry.field(default=None, name="in")


@strawberry.input(description="Conditions on tickets; fields combine with AND, and `and`/`or`/`not` nest.")
class TicketFilter:
    and_: list[TicketFilter] | None = strawberry.field(default=None, name="and")
    or_: list[TicketFilter] | None = strawberry.field(default=None, name="or")
    not_: TicketFilter | None = strawberry.field(default=None, name="not")
    number: TicketNumberFilter | None = None
    status: TicketStatusFilter | None = None  # type: ignore[valid-type]
    priority: TicketPriorityFilter | None = None  # type: ignore[valid-type]
    channel: TicketChannelFilter | None = None  # type: ignore[valid-type]
    customer_id: TicketCustomerFilter | None = None
    contact_id: TicketCustomerFilter | None = None
    assignee: StringFilter | None = strawberry.field(default=None, description="`isNull: true` lists unassigned tickets.")
    subject: StringFilter | None = None
    tags: TagsFilter | None = None
    created_at: DateTimeFilter | None = None
    updated_at: DateTimeFilter | None = None
    resolved_at: DateTimeFilter | None = None
    sla_breached: bool | None = strawberry.field(
        default=None, description="true: a target is BREACHED now (including due times that just passed); false: none is."
    )


def decode_filter(plain: Any) -> Any:
    """Turn the customer IDs inside a plain ticket filter into primary keys (ClientError if malformed)."""
    if isinstance(plain, list):
        return [decode_filter(item) for item in plain]
    if not isinstance(plain, dict):
        return plain
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if key in ("customerId", "contactId") and isinstance(value, dict):
            out[key] = {
                op: [decode_global_id(v, "Customer")[1] for v in ids] if op == "in" else decode_global_id(ids, "Customer")[1]
                for op, ids in value.items()
            }
        else:
            out[key] = decode_filter(value)
    return out


@strawberry.enum(description="Fields tickets can be sorted by.")
class TicketOrderField(enum.Enum):
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    NUMBER = "NUMBER"


TicketOrder = order_input(TicketOrderField, "TicketOrder")


# --- mutation inputs ----------------------------------------------------------------------------


@strawberry.input(description="A new ticket.")
class CreateTicketInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer who asks (a person or an organization).")
    subject: str
    channel: TicketChannel
    contact_id: strawberry.ID | None = strawberry.field(
        default=None, description="For an organization: the contact person who asks on its behalf."
    )
    description: str | None = None
    priority: TicketPriority | None = strawberry.field(default=None, description="Defaults to NORMAL.")
    assignee: str | None = None
    tags: list[str] | None = None
    external_refs: list[ExternalRefInput] | None = strawberry.field(
        default=None,
        description="The ticket's IDs in other systems (one per system). Creating again with a known reference "
        "returns the existing ticket instead of a second one.",
    )


@strawberry.input(description="Fields to change. Omitted fields stay as they are; null clears optional ones.")
class UpdateTicketInput:
    subject: str | None = UNSET
    description: str | None = UNSET
    channel: TicketChannel | None = UNSET
    priority: TicketPriority | None = strawberry.field(
        default=UNSET, description="Changing the priority keeps the SLA targets set at opening."
    )
    contact_id: strawberry.ID | None = UNSET
    tags: list[str] | None = strawberry.field(default=UNSET, description="Replaces the tags.")


@strawberry.input(description="A comment on a ticket.")
class ReplyToTicketInput:
    body: str
    public: bool = strawberry.field(default=True, description="true: a reply the customer sees; false: an internal note.")
    from_: TicketAuthorKind = strawberry.field(
        default=TicketAuthorKind.AGENT,
        name="from",
        description="AGENT (default) or CUSTOMER, for a reply that came in from the customer.",
    )
    author: str | None = strawberry.field(
        default=None, description="Name shown with the comment; defaults to the caller (agents) or the customer."
    )


@strawberry.input(description="A satisfaction rating after resolution.")
class RateTicketInput:
    rating: int = strawberry.field(description="1 (very poor) to 5 (excellent).")
    expectation: int | None = strawberry.field(default=None, description="What the customer expected, 1 to 5.")
    comment: str | None = None


@strawberry.input(description="Local opening hours: the SLA clock runs only inside them.")
class BusinessHoursInput:
    time_zone: str = strawberry.field(description="IANA name, e.g. `Europe/Berlin`.")
    weekdays: list[Weekday]
    start_time: time = strawberry.field(description="e.g. `09:00`.")
    end_time: time = strawberry.field(description="e.g. `17:30`; after startTime, same day.")


@strawberry.input
class CreateSlaPolicyInput:
    name: str
    first_response_minutes: int = strawberry.field(description="Business minutes until the first public reply is due (> 0).")
    resolution_minutes: int = strawberry.field(description="Business minutes until resolution is due (> 0).")
    description: str | None = None
    rank: int | None = strawberry.field(default=None, description="Matching order, lowest first; default 100.")
    active: bool | None = strawberry.field(default=None, description="Default true.")
    priorities: list[TicketPriority] | None = strawberry.field(default=None, description="Empty or omitted: any.")
    channels: list[TicketChannel] | None = strawberry.field(default=None, description="Empty or omitted: any.")
    tags: list[str] | None = strawberry.field(default=None, description="Any of these tags; empty or omitted: any.")
    business_hours: BusinessHoursInput | None = strawberry.field(default=None, description="Omitted: around the clock.")


@strawberry.input(description="Fields to change. Existing tickets keep the due times they were given.")
class UpdateSlaPolicyInput:
    name: str | None = UNSET
    description: str | None = UNSET
    rank: int | None = UNSET
    active: bool | None = UNSET
    priorities: list[TicketPriority] | None = UNSET
    channels: list[TicketChannel] | None = UNSET
    tags: list[str] | None = UNSET
    first_response_minutes: int | None = UNSET
    resolution_minutes: int | None = UNSET
    business_hours: BusinessHoursInput | None = strawberry.field(default=UNSET, description="null: around the clock.")
