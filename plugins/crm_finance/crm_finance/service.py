"""Finance connections, pushing orders to the books, payments back and reconciliation. No GraphQL.

Which side owns what: the CRM owns the order (customer, lines, amounts, status) and pushes it;
the books own the invoice's number and its payments, which the CRM reads back. Nothing pushed is
ever deleted remotely: a cancelled or refunded order is reversed (a credit note, a reversing
entry).

A push is at least once and safe to repeat: the backend looks the order number up in the books
before it books anything, so a retry after an unknown outcome (a timeout after sending, a dropped
answer) finds the first invoice. What to do is decided from the order as it is when the push
runs, not from the event that asked for it, so late or repeated deliveries do the right thing.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_finance.models import FinanceConnection, InboundPayment, OrderSync, SyncStatus
from crm_graph.core import ids
from crm_graph.core.sealed import SealedError, seal, unseal
from crm_graph.core.accounting import (
    AccountingBackend,
    AccountingConnection,
    AccountingError,
    InvoiceLine,
    InvoiceRequest,
    Party,
    RemoteInvoice,
)
from crm_graph.core.actor import SYSTEM, Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import DomainError, ErrorCollector, FieldError, NotFound, ValidationFailed
from crm_graph.core.events import record_event, register_event_type
from crm_graph.customers.service import read as customers
from crm_graph.plugins import collect_by_key
from crm_graph.sales.models import Order, OrderStatus
from crm_graph.sales.service import orders as order_service
from crm_graph.settings import Settings, env_values

log = logging.getLogger("crm_finance")

INVALID_VALUE = "INVALID_VALUE"
REQUIRED = "REQUIRED"
DUPLICATE = "DUPLICATE"
UNKNOWN_BACKEND = "UNKNOWN_BACKEND"
REVERSED = (OrderStatus.CANCELLED, OrderStatus.REFUNDED)

register_event_type("finance_sync.requested", "Someone asked for an order's finance sync to be tried again (`retryFinanceSync`).")
register_event_type("finance_sync.synced", "An order reached the books (`data.connection`, `data.remoteId`, `data.remoteNumber`).")
register_event_type("finance_sync.failed", "Pushing an order to the books failed (`data.lastError`); it is retried with backoff.")
register_event_type("finance_sync.cancelled", "A cancelled or refunded order's invoice was reversed in the books.")


@dataclass(frozen=True)
class FinanceSettings:
    # Seconds between two reads of payments from each connection's books (0: only on demand,
    # `crm-graph finance pull` or `pullFinancePayments`).
    pull_interval: float = 300.0


def finance_settings(environ: Mapping[str, str] | None = None) -> FinanceSettings:
    values = env_values(FinanceSettings, "CRM_FINANCE_", os.environ if environ is None else environ)
    config = FinanceSettings(**values)  # type: ignore[arg-type]
    if config.pull_interval < 0:
        raise ValueError("CRM_FINANCE_PULL_INTERVAL must be 0 (off) or a number of seconds")
    return config


def backends_of(plugins: Any) -> dict[str, AccountingBackend]:
    """The backends plugins register, by name; two of one name stop start-up."""
    return collect_by_key(plugins, "crm_accounting_backends", protocol=AccountingBackend, key=lambda b: b.name,
                          what=lambda name: f"accounting backend {name!r}")


# --- credentials ---------------------------------------------------------------------------------


SEAL_PURPOSE = "crm_finance credentials"


def split_secrets(backend: AccountingBackend, config: Mapping[str, Any], errors: ErrorCollector
                  ) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(config without credentials, credentials given, credentials' environment variables)."""
    plain = dict(config)
    given: dict[str, str] = {}
    env: dict[str, str] = {}
    for key in sorted(backend.secret_keys):
        value, env_name = plain.pop(key, None), plain.pop(f"{key}Env", None)
        if value is not None and env_name is not None:
            errors.add(f"config.{key}", INVALID_VALUE, f"Give {key} or {key}Env, not both.")
        elif value is not None:
            if not isinstance(value, str) or not value:
                errors.add(f"config.{key}", INVALID_VALUE, f"{key} is a non-empty string.")
            else:
                given[key] = value
        elif env_name is not None:
            if not isinstance(env_name, str) or not env_name.replace("_", "").isalnum():
                errors.add(f"config.{key}Env", INVALID_VALUE, f"{key}Env names an environment variable, e.g. TRYTON_PASSWORD.")
            else:
                env[key] = env_name
    return plain, given, env


