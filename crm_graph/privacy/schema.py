"""GraphQL API of privacy requests: ``exportCustomerData`` and ``eraseCustomer``.

Both are mutations: they are privacy requests someone is accountable for, and every mutation is
in the audit log (who asked, when, for which customer). Thin: the rules are in service.py.
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.customers.schema import Customer, CustomerPayload
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import decode_global_id
from crm_graph.privacy import service


@strawberry.type(description="Everything held on one customer, as one JSON document.")
class ExportCustomerDataPayload:
    data: JSON | None = strawberry.field(
        description="`customer` (with emails, phones, addresses, tags, custom fields, consent), `activities`, "
        "`opportunities`, `quotes`, `orders` (lines, payments), `tickets` (comments, ratings), `segments`, `rfmScores`, "
        "`plugins.<plugin name>`; `complete` is false when the caller does not see every record (export as an administrator)."
    )
    errors: list[UserError]


@strawberry.type
class PrivacyMutation:
    @access.mutation(
        "customers", "export",
        description="A data subject access request: everything held on the customer, as JSON (audited).",
    )
    async def export_customer_data(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="Global ID of the Customer, deleted or not. A plugin that cannot export gives PLUGIN_FAILED."
            ),
        ],
    ) -> ExportCustomerDataPayload:
        pk, actor = decode_global_id(id, "Customer")[1], info.context.actor
        data, errors = await unit_of_work(info, lambda s: service.export_customer_data(s, actor=actor, customer_id=pk))
        return ExportCustomerDataPayload(data=data, errors=errors)

    @access.mutation(
        "customers", "delete",
        description="Erase the customer's personal data for good (a right-to-erasure request). Orders stay, "
        "anonymised, for the books; the customer is deleted, cannot be restored, and `customer.erased` is raised.",
    )
    async def erase_customer(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="Global ID of the Customer, deleted or not. Erasing an erased customer again changes nothing; "
                "a plugin that cannot erase gives PLUGIN_FAILED and nothing is erased."
            ),
        ],
    ) -> CustomerPayload:
        pk, actor = decode_global_id(id, "Customer")[1], info.context.actor
        model, errors = await unit_of_work(info, lambda s: service.erase_customer(s, actor=actor, customer_id=pk))
        return CustomerPayload(customer=Customer.from_model(model) if model is not None else None, errors=errors)


SCHEMA = SchemaPart(mutation=PrivacyMutation)
