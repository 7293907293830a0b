"""The event type dedupe records besides ``customer.merged`` (which the core catalogue lists)."""

from __future__ import annotations

from crm_graph.core.events import register_event_type

register_event_type(
    "customer.merge_undone",
    "A merge was undone (`undoMerge`): the merged customers are back with exactly the rows the merge moved.",
)
