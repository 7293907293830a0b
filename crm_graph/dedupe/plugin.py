"""The dedupe domain's built-in plugin: ``Customer.possibleDuplicates`` and the customer
payloads' ``possibleDuplicates``, added through the same hook a partner's plugin uses."""

from __future__ import annotations

from crm_graph import hookimpl
from crm_graph.core.extensions import TypeExtension


@hookimpl
def crm_register_type_extensions() -> list[TypeExtension]:
    from crm_graph.dedupe.customer_fields import CustomerDuplicateFields, CustomerPayloadDuplicateFields

    return [
        TypeExtension("Customer", CustomerDuplicateFields),
        TypeExtension("CustomerPayload", CustomerPayloadDuplicateFields),
    ]
