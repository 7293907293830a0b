"""Marketing providers (``crm_marketing_providers``): the built-in ``csv`` one, and the two
services every provider is used through, ``export_segment`` and ``import_results``.

The ``csv`` provider is the contract exercised with the plainest format a marketing tool reads and
writes. Its audience file is RFC 4180 CSV in UTF-8 (CRLF line ends, quotes where needed) with the
header ``email,name,first_name,last_name,customer_id``; a cell a spreadsheet would run as a formula
(starting with ``= + - @``, a tab or a carriage return) gets a leading apostrophe. Its results
file has the header ``email,event,at`` and optionally ``url`` and ``id`` (other columns are
ignored: a tool's report often has more); ``event`` is one of opened, clicked, unsubscribed,
bounced, soft_bounced, complained (any case), ``at`` an ISO 8601 time with its offset. A row
without ``id`` is identified by a hash of its normalised content, so reading the same file again
records nothing twice. A bad row stops the whole file with its line number: nothing is recorded.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crm_graph.core import ids
from crm_graph.core.actor import SYSTEM, Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import FieldError, NotFound, ValidationFailed
from crm_graph.core.events import record_event
from crm_graph.core.filters import FilterError
from crm_graph.core.mail import (
    RESULT_KINDS,
    AudienceMember,
    ExportedList,
    MarketingProvider,
    ProviderError,
    ProviderResult,
)
from crm_graph.customers import validation
from crm_graph.customers.models import ConsentStatus, Customer, CustomerEmail
from crm_graph.segments.service import reads
from crm_marketing import engage
from crm_marketing.engage import normal
from crm_marketing.models import (
    Campaign,
    Engagement,
    EngagementKind,
    Inbound,
    Link,
    Recipient,
    Suppression,
    SuppressionReason,
)

# Error codes (UserError.code) of the two services.
UNKNOWN_PROVIDER = "UNKNOWN_PROVIDER"
EMPTY_AUDIENCE = "EMPTY_AUDIENCE"
INVALID_RESULTS = "INVALID_RESULTS"
PROVIDER_FAILED = "PROVIDER_FAILED"

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000
MAX_ID = 200  # characters of a row's own id (the inbound table keeps 300)
MAX_URL = 2000
EXPORT_HEADER = ("email", "name", "first_name", "last_name", "customer_id")
RESULT_HEADER = "email,event,at[,url][,id]"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EVENTS = {kind.lower(): kind for kind in RESULT_KINDS}
# What a result does beyond its engagement row: the suppression it causes.
SUPPRESSING = {"UNSUBSCRIBED": SuppressionReason.UNSUBSCRIBED, "BOUNCED": SuppressionReason.HARD_BOUNCE,
               "COMPLAINED": SuppressionReason.COMPLAINT}
_CHUNK = 500


def safe_cell(value: str | None) -> str:
    """A cell no spreadsheet runs as a formula (CSV injection): a leading apostrophe when needed."""
    text = value or ""
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _filename(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:100]
    return f"{stem or 'audience'}.csv"


class CsvProvider:
    name = "csv"
    description = "CSV files: the audience as a list file, results (opens, clicks, bounces...) read back from a CSV"

    def export_audience(self, name: str, members: Sequence[AudienceMember]) -> ExportedList:
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        for m in members:
            writer.writerow([safe_cell(v) for v in (m.email, m.display_name, m.first_name, m.last_name, m.customer_id)])
        return ExportedList(_filename(name), "text/csv; charset=utf-8", out.getvalue().encode("utf-8"), len(members))

    def parse_results(self, content: bytes) -> list[ProviderResult]:
        """Every row of the file, or ``ProviderError`` for the first bad one (the whole file is
        read before anything is recorded)."""
        if len(content) > MAX_BYTES:
            raise ProviderError(f"the file has {len(content)} bytes; at most {MAX_BYTES // (1024 * 1024)} MB are read")
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = content[:exc.start].count(b"\n") + 1
            raise ProviderError(f"line {line}: the file is not UTF-8 text", line=line) from None
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        columns: dict[str, int] | None = None
        results: list[ProviderResult] = []
        line = 1
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    if columns is None:
                        columns = _header(row, line)
                    elif len(results) >= MAX_ROWS:
                        raise ProviderError(f"line {line}: more than {MAX_ROWS} rows; split the file", line=line)
                    else:
                        results.append(_result(row, columns, line))
                line = reader.line_num + 1
        except csv.Error as exc:
            raise ProviderError(f"line {line}: not valid CSV ({exc})", line=line) from None
        if columns is None:
            raise ProviderError(f"line 1: the file is empty; expected the header {RESULT_HEADER}", line=1)
        return results


def _header(row: list[str], line: int) -> dict[str, int]:
    names = [cell.strip().lower() for cell in row]
    doubled = sorted({n for n in names if n and names.count(n) > 1})
    if doubled:
        raise ProviderError(f"line {line}: the header names {', '.join(doubled)} twice", line=line)
    missing = [n for n in ("email", "event", "at") if n not in names]
    if missing:
        raise ProviderError(f"line {line}: the header lacks {', '.join(missing)} (expected {RESULT_HEADER})", line=line)
    return {n: i for i, n in enumerate(names) if n in ("email", "event", "at", "url", "id")}


def _result(row: list[str], columns: dict[str, int], line: int) -> ProviderResult:
    def bad(message: str) -> ProviderError:
        return ProviderError(f"line {line}: {message}", line=line)

    width = max(columns.values()) + 1
    if len(row) < width:
        raise bad(f"{len(row)} fields, but the header has {width}")
    cell = {name: row[i].strip() for name, i in columns.items()}
    try:
        email = validation.email(cell["email"])
    except validation.InvalidValue as exc:
        raise bad(f"email: {exc}") from None
    kind = _EVENTS.get(cell["event"].lower())
    if kind is None:
        raise bad(f"event {cell['event'][:40]!r} is not one of {', '.join(_EVENTS)}")
    try:
        at = datetime.fromisoformat(cell["at"])
    except ValueError:
        raise bad(f"at {cell['at'][:40]!r} is not an ISO 8601 time (e.g. 2026-11-22T09:30:00Z)") from None
    if at.tzinfo is None:
        raise bad(f"at {cell['at'][:40]!r} has no time zone (add Z for UTC, or an offset such as +01:00)")
    at = at.astimezone(UTC)
    url = cell.get("url") or None
    if url is not None and (len(url) > MAX_URL or not re.match(r"https?://[^\s/]+", url, re.IGNORECASE)):
        raise bad(f"url is not an http(s) address of at most {MAX_URL} characters")
    own = cell.get("id") or None
    if own is not None and len(own) > MAX_ID:
        raise bad(f"id has more than {MAX_ID} characters")
    external_id = own or "sha256:" + hashlib.sha256(
        "\x1f".join((email, kind, at.isoformat(), url or "")).encode()).hexdigest()
    return ProviderResult(external_id=external_id, email=email, kind=kind, at=at, url=url)


def builtin() -> list[MarketingProvider]:
    """The plugin's own providers, for its ``crm_marketing_providers`` hookimpl."""
    return [CsvProvider()]