def secrets_of(settings: Settings, connection: FinanceConnection) -> dict[str, str]:
    """The connection's credentials, decrypted or read from the environment now. Raises
    AccountingError(retry=False) when one cannot be had (a rotated secret key, a missing variable)."""
    out: dict[str, str] = {}
    if connection.secrets:
        try:
            out.update(unseal(settings, SEAL_PURPOSE, connection.secrets))
        except SealedError as exc:
            raise AccountingError(str(exc), retry=False) from exc
    for key, env_name in (connection.secret_env or {}).items():
        value = os.environ.get(env_name)
        if not value:
            raise AccountingError(f"The environment variable {env_name} (the {key}) is not set.", retry=False)
        out[key] = value
    return out


# --- connections ---------------------------------------------------------------------------------


def _statuses(values: Any, errors: ErrorCollector) -> list[str]:
    if values is None:
        return [OrderStatus.CONFIRMED.value]
    out = []
    for i, value in enumerate(values):
        name = getattr(value, "value", value)
        if name not in {s.value for s in OrderStatus} or name in {s.value for s in REVERSED}:
            errors.add(f"pushStatuses.{i}", INVALID_VALUE, "Push on PENDING, CONFIRMED or FULFILLED.")
        else:
            out.append(name)
    if not out and not errors.errors:
        errors.add("pushStatuses", REQUIRED, "Name at least one order status.")
    return out


async def create_connection(session: AsyncSession, *, actor: Actor, settings: Settings,
                            backends: Mapping[str, AccountingBackend], data: Mapping[str, Any]) -> FinanceConnection:
    errors = ErrorCollector()
    name = str(data.get("name") or "").strip()
    if not 1 <= len(name) <= 100:
        errors.add("name", INVALID_VALUE, "name is 1 to 100 characters.")
    backend = backends.get(str(data.get("backend") or ""))
    if backend is None:
        errors.add("backend", UNKNOWN_BACKEND, f"backend is one of: {', '.join(sorted(backends)) or 'none installed'}.")
    config = data.get("config")
    if not isinstance(config, Mapping):
        errors.add("config", INVALID_VALUE, "config is a JSON object.")
        config = {}
    statuses = _statuses(data.get("push_statuses"), errors)
    plain: dict[str, Any] = {}
    given: dict[str, str] = {}
    env: dict[str, str] = {}
    if backend is not None:
        plain, given, env = split_secrets(backend, config, errors)
        for key, message in backend.check_config({**plain, **dict.fromkeys(given, "x"), **dict.fromkeys(env, "x")}):
            errors.add(f"config.{key}", INVALID_VALUE, message)
    if name and await session.scalar(sa.select(FinanceConnection.id).where(FinanceConnection.name == name)) is not None:
        errors.add("name", DUPLICATE, f"There is a finance connection called {name!r} already.")
    errors.raise_if_any()
    assert backend is not None
    now = utcnow()
    connection = FinanceConnection(
        name=name, backend=backend.name, config=plain, secret_env=env, push_statuses=statuses, active=True,
        secrets=seal(settings, SEAL_PURPOSE, given) if given else None,
        created_at=now, updated_at=now,
    )
    session.add(connection)
    await session.flush()
    return connection


async def connections(session: AsyncSession, *, active: bool | None = None) -> list[FinanceConnection]:
    stmt = sa.select(FinanceConnection).order_by(FinanceConnection.id)
    if active is not None:
        stmt = stmt.where(FinanceConnection.active.is_(active))
    return list(await session.scalars(stmt))


