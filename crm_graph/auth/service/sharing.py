"""The organisation-wide sharing default of each owned object type (``core/access.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.auth.models import SharingDefault
from crm_graph.auth.service.common import error
from crm_graph.core.access import DEFAULT_SHARING, Sharing
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import INVALID_VALUE, ValidationFailed

OWNED_OBJECTS: tuple[str, ...] = tuple(DEFAULT_SHARING)


async def sharing_defaults(session: AsyncSession) -> dict[str, Sharing]:
    """Every owned object type with its level: the stored one, else the installation default."""
    from crm_graph.auth.authenticate import load_sharing

    return await load_sharing(session)


async def set_sharing_default(session: AsyncSession, *, actor: Actor, object: Any, level: Any) -> dict[str, Sharing]:
    """Set the level of one object type; returns every level. Callers drop cached scopes after."""
    if object not in OWNED_OBJECTS:
        raise ValidationFailed(
            [error("object", INVALID_VALUE, f"Sharing applies to {', '.join(OWNED_OBJECTS)}; not {str(object)[:64]!r}.")]
        )
    try:
        chosen = Sharing(level.value if isinstance(level, Sharing) else level)
    except ValueError:
        raise ValidationFailed([error("level", INVALID_VALUE, f"Unknown sharing level {str(level)[:64]!r}.")]) from None
    row = await session.get(SharingDefault, object)
    if row is None:
        session.add(SharingDefault(object=object, level=chosen.value, updated_at=utcnow()))
    else:
        row.level, row.updated_at = chosen.value, utcnow()
    await session.flush()
    return await sharing_defaults(session)