# --- the services -----------------------------------------------------------------------------------


def _failed(field: str, code: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, code, message)])


def _provider(runtime: Any, name: str) -> MarketingProvider:
    found = runtime.providers.get(name)
    if found is None:
        known = ", ".join(sorted(runtime.providers)) or "none"
        raise _failed("provider", UNKNOWN_PROVIDER, f"No marketing provider is named {name!r} (known: {known}).")
    return found


async def export_segment(db: Any, runtime: Any, *, provider: str, segment_id: int) -> ExportedList:
    """The segment's members who may receive marketing mail (a primary email, OPTED_IN, not on
    the global suppression list), in ``provider``'s list format. A ``DomainError`` (its
    ``errors``: UNKNOWN_PROVIDER on ``provider``, NOT_FOUND, INVALID_FILTER or EMPTY_AUDIENCE on
    ``segmentId``, PROVIDER_FAILED on ``provider`` when the provider raised ``ProviderError``)."""
    chosen = _provider(runtime, provider)
    async with db.reader() as session:
        segment = await reads.get_segment(session, segment_id)
        if segment is None:
            raise NotFound("Segment", field="segmentId")
        try:
            members = await reads.members_select(session, segment)
        except FilterError as exc:
            raise _failed("segmentId", reads.INVALID_FILTER, f"The segment's filter no longer works: {exc}") from None
        stmt = (
            members.with_only_columns(Customer.id, Customer.display_name, Customer.first_name, Customer.last_name,
                                      CustomerEmail.address)
            .join_from(Customer, CustomerEmail,
                       sa.and_(CustomerEmail.customer_id == Customer.id, CustomerEmail.is_primary.is_(True)))
            .where(Customer.consent_status == ConsentStatus.OPTED_IN)
            .order_by(Customer.id)
        )
        rows = (await session.execute(stmt)).all()
        blocked = await engage.suppressed(session, {r.address for r in rows})
    audience = [
        AudienceMember(customer_id=ids.encode("Customer", r.id), email=normal(r.address), display_name=r.display_name,
                       first_name=r.first_name, last_name=r.last_name)
        for r in rows if normal(r.address) not in blocked
    ]
    if not audience:
        raise _failed("segmentId", EMPTY_AUDIENCE, "The segment has no member with a primary email address who is "
                      "opted in and not suppressed: there is nothing to export.")
    try:
        return await asyncio.to_thread(chosen.export_audience, segment.name, audience)
    except ProviderError as exc:
        raise _failed("provider", PROVIDER_FAILED, f"{provider}: {exc.message}") from None


