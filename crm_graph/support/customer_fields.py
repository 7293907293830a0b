"""Fields the support domain adds to the `Customer` type (Customer inherits this class)."""

from __future__ import annotations

import strawberry


@strawberry.type
class CustomerSupportFields:
    """Resolvers here read `self.pk`, the customer's primary key."""
