"""The Request Tracker connector alone, against a real RT 5 (``rt``, one per test session).

Every test makes its own tickets under its own references, so the order of the tests does not
matter. RT itself is read beside the connector (``rt.rest``) to count what was made.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_graph.core.helpdesk import (
    PRIORITIES,
    STATUSES,
    CustomerCard,
    HelpdeskClient,
    HelpdeskConnector,
    HelpdeskError,
    TicketDraft,
)
from crm_service.helpdesk.rt import RequestTracker, RtClient, card_text, to_crm_priority, to_crm_status
from rt_server import RtServer, free_port

# Touches no CRM database: runs in the --db sqlite pass of `make test` only.
pytestmark = pytest.mark.one_pass

CONNECTOR = RequestTracker()
DESCRIPTION = "Since Monday the printer on floor 2 is silent."


@pytest.fixture
async def client(rt: RtServer) -> AsyncIterator[RtClient]:  # noqa: F811
    connection = CONNECTOR.connect(rt.config(), rt.secrets)
    yield connection
    await connection.aclose()


def draft(**changes: Any) -> TicketDraft:
    values: dict[str, Any] = {
        "reference": f"T-{uuid.uuid4().hex[:8].upper()}", "subject": "Printer prints nothing",
        "requester_email": f"anna.{uuid.uuid4().hex[:6]}@example.com", "requester_name": "Anna Müller",
        "status": "NEW", "priority": "NORMAL", "description": DESCRIPTION}
    return TicketDraft(**{**values, **changes})


def tickets_with(rt: RtServer, reference: str) -> list[str]:  # noqa: F811
    found = rt.rest("GET", "tickets", params={"query": f"'CF.{{CRM Reference}}' = '{reference}'"})
    return [item["id"] for item in found["items"]]


def history(rt: RtServer, remote_id: str, *types: str) -> list[dict[str, Any]]:  # noqa: F811
    found = rt.rest("GET", f"ticket/{remote_id}/history", params={"per_page": 100, "fields": "Type,Field"})
    return [item for item in found["items"] if item["Type"] in types]


CARD = CustomerCard(reference="CRM-C-42", name="Anna Müller", email="anna@example.com", lifetime_value="1234.50 EUR",
                    open_orders=2, open_order_value="560.00 EUR",
                    last_opportunities=("Renewal 2027 (PROPOSAL, 12000.00 EUR)",), rfm_group="CHAMPIONS",
                    satisfaction_index=0.87, tickets_open=1, url="https://crm.example.com/service/customers/42/card")


# -- the contract --


async def test_the_connector_follows_the_contract(client: RtClient) -> None:
    assert isinstance(CONNECTOR, HelpdeskConnector)
    assert CONNECTOR.name == "rt" and "password" in CONNECTOR.secret_keys
    assert isinstance(client, HelpdeskClient)


def test_check_config_names_the_key_at_fault_and_never_raises() -> None:
    assert CONNECTOR.check_config({"url": "https://rt.example.com", "username": "crm"}) == []
    assert CONNECTOR.check_config({"url": "http://rt.example.com/rt", "username": "crm", "queue": "Support",
                                   "referenceField": "CRM Ticket", "customerField": None, "timeout": 5}) == []
    for config, key in (({}, "url"), ({"url": "ftp://rt.example.com"}, "url"),
                        ({"url": "https://crm:secret@rt.example.com"}, "url"),
                        ({"url": "https://rt.example.com", "timeout": 0}, "timeout"),
                        ({"url": "https://rt.example.com", "timeout": "soon"}, "timeout"),
                        ({"url": "https://rt.example.com", "queue": " "}, "queue"),
                        ({"url": "https://rt.example.com", "referenceField": 7}, "referenceField")):
        assert key in [k for k, _ in CONNECTOR.check_config(config)], config
    assert CONNECTOR.check_config(None)  # type: ignore[arg-type]
    with pytest.raises(HelpdeskError) as refused:
        CONNECTOR.connect({"url": "https://rt.example.com"}, {"password": "pw"})
    assert refused.value.field == "username" and not refused.value.retry


def test_statuses_and_priorities_map_both_ways() -> None:
    assert [to_crm_status(s) for s in ("new", "open", "stalled", "resolved", "rejected", "deleted", "triage")] == \
        ["NEW", "OPEN", "PENDING", "RESOLVED", "CLOSED", "CLOSED", "OPEN"]
    assert [to_crm_priority(p) for p in ("0", "24", "25", "64", "65", "89", "90", 250)] == \
        ["LOW", "LOW", "NORMAL", "NORMAL", "HIGH", "HIGH", "URGENT", "URGENT"]
    assert [to_crm_priority(p) for p in ("Low", "Medium", "High", "On Fire", "whatever")] == \
        ["LOW", "NORMAL", "HIGH", "URGENT", "NORMAL"]


# -- tickets --


async def test_create_twice_with_one_reference_makes_one_ticket(rt: RtServer, client: RtClient) -> None:  # noqa: F811
    wanted = draft(priority="HIGH", requester_name="Müller, Anna")
    first = await client.create_ticket(wanted)
    again = await client.create_ticket(wanted)  # a retry after a lost answer
    assert again.remote_id == first.remote_id
    assert tickets_with(rt, wanted.reference) == [first.remote_id]
    assert (first.reference, first.subject, first.status, first.priority) == \
        (wanted.reference, wanted.subject, "NEW", "HIGH")
    assert (first.requester_email, first.requester_name) == (wanted.requester_email, "Müller, Anna")
    assert first.created_at is not None and first.updated_at is not None
    assert first.extra["queue"] == "General" and first.extra["url"].endswith(f"id={first.remote_id}")
    found = await client.find_ticket(wanted.reference)
    assert found is not None and found.remote_id == first.remote_id and found.reference == wanted.reference
    assert await client.find_ticket(f"T-NONE-{uuid.uuid4().hex[:6]}") is None


async def test_a_ticket_is_created_in_any_status(client: RtClient) -> None:
    for status in STATUSES:
        made = await client.create_ticket(draft(status=status, description=None, requester_email=None))
        assert made.status == status and made.requester_email is None


async def test_update_round_trips_every_status_and_priority(rt: RtServer, client: RtClient) -> None:  # noqa: F811
    made = await client.create_ticket(draft())
    for status, priority in zip(("OPEN", "PENDING", "RESOLVED", "CLOSED", "NEW"), ("LOW", "URGENT", "HIGH",
                                                                                   "NORMAL", "LOW"), strict=True):
        updated = await client.update_ticket(made.remote_id, status=status, priority=priority)
        assert (updated.status, updated.priority) == (status, priority)
        read = await client.get_ticket(made.remote_id)
        assert (read.status, read.priority) == (status, priority)
    raw = rt.rest("GET", f"ticket/{made.remote_id}")
    assert (raw["Status"], raw["Priority"]) == ("new", "0")
    assert set(PRIORITIES) == {to_crm_priority(n) for n in (0, 50, 80, 100)}
    unchanged = await client.update_ticket(made.remote_id)
    assert unchanged.status == "NEW"


async def test_a_missing_ticket_is_no_retry(client: RtClient) -> None:
    for call in (client.get_ticket("999999"), client.update_ticket("999999", status="OPEN"),
                 client.get_ticket("not-a-number")):
        with pytest.raises(HelpdeskError) as missing:
            await call
        assert not missing.value.retry


# -- messages --


async def test_a_message_is_added_once_per_reference(rt: RtServer, client: RtClient) -> None:  # noqa: F811
    made = await client.create_ticket(draft())
    tag = uuid.uuid4().hex[:8]
    reply = await client.add_message(made.remote_id, public=True, body="We are on it.", reference=f"crm-comment-{tag}1",
                                     author="Jane Agent")
    note = await client.add_message(made.remote_id, public=False, body="Toner ordered.",
                                    reference=f"crm-comment-{tag}2")
    assert await client.add_message(made.remote_id, public=True, body="We are on it.",
                                    reference=f"crm-comment-{tag}1") == reply
    assert await client.add_message(made.remote_id, public=False, body="Toner ordered.",
                                    reference=f"crm-comment-{tag}2") == note
    assert [item["id"] for item in history(rt, made.remote_id, "Correspond")] == [reply]
    assert [item["id"] for item in history(rt, made.remote_id, "Comment")] == [note]

    messages = await client.messages(made.remote_id)
    assert [(m.remote_id, m.public, m.body, m.reference, m.from_customer) for m in messages] == [
        (messages[0].remote_id, True, DESCRIPTION, made.reference, False),
        (reply, True, "We are on it.", f"crm-comment-{tag}1", False),
        (note, False, "Toner ordered.", f"crm-comment-{tag}2", False)]
    assert all(m.ticket_remote_id == made.remote_id and m.created_at.tzinfo is not None for m in messages)


async def test_mail_from_the_requester_is_from_the_customer(rt: RtServer, client: RtClient) -> None:  # noqa: F811
    made = await client.create_ticket(draft(requester_email="kunde@example.com", requester_name="Karl Kunde"))
    raw = (f"From: Karl Kunde <kunde@example.com>\nTo: support@crm.test\n"
           f"Subject: Re: [crm-test #{made.remote_id}] Printer prints nothing\n"
           "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
           "Still nothing, grüße aus Köln.\n").encode()
    assert rt.mail_in(raw) == int(made.remote_id)
    mail = (await client.messages(made.remote_id))[-1]
    assert (mail.public, mail.from_customer, mail.body, mail.reference) == \
        (True, True, "Still nothing, grüße aus Köln.", None)
    assert "Karl Kunde" in mail.author or "kunde@example.com" in mail.author


async def test_a_ticket_mailed_in_reads_back_with_its_text(rt: RtServer, client: RtClient) -> None:  # noqa: F811
    raw = ("From: Olga <olga@example.com>\nTo: support@crm.test\nSubject: Invoice question\nMIME-Version: 1.0\n"
           'Content-Type: multipart/alternative; boundary="b"\n\n--b\nContent-Type: text/html; charset=utf-8\n\n'
           "<p>Why is <b>invoice 7</b> twice?</p><p>Olga</p>\n--b--\n").encode()
    remote_id = str(rt.mail_in(raw, action="correspond"))
    ticket = await client.get_ticket(remote_id)
    assert (ticket.requester_email, ticket.reference, ticket.status) == ("olga@example.com", None, "NEW")
    (created,) = await client.messages(remote_id)
    assert created.from_customer and created.public and created.reference is None
    assert created.body == "Why is invoice 7 twice?\n\nOlga"  # the HTML part as text


async def test_changed_since_finds_what_changed_after(rt: RtServer, client: RtClient) -> None:  # noqa: F811
    quiet = await client.create_ticket(draft())
    busy = await client.create_ticket(draft())
    await asyncio.sleep(2.2)  # LastUpdated has whole seconds; the connector reads one second early
    since = datetime.now(UTC)
    await client.add_message(busy.remote_id, public=False, body="Looked at it.",
                             reference=f"crm-comment-{uuid.uuid4().hex[:8]}")
    mailed = str(rt.mail_in(b"From: Nina <nina@example.com>\nTo: support@crm.test\nSubject: New one\n\nHello.\n"))
    changed = await client.changed_since(since)
    ids = [t.remote_id for t in changed]
    assert busy.remote_id in ids and mailed in ids and quiet.remote_id not in ids
    assert ids.index(busy.remote_id) < ids.index(mailed)  # oldest change first
    assert all(t.updated_at is not None and t.updated_at >= since.replace(microsecond=0) for t in changed)
    everything = [t.remote_id for t in await client.changed_since(None)]
    assert {quiet.remote_id, busy.remote_id, mailed} <= set(everything) and len(everything) == len(set(everything))
    assert await client.changed_since(datetime.now(UTC) + timedelta(days=2)) == []


# -- the customer card --


async def test_the_card_is_stored_in_its_field_once(rt: RtServer, client: RtClient) -> None:  # noqa: F811
    made = await client.create_ticket(draft())

    def card_field() -> tuple[list[str], int]:
        raw = rt.rest("GET", f"ticket/{made.remote_id}")
        values = next(cf["values"] for cf in raw["CustomFields"] if cf["name"] == "CRM Customer")
        return values, len(history(rt, made.remote_id, "CustomField"))

    await client.push_customer(made.remote_id, CARD)
    values, changes = card_field()
    assert values == [card_text(CARD)] and "Anna Müller (CRM-C-42)" in values[0] and "1234.50 EUR" in values[0]
    await client.push_customer(made.remote_id, CARD)
    assert card_field() == (values, changes)
    changed = CustomerCard(**{**CARD.as_dict(), "open_orders": 3})
    await client.push_customer(made.remote_id, changed)
    assert card_field() == ([card_text(changed)], changes + 1)


async def test_without_the_field_the_card_is_a_comment_when_changed(rt: RtServer) -> None:  # noqa: F811
    connection = CONNECTOR.connect(rt.config(customerField=None), rt.secrets)
    try:
        made = await connection.create_ticket(draft())
        await connection.push_customer(made.remote_id, CARD)
        await connection.push_customer(made.remote_id, CARD)
        assert len(history(rt, made.remote_id, "Comment")) == 1
        changed = CustomerCard(**{**CARD.as_dict(), "tickets_open": 2})
        await connection.push_customer(made.remote_id, changed)
        await connection.push_customer(made.remote_id, changed)
        comments = [m for m in await connection.messages(made.remote_id) if not m.public]
        assert len(comments) == 2 and all(m.reference and m.reference.startswith("crm-card-") for m in comments)
        assert card_text(changed) in comments[-1].body
        await connection.push_customer(made.remote_id, CARD)  # back to the first card: it is news again
        assert len(history(rt, made.remote_id, "Comment")) == 3
    finally:
        await connection.aclose()


# -- failures --


async def expect_error(connect: Callable[[], RtClient], *, retry: bool) -> HelpdeskError:
    connection = connect()
    try:
        with pytest.raises(HelpdeskError) as failed:
            await connection.find_ticket("T-000001")
    finally:
        await connection.aclose()
    assert failed.value.retry is retry, failed.value.message
    return failed.value


async def test_a_wrong_password_is_no_retry_and_not_shown(rt: RtServer) -> None:  # noqa: F811
    password = f"wrong-{uuid.uuid4().hex}"
    error = await expect_error(lambda: CONNECTOR.connect(rt.config(), {"password": password}), retry=False)
    assert error.field == "password" and password not in error.message and rt.password not in error.message
    assert "401" in error.message


async def test_an_unknown_queue_or_field_says_what_to_fix(rt: RtServer) -> None:  # noqa: F811
    error = await expect_error(lambda: CONNECTOR.connect(rt.config(queue="Nowhere"), rt.secrets), retry=False)
    assert error.field == "queue" and "Nowhere" in error.message
    error = await expect_error(lambda: CONNECTOR.connect(rt.config(referenceField="CRM Ticket No"), rt.secrets),
                               retry=False)
    assert error.field == "referenceField" and "CRM Ticket No" in error.message
    error = await expect_error(lambda: CONNECTOR.connect(rt.config(customerField="CRM Card"), rt.secrets), retry=False)
    assert error.field == "customerField"


@asynccontextmanager
async def local_server(answer: bytes | None) -> AsyncIterator[str]:
    """A server on loopback that reads a request and sends ``answer`` (None: nothing, ever)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            if answer is None:
                await asyncio.sleep(3600)
            writer.write(answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_server_error_is_a_retry(rt: RtServer) -> None:  # noqa: F811
    broken = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 27\r\n"
              b"Connection: close\r\n\r\n{\"message\":\"database gone\"}")
    async with local_server(broken) as url:
        error = await expect_error(lambda: CONNECTOR.connect(rt.config(url=url), rt.secrets), retry=True)
    assert "500" in error.message and "database gone" in error.message and rt.password not in error.message


async def test_a_timeout_is_a_retry(rt: RtServer) -> None:  # noqa: F811
    async with local_server(None) as url:
        started = time.monotonic()
        error = await expect_error(lambda: CONNECTOR.connect(rt.config(url=url, timeout=0.5), rt.secrets), retry=True)
    assert time.monotonic() - started < 5 and "0.5 s" in error.message


async def test_nothing_listening_is_a_retry(rt: RtServer) -> None:  # noqa: F811
    url = f"http://127.0.0.1:{free_port()}"
    error = await expect_error(lambda: CONNECTOR.connect(rt.config(url=url), rt.secrets), retry=True)
    assert rt.password not in error.message
