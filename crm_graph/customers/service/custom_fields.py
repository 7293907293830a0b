"""Custom field definitions: typed fields that customers can carry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.errors import (
    ErrorCollector,
)
from crm_graph.core.events import record_event
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers import validation as v
from crm_graph.customers.models import (
    CustomFieldDefinition,
    CustomFieldType,
)
from crm_graph.customers.service.assign import enum_value

# --- custom field definitions --------------------------------------------------------------


async def create_custom_field_definition(
    session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]
) -> CustomFieldDefinition:
    errors = ErrorCollector()
    try:
        key = v.field_key(data.get("key"))
    except v.InvalidValue as exc:
        errors.add("key", codes.REQUIRED if not data.get("key") else codes.INVALID_VALUE, str(exc))
        key = None
    try:
        label = v.text(data.get("label"), 200, required=True)
    except v.InvalidValue as exc:
        errors.add("label", codes.REQUIRED, str(exc))
        label = None
    try:
        kind = enum_value(CustomFieldType, data.get("type"))
    except v.InvalidValue as exc:
        errors.add("type", codes.INVALID_VALUE, str(exc))
        kind = None
    options = data.get("options")
    if kind is CustomFieldType.SELECT:
        clean = [o.strip() for o in options or [] if isinstance(o, str) and o.strip()]
        if not clean:
            errors.add("options", codes.REQUIRED, "A SELECT field needs at least one option.")
        elif len(set(clean)) != len(clean):
            errors.add("options", codes.DUPLICATE, "Options must be distinct.")
        options = clean
    elif options:
        errors.add("options", codes.INVALID_VALUE, "Only SELECT fields have options.")
    if key and await session.scalar(sa.select(CustomFieldDefinition.id).where(CustomFieldDefinition.key == key)):
        errors.add("key", codes.DUPLICATE, f"A custom field with key {key!r} exists already.")
    errors.raise_if_any()
    await validate_with_plugins(session, entity="custom_field_definition", data=data, actor=actor)
    definition = CustomFieldDefinition(
        key=key,
        label=label,
        type=kind,
        options=options if kind is CustomFieldType.SELECT else None,
        required=bool(data.get("required")),
        description=data.get("description"),
    )
    session.add(definition)
    await session.flush()
    record_event(
        session,
        type="custom_field.created",
        entity_type="CustomFieldDefinition",
        entity_id=definition.id,
        actor=actor,
        payload={"key": key, "label": label, "type": kind, "options": definition.options, "required": definition.required},
    )
    return definition

