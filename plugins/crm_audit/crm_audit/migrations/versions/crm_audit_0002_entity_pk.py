"""The entity's primary key beside its global ID, so SQL can join entries to their records
(the ``changes`` customer filter condition).

Revision ID: crm_audit_0002
Revises: crm_audit_0001
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_graph.core import ids

revision: str = "crm_audit_0002"
down_revision: str | Sequence[str] | None = "crm_audit_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("crm_audit_entries") as batch:
        batch.add_column(sa.Column("entity_pk", ID, nullable=True))
        batch.create_index("ix_crm_audit_entries_entity_pk", ["entity_type", "entity_pk", "occurred_at"])
    entries = sa.table("crm_audit_entries", sa.column("id", ID), sa.column("entity_id", sa.String), sa.column("entity_pk", ID))
    connection = op.get_bind()
    last = 0
    while True:  # in batches: the trail may be long
        rows = connection.execute(
            sa.select(entries.c.id, entries.c.entity_id).where(entries.c.id > last).order_by(entries.c.id).limit(5000)
        ).all()
        if not rows:
            break
        values = []
        for row in rows:
            try:
                values.append({"b_id": row.id, "b_pk": ids.decode(row.entity_id)[1]})
            except ValueError:
                continue  # not one of our IDs: stays without a key
        if values:
            connection.execute(
                entries.update().where(entries.c.id == sa.bindparam("b_id")).values(entity_pk=sa.bindparam("b_pk")), values
            )
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("crm_audit_entries") as batch:
        batch.drop_index("ix_crm_audit_entries_entity_pk")
        batch.drop_column("entity_pk")
