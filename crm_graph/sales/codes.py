"""Error codes of the sales domain, in addition to the shared ones of ``crm_graph.core.errors``.

Every code here is listed, with when it happens, in docs/sales.md.
"""

from __future__ import annotations

# Shared codes, re-exported so sales modules import their codes from one place.
from crm_graph.core.errors import (  # noqa: F401
    DUPLICATE,
    INVALID_STATE,
    INVALID_VALUE,
    NOT_FOUND,
    REQUIRED,
    TOO_MANY,
    VERSION_CONFLICT,
)

INVALID_CURRENCY = "INVALID_CURRENCY"
"""Not an ISO 4217 currency code."""

CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
"""An amount, a line or a payment in another currency than its opportunity, quote or order."""

OUT_OF_RANGE = "OUT_OF_RANGE"
"""A number outside its allowed range: a negative price, a quantity of zero, a discount over 100%."""

TOO_PRECISE = "TOO_PRECISE"
"""More decimal places than allowed (4 for prices and quantities, the currency's minor units for payments)."""

WRONG_PIPELINE = "WRONG_PIPELINE"
"""A stage that belongs to another pipeline than the opportunity's."""

STAGE_IN_USE = "STAGE_IN_USE"
"""Removing (or changing the kind of) a stage that opportunities are in, without moving them."""

CLOSED_STAGE = "CLOSED_STAGE"
"""moveOpportunity to a WON or LOST stage: winOpportunity and loseOpportunity close opportunities."""

QUOTE_EXPIRED = "QUOTE_EXPIRED"
"""Sending or accepting a quote after its validUntil date."""

NOTHING_TO_QUOTE = "NOTHING_TO_QUOTE"
"""createQuote for an opportunity with neither line items nor an amount."""

PRODUCT_INACTIVE = "PRODUCT_INACTIVE"
"""Adding an inactive product to an opportunity."""

OVERPAYMENT = "OVERPAYMENT"
"""A payment larger than the order's balance due."""

EXTERNAL_REF_CONFLICT = "EXTERNAL_REF_CONFLICT"
"""An external reference that already identifies a different record (another order, another payment)."""
