"""Tables of dedupe: the blocking keys of each customer, the candidate pairs they lead to, pairs
dismissed as "not a duplicate", merge records and where merged customers went."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import guard_object
from crm_graph.db.base import Base, IdMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime


class DuplicateKey(Base):
    """One blocking key of a customer (``crm_graph.dedupe.matching.blocking_keys``): customers
    sharing a key are compared. ``value`` is what the key was made from, shown in reasons."""

    __tablename__ = "duplicate_keys"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(320))

    __table_args__ = (sa.Index("ix_duplicate_keys_key", "key", "customer_id"),)


class DuplicateCandidate(IdMixin, Base):
    """Two customers that look alike (``customer_a_id < customer_b_id``), with the score and
    reasons of the rules; refreshed when either changes."""

    __tablename__ = "duplicate_candidates"

    customer_a_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"))
    customer_b_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    score: Mapped[int] = mapped_column(sa.Integer)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("customer_a_id", "customer_b_id"),
        sa.Index("ix_duplicate_candidates_score_id", "score", "id"),
    )


class DuplicateDismissal(Base):
    """A pair a user said is not a duplicate: it is never proposed again."""

    __tablename__ = "duplicate_dismissals"

    customer_a_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    customer_b_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    dismissed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dismissed_by: Mapped[str | None] = mapped_column(sa.String(200))


class DuplicateRefreshState(Base):
    """How far the stored keys and candidates have followed the customers (one row)."""

    __tablename__ = "duplicate_refresh_state"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    # The last customer handled, by (updated_at, id): the next refresh starts after it.
    refreshed_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refreshed_id: Mapped[int | None] = mapped_column(IdType)


class CustomerMerge(IdMixin, Base):
    """One merge: who survived, who was merged, and every change it made, so it can be explained
    and undone.

    ``changes`` lists ``{table, row, column, from, to}`` (``row``: the primary key values before
    the change); ``removed`` lists rows deleted because the survivor had the same one already
    (``{table, row, values}``, ``values`` being every column); ``fields`` the survivor's fields
    before and after; ``plugins`` what each ``crm_merge_customers`` implementation reported.
    """

    __tablename__ = "customer_merges"

    survivor_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    merged_ids: Mapped[list[int]] = mapped_column(JSONType)
    field_choices: Mapped[dict[str, Any]] = mapped_column(JSONType)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    removed: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    plugins: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(sa.String(200))
    undo_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MergedCustomer(Base):
    """Where a merged customer went: its global ID resolves to ``survivor_id``."""

    __tablename__ = "merged_customers"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    survivor_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    merge_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customer_merges.id", ondelete="CASCADE"), index=True)


# Tables the merge leaves alone when it moves rows that reference customers: its own bookkeeping.
DEDUPE_TABLES = frozenset(
    {"duplicate_keys", "duplicate_candidates", "duplicate_dismissals", "customer_merges", "merged_customers"}
)

# Reading any of them needs `customers:read`; which customers show is filtered by the service.
for _model in (DuplicateCandidate, CustomerMerge):
    guard_object(_model, "customers")