async def connection_by_ref(session: AsyncSession, ref: str | int) -> FinanceConnection | None:
    """A connection by id, global ID or name."""
    if isinstance(ref, int):
        return await session.get(FinanceConnection, ref)
    try:
        return await session.get(FinanceConnection, ids.decode_as(ref, "FinanceConnection"))
    except ValueError:
        return await session.scalar(sa.select(FinanceConnection).where(FinanceConnection.name == ref))


# --- pushing orders ------------------------------------------------------------------------------


async def invoice_of(session: AsyncSession, order: Order) -> InvoiceRequest:
    lines = (await order_service.lines_for(session, [order.id])).get(order.id, [])
    customer = await customers.get_customer(session, order.customer_id, include_deleted=True)
    emails = (await customers.emails_for(session, [order.customer_id])).get(order.customer_id, [])
    addresses = (await customers.addresses_for(session, [order.customer_id])).get(order.customer_id, [])
    address = next((a for a in addresses if a.is_primary), addresses[0] if addresses else None)
    party = Party(
        reference=f"CRM-C-{order.customer_id}",
        name=customer.display_name if customer else f"Customer {order.customer_id}",
        email=next((e.address for e in emails if e.is_primary), emails[0].address if emails else None),
        address_lines=tuple(p for p in ((address.line1, address.line2, " ".join(x for x in (address.postal_code, address.city) if x))
                                        if address else ()) if p),
        country=address.country if address else (customer.country if customer else None),
    )
    return InvoiceRequest(
        reference=order.number, party=party, currency=order.currency, issued=order.ordered_at.date(),
        lines=[InvoiceLine(li.description, li.quantity, li.unit_price, li.total) for li in sorted(lines, key=lambda li: li.position)],
        net=order.subtotal - order.discount, tax_rate=order.tax_rate, tax=order.tax, total=order.total,
    )


async def _sync_row(session: AsyncSession, order_id: int, connection_id: int) -> OrderSync:
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    now = utcnow()
    await session.execute(dialect.insert(OrderSync).values(
        order_id=order_id, connection_id=connection_id, status=SyncStatus.PENDING, attempts=0, unapplied=Decimal(0),
        updated_at=now).on_conflict_do_nothing(index_elements=["order_id", "connection_id"]))
    row = await session.scalar(sa.select(OrderSync).where(OrderSync.order_id == order_id, OrderSync.connection_id == connection_id)
                               .with_for_update())
    assert row is not None
    return row


@dataclass
class Outcome:
    status: SyncStatus | None  # None: nothing to do for this order (a status that does not push)
    error: AccountingError | None = None
    busy: bool = False  # another worker is syncing this order with these books now


# Seconds a worker holds an order's sync while it talks to the books; one that dies leaves the
# lease to run out, then the next try goes ahead (and finds in the books what the first did).
SYNC_LEASE = 180.0


def _payload(row: OrderSync, connection: FinanceConnection, order: Order) -> dict[str, Any]:
    return {"orderId": order.id, "orderNumber": order.number, "connection": connection.name, "status": row.status.value,
            "remoteId": row.remote_id, "remoteNumber": row.remote_number, "lastError": row.last_error, "attempts": row.attempts}


