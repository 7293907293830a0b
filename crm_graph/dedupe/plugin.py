"""The dedupe domain's built-in plugin: ``Customer.possibleDuplicates`` and the customer
payloads' ``possibleDuplicates``, and ``crm-graph duplicates refresh``, added through the same
hooks a partner's plugin uses."""

from __future__ import annotations

from typing import Any

import click

from crm_graph import hookimpl
from crm_graph.core.extensions import TypeExtension


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    from crm_graph.dedupe.cli import duplicates

    cli.add_command(duplicates)


@hookimpl
def crm_register_type_extensions() -> list[TypeExtension]:
    from crm_graph.dedupe.customer_fields import CustomerDuplicateFields, CustomerPayloadDuplicateFields

    return [
        TypeExtension("Customer", CustomerDuplicateFields),
        TypeExtension("CustomerPayload", CustomerPayloadDuplicateFields),
    ]


@hookimpl
async def crm_validate(entity: str, data: Any, session: Any) -> Any:
    """A merged customer comes back only with ``undoMerge``: restoring it alone would bring back an
    empty record whose rows live on in the survivor."""
    if entity != "customer" or not data.get("restore") or data.get("id") is None:
        return None
    from crm_graph.core.errors import INVALID_STATE, FieldError
    from crm_graph.dedupe.service import survivors_of

    if await survivors_of(session, [data["id"]]):
        return FieldError("id", INVALID_STATE, "This customer was merged into another; undo the merge (`undoMerge`) instead.")
    return None
