"""What dedupe adds to other types (registered by ``crm_graph.dedupe.plugin``):
``Customer.possibleDuplicates``, and ``possibleDuplicates`` on the customer mutations' payload,
so ``createCustomer`` warns about customers that look like the new one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

if TYPE_CHECKING:
    from crm_graph.dedupe.schema import PossibleDuplicate

_Possible = Annotated["PossibleDuplicate", strawberry.lazy("crm_graph.dedupe.schema")]


async def load_possible_duplicates(info: Info, pk: int) -> list[Any]:
    """Through one DataLoader: a page of customers costs the same few statements as one."""
    from crm_graph.dedupe import service
    from crm_graph.dedupe.schema import PossibleDuplicate, refresh

    async def batch(session: Any, ids: Sequence[int]) -> dict[int, list[Any]]:
        await refresh(info)
        found = await service.find_duplicates(session, customer_ids=list(ids))
        return {cid: [PossibleDuplicate.from_candidate(c) for c in cs] for cid, cs in found.items()}

    return await info.context.loader("dedupe.possible", batch, list).load(pk)


@strawberry.type
class CustomerDuplicateFields:
    """Resolvers here read ``self.pk``, the customer's primary key."""

    @strawberry.field(
        description="Live customers the caller can read that look like this one, best score first, with the "
        "reasons (same email, phone, or a similar name in the same organization or city). Pairs dismissed with "
        "`dismissDuplicate` are left out. A hint: nothing is merged without `mergeCustomers`."
    )
    async def possible_duplicates(self, info: Info) -> list[_Possible]:
        return await load_possible_duplicates(info, self.pk)  # type: ignore[attr-defined]


@strawberry.type
class CustomerPayloadDuplicateFields:
    """Resolvers here read ``self.customer``, the payload's customer (or None)."""

    @strawberry.field(
        description="Existing customers that look like this one, best score first (the same as "
        "`customer.possibleDuplicates`). On `createCustomer` this is the duplicate warning: nothing was blocked "
        "or merged. Empty when there are errors."
    )
    async def possible_duplicates(self, info: Info) -> list[_Possible]:
        customer = getattr(self, "customer", None)
        if customer is None:
            return []
        return await load_possible_duplicates(info, customer.pk)
