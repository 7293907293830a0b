"""The dedupe domain's built-in plugin: ``Customer.possibleDuplicates`` and the customer
payloads' ``possibleDuplicates``, and ``crm-graph duplicates refresh``, added through the same
hooks a partner's plugin uses."""

from __future__ import annotations

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