async def sync_order(db: Any, settings: Settings, backends: Mapping[str, AccountingBackend], order_id: int,
                     connection_id: int) -> Outcome:
    """Bring one order's invoice in one set of books up to date with the order as it is now."""
    async with db.reader() as session:
        connection = await session.get(FinanceConnection, connection_id)
        order = await order_service.get_order(session, order_id)
        if connection is None or order is None or not connection.active:
            return Outcome(None)
        existing = await session.scalar(sa.select(OrderSync).where(OrderSync.order_id == order_id, OrderSync.connection_id == connection_id))
        reverse = order.status in REVERSED
        if reverse and existing is None:
            return Outcome(None)  # never pushed: nothing to reverse
        if not reverse and order.status.value not in connection.push_statuses:
            return Outcome(None)
        invoice = None if reverse else await invoice_of(session, order)
    async with db.writer() as session, session.begin():
        row = await _sync_row(session, order_id, connection_id)
        now = utcnow()
        if row.lease_until is not None and row.lease_until > now:
            return Outcome(row.status, busy=True)
        row.lease_until = now + timedelta(seconds=SYNC_LEASE)
    backend = backends.get(connection.backend)
    remote: RemoteInvoice | None = None
    error: AccountingError | None = None
    client: AccountingConnection | None = None
    try:
        if backend is None:
            raise AccountingError(f"The {connection.backend} backend is not installed (a blocked plugin?).", retry=True)
        client = backend.connect(connection.config, secrets_of(settings, connection))
        if reverse:
            remote = await client.cancel_invoice(order.number, f"Order {order.number} {order.status.value.lower()}")
        else:
            assert invoice is not None
            remote = await client.post_invoice(invoice)
    except AccountingError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - a backend's bug fails this sync, not the worker
        log.exception("finance connection %s: %s failed on order %s", connection.name, connection.backend, order.number)
        error = AccountingError(f"{type(exc).__name__} in the {connection.backend} backend", retry=True)
    finally:
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001
                log.exception("closing the %s connection failed", connection.backend)
    now = utcnow()
    async with db.writer() as session, session.begin():
        row = await _sync_row(session, order_id, connection_id)
        row.attempts += 1
        row.updated_at, row.lease_until = now, None
        if error is not None:
            row.status, row.last_error = SyncStatus.FAILED, error.message[:2000]
            event = "finance_sync.failed"
        elif reverse:
            row.status, row.cancelled_at, row.last_error = SyncStatus.CANCELLED, now, None
            if remote is not None:
                row.remote_id = row.remote_id or remote.remote_id
            event = "finance_sync.cancelled"
        else:
            assert remote is not None
            row.status, row.last_error, row.synced_at = SyncStatus.SYNCED, None, now
            row.remote_id, row.remote_number = remote.remote_id, remote.number
            event = "finance_sync.synced"
        await session.flush()
        record_event(session, type=event, entity_type="Order", entity_id=order_id, actor=SYSTEM,
                     payload=_payload(row, connection, order))
        status = row.status
    return Outcome(status, error)


async def request_retry(session: AsyncSession, *, actor: Actor, order_id: int, connection_ref: str | None) -> list[OrderSync]:
    """``retryFinanceSync``: the order's syncs (of one connection, or all) go again through the outbox."""
    order = await order_service.get_order(session, order_id)
    if order is None:
        raise NotFound("The order", "orderId")
    wanted = await connections(session, active=True)
    if connection_ref is not None:
        found = await connection_by_ref(session, connection_ref)
        if found is None:
            raise NotFound("The finance connection", "connectionId")
        wanted = [found]
    if not wanted:
        raise ValidationFailed([FieldError("connectionId", REQUIRED, "There is no active finance connection.")])
    rows = []
    for connection in wanted:
        row = await _sync_row(session, order_id, connection.id)
        if row.status is not SyncStatus.SYNCED or order.status in REVERSED:
            row.status = SyncStatus.CANCELLED if row.status is SyncStatus.CANCELLED else SyncStatus.PENDING
        rows.append(row)
    record_event(session, type="finance_sync.requested", entity_type="Order", entity_id=order_id, actor=actor,
                 payload={"orderId": order_id, "orderNumber": order.number, "connections": [c.name for c in wanted]})
    return rows


async def syncs_for(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, list[OrderSync]]:
    out: dict[int, list[OrderSync]] = defaultdict(list)
    for row in await session.scalars(sa.select(OrderSync).where(OrderSync.order_id.in_(order_ids)).order_by(OrderSync.connection_id)):
        out[row.order_id].append(row)
    return out


async def connections_by_ids(session: AsyncSession, pks: Sequence[int]) -> dict[int, FinanceConnection]:
    return {c.id: c for c in await session.scalars(sa.select(FinanceConnection).where(FinanceConnection.id.in_(pks)))}


