"""The accounting backends that ship with the plugin (``crm_accounting_backends``): Tryton over
JSON-RPC, beancount through fava's JSON API, and hledger-web's JSON API."""

from __future__ import annotations

import importlib
import inspect

from crm_graph.core.accounting import AccountingBackend

BUILTIN = ("tryton", "fava", "hledger")


def builtin() -> list[AccountingBackend]:
    """One backend object per module: the class whose ``name`` is the module's."""
    out = []
    for name in BUILTIN:
        module = importlib.import_module(f"crm_finance.backends.{name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and getattr(cls, "name", None) == name and hasattr(cls, "check_config"):
                out.append(cls())
                break
    return out
