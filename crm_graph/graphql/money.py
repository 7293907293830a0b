"""The GraphQL shape of money: ``Money { amount currency }`` and its input twin."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry

from crm_graph.core import money as m


@strawberry.type(
    description="An exact amount of money. `amount` is a decimal string, never a float; `currency` is an "
    "ISO 4217 code. Amounts show at least the currency's minor units (`12.50` EUR, `1500` JPY)."
)
class Money:
    amount: Decimal = strawberry.field(description="The amount as a decimal string, e.g. `\"12.50\"`.")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. `EUR`.")

    @classmethod
    def of(cls, amount: Decimal, currency: str) -> Money:
        return cls(amount=m.display(amount, currency), currency=currency)

    @classmethod
    def maybe(cls, amount: Decimal | None, currency: str | None) -> Money | None:
        if amount is None or currency is None:
            return None
        return cls.of(amount, currency)


@strawberry.input(
    description="An amount of money. Send `amount` as a string (\"19.99\") so no float rounding can creep in; "
    "`currency` is an ISO 4217 code."
)
class MoneyInput:
    amount: Decimal = strawberry.field(description="A decimal string, e.g. `\"19.99\"`; a float is refused.")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. `EUR`.")


def money_plain(value: Any) -> dict[str, Any] | None:
    """A ``MoneyInput`` as the plain mapping services take (``to_plain`` does the same)."""
    if value is None:
        return None
    return {"amount": value.amount, "currency": value.currency}
