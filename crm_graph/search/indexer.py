"""Keeping ``search_entries`` in step with the records, in the transaction that writes them.

What is indexed (``SOURCES``): customers (display, first, last and organization names, emails,
phones, city, external reference), opportunities (title), tickets (subject), products (name,
SKU). A record's entries are rebuilt from its rows as they are after the write: deleted entries
of a soft-deleted record are not rebuilt, so it is not found; restored, it is found again.

Three ways a write reaches the index, all calling ``reindex_sync`` on the session's connection:

- ORM flushes (``after_flush``): new, changed and deleted records of the indexed models and of
  their contact points, when an indexed attribute changed.
- ORM ``UPDATE``/``DELETE`` statements on those models (``do_orm_execute``): the rows they will
  touch are selected first, and reindexed after the statement.
- Core inserts that bypass the ORM (bulk imports) call ``crm_graph.search.service.reindex``.

The first two only note which records were touched; the session rebuilds their entries once,
just before its transaction commits (``before_commit``), or earlier when a search runs in the
same transaction (``apply_pending``). A transaction that creates 100 customers, each flushed
twice (the row, then its emails), so rebuilds 100 records' entries in a handful of statements
instead of 200 times one record's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from crm_graph.customers.models import Customer, CustomerEmail, CustomerPhone
from crm_graph.sales.models import Opportunity, Product
from crm_graph.search import text
from crm_graph.search.models import SearchEntry
from crm_graph.support.models import Ticket

MAX_VALUE = 500  # characters of one value that are indexed (no name, subject or SKU is longer)


@dataclass(frozen=True)
class Source:
    """One kind of record: its model, its columns (field name, column, weight in percent), the
    contact-point models whose rows belong to it, and its soft-delete column if it has one."""

    entity: str
    model: Any
    columns: tuple[tuple[str, Any, int], ...]
    children: tuple[tuple[str, Any, Any, int], ...] = ()  # (field, model, value column, weight)
    deleted: Any = None

    @property
    def table(self) -> str:
        return self.model.__tablename__

    @property
    def watched(self) -> set[str]:
        names = {c.key for _, c, _ in self.columns}
        if self.deleted is not None:
            names.add(self.deleted.key)
        return names


SOURCES: dict[str, Source] = {
    "customer": Source(
        "customer", Customer,
        (("displayName", Customer.display_name, 100), ("organizationName", Customer.organization_name, 90),
         ("lastName", Customer.last_name, 90), ("firstName", Customer.first_name, 80),
         ("externalRef", Customer.external_id, 80), ("city", Customer.city, 40)),
        (("emails", CustomerEmail, CustomerEmail.address, 80), ("phones", CustomerPhone, CustomerPhone.number, 70)),
        Customer.deleted_at,
    ),
    "opportunity": Source("opportunity", Opportunity, (("title", Opportunity.title, 100),), deleted=Opportunity.deleted_at),
    "ticket": Source("ticket", Ticket, (("subject", Ticket.subject, 100),)),
    "product": Source("product", Product, (("name", Product.name, 100), ("sku", Product.sku, 90))),
}
ENTITIES: tuple[str, ...] = tuple(SOURCES)
_BY_MODEL = {s.model: s for s in SOURCES.values()}
_BY_CHILD = {child: (s, c) for s in SOURCES.values() for (_, child, c, _) in s.children}


def entry_row(entity: str, entity_id: int, field: str, weight: int, value: str, postgres: bool) -> dict[str, Any] | None:
    value = value.strip()[:MAX_VALUE]
    folded = text.fold(value)
    if not folded.strip():
        return None
    # The accent-free forms only where they differ (most text has no accents): empty, or null,
    # means "as folded", and the indexes over them stay small.
    plain = text.plain(folded)
    other = plain != folded
    return {
        "entity": entity, "entity_id": entity_id, "field": field, "weight": weight, "value": value,
        "folded": folded, "plain": plain if other else "", "tokens": text.tokens(folded),
        "plain_tokens": text.tokens(plain) if other else "",
        "folded_key": text.trigram_key(folded) if postgres else None,
        "plain_key": text.trigram_key(plain) if postgres and other else None,
    }


def _among(column: Any, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """``column IN ids``, with the range of ``ids`` too. Tables filled in bulk within one
    transaction have no statistics yet: PostgreSQL then takes a long IN list for most of the
    table and reads all of it for each batch, while a range is estimated as narrow and read
    through the index (bulk imports give consecutive ids)."""
    return sa.and_(column.between(min(ids), max(ids)), column.in_(ids))


def entries_for(connection: sa.Connection, entity: str, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The entries records ``ids`` of ``entity`` should have now (none for deleted ones)."""
    source = SOURCES[entity]
    postgres = connection.dialect.name == "postgresql"
    model = source.model
    stmt = sa.select(model.id, *(c for _, c, _ in source.columns)).where(_among(model.id, ids))
    if source.deleted is not None:
        stmt = stmt.where(source.deleted.is_(None))
    rows: list[dict[str, Any]] = []
    live: list[int] = []
    for record in connection.execute(stmt):
        live.append(record[0])
        for (field, _, weight), value in zip(source.columns, record[1:], strict=True):
            if value:
                row = entry_row(entity, record[0], field, weight, str(value), postgres)
                if row is not None:
                    rows.append(row)
    for field, child, column, weight in source.children:
        if not live:
            break
        stmt = sa.select(child.customer_id, column).where(_among(child.customer_id, live)).order_by(child.customer_id, child.id)
        for owner, value in connection.execute(stmt):
            row = entry_row(entity, owner, field, weight, str(value), postgres) if value else None
            if row is not None:
                rows.append(row)
    return rows


