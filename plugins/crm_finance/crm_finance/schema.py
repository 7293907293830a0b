"""GraphQL of the finance plugin: connections, each order's sync records, retries, payments pulled
on demand and the reconciliation report. Thin: the work is in service.py."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_finance import service
from crm_finance.models import FinanceConnection as ConnectionModel
from crm_finance.models import OrderSync as SyncModel
from crm_finance.models import SyncStatus as SyncStatusModel
from crm_finance.subscriber import subscriber_of
from crm_graph.core import ids
from crm_graph.core.accounting import AccountingError
from crm_graph.core.errors import DomainError
from crm_graph.core.extensions import NodeType, TypeExtension
from crm_graph.domains import SchemaPart
from crm_graph.graphql.access import mutation, query
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import ClientError, UserError, user_errors
from crm_graph.graphql.money import Money
from crm_graph.graphql.mutations import after_commit, unit_of_work
from crm_graph.graphql.relay import Node, encode_global_id
from crm_graph.sales.models import OrderStatus as OrderStatusModel
from crm_graph.sales.schema import types as _sales_types  # noqa: F401 - gives OrderStatus its GraphQL definition first

FinanceSyncStatus = graphql_enum(
    SyncStatusModel,
    "Where an order is with one set of books.",
    {
        "PENDING": "To be pushed: waiting, being pushed, or waiting for a retry.",
        "SYNCED": "The books have the order's invoice.",
        "FAILED": "The last push failed (`lastError` says why); retried with backoff, then left for `retryFinanceSync`.",
        "CANCELLED": "The order was cancelled or refunded and its invoice reversed in the books.",
    },
    name="FinanceSyncStatus",
)


@strawberry.type(description="A set of books orders are pushed to and payments read from. Credentials are never shown.")
class FinanceConnection(Node):
    name: str = strawberry.field(description="Unique among the connections; `connectionId` arguments accept it too.")
    backend: str = strawberry.field(description="tryton, fava, hledger, or a partner's backend.")
    config: JSON = strawberry.field(description="The connection's settings, without its credentials.")
    credentials: list[str] = strawberry.field(description='How each credential is kept: "password: stored (encrypted)", '
                                              '"password: from $TRYTON_PASSWORD".')
    push_statuses: list[str] = strawberry.field(description="Order statuses that push an order to these books.")
    active: bool = strawberry.field(description="Whether orders are pushed to these books and payments read from them.")
    last_pull_at: datetime | None = strawberry.field(description="When payments were last read from the books (UTC); "
                                                     "null if never.")
    last_pull_error: str | None = strawberry.field(description="Why the last read of payments failed; null when it "
                                                   "succeeded.")
    created_at: datetime = strawberry.field(description="When the connection was added (UTC).")

    @classmethod
    def from_model(cls, m: ConnectionModel) -> FinanceConnection:
        credentials = [f"{key}: from ${env}" for key, env in sorted((m.secret_env or {}).items())]
        if m.secrets:
            credentials.append("stored (encrypted)")
        return cls(id=encode_global_id("FinanceConnection", m.id), name=m.name, backend=m.backend, config=m.config,
                   credentials=credentials, push_statuses=list(m.push_statuses), active=m.active,
                   last_pull_at=m.last_pull_at, last_pull_error=m.last_pull_error, created_at=m.created_at)


@strawberry.type(description="An order's invoice in one set of books.")
class FinanceSync:
    status: FinanceSyncStatus = strawberry.field(description="Where the order is with these books.")  # type: ignore[valid-type]
    remote_id: str | None = strawberry.field(description="The invoice's (or entry's) id in the books.")
    remote_number: str | None = strawberry.field(description="The books' own invoice number, when they give one.")
    last_error: str | None = strawberry.field(description="The remote's answer to the last failed try.")
    attempts: int = strawberry.field(description="How many times the order has been pushed to these books, "
                                     "successful tries included.")
    synced_at: datetime | None = strawberry.field(description="When the books last took the invoice (UTC); null if never.")
    cancelled_at: datetime | None = strawberry.field(description="When the invoice was reversed in the books (UTC); null "
                                                     "unless CANCELLED.")
    unapplied: Money | None = strawberry.field(description="Paid in the books beyond the order's balance "
                                                       "(an overpayment): not applied to the order.")
    connection_pk: strawberry.Private[int]

    @strawberry.field(description="The set of books this is about.")
    async def connection(self, info: Info) -> FinanceConnection | None:
        found = await info.context.loader("crm_finance.connection", service.connections_by_ids).load(self.connection_pk)
        return FinanceConnection.from_model(found) if found is not None else None

    @classmethod
    def from_model(cls, m: SyncModel, currency: str | None = None) -> FinanceSync:
        return cls(status=m.status, remote_id=m.remote_id, remote_number=m.remote_number, last_error=m.last_error,
                   attempts=m.attempts, synced_at=m.synced_at, cancelled_at=m.cancelled_at, connection_pk=m.connection_id,
                   unapplied=Money.of(m.unapplied, currency or "") if m.unapplied else None)


@strawberry.type
class OrderFinance:
    @strawberry.field(description="The order's invoice in each set of books it was pushed to (one per finance connection).")
    async def finance_sync(self, info: Info) -> list[FinanceSync]:
        rows = await info.context.loader("crm_finance.syncs", service.syncs_for, list).load(self.pk)  # type: ignore[attr-defined]
        return [FinanceSync.from_model(r, getattr(self, "currency", None)) for r in rows]


@strawberry.input(description="A set of books. `config` is the backend's JSON: its URL, database, user and accounts; give "
                  "a credential as `password` (stored encrypted) or `passwordEnv` (the name of an environment variable the "
                  "server reads it from). See docs/finance.md.")
class CreateFinanceConnectionInput:
    name: str = strawberry.field(description="1 to 100 characters, unique among the connections (else DUPLICATE).")
    backend: str = strawberry.field(description="An installed backend: tryton, fava, hledger, or a partner's "
                                    "(else UNKNOWN_BACKEND).")
    config: JSON = strawberry.field(description="A JSON object of the backend's settings; errors name its keys "
                                    "(`config.url`).")
    push_statuses: list[OrderStatusModel] | None = strawberry.field(default=None, description="Order statuses that push "
                                                                    "an order (default: CONFIRMED).")


@strawberry.type(description="The result of `createFinanceConnection`.")
class FinanceConnectionPayload:
    finance_connection: FinanceConnection | None = strawberry.field(description="The new connection; null when `errors` "
                                                                    "is not empty.")
    errors: list[UserError]


@strawberry.type(description="The result of `retryFinanceSync`.")
class RetryFinanceSyncPayload:
    finance_sync: list[FinanceSync] = strawberry.field(description="The order's sync with each connection asked for, "
                                                       "as the retry left it; empty when `errors` is not.")
    errors: list[UserError]


@strawberry.type(description="What one pull of payments found.")
class FinancePullPayload:
    seen: int = strawberry.field(description="Payments the books reported since the last pull: applied + already + "
                                 "unmatched.")
    applied: int = strawberry.field(description="New payments recorded on their orders.")
    already: int = strawberry.field(description="Payments recorded before (seen again).")
    unmatched: int = strawberry.field(description="Payments for no CRM order, in another currency, or on a closed order.")
    errors: list[UserError]


@strawberry.type(description="A CRM order in a reconciliation.")
class ReconciliationOrder:
    number: str = strawberry.field(description="The order number, which is the invoice's reference in the books.")
    status: str = strawberry.field(description="The order's status (an OrderStatus value).")
    total: Money = strawberry.field(description="The order's total.")
    ordered_at: datetime = strawberry.field(description="When it was ordered (UTC).")
    order_id: strawberry.ID = strawberry.field(description="Global ID of the Order.")


@strawberry.type(description="An invoice in the books, in a reconciliation.")
class ReconciliationInvoice:
    reference: str = strawberry.field(description="Its CRM order number; empty when it has none.")
    remote_id: str = strawberry.field(description="The invoice's (or entry's) id in the books.")
    number: str | None = strawberry.field(description="The books' own invoice number, when they give one.")
    state: str = strawberry.field(description='As the backend reports it: "posted", "paid" or "cancelled" (reversed or '
                                  'credited).')
    total: Money = strawberry.field(description="The invoice's total in the books.")
    issued: date | None = strawberry.field(description="The invoice's date, when the books give one.")


@strawberry.type(description="An order and its invoice that disagree.")
class ReconciliationMismatch:
    reference: str = strawberry.field(description="The CRM order number both sides share.")
    problem: str = strawberry.field(description="AMOUNT, CURRENCY or STATE (cancelled on one side only).")
    crm_total: Money | None = strawberry.field(description="The order's total in the CRM.")
    remote_total: Money | None = strawberry.field(description="The invoice's total in the books.")
    remote_state: str | None = strawberry.field(description='The invoice\'s state in the books: "posted", "paid" or '
                                                '"cancelled".')


@strawberry.type(description="The CRM's orders against the books' invoices for a period.")
class FinanceReconciliation:
    connection: FinanceConnection = strawberry.field(description="The books compared with.")
    from_: date = strawberry.field(name="from", description="The period's first day (inclusive).")
    to: date = strawberry.field(description="The period's last day (inclusive).")
    missing_remote: list[ReconciliationOrder] = strawberry.field(description="CRM orders the books have no invoice for.")
    missing_local: list[ReconciliationInvoice] = strawberry.field(description="Invoices in the books with no CRM order.")
    mismatches: list[ReconciliationMismatch] = strawberry.field(description="Orders whose invoice has another amount, "
                                                                "currency or state.")
    crm_totals: list[Money] = strawberry.field(description="The period's orders, by currency (reversed ones left out).")
    remote_totals: list[Money] = strawberry.field(description="The period's invoices, by currency (reversed ones left out).")
    clean: bool = strawberry.field(description="Nothing missing on either side and nothing disagreeing.")


def _amounts(totals: dict[str, Decimal]) -> list[Money]:
    return [Money.of(v, c) for c, v in sorted(totals.items())]


def reconciliation_type(r: service.Reconciliation) -> FinanceReconciliation:
    return FinanceReconciliation(
        connection=FinanceConnection.from_model(r.connection), from_=r.start, to=r.end,
        missing_remote=[ReconciliationOrder(number=o.number, status=o.status.value, total=Money.of(o.total, o.currency),
                                            ordered_at=o.ordered_at, order_id=strawberry.ID(encode_global_id("Order", o.id)))
                        for o in r.missing_remote],
        missing_local=[ReconciliationInvoice(reference=i.reference, remote_id=i.remote_id, number=i.number, state=i.state,
                                             total=Money.of(i.total, i.currency), issued=i.issued)
                       for i in r.missing_local],
        mismatches=[ReconciliationMismatch(
            reference=m.reference, problem=m.problem,
            crm_total=Money.of(m.crm_total, m.crm_currency or "") if m.crm_total is not None else None,
            remote_total=Money.of(m.remote_total, m.remote_currency or "") if m.remote_total is not None else None,
            remote_state=m.remote_state) for m in r.mismatches],
        crm_totals=_amounts(r.crm_totals), remote_totals=_amounts(r.remote_totals), clean=r.clean,
    )


def _backends(ctx: Context):  # type: ignore[no-untyped-def]
    return subscriber_of(ctx).backends


@strawberry.type
class FinanceQuery:
    @query("settings", description="The finance connections (sets of books), oldest first.")
    async def finance_connections(self, info: Info) -> list[FinanceConnection]:
        ctx: Context = info.context
        async with ctx.db.reader() as session:
            return [FinanceConnection.from_model(c) for c in await service.connections(session)]

    @query("orders", description="The CRM's orders against the books' invoices of a period (by order and invoice date): what "
           "is missing on either side, what disagrees, and the totals of both. Asks the books; errors with their message.")
    async def finance_reconciliation(
        self, info: Info,
        connection_id: Annotated[
            strawberry.ID, strawberry.argument(description="Global ID of the FinanceConnection, or its name.")
        ],
        from_: Annotated[date, strawberry.argument(name="from", description="The period's first day (inclusive; UTC days).")],
        to: Annotated[date, strawberry.argument(description="The period's last day (inclusive); on or after `from`.")],
    ) -> FinanceReconciliation:
        ctx: Context = info.context
        try:
            result = await service.reconcile(ctx.db, ctx.settings, _backends(ctx), str(connection_id), from_, to)
        except DomainError as exc:
            raise ClientError("; ".join(e.message for e in exc.errors), "BAD_REQUEST") from exc
        except AccountingError as exc:
            raise ClientError(f"The books could not be read: {exc.message}", "FINANCE_BACKEND_FAILED") from exc
        return reconciliation_type(result)


@strawberry.type
class FinanceMutation:
    @mutation("settings", "update", description="Add a set of books to push orders to and read payments from.")
    async def create_finance_connection(
        self, info: Info,
        input: Annotated[CreateFinanceConnectionInput, strawberry.argument(description="The books: name, backend and "
                                                                           "settings.")],
    ) -> FinanceConnectionPayload:
        ctx: Context = info.context
        data = {"name": input.name, "backend": input.backend, "config": input.config, "push_statuses": input.push_statuses}
        model, errors = await unit_of_work(info, lambda s: service.create_connection(
            s, actor=ctx.actor, settings=ctx.settings, backends=_backends(ctx), data=data))
        return FinanceConnectionPayload(finance_connection=FinanceConnection.from_model(model) if model else None, errors=errors)

    @mutation("orders", "update", description="Push an order to the books again (one connection, or all): after a FAILED sync "
              "that ran out of retries, or after fixing the books. Goes through the outbox; safe to repeat.")
    async def retry_finance_sync(
        self, info: Info,
        order_id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Order.")],
        connection_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Global ID of the FinanceConnection, or its name. Default: every active connection."),
        ] = None,
    ) -> RetryFinanceSyncPayload:
        ctx: Context = info.context
        try:
            pk = ids.decode_as(str(order_id), "Order")
        except ValueError:
            return RetryFinanceSyncPayload(finance_sync=[], errors=[UserError(field="orderId", code="INVALID_VALUE", message="orderId is not an Order ID.")])
        rows, errors = await unit_of_work(info, lambda s: service.request_retry(
            s, actor=ctx.actor, order_id=pk, connection_ref=str(connection_id) if connection_id else None))
        return RetryFinanceSyncPayload(finance_sync=[FinanceSync.from_model(r) for r in rows or []], errors=errors)

    @mutation("orders", "update", description="Read payments from a connection's books now (the server also does it every "
              "CRM_FINANCE_PULL_INTERVAL seconds). A payment seen before is not recorded again.")
    async def pull_finance_payments(
        self, info: Info,
        connection_id: Annotated[
            strawberry.ID, strawberry.argument(description="Global ID of the FinanceConnection, or its name.")
        ],
    ) -> FinancePullPayload:
        ctx: Context = info.context
        async with ctx.db.reader() as session:
            connection = await service.connection_by_ref(session, str(connection_id))
        if connection is None:
            return FinancePullPayload(seen=0, applied=0, already=0, unmatched=0,
                                      errors=[UserError(field="connectionId", code="NOT_FOUND", message="The finance connection was not found.")])
        try:
            result = await service.pull_payments(ctx.db, ctx.settings, _backends(ctx), connection.id)
        except AccountingError as exc:
            return FinancePullPayload(seen=0, applied=0, already=0, unmatched=0,
                                      errors=[UserError(field="connectionId", code="FINANCE_BACKEND_FAILED", message=exc.message)])
        except DomainError as exc:
            return FinancePullPayload(seen=0, applied=0, already=0, unmatched=0, errors=user_errors(exc))
        await after_commit(ctx)
        return FinancePullPayload(seen=result.seen, applied=result.applied, already=result.already, unmatched=result.unmatched, errors=[])


async def _load_connections(info: Info, pks: list[int]) -> list[FinanceConnection | None]:
    # Connections are configuration: only those who may read the settings find them by ID.
    if not info.context.actor.can("settings", "read"):
        return [None] * len(pks)
    found = await info.context.loader("crm_finance.connection", service.connections_by_ids).load_many(pks)
    return [FinanceConnection.from_model(m) if m is not None else None for m in found]


SCHEMA = SchemaPart(query=FinanceQuery, mutation=FinanceMutation, nodes=[NodeType("FinanceConnection", _load_connections, FinanceConnection)])
EXTENSIONS = [TypeExtension("Order", OrderFinance)]
