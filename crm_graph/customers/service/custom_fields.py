"""Custom field definitions: typed fields that customers can carry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.errors import ErrorCollector, NotFound
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
    record_event(session, type="custom_field.created", entity_type="CustomFieldDefinition", entity_id=definition.id,
                 actor=actor, payload=_payload(definition))
    return definition


def _payload(definition: CustomFieldDefinition) -> dict[str, Any]:
    return {"key": definition.key, "label": definition.label, "type": definition.type, "options": definition.options,
            "required": definition.required, "description": definition.description}


async def _definition(session: AsyncSession, definition_id: int) -> CustomFieldDefinition:
    definition = await session.get(CustomFieldDefinition, definition_id)
    if definition is None:
        raise NotFound("Custom field definition")
    return definition


async def update_custom_field_definition(
    session: AsyncSession, *, actor: Actor, definition_id: int, data: Mapping[str, Any]
) -> CustomFieldDefinition:
    """Change the label, description or required flag, or add options to a SELECT field.

    The key and the type never change (stored values and saved filters rely on them); options
    are only added, since customers may hold any existing one.
    """
    definition = await _definition(session, definition_id)
    errors = ErrorCollector()
    if "label" in data:
        try:
            definition.label = v.text(data["label"], 200, required=True) or definition.label
        except v.InvalidValue as exc:
            errors.add("label", codes.REQUIRED, str(exc))
    if "description" in data:
        definition.description = data["description"]
    if "required" in data and data["required"] is not None:
        definition.required = bool(data["required"])
    if data.get("addOptions"):
        if definition.type is not CustomFieldType.SELECT:
            errors.add("addOptions", codes.INVALID_VALUE, "Only SELECT fields have options.")
        else:
            new = [o.strip() for o in data["addOptions"] if isinstance(o, str) and o.strip()]
            present = set(definition.options or [])
            definition.options = [*(definition.options or []), *(o for o in dict.fromkeys(new) if o not in present)]
    errors.raise_if_any()
    await validate_with_plugins(session, entity="custom_field_definition", data={**data, "id": definition_id}, actor=actor)
    await session.flush()
    record_event(session, type="custom_field.updated", entity_type="CustomFieldDefinition", entity_id=definition.id,
                 actor=actor, payload=_payload(definition))
    return definition


async def delete_custom_field_definition(
    session: AsyncSession, *, actor: Actor, definition_id: int
) -> CustomFieldDefinition:
    """Remove the field and every customer's value of it. Saved segment filters that use it stop
    validating (the segment reports why) until the filter is changed."""
    definition = await _definition(session, definition_id)
    await validate_with_plugins(session, entity="custom_field_definition", data={"id": definition_id, "delete": True},
                                actor=actor)
    payload = _payload(definition)
    await session.delete(definition)
    await session.flush()
    record_event(session, type="custom_field.deleted", entity_type="CustomFieldDefinition", entity_id=definition_id,
                 actor=actor, payload=payload)
    return definition

