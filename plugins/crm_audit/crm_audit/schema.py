"""GraphQL: ``changeHistory(...)`` and the ``ChangeHistoryEntry`` type. Thin: queries live in service.py.

(The security audit log, ``auditLog``, is the core's: ``crm_graph.audit``.)"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_audit import service
from crm_audit.models import AuditEntry as AuditEntryModel
from crm_graph.core.pagination import paginate
from crm_graph.domains import SchemaPart
from crm_graph.graphql.access import query
from crm_graph.graphql.context import Context
from crm_graph.graphql.inputs import IntFilter
from crm_graph.core.extensions import NodeType
from crm_graph.graphql.relay import Connection, Node, decode_global_id, encode_global_id, page_args, resolve_nodes


@strawberry.type(description="One thing that happened to one entity, kept by the crm_audit plugin's change history.")
class ChangeHistoryEntry(Node):
    event_id: str = strawberry.field(description="The event's id, as webhooks and plugins saw it.")
    event_type: str = strawberry.field(description='E.g. "customer.updated".')
    entity_type: str = strawberry.field(description='GraphQL type name of the entity, e.g. "Customer".')
    entity_id: strawberry.ID = strawberry.field(description="Global ID of the entity.")
    actor: str = strawberry.field(description='Who did it, e.g. "user:42".')
    occurred_at: datetime = strawberry.field(description="When the change happened (UTC).")
    recorded_at: datetime = strawberry.field(
        description="When the change history stored it (UTC); events arrive after their transaction commits, "
        "so this can be later than `occurredAt`."
    )
    changed_fields: list[str] | None = strawberry.field(description="For updates: the fields that changed.")
    changes: JSON | None = strawberry.field(description="What changed, with the values before the change.")
    data: JSON = strawberry.field(description="The entity right after the change.")

    @strawberry.field(description="The entity as it is now; null if it is gone.")
    async def entity(self, info: Info) -> Node | None:
        try:
            return (await resolve_nodes(info, [self.entity_id]))[0]
        except Exception:  # noqa: BLE001 - an entity type this server no longer serves
            return None

    @classmethod
    def from_model(cls, m: AuditEntryModel) -> ChangeHistoryEntry:
        return cls(
            id=encode_global_id("ChangeHistoryEntry", m.id),
            event_id=m.event_id,
            event_type=m.event_type,
            entity_type=m.entity_type,
            entity_id=strawberry.ID(m.entity_id),
            actor=m.actor,
            occurred_at=m.occurred_at,
            recorded_at=m.recorded_at,
            changed_fields=m.changed_fields,
            changes=m.changes,
            data=m.data,
        )


@strawberry.type(description="A page of the change history.")
class ChangeHistoryConnection(Connection[ChangeHistoryEntry]):
    pass


async def _load_entries(info: Info, pks: list[int]) -> list[ChangeHistoryEntry | None]:
    ctx: Context = info.context
    models = await ctx.loader("crm_audit.entry", service.entries_by_ids).load_many(pks)
    return [ChangeHistoryEntry.from_model(m) if m is not None else None for m in models]


NODES = [
    NodeType("ChangeHistoryEntry", _load_entries, ChangeHistoryEntry),
]


@strawberry.type
class ChangeHistoryQuery:
    # Entries hold copies of records of every owner (customers, activities, deals, tickets), and
    # record-level sharing cannot be told from a copy: so the history is for those who read the
    # audit log (administrators), like the core's own `auditLog`.
    @query("audit_log", description="The change history, newest first: every change, who made it and what it changed.")
    async def change_history(
        self,
        info: Info,
        entity_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this entity (any global ID, e.g. a Customer's).")
        ] = None,
        event_type: Annotated[
            str | None, strawberry.argument(description='Only this event type, or a family: "ticket.*".')
        ] = None,
        actor: Annotated[str | None, strawberry.argument(description='Only changes by this actor, e.g. "user:42".')] = None,
        since: Annotated[datetime | None, strawberry.argument(description="Only changes at or after this time.")] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ChangeHistoryConnection:
        ctx: Context = info.context
        if entity_id is not None:
            decode_global_id(entity_id)  # a malformed ID is a clear client error
        stmt = service.audit_select(entity_id=entity_id, event_type=event_type, actor=actor, since=since)
        page = await paginate(ctx.db.reader, stmt, service.NEWEST_FIRST, page_args(first, after, last, before))
        return ChangeHistoryConnection.from_page(page, ChangeHistoryEntry.from_model)


# --- what the plugin adds to customers, through the registries every domain uses ------------------


@strawberry.type
class CustomerChangeFields:
    """Joins the ``Customer`` type (``crm_register_type_extensions``); ``self`` is the Customer."""

    @strawberry.field(description="The newest change recorded about the customer by the crm_audit plugin; "
                      "null without one, or when you may not read the change history.")
    async def last_change(self, info: Info) -> ChangeHistoryEntry | None:
        ctx: Context = info.context
        entry = await ctx.loader("crm_audit.latest", service.latest_about_customers, lambda: None).load(self.pk)  # type: ignore[attr-defined]
        return ChangeHistoryEntry.from_model(entry) if entry is not None else None


@strawberry.input(description="Customers by their recorded changes (crm_audit plugin): at least one change, or "
                  "`count` of them, since `since` and by `actor` when given.")
class CustomerChangesFilter:
    since: datetime | None = strawberry.field(default=None, description="Only changes at or after this time.")
    actor: str | None = strawberry.field(default=None, description='Who made the changes, e.g. "user:42".')
    count: IntFilter | None = strawberry.field(
        default=None, description="How many such changes the customer must have; without it, at least one."
    )


SCHEMA = SchemaPart(query=ChangeHistoryQuery, nodes=NODES)