@dataclass(frozen=True)
class ImportSummary:
    imported: int  # results recorded for the first time (``unknown`` ones included)
    repeated: int  # results recorded before (same external id): they changed nothing
    unknown: int  # recorded, but no customer has the address (no customer engagement, no event)
    suppressed: int  # addresses newly put on the suppression list


async def import_results(
    db: Any, runtime: Any, *, provider: str, campaign_id: int | None, content: bytes, actor: Actor = SYSTEM
) -> ImportSummary:
    """Record ``provider``'s report once per result, in one transaction: an engagement row each
    (on the customer with that address, and on the campaign's recipient when ``campaign_id`` is
    given), the suppression an unsubscribe, hard bounce or complaint causes, and the events the
    CRM's own tracking raises. A ``DomainError`` (UNKNOWN_PROVIDER on ``provider``,
    INVALID_RESULTS on ``content`` with the line and what is wrong, NOT_FOUND on ``campaignId``)
    writes nothing."""
    chosen = _provider(runtime, provider)
    try:
        results = await asyncio.to_thread(lambda: list(chosen.parse_results(content)))
    except ProviderError as exc:
        raise _failed("content", INVALID_RESULTS, exc.message) from None
    for number, result in enumerate(results, 1):
        if result.kind not in RESULT_KINDS or not isinstance(result.email, str) or "@" not in result.email \
                or not isinstance(result.external_id, str) or not result.external_id \
                or not isinstance(result.at, datetime) or result.at.tzinfo is None:
            raise _failed("content", INVALID_RESULTS, f"{provider} gave an unusable result (number {number}): "
                          "a kind of " + ", ".join(RESULT_KINDS) + ", an email, an external id and an aware time are needed")
    source = f"provider:{chosen.name}"
    async with db.writer() as session, session.begin():
        if campaign_id is not None and await session.get(Campaign, campaign_id) is None:
            raise NotFound("Campaign", field="campaignId")
        fresh = await _first_times(session, source, results)
        new: list[ProviderResult] = []
        for result in results:  # a row repeated within the file counts once
            if result.external_id[:300] in fresh:
                fresh.remove(result.external_id[:300])
                new.append(result)
        links = _Lookups(session, campaign_id)
        await links.load(new)
        rows: list[dict[str, Any]] = []
        unknown = 0
        wanted: dict[str, SuppressionReason] = {}
        for result in new:
            email = normal(result.email)
            customer_id = links.customers.get(email)
            unknown += customer_id is None
            detail = result.url or result.detail or None
            rows.append({"kind": EngagementKind[result.kind], "campaign_id": campaign_id,
                         "recipient_id": links.recipients.get(email), "customer_id": customer_id,
                         "link_id": links.urls.get(result.url or ""), "detail": detail and detail[:500], "at": result.at})
            if result.kind in SUPPRESSING:
                wanted.setdefault(email, SUPPRESSING[result.kind])
        if rows:
            await session.execute(sa.insert(Engagement), rows)
        newly = await _suppress_all(session, wanted, campaign_id, source)
        suppressed = len(newly)
        campaign = ids.encode("Campaign", campaign_id) if campaign_id is not None else None
        for result in new:
            email = normal(result.email)
            customer_id = links.customers.get(email)
            if customer_id is not None:
                # The result that put the address on the list says so (``data.suppressed``).
                first = result.kind in SUPPRESSING and email in newly
                if first:
                    newly.remove(email)
                _event(session, actor, links, result, customer_id, campaign, source, first)
    return ImportSummary(imported=len(new), repeated=len(results) - len(new), unknown=unknown, suppressed=suppressed)


async def _insert_new(session: Any, model: Any, keys: list[str], returning: Any, values: list[dict[str, Any]]) -> set[Any]:
    """INSERT ... ON CONFLICT (keys) DO NOTHING RETURNING, many rows per statement: what was new.
    A concurrent transaction inserting the same keys waits on them and then finds them taken."""
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert
    stmt = insert(model).on_conflict_do_nothing(index_elements=keys).returning(returning)
    out: set[Any] = set()
    for start in range(0, len(values), 5000):
        out.update(await session.scalars(stmt, values[start:start + 5000]))
    return out