async def unsynced_orders(session: AsyncSession, connection: FinanceConnection) -> list[int]:
    """Orders in a pushing status with no SYNCED invoice in these books, and reversed orders whose
    invoice is not reversed yet (what ``crm-graph finance sync`` catches up)."""
    synced = sa.select(OrderSync.order_id).where(OrderSync.connection_id == connection.id)
    push = sa.select(Order.id).where(Order.status.in_([OrderStatus(s) for s in connection.push_statuses]),
                                     Order.id.not_in(synced.where(OrderSync.status == SyncStatus.SYNCED)))
    reverse = sa.select(Order.id).where(Order.status.in_(REVERSED), Order.id.in_(
        synced.where(OrderSync.status.not_in([SyncStatus.CANCELLED]))))
    return sorted(set(await session.scalars(push)) | set(await session.scalars(reverse)))


# --- payments back -------------------------------------------------------------------------------


@dataclass
class PullResult:
    seen: int = 0
    applied: int = 0
    already: int = 0
    unmatched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


async def pull_payments(db: Any, settings: Settings, backends: Mapping[str, AccountingBackend], connection_id: int) -> PullResult:
    """Read payments since the connection's checkpoint and apply each new one to its order once."""
    async with db.reader() as session:
        connection = await session.get(FinanceConnection, connection_id)
    if connection is None:
        raise NotFound("The finance connection", "connectionId")
    backend = backends.get(connection.backend)
    if backend is None:
        raise AccountingError(f"The {connection.backend} backend is not installed.", retry=True)
    client = backend.connect(connection.config, secrets_of(settings, connection))
    result = PullResult()
    try:
        page = await client.payments_since(connection.payments_checkpoint)
    except AccountingError as exc:
        async with db.writer() as session, session.begin():
            await session.execute(sa.update(FinanceConnection).where(FinanceConnection.id == connection_id)
                                  .values(last_pull_at=utcnow(), last_pull_error=exc.message[:2000]))
        raise
    finally:
        await client.aclose()
    for payment in page.payments:
        result.seen += 1
        outcome = await _apply_payment(db, connection, payment)
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
        if outcome == "SEEN":
            result.already += 1
        elif outcome in ("APPLIED", "OVERPAID"):
            result.applied += 1
        else:
            result.unmatched += 1
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(FinanceConnection).where(FinanceConnection.id == connection_id).values(
            payments_checkpoint=page.checkpoint, last_pull_at=utcnow(), last_pull_error=None))
    return result


async def _apply_payment(db: Any, connection: FinanceConnection, payment: Any) -> str:
    """Record one payment from the books: the inbound row first (unique on the books' id), then
    the order's payment through the core's idempotent ``record_payment``, in one transaction."""
    async with db.writer() as session, session.begin():
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        now = utcnow()
        inserted = await session.execute(dialect.insert(InboundPayment).values(
            connection_id=connection.id, external_id=payment.external_id, reference=payment.reference, amount=payment.amount,
            currency=payment.currency, applied=Decimal(0), outcome="PENDING", paid_at=payment.paid_at, recorded_at=now,
        ).on_conflict_do_nothing(index_elements=["connection_id", "external_id"]))
        if inserted.rowcount == 0:
            return "SEEN"
        order = await session.scalar(sa.select(Order).where(Order.number == payment.reference).with_for_update())
        outcome, applied = "APPLIED", Decimal(0)
        if order is None:
            outcome = "UNKNOWN_ORDER"
        elif order.currency != payment.currency:
            outcome = "CURRENCY_MISMATCH"
        elif order.status in REVERSED:
            outcome = "ORDER_CLOSED"
        else:
            balance = order.total - order.paid_amount
            applied = min(payment.amount, balance)
            if applied < payment.amount:
                outcome = "OVERPAID"
            if applied > 0:
                try:
                    async with session.begin_nested():
                        await order_service.record_payment(session, actor=SYSTEM, data={
                            "orderId": order.id, "amount": {"amount": applied, "currency": payment.currency},
                            "paidAt": payment.paid_at,
                            "externalRef": {"system": f"finance:{connection.name}", "externalId": payment.external_id}})
                except DomainError as exc:
                    outcome, applied = "REFUSED", Decimal(0)
                    log.warning("payment %s for %s refused: %s", payment.external_id, payment.reference,
                                "; ".join(e.message for e in exc.errors))
            if payment.amount > applied and outcome == "OVERPAID":
                row = await _sync_row(session, order.id, connection.id)
                row.unapplied += payment.amount - applied
                row.updated_at = now
        await session.execute(sa.update(InboundPayment).where(
            InboundPayment.connection_id == connection.id, InboundPayment.external_id == payment.external_id,
        ).values(order_id=order.id if order is not None else None, applied=applied, outcome=outcome))
        return outcome


