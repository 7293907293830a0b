"""GraphQL inputs of the support domain: the ticket filter and ordering, and mutation inputs."""

from __future__ import annotations

import enum
from datetime import time
from typing import Any

import strawberry
from strawberry.types.unset import UNSET

from crm_graph.customers.schema import ExternalRefInput
from crm_graph.graphql.enums import graphql_enum
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
    eq: strawberry.ID | None = strawberry.field(default=None, description="This customer (a Customer ID).")
    in_: list[strawberry.ID] | None = strawberry.field(
        default=None, name="in", description="One of these customers (Customer IDs)."
    )


@strawberry.input(description="Conditions on a ticket number such as `T-000123` (zero padding and case do not matter).")
class TicketNumberFilter:
    eq: str | None = strawberry.field(default=None, description="This ticket number.")
    in_: list[str] | None = strawberry.field(default=None, name="in", description="One of these ticket numbers.")


@strawberry.input(description="Conditions on tickets; fields combine with AND, and `and`/`or`/`not` nest.")
class TicketFilter:
    and_: list[TicketFilter] | None = strawberry.field(
        default=None, name="and", description="Matches when every one of these filters matches."
    )
    or_: list[TicketFilter] | None = strawberry.field(
        default=None, name="or", description="Matches when at least one of these filters matches."
    )
    not_: TicketFilter | None = strawberry.field(default=None, name="not", description="Matches when this filter does not.")
    number: TicketNumberFilter | None = strawberry.field(default=None, description="The ticket number, e.g. `T-000123`.")
    status: TicketStatusFilter | None = strawberry.field(default=None, description="The status.")  # type: ignore[valid-type]
    priority: TicketPriorityFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The priority."
    )
    channel: TicketChannelFilter | None = strawberry.field(default=None, description="The channel.")  # type: ignore[valid-type]
    customer_id: TicketCustomerFilter | None = strawberry.field(default=None, description="The customer who asked.")
    contact_id: TicketCustomerFilter | None = strawberry.field(
        default=None, description="The contact person who asked for an organization."
    )
    assignee: StringFilter | None = strawberry.field(default=None, description="`isNull: true` lists unassigned tickets.")
    subject: StringFilter | None = strawberry.field(default=None, description="The subject.")
    tags: TagsFilter | None = strawberry.field(default=None, description="The ticket's tags.")
    created_at: DateTimeFilter | None = strawberry.field(default=None, description="When it was opened.")
    updated_at: DateTimeFilter | None = strawberry.field(default=None, description="When it last changed.")
    resolved_at: DateTimeFilter | None = strawberry.field(
        default=None, description="When it was last resolved; `isNull: true` finds tickets not resolved, or re-opened since."
    )
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


class TicketOrderField(enum.Enum):
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    NUMBER = "NUMBER"


graphql_enum(
    TicketOrderField,
    "Fields tickets can be sorted by.",
    {
        "CREATED_AT": "By opening time (the default, newest first).",
        "UPDATED_AT": "By the time of the last change.",
        "NUMBER": "By ticket number; as numbers are unique, sort keys after it are ignored.",
    },
)

TicketOrder = order_input(TicketOrderField, "TicketOrder")


# --- mutation inputs ----------------------------------------------------------------------------


@strawberry.input(description="A new ticket.")
class CreateTicketInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer who asks (a person or an organization).")
    subject: str = strawberry.field(description="Short summary, at most 300 characters.")
    channel: TicketChannel = strawberry.field(description="How the customer got in touch.")
    contact_id: strawberry.ID | None = strawberry.field(
        default=None, description="For an organization: the contact person who asks on its behalf."
    )
    description: str | None = strawberry.field(default=None, description="The request in full, at most 100,000 characters.")
    priority: TicketPriority | None = strawberry.field(default=None, description="Defaults to NORMAL.")
    assignee: str | None = strawberry.field(default=None, description="Who works on it (free text, at most 200 characters).")
    tags: list[str] | None = strawberry.field(
        default=None,
        description="Trimmed, lower-cased and de-duplicated; at most 50 tags of up to 64 characters. SLA policies may match on "
        "them."
    )
    external_refs: list[ExternalRefInput] | None = strawberry.field(
        default=None,
        description="The ticket's IDs in other systems (one per system). Creating again with a known reference "
        "returns the existing ticket instead of a second one.",
    )