async def _first_times(session: Any, source: str, results: list[ProviderResult]) -> set[str]:
    """``engage.first_time`` for a whole file: the external ids not seen before, each recorded now
    in the inbound table, many rows per statement (one row per statement, a file of 100,000 rows
    took a minute and a half on SQLite)."""
    wanted: dict[str, str] = {}
    for r in results:
        wanted.setdefault(r.external_id[:300], r.kind)
    now = utcnow()
    return await _insert_new(session, Inbound, ["source", "external_id"], Inbound.external_id, [
        {"source": source, "external_id": external_id, "kind": kind, "created_at": now} for external_id, kind in wanted.items()])


async def _suppress_all(session: Any, wanted: dict[str, SuppressionReason], campaign_id: int | None,
                        source: str) -> set[str]:
    """``engage.suppress`` for many addresses (on every list): those that were not suppressed
    before. An address already suppressed keeps its first reason."""
    now = utcnow()
    return await _insert_new(session, Suppression, ["email", "list_key"], Suppression.email, [
        {"email": email, "list_key": "", "reason": reason, "campaign_id": campaign_id,
         "detail": f"{source}: {reason.value.lower()}", "created_at": now} for email, reason in wanted.items()])


class _Lookups:
    """The customers, recipients and tracked links a batch of results names, read in chunks."""

    def __init__(self, session: Any, campaign_id: int | None) -> None:
        self.session, self.campaign_id = session, campaign_id
        self.customers: dict[str, int] = {}
        self.recipients: dict[str, int] = {}
        self.urls: dict[str, int] = {}
        self.opened: set[int] = set()  # customers with an open of the campaign before this import

    async def load(self, results: Iterable[ProviderResult]) -> None:
        results = list(results)
        emails = sorted({normal(r.email) for r in results})
        for part in _chunks(emails):
            found = await self.session.execute(
                sa.select(CustomerEmail.address, CustomerEmail.customer_id)
                .join(Customer, Customer.id == CustomerEmail.customer_id)
                .where(CustomerEmail.address.in_(part), Customer.deleted_at.is_(None))
                .order_by(CustomerEmail.is_primary.desc(), CustomerEmail.customer_id))
            for address, customer_id in found.all():
                self.customers.setdefault(address, customer_id)
        if self.campaign_id is None:
            return
        by_customer = {c: e for e, c in self.customers.items()}
        for part in _chunks(emails):
            found = await self.session.execute(
                sa.select(Recipient.email, Recipient.customer_id, Recipient.id)
                .where(Recipient.campaign_id == self.campaign_id,
                       sa.or_(Recipient.email.in_(part),
                              Recipient.customer_id.in_([self.customers[e] for e in part if e in self.customers]))))
            for email, customer_id, recipient_id in found.all():
                self.recipients.setdefault(normal(email), recipient_id)
                if customer_id in by_customer:
                    self.recipients.setdefault(by_customer[customer_id], recipient_id)
        urls = sorted({r.url for r in results if r.url and r.kind == "CLICKED"})
        for part in _chunks(urls):
            found = await self.session.execute(
                sa.select(Link.url, Link.id).where(Link.campaign_id == self.campaign_id, Link.url.in_(part)))
            self.urls.update({url: link_id for url, link_id in found.all()})
        customers = sorted(set(self.customers.values()))
        for part in _chunks(customers):
            self.opened.update(await self.session.scalars(
                sa.select(Engagement.customer_id).distinct()
                .where(Engagement.campaign_id == self.campaign_id, Engagement.kind == EngagementKind.OPENED,
                       Engagement.customer_id.in_(part))))


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _event(session: Any, actor: Actor, lookups: _Lookups, result: ProviderResult, customer_id: int,
           campaign: str | None, source: str, suppressed: bool) -> None:
    """The event the CRM's own tracking raises for the same engagement (opens: the first one of
    a campaign only; results without a campaign raise no open event)."""
    data: dict[str, Any] = {"campaign": campaign, "email": normal(result.email), "source": source}
    if result.kind == "OPENED":
        if campaign is None or customer_id in lookups.opened:
            return
        lookups.opened.add(customer_id)
        type_ = "marketing.opened"
    elif result.kind == "CLICKED":
        type_, data["url"] = "marketing.clicked", result.url
    elif result.kind == "UNSUBSCRIBED":
        type_, data["list"] = "marketing.unsubscribed", None
    else:
        type_ = "marketing.bounced"
        data["kind"] = {"BOUNCED": "HARD", "SOFT_BOUNCED": "SOFT", "COMPLAINED": "COMPLAINT"}[result.kind]
        data["suppressed"] = suppressed
    record_event(session, type=type_, entity_type="Customer", entity_id=customer_id, actor=actor, payload=data)
