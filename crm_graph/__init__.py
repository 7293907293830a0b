"""crm-graph: a GraphQL CRM API server.

Plugin authors need one import: ``from crm_graph import hookimpl``.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("crm_graph")

__all__ = ["__version__", "hookimpl"]