@strawberry.input(description="Fields to change. Omitted fields stay as they are; null clears optional ones.")
class UpdateTicketInput:
    subject: str | None = strawberry.field(default=UNSET, description="New summary, at most 300 characters; cannot be cleared.")
    description: str | None = strawberry.field(default=UNSET, description="New description; null clears it.")
    channel: TicketChannel | None = strawberry.field(default=UNSET, description="New channel; cannot be cleared.")
    priority: TicketPriority | None = strawberry.field(
        default=UNSET, description="Changing the priority keeps the SLA targets set at opening."
    )
    contact_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="For an organization's ticket: a person of that organization (Customer ID); null clears it."
    )
    tags: list[str] | None = strawberry.field(default=UNSET, description="Replaces the tags.")


@strawberry.input(description="A comment on a ticket.")
class ReplyToTicketInput:
    body: str = strawberry.field(description="The text, at most 100,000 characters.")
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
    comment: str | None = strawberry.field(default=None, description="What the customer said, at most 100,000 characters.")


@strawberry.input(description="Local opening hours: the SLA clock runs only inside them.")
class BusinessHoursInput:
    time_zone: str = strawberry.field(description="IANA name, e.g. `Europe/Berlin`.")
    weekdays: list[Weekday] = strawberry.field(description="The days the clock runs on; at least one.")
    start_time: time = strawberry.field(description="e.g. `09:00`.")
    end_time: time = strawberry.field(description="e.g. `17:30`; after startTime, same day.")


@strawberry.input(description="A new SLA policy, for tickets opened from now on (open tickets keep their due times).")
class CreateSlaPolicyInput:
    name: str = strawberry.field(description="Unique name (ignoring case), at most 200 characters; DUPLICATE otherwise.")
    first_response_minutes: int = strawberry.field(description="Business minutes until the first public reply is due (> 0).")
    resolution_minutes: int = strawberry.field(description="Business minutes until resolution is due (> 0).")
    description: str | None = strawberry.field(default=None, description="What the policy is for, at most 10,000 characters.")
    rank: int | None = strawberry.field(default=None, description="Matching order, lowest first; default 100.")
    active: bool | None = strawberry.field(default=None, description="Default true.")
    priorities: list[TicketPriority] | None = strawberry.field(default=None, description="Empty or omitted: any.")
    channels: list[TicketChannel] | None = strawberry.field(default=None, description="Empty or omitted: any.")
    tags: list[str] | None = strawberry.field(default=None, description="Any of these tags; empty or omitted: any.")
    business_hours: BusinessHoursInput | None = strawberry.field(default=None, description="Omitted: around the clock.")


@strawberry.input(description="Fields to change. Existing tickets keep the due times they were given.")
class UpdateSlaPolicyInput:
    name: str | None = strawberry.field(default=UNSET, description="New unique name (ignoring case); cannot be cleared.")
    description: str | None = strawberry.field(default=UNSET, description="New description; null clears it.")
    rank: int | None = strawberry.field(
        default=UNSET, description="Matching order from 0 to 1,000,000, lowest first; cannot be cleared."
    )
    active: bool | None = strawberry.field(
        default=UNSET, description="false: new tickets no longer get this policy; cannot be cleared."
    )
    priorities: list[TicketPriority] | None = strawberry.field(
        default=UNSET, description="Priorities it applies to; null or empty: any."
    )
    channels: list[TicketChannel] | None = strawberry.field(
        default=UNSET, description="Channels it applies to; null or empty: any."
    )
    tags: list[str] | None = strawberry.field(
        default=UNSET, description="Applies to tickets with any of these tags; null or empty: any."
    )
    first_response_minutes: int | None = strawberry.field(
        default=UNSET, description="Business minutes until the first public reply is due (1 to 527,040); cannot be cleared."
    )
    resolution_minutes: int | None = strawberry.field(
        default=UNSET, description="Business minutes until resolution is due (1 to 527,040); cannot be cleared."
    )
    business_hours: BusinessHoursInput | None = strawberry.field(default=UNSET, description="null: around the clock.")
