"""Fields the segments domain adds to the ``Customer`` type (registered by ``crm_graph.segments.plugin``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

if TYPE_CHECKING:
    from crm_graph.segments.schema import CustomerRfm, Segment


@strawberry.type
class CustomerSegmentFields:
    """Resolvers here read ``self.pk``, the customer's primary key."""

    @strawberry.field(description="The segments the customer belongs to now, by name (DYNAMIC ones evaluated live).")
    async def segments(self, info: Info) -> list[Annotated["Segment", strawberry.lazy("crm_graph.segments.schema")]]:
        from crm_graph.segments.schema import load_customer_segments

        return await load_customer_segments(info, self.pk)  # type: ignore[attr-defined]

    @strawberry.field(description="The customer's values in the newest stored RFM run; null if it did not score them.")
    async def rfm(self, info: Info) -> Annotated["CustomerRfm", strawberry.lazy("crm_graph.segments.schema")] | None:
        from crm_graph.segments.schema import load_customer_rfm

        return await load_customer_rfm(info, self.pk)  # type: ignore[attr-defined]
