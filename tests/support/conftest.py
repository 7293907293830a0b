"""Shared helpers of the support tests: a frozen clock, customers, policies and tickets via GraphQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from crm_graph.core.clock import FrozenClock, frozen_clock
from crm_graph.core.events import OutboxEvent

# Monday 2 March 2026, 08:00 UTC (09:00 in Berlin, which is on CET until 29 March).
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

TICKET_FIELDS = """
  id number subject status priority channel assignee version tags resolvedAt closedAt createdAt
  customer { id displayName }
  contact { id displayName }
  externalRefs { system externalId }
  sla { policy { name } firstResponseDueAt resolutionDueAt firstRespondedAt resolvedAt resolutionPausedAt
        firstResponseStatus resolutionStatus breached }
  satisfaction { rating expectation index comment ratedAt }
"""

CREATE_TICKET = f"""
mutation($input: CreateTicketInput!) {{
  createTicket(input: $input) {{ ticket {{ {TICKET_FIELDS} }} errors {{ field code message }} }}
}}
"""

REPLY = f"""
mutation($id: ID!, $input: ReplyToTicketInput!) {{
  replyToTicket(id: $id, input: $input) {{
    ticket {{ {TICKET_FIELDS} }} comment {{ id body public authorKind author createdAt }} errors {{ field code message }}
  }}
}}
"""

CHANGE_STATUS = f"""
mutation($id: ID!, $status: TicketStatus!, $v: Int) {{
  changeTicketStatus(id: $id, status: $status, expectedVersion: $v) {{ ticket {{ {TICKET_FIELDS} }} errors {{ field code message }} }}
}}
"""

RATE = f"""
mutation($id: ID!, $input: RateTicketInput!) {{
  rateTicket(id: $id, input: $input) {{ ticket {{ {TICKET_FIELDS} }} errors {{ field code message }} }}
}}
"""

ASSIGN = f"""
mutation($id: ID!, $assignee: String, $v: Int) {{
  assignTicket(id: $id, assignee: $assignee, expectedVersion: $v) {{ ticket {{ {TICKET_FIELDS} }} errors {{ field code message }} }}
}}
"""

GET_TICKET = f"query($id: ID!) {{ ticket(id: $id) {{ {TICKET_FIELDS} }} }}"

CREATE_POLICY = """
mutation($input: CreateSlaPolicyInput!) {
  createSlaPolicy(input: $input) {
    slaPolicy { id name rank active priorities channels tags firstResponseMinutes resolutionMinutes version
                businessHours { timeZone weekdays startTime endTime } }
    errors { field code message }
  }
}
"""


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    with frozen_clock(START) as frozen:
        yield frozen


async def create_customer(client: Any, **input: Any) -> dict[str, Any]:
    input.setdefault("kind", "PERSON")
    if input["kind"] == "PERSON":
        input.setdefault("lastName", "Lovelace")
    payload = await client.mutate(
        "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id displayName } errors { field code message } } }",
        {"input": input},
    )
    return payload["customer"]


async def create_policy(client: Any, **input: Any) -> dict[str, Any]:
    input.setdefault("name", "Standard")
    input.setdefault("firstResponseMinutes", 60)
    input.setdefault("resolutionMinutes", 480)
    return (await client.mutate(CREATE_POLICY, {"input": input}))["slaPolicy"]


async def create_ticket(client: Any, customer_id: str, **input: Any) -> dict[str, Any]:
    input.setdefault("subject", "The invoice is wrong")
    input.setdefault("channel", "EMAIL")
    return (await client.mutate(CREATE_TICKET, {"input": {"customerId": customer_id, **input}}))["ticket"]


async def reply(client: Any, ticket_id: str, body: str = "Thanks, we are on it.", **input: Any) -> dict[str, Any]:
    return await client.mutate(REPLY, {"id": ticket_id, "input": {"body": body, **input}})


async def set_status(client: Any, ticket_id: str, status: str) -> dict[str, Any]:
    return (await client.mutate(CHANGE_STATUS, {"id": ticket_id, "status": status}))["ticket"]


async def get_ticket(client: Any, ticket_id: str) -> dict[str, Any]:
    return (await client.execute(GET_TICKET, {"id": ticket_id}))["ticket"]


async def event_types(db: Any, prefix: str = "ticket.") -> list[str]:
    async with db.reader() as session:
        rows = await session.scalars(
            sa.select(OutboxEvent.type).where(OutboxEvent.type.startswith(prefix)).order_by(OutboxEvent.id)
        )
        return list(rows)


def at(value: str) -> datetime:
    """Parse a DateTime the API returned."""
    return datetime.fromisoformat(value)
