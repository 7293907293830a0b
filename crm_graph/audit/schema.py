"""GraphQL API of the audit log: ``auditLog(filter, first, after)``, administrators only.

There is no mutation: the log is append-only (``models.py``). Rows are written by
``recording.py`` for every mutation and every refused request, not by resolvers here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.audit import service
from crm_graph.audit.models import AuditEntry as AuditEntryModel
from crm_graph.audit.models import AuditOutcome
from crm_graph.core.events import global_id
from crm_graph.core.pagination import paginate
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import ClientError
from crm_graph.core.extensions import NodeType
from crm_graph.graphql.relay import (
    Connection,
    Node,
    decode_global_id,
    encode_global_id,
    node_resolver,
    page_args,
)

graphql_enum(
    AuditOutcome,
    description="How an audited request ended: OK, USER_ERROR (user errors or a client error), DENIED (the role, a "
    "plugin or the record's sharing refused), UNAUTHENTICATED (no valid credentials), ERROR (an unexpected failure).",
    values={
        "OK": "The mutation ran and returned no errors.",
        "USER_ERROR": "It returned user errors (validation, not found...) or a client error.",
        "DENIED": "Refused by the role, a plugin or the record's sharing.",
        "UNAUTHENTICATED": "No valid credentials for a field that needs them.",
        "ERROR": "An unexpected failure; the client saw INTERNAL_SERVER_ERROR.",
    },
)


@strawberry.type(
    description="One audited request: a mutation (whatever its outcome) or a refused query or mutation. Holds who, "
    "what and how it ended, never the values sent: `changedFields` are names only."
)
class AuditEntry(Node):
    at: datetime = strawberry.field(description="When the request was handled (UTC).")
    principal: str = strawberry.field(description='Who asked, e.g. "api_key:3", "user:5", "anonymous".')
    actor_kind: str = strawberry.field(description='One of "user", "api_key", "system", "anonymous".')
    user_id: strawberry.ID | None = strawberry.field(description="The user who acted (for a key: the user it belongs to).")
    key_id: strawberry.ID | None = strawberry.field(description="The API key used, if any.")
    role: str | None = strawberry.field(description="The role the request acted with; null when not signed in.")
    operation: str = strawberry.field(description='The root field called, e.g. "createCustomer".')
    action: str | None = strawberry.field(description='The permission the field declares: action ("create") ...')
    object: str | None = strawberry.field(description='... on object ("customers"); null for public fields.')
    entity_ids: list[strawberry.ID] = strawberry.field(description="Global IDs named in the arguments or returned.")
    changed_fields: list[str] = strawberry.field(description="Names of the input fields and arguments sent; never values.")
    outcome: AuditOutcome = strawberry.field(description="How the request ended.")
    error_codes: list[str] = strawberry.field(description="The codes of the user errors or GraphQL errors, if any.")
    reason: str | None = strawberry.field(description="Why a request was refused.")
    address: str | None = strawberry.field(description="The client's IP address as the server saw it.")
    user_agent: str | None = strawberry.field(description="The client's User-Agent header, as sent.")

    @classmethod
    def from_model(cls, m: AuditEntryModel) -> AuditEntry:
        return cls(
            id=encode_global_id("AuditEntry", m.id),
            at=m.at,
            principal=m.principal,
            actor_kind=m.actor_kind,
            user_id=strawberry.ID(global_id("User", m.user_id)) if m.user_id is not None else None,
            key_id=strawberry.ID(global_id("ApiKey", m.key_id)) if m.key_id is not None else None,
            role=m.role,
            operation=m.operation,
            action=m.action,
            object=m.object,
            entity_ids=[strawberry.ID(i) for i in m.entity_ids or []],
            changed_fields=list(m.changed_fields or []),
            outcome=m.outcome,
            error_codes=list(m.error_codes or []),
            reason=m.reason,
            address=m.address,
            user_agent=m.user_agent,
        )


@strawberry.type(description="A page of the audit log, newest first.")
class AuditEntryConnection(Connection[AuditEntry]):
    pass


@strawberry.input(description="Conditions on audit entries; all given must hold.")
class AuditLogFilter:
    principal: str | None = strawberry.field(default=None, description='Exactly this principal, e.g. "api_key:3".')
    operation: str | None = strawberry.field(default=None, description='Exactly this root field, e.g. "eraseCustomer".')
    outcome: AuditOutcome | None = strawberry.field(default=None, description="Only entries that ended this way.")
    entity_id: strawberry.ID | None = strawberry.field(default=None, description="Entries that name this global ID.")
    from_: datetime | None = strawberry.field(default=None, name="from", description="At or after this time.")
    to: datetime | None = strawberry.field(default=None, description="Before this time.")


NODES = [
    NodeType("AuditEntry", node_resolver("audit.entry", service.entries_by_ids, AuditEntry.from_model), AuditEntry),
]


@strawberry.type
class AuditQuery:
    @access.query("audit_log", description="The security audit log, newest first: every mutation and every refused request.")
    async def audit_log(
        self,
        info: Info,
        filter: Annotated[
            AuditLogFilter | None,
            strawberry.argument(description="Only entries matching these conditions; `from` and `to` need a time zone."),
        ] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> AuditEntryConnection:
        ctx: Context = info.context
        f = filter or AuditLogFilter()
        if f.entity_id is not None:
            decode_global_id(f.entity_id)  # a malformed ID is a clear client error
        for name, value in (("from", f.from_), ("to", f.to)):
            if value is not None and value.tzinfo is None:
                raise ClientError(f"`filter.{name}` needs a time zone (e.g. 2026-01-31T00:00:00Z).")
        stmt = service.audit_select(
            principal=f.principal, operation=f.operation, outcome=f.outcome, entity_id=f.entity_id,
            since=f.from_, until=f.to,
        )
        page = await paginate(ctx.db.reader, stmt, service.NEWEST_FIRST, page_args(first, after, last, before))
        return AuditEntryConnection.from_page(page, AuditEntry.from_model)


SCHEMA = SchemaPart(query=AuditQuery, nodes=NODES)

