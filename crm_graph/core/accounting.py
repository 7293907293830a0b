"""The contract between the finance plugin and accounting backends (``crm_accounting_backends``).

A backend is a program's adapter (Tryton, beancount through fava, hledger-web, ...). The finance
plugin (``plugins/crm_finance``) keeps the rest: which orders to push and when, the sync record of
each order, retries with backoff, payments recorded once, reconciliation. Nothing here imports a
plugin.

The rules every backend follows, because finance data must never be doubled or lost:

- Every invoice carries the CRM's order number as its ``reference``, and ``post_invoice`` first
  looks that reference up remotely: an invoice already there (a retry after a lost answer) is
  returned, never made again.
- Nothing is deleted remotely: ``cancel_invoice`` books a credit note or a reversal, itself
  found by reference before it is made.
- Every payment read back has an ``external_id`` that stays the same each time it is read, so
  the CRM records it once whatever the overlap between two pulls.
- A failure raises ``AccountingError``; ``retry=False`` for what no retry can fix (an unknown
  account, a closed fiscal period, a currency the books do not have), True for the rest (a
  timeout, a 500, a dropped connection). Its message is shown to the user: the remote's words,
  never a credential.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable


class AccountingError(Exception):
    def __init__(self, message: str, *, retry: bool = True, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry
        self.field = field  # for a configuration problem: the config key at fault ("accounts.revenue")


@dataclass(frozen=True)
class Party:
    """The customer as the books know them. ``reference`` is stable (``CRM-C-42``): the backend
    finds the party by it before creating one."""

    reference: str
    name: str
    email: str | None = None
    address_lines: Sequence[str] = ()
    country: str | None = None  # ISO 3166 alpha-2


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    net: Decimal  # quantity x unit price less the line's discount, rounded to the currency


@dataclass(frozen=True)
class InvoiceRequest:
    """One order to book. ``net`` is the sum of the lines' ``net``; ``tax`` is ``net`` x
    ``tax_rate`` / 100 rounded; ``total = net + tax``. Amounts are in ``currency``."""

    reference: str  # the CRM order number: "SO-2026-0001"
    party: Party
    currency: str
    issued: date
    lines: Sequence[InvoiceLine]
    net: Decimal
    tax_rate: Decimal  # percent: 19 for 19 %
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class RemoteInvoice:
    """An invoice (or balanced entry) as the books have it."""

    remote_id: str
    reference: str
    currency: str
    total: Decimal
    number: str | None = None  # the books' own number, when they give one
    state: str = "posted"  # "posted", "paid", "cancelled" (reversed or credited)
    issued: date | None = None


@dataclass(frozen=True)
class RemotePayment:
    """A payment the books saw against an invoice. ``external_id`` is the same at every read."""

    external_id: str
    reference: str  # the invoice's reference: the CRM order number
    amount: Decimal
    currency: str
    paid_at: datetime


@dataclass(frozen=True)
class PaymentPage:
    payments: Sequence[RemotePayment]
    checkpoint: str | None  # give it back to ``payments_since`` to read on from here


@runtime_checkable
class AccountingConnection(Protocol):
    """One configured connection to the books (made by ``AccountingBackend.connect``)."""

    async def post_invoice(self, invoice: InvoiceRequest) -> RemoteInvoice:
        """Find the invoice by ``invoice.reference``, else find-or-create the party and book it."""
        ...

    async def find_invoice(self, reference: str) -> RemoteInvoice | None:
        ...

    async def cancel_invoice(self, reference: str, reason: str) -> RemoteInvoice | None:
        """Reverse the invoice of ``reference`` (a credit note, a reversing entry); None when there
        is none. Doing it twice reverses once."""
        ...

    async def payments_since(self, checkpoint: str | None) -> PaymentPage:
        """Payments against the CRM's invoices since ``checkpoint`` (None: all of them)."""
        ...

    async def invoices(self, start: date, end: date) -> Sequence[RemoteInvoice]:
        """The invoices issued from ``start`` to ``end`` (inclusive), for reconciliation: those
        with a CRM reference and, so that strays show, those without."""
        ...

    async def aclose(self) -> None:
        ...


@runtime_checkable
class AccountingBackend(Protocol):
    name: str  # what connections name: "tryton", "fava", "hledger"
    description: str
    # Config keys that are credentials ("password"): the plugin stores them encrypted, or takes
    # "<key>Env" naming an environment variable instead, and never returns them.
    secret_keys: frozenset[str]

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems with ``config`` as ``(key, message)`` pairs; [] when it is complete. Runs
        before a connection is stored (no network)."""
        ...

    def connect(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> AccountingConnection:
        """A connection for ``config`` with its credentials in ``secrets`` (already decrypted or
        read from the environment: ``{"password": "..."}``). Opens nothing yet."""
        ...
