"""Customer rules: create, update, delete and restore customers; custom field definitions.

Inputs are plain mappings shaped like the GraphQL inputs (camelCase keys, enums by name). In an
update, a key that is present sets the value (``None`` clears it) and an absent key leaves it
alone; list fields (emails, phones, addresses, tags) are replaced whole when present.
"""

from crm_graph.customers.service.assign import ServiceConfig
from crm_graph.customers.service.custom_fields import (
    create_custom_field_definition,
    delete_custom_field_definition,
    update_custom_field_definition,
)
from crm_graph.customers.service.read import (
    addresses_for,
    age,
    custom_field_definitions,
    custom_values_for,
    customer_payload,
    customer_select,
    customers_by_ids,
    emails_for,
    get_customer,
    phones_for,
    tags_for,
)
from crm_graph.customers.service.write import (
    MAX_BATCH,
    BatchResult,
    create_customer,
    create_customers,
    delete_customer,
    restore_customer,
    update_customer,
)

__all__ = [
    "MAX_BATCH",
    "BatchResult",
    "ServiceConfig",
    "addresses_for",
    "age",
    "create_custom_field_definition",
    "create_customer",
    "create_customers",
    "delete_custom_field_definition",
    "update_custom_field_definition",
    "custom_field_definitions",
    "custom_values_for",
    "customer_payload",
    "customer_select",
    "customers_by_ids",
    "delete_customer",
    "emails_for",
    "get_customer",
    "phones_for",
    "restore_customer",
    "tags_for",
    "update_customer",
]
