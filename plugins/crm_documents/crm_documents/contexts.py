"""The context of each kind of document (docs/documents.md), built from the same service reads
the API uses, in the caller's scope: a record the caller may not read is not found.

``build(kind, session, pk, formatter, config, period)`` returns a ``Built``: the context, the
record's version (what makes a document "the same" as one made before), the customer it is
about and the number that names the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_documents.config import DocumentSettings
from crm_documents.formatting import Formatter
from crm_documents.models import DocumentKind
from crm_graph.core.clock import utcnow
from crm_graph.core.documents import Image
from crm_graph.customers.service import read as customers
from crm_graph.sales.service import orders as order_service
from crm_graph.sales.service import quotes as quote_service
from crm_graph.sales.service import reports
from crm_graph.segments.service import analyses
from crm_graph.support.models import Ticket, TicketStatus

# What each kind is made from: the entity's type name (as global IDs and events name it).
ENTITY_OF_KIND: dict[DocumentKind, str] = {
    DocumentKind.QUOTE: "Quote",
    DocumentKind.ORDER_CONFIRMATION: "Order",
    DocumentKind.INVOICE: "Order",
    DocumentKind.CONTRACT: "Order",
    DocumentKind.REPORT: "Pipeline",
}

COMMON = frozenset({"document", "labels", "seller", "customer"})
# The names a template of each kind may read; a template reading another is refused on upload.
VARIABLES: dict[DocumentKind, frozenset[str]] = {
    DocumentKind.QUOTE: COMMON | {"quote", "lines", "has_discount"},
    DocumentKind.ORDER_CONFIRMATION: COMMON | {"order", "lines", "has_discount"},
    DocumentKind.INVOICE: COMMON | {"order", "invoice", "lines", "has_discount"},
    DocumentKind.CONTRACT: COMMON | {"order", "contract", "terms", "annexes", "lines", "has_discount"},
    DocumentKind.REPORT: frozenset({"document", "labels", "seller", "report", "pipeline", "rfm", "tickets"}),
}


class NotFound(Exception):
    """The record does not exist, or the caller may not read it (the two look alike)."""


@dataclass
class Built:
    context: dict[str, Any]
    version: str
    customer_id: int | None
    number: str


def seller(config: DocumentSettings) -> dict[str, Any]:
    logo = None
    if config.seller_logo:
        try:
            logo = Image(Path(config.seller_logo).expanduser().read_bytes())
        except OSError:
            logo = None  # a logo that went missing leaves the documents without one
    return {
        "name": config.seller_name,
        "address_lines": [line.strip() for line in config.seller_address.split("|") if line.strip()],
        "email": config.seller_email, "phone": config.seller_phone, "vat_id": config.seller_vat_id,
        "bank": config.seller_bank, "website": config.seller_website, "logo": logo,
    }


async def _customer(session: AsyncSession, customer_id: int, fmt: Formatter, stored_address: dict[str, Any] | None,
                    name: str | None = None) -> dict[str, Any]:
    customer = await customers.get_customer(session, customer_id, include_deleted=True)
    emails = (await customers.emails_for(session, [customer_id])).get(customer_id, [])
    phones = (await customers.phones_for(session, [customer_id])).get(customer_id, [])
    address: dict[str, Any] | None = None
    if stored_address:  # the address the quote was made out to
        address = {"line1": stored_address.get("line1"), "line2": stored_address.get("line2"),
                   "postal_code": stored_address.get("postalCode"), "city": stored_address.get("city"),
                   "region": stored_address.get("region"), "country": stored_address.get("country")}
    else:
        rows = (await customers.addresses_for(session, [customer_id])).get(customer_id, [])
        primary = next((a for a in rows if a.is_primary), rows[0] if rows else None)
        if primary is not None:
            address = {"line1": primary.line1, "line2": primary.line2, "postal_code": primary.postal_code,
                       "city": primary.city, "region": primary.region, "country": primary.country}

    def first(rows: Sequence[Any], attr: str) -> str:
        chosen = next((r for r in rows if r.is_primary), rows[0] if rows else None)
        return getattr(chosen, attr) if chosen is not None else ""

    country = (address or {}).get("country") or (customer.country if customer else None)
    return {
        "name": name or (customer.display_name if customer else ""),
        "email": first(emails, "address"),
        "phone": first(phones, "number"),
        "address_lines": fmt.address_lines(address),
        "country": fmt.country(country),
        "vat_id": "",
        "locale": customer.locale if customer else None,
    }


def _lines(rows: Sequence[Any], currency: str, fmt: Formatter) -> list[dict[str, Any]]:
    return [
        {
            "position": i + 1,
            "sku": getattr(li, "sku", None) or "",
            "description": li.description,
            "quantity": fmt.number(li.quantity),
            "unit_price": fmt.money(li.unit_price, currency),
            "discount_percent": fmt.percent(li.discount_percent) if li.discount_percent else "",
            "discount": fmt.money(li.discount, currency) if li.discount else "",
            "subtotal": fmt.money(li.subtotal, currency),
            "total": fmt.money(li.total, currency),
            "quantity_amount": li.quantity,
            "unit_price_amount": li.unit_price,
            "total_amount": li.total,
        }
        for i, li in enumerate(sorted(rows, key=lambda r: r.position))
    ]


def _head(kind: DocumentKind, number: str, fmt: Formatter, config: DocumentSettings) -> dict[str, Any]:
    labels = fmt.labels()
    return {
        "document": {"kind": kind.value, "title": labels[kind.value.lower()], "number": number,
                     "date": fmt.date(utcnow().date()), "locale": str(fmt.locale)},
        "labels": labels,
        "seller": seller(config),
    }


async def quote_context(session: AsyncSession, pk: int, fmt: Formatter, config: DocumentSettings) -> Built:
    quote = await quote_service.get_quote(session, pk)
    if quote is None:
        raise NotFound
    lines = _lines((await quote_service.lines_for(session, [pk])).get(pk, []), quote.currency, fmt)
    c = quote.currency
    context = {
        **_head(DocumentKind.QUOTE, quote.number, fmt, config),
        "customer": await _customer(session, quote.customer_id, fmt, quote.billing_address, quote.customer_name),
        "quote": {
            "number": quote.number, "status": quote_service.effective_status(quote).value, "currency": c,
            "created": fmt.date(quote.created_at), "valid_until": fmt.date(quote.valid_until),
            "valid_until_on": quote.valid_until,
            "subtotal": fmt.money(quote.subtotal, c), "discount": fmt.money(quote.discount, c),
            "tax_rate": fmt.percent(quote.tax_rate), "tax": fmt.money(quote.tax, c), "total": fmt.money(quote.total, c),
            "total_amount": quote.total,
        },
        "lines": lines,
        "has_discount": any(line["discount"] for line in lines),
    }
    return Built(context, str(quote.version), quote.customer_id, quote.number)


async def _order_context(session: AsyncSession, pk: int, kind: DocumentKind, fmt: Formatter,
                         config: DocumentSettings) -> tuple[dict[str, Any], Any]:
    order = await order_service.get_order(session, pk)
    if order is None:
        raise NotFound
    lines = _lines((await order_service.lines_for(session, [pk])).get(pk, []), order.currency, fmt)
    c = order.currency
    context = {
        **_head(kind, order.number, fmt, config),
        "customer": await _customer(session, order.customer_id, fmt, None),
        "order": {
            "number": order.number, "status": order.status.value, "currency": c, "ordered": fmt.date(order.ordered_at),
            "ordered_on": order.ordered_at.date(),
            "subtotal": fmt.money(order.subtotal, c), "discount": fmt.money(order.discount, c),
            "tax_rate": fmt.percent(order.tax_rate), "tax": fmt.money(order.tax, c), "total": fmt.money(order.total, c),
            "paid": fmt.money(order.paid_amount, c), "balance": fmt.money(order.total - order.paid_amount, c),
            "payment_status": order.payment_status.value, "total_amount": order.total,
        },
        "lines": lines,
        "has_discount": any(line["discount"] for line in lines),
    }
    return context, order


async def order_context(session: AsyncSession, pk: int, kind: DocumentKind, fmt: Formatter,
                        config: DocumentSettings) -> Built:
    context, order = await _order_context(session, pk, kind, fmt, config)
    issued = order.ordered_at.date()
    terms = fmt.phrase("payment_terms", days=config.payment_days)
    if kind is DocumentKind.INVOICE:
        context["invoice"] = {"number": order.number, "issued": fmt.date(issued),
                              "due": fmt.date(issued + timedelta(days=config.payment_days)), "payment_terms": terms}
    elif kind is DocumentKind.CONTRACT:
        context["contract"] = {"number": order.number, "date": fmt.date(issued), "effective": fmt.date(issued),
                               "currency": order.currency, "total": context["order"]["total"], "payment_terms": terms}
        context["terms"] = [
            {"number": i + 1, "heading": heading, "text": text.format(days=config.payment_days)}
            for i, (heading, text) in enumerate(fmt.phrase("terms"))
        ]
        context["annexes"] = [{"letter": "A", "title": fmt.phrase("price_schedule"), "lines": context["lines"]}]
    return Built(context, str(order.version), order.customer_id, order.number)


async def ticket_figures(session: AsyncSession, start: datetime, end: datetime) -> dict[str, Any]:
    """Tickets opened and resolved in [start, end), open now, breached among those opened, and
    the average hours to first response and to resolution of those opened (in SQL)."""
    opened_in = sa.and_(Ticket.created_at >= start, Ticket.created_at < end)
    hours = 3600.0
    if session.bind.dialect.name == "postgresql":
        def span(a: Any, b: Any) -> Any:
            return sa.func.extract("epoch", b - a)
    else:
        def span(a: Any, b: Any) -> Any:
            return (sa.func.julianday(b) - sa.func.julianday(a)) * 86400.0
    row = (await session.execute(sa.select(
        sa.func.count().filter(opened_in),
        sa.func.count().filter(sa.and_(Ticket.resolved_at >= start, Ticket.resolved_at < end)),
        sa.func.count().filter(Ticket.status.not_in([TicketStatus.RESOLVED, TicketStatus.CLOSED])),
        sa.func.count().filter(opened_in, sa.or_(Ticket.first_response_breached_at.is_not(None),
                                                 Ticket.resolution_breached_at.is_not(None))),
        sa.func.avg(span(Ticket.created_at, Ticket.first_responded_at)).filter(opened_in),
        sa.func.avg(span(Ticket.created_at, Ticket.resolved_at)).filter(opened_in),
    ))).one()

    def avg_hours(seconds: Any) -> Decimal | None:
        return None if seconds is None else (Decimal(str(seconds)) / Decimal(str(hours))).quantize(Decimal("0.1"))

    return {"opened": row[0], "resolved": row[1], "open": row[2], "breached": row[3],
            "average_first_response_hours": avg_hours(row[4]), "average_resolution_hours": avg_hours(row[5])}


async def report_context(session: AsyncSession, pk: int, fmt: Formatter, config: DocumentSettings,
                         period: tuple[date | None, date | None]) -> Built:
    date_from, date_to = period
    summary = await reports.pipeline_summary(session, pipeline_id=pk, date_from=date_from, date_to=date_to, currency=None)
    if summary is None:
        raise NotFound
    today = utcnow().date()
    ticket_to = date_to or today
    ticket_from = date_from or ticket_to - timedelta(days=29)
    labels = fmt.labels()
    stages = [
        {"name": s.stage.name if s.stage else "", "probability": s.stage.probability if s.stage else 0,
         "count": s.count, "amount": s.amount, "weighted": s.weighted}
        for s in summary.stages
    ]
    analysis = await analyses.rfm_analysis(session, as_of=ticket_to, currency=summary.currency) if summary.currency else None
    cells = [{"recency": c.recency_score, "frequency": c.frequency_score, "customers": c.customers}
             for c in (analysis.grid if analysis else [])]
    by_cell = {(c["recency"], c["frequency"]): c["customers"] for c in cells}
    rows = [{"recency": r, **{f"f{f}": by_cell.get((r, f), 0) for f in range(1, 6)}} for r in range(5, 0, -1)]
    tickets = await ticket_figures(session, datetime.combine(ticket_from, time(), UTC),
                                   datetime.combine(ticket_to + timedelta(days=1), time(), UTC))
    context = {
        "document": {"kind": "REPORT", "title": labels["report"], "number": summary.pipeline.name,
                     "date": fmt.date(today), "locale": str(fmt.locale)},
        "labels": labels,
        "seller": seller(config),
        "report": {"title": f"{labels['report']}: {summary.pipeline.name}",
                   "period_from": fmt.date(date_from) if date_from else "", "period_to": fmt.date(date_to) if date_to else "",
                   "period_from_on": date_from, "period_to_on": date_to, "currency": summary.currency or ""},
        "pipeline": {
            "name": summary.pipeline.name, "stages": stages,
            "open_count": summary.open.count, "open_amount": summary.open.amount, "weighted_amount": summary.open.weighted,
            "won_count": summary.won.count, "won_amount": summary.won.amount, "lost_count": summary.lost_count,
            "win_rate": summary.win_rate,
        },
        "rfm": {"cells": cells, "rows": rows},
        "tickets": tickets,
    }
    # A report has no version of its own: the same figures make the same document.
    figures = json.dumps({k: context[k] for k in ("report", "pipeline", "rfm", "tickets")}, default=str, sort_keys=True)
    version = hashlib.sha256(f"{today}|{figures}".encode()).hexdigest()[:32]
    return Built(context, version, None, summary.pipeline.name)


async def build(kind: DocumentKind, session: AsyncSession, pk: int, fmt: Formatter, config: DocumentSettings,
                period: tuple[date | None, date | None] = (None, None)) -> Built:
    if kind is DocumentKind.QUOTE:
        return await quote_context(session, pk, fmt, config)
    if kind is DocumentKind.REPORT:
        return await report_context(session, pk, fmt, config, period)
    return await order_context(session, pk, kind, fmt, config)


async def customer_locale(session: AsyncSession, kind: DocumentKind, pk: int) -> str | None:
    """The locale of the customer a record is about (None for reports, or without one)."""
    if kind is DocumentKind.REPORT:
        return None
    entity = (await quote_service.get_quote(session, pk) if kind is DocumentKind.QUOTE
              else await order_service.get_order(session, pk))
    if entity is None:
        raise NotFound
    customer = await customers.get_customer(session, entity.customer_id, include_deleted=True)
    return customer.locale if customer is not None else None


__all__ = ["ENTITY_OF_KIND", "VARIABLES", "Built", "NotFound", "build", "customer_locale"]