def reindex_sync(connection: sa.Connection, entity: str, ids: Iterable[int]) -> None:
    """Rebuild the entries of records ``ids`` of ``entity`` from their rows as they are now."""
    if entity not in SOURCES:
        raise ValueError(f"unknown entity {entity!r} (one of {', '.join(ENTITIES)})")
    wanted = sorted({int(i) for i in ids})
    table = SearchEntry.__table__
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        connection.execute(table.delete().where(table.c.entity == entity, _among(table.c.entity_id, chunk)))
        rows = entries_for(connection, entity, chunk)
        if rows:
            connection.execute(table.insert(), rows)


# --- ORM writes ------------------------------------------------------------------------------------

_PENDING = "crm_search_pending"


def _changed(obj: Any, names: set[str]) -> bool:
    state = sa.inspect(obj)
    return any(state.attrs[n].history.has_changes() for n in names if n in state.attrs)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    touched: dict[str, set[int]] = {}
    for obj in [*session.new, *session.dirty, *session.deleted]:
        kind = type(obj)
        source = _BY_MODEL.get(kind)
        if source is not None:
            if obj in session.dirty and not _changed(obj, source.watched):
                continue
            if obj.id is not None:
                touched.setdefault(source.entity, set()).add(obj.id)
            continue
        child = _BY_CHILD.get(kind)
        if child is not None:
            parent = child[0]
            if obj in session.dirty and not _changed(obj, {child[1].key, "customer_id"}):
                continue
            owners = {obj.customer_id}
            history = sa.inspect(obj).attrs["customer_id"].history
            owners.update(history.deleted or ())
            touched.setdefault(parent.entity, set()).update(o for o in owners if o is not None)
    _note(session, touched)


_TOUCHED = "crm_search_touched"


def _note(session: Session, touched: dict[str, set[int]]) -> None:
    pending: dict[str, set[int]] = session.info.setdefault(_TOUCHED, {})
    for entity, ids in touched.items():
        pending.setdefault(entity, set()).update(ids)


def apply_pending(session: Session) -> None:
    """Rebuild the entries of the records this session's transaction touched so far."""
    pending = session.info.pop(_TOUCHED, None)
    if pending:
        connection = session.connection()
        for entity, ids in pending.items():
            if ids:
                reindex_sync(connection, entity, ids)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint's release: the outer commit comes later
        return
    if session.info.get(_TOUCHED) or session.new or session.dirty or session.deleted:
        session.flush()  # what commit would flush next, noted first
        apply_pending(session)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # committed (and applied) or rolled back: nothing is pending
        session.info.pop(_TOUCHED, None)


def _statement_source(state: ORMExecuteState) -> tuple[Source, Callable[[Any], Any]] | None:
    """For an ORM UPDATE or DELETE of an indexed model (or contact point): its source and the
    column giving the ids to reindex; None when the statement cannot change what is indexed."""
    if not (state.is_update or state.is_delete) or state.execution_options.get(_PENDING):
        return None
    mapper = state.bind_mapper
    if mapper is None:
        return None
    model = mapper.class_
    source = _BY_MODEL.get(model)
    if source is not None:
        if state.is_update:
            values = getattr(state.statement, "_values", None) or {}
            names = {getattr(k, "key", k) for k in values}
            if not names & source.watched:
                return None
        return source, model.id
    child = _BY_CHILD.get(model)
    if child is not None:
        return child[0], model.customer_id
    return None


@event.listens_for(Session, "do_orm_execute")
def _on_bulk_write(state: ORMExecuteState) -> Any:
    found = _statement_source(state)
    if found is None:
        return None
    source, column = found
    where = state.statement.whereclause
    session = state.session
    select = sa.select(column)
    if where is not None:
        select = select.where(where)
    connection = session.connection()
    ids = set(connection.execute(select).scalars())
    if state.is_update and column.key == "customer_id":  # contact points moved to another customer
        for key, value in (getattr(state.statement, "_values", None) or {}).items():
            if getattr(key, "key", key) == "customer_id" and isinstance(getattr(value, "value", None), int):
                ids.add(value.value)
    result = state.invoke_statement(execution_options={_PENDING: True})
    if ids:
        _note(session, {source.entity: ids})
    return result