# --- reconciliation ------------------------------------------------------------------------------


@dataclass
class Mismatch:
    reference: str
    order_id: int | None
    problem: str  # "AMOUNT", "CURRENCY", "STATE"
    crm_total: Decimal | None
    crm_currency: str | None
    remote_total: Decimal | None
    remote_currency: str | None
    remote_state: str | None


@dataclass
class Reconciliation:
    connection: FinanceConnection
    start: date
    end: date
    missing_remote: list[Order]
    missing_local: list[RemoteInvoice]
    mismatches: list[Mismatch]
    crm_totals: dict[str, Decimal]
    remote_totals: dict[str, Decimal]

    @property
    def clean(self) -> bool:
        return not (self.missing_remote or self.missing_local or self.mismatches)


async def reconcile(db: Any, settings: Settings, backends: Mapping[str, AccountingBackend], connection_ref: str | int,
                    start: date, end: date) -> Reconciliation:
    if start > end:
        raise ValidationFailed([FieldError("to", INVALID_VALUE, "`to` is on or after `from`.")])
    async with db.reader() as session:
        connection = await connection_by_ref(session, connection_ref)
        if connection is None:
            raise NotFound("The finance connection", "connectionId")
        pushed = [OrderStatus(s) for s in connection.push_statuses] + list(REVERSED)
        orders = list(await session.scalars(sa.select(Order).where(
            Order.ordered_at >= datetime.combine(start, time(), UTC),
            Order.ordered_at < datetime.combine(end + timedelta(days=1), time(), UTC),
            Order.status.in_(pushed)).order_by(Order.number)))
        reversed_never_pushed = set(await session.scalars(sa.select(Order.id).where(
            Order.id.in_([o.id for o in orders if o.status in REVERSED]),
            Order.id.not_in(sa.select(OrderSync.order_id).where(OrderSync.connection_id == connection.id)))))
    backend = backends.get(connection.backend)
    if backend is None:
        raise AccountingError(f"The {connection.backend} backend is not installed.", retry=True)
    client = backend.connect(connection.config, secrets_of(settings, connection))
    try:
        remote = list(await client.invoices(start, end))
    finally:
        await client.aclose()
    by_ref = {r.reference: r for r in remote if r.reference}
    local = {o.number: o for o in orders if o.id not in reversed_never_pushed}
    out = Reconciliation(connection, start, end, [], [], [], defaultdict(Decimal), defaultdict(Decimal))
    for number, order in local.items():
        if order.status not in REVERSED:
            out.crm_totals[order.currency] += order.total
        found = by_ref.get(number)
        if found is None:
            if order.status not in REVERSED:
                out.missing_remote.append(order)
            continue
        problem = None
        if found.currency != order.currency:
            problem = "CURRENCY"
        elif (order.status in REVERSED) != (found.state == "cancelled"):
            problem = "STATE"
        elif found.state != "cancelled" and found.total != order.total:
            problem = "AMOUNT"
        if problem:
            out.mismatches.append(Mismatch(number, order.id, problem, order.total, order.currency, found.total, found.currency, found.state))
    for r in remote:
        if r.state != "cancelled":
            out.remote_totals[r.currency] += r.total
        if not r.reference or r.reference not in local:
            out.missing_local.append(r)
    out.crm_totals, out.remote_totals = dict(out.crm_totals), dict(out.remote_totals)
    return out

