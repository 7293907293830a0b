"""Segment rules: static, dynamic and snapshot segments, membership, and value analyses.

- STATIC: members are added and removed explicitly.
- DYNAMIC: a stored customer filter; membership is whatever matches now, evaluated in SQL.
  A periodic diff (``diff_dynamic``, run by the ``segment-diff`` job) compares it with the
  membership it last saw and announces who entered and who left.
- SNAPSHOT: a filter applied at creation and on ``refresh_segment``; in between the members are
  stored and may also be added or removed by hand.
A filter is checked when it is saved. One that stops validating later (a custom field deleted,
a referenced segment deleted) makes the segment invalid, with the reason, instead of failing.

``reads`` answers who is in a segment, ``membership`` changes it (as SQL over sets), ``writes``
creates and changes segments, ``analyses`` holds RFM and value tiers.
"""

from __future__ import annotations

from crm_graph.segments.service.analyses import (
    DEFAULT_WINDOW_DAYS,
    RfmAnalysis,
    TierRow,
    ValueConcentration,
    refresh_all,
    rfm_analysis,
    value_concentration,
)
from crm_graph.segments.service.membership import (
    MAX_MEMBERS_PER_CALL,
    MEMBER_EVENT_BATCH,
    MembershipChange,
    add_customers,
    diff_dynamic,
    remove_customers,
)
from crm_graph.segments.service.reads import (
    INVALID_FILTER,
    condition,
    get_segment,
    live_segment,
    members_select,
    segment_payload,
    segment_select,
    segments_by_ids,
    segments_of,
    size,
    validity,
)
from crm_graph.segments.service.writes import (
    create_segment,
    delete_segment,
    refresh_segment,
    restore_segment,
    update_segment,
)

__all__ = [
    "DEFAULT_WINDOW_DAYS", "INVALID_FILTER", "MAX_MEMBERS_PER_CALL", "MEMBER_EVENT_BATCH", "MembershipChange",
    "RfmAnalysis", "TierRow", "ValueConcentration", "add_customers", "condition", "create_segment",
    "delete_segment", "diff_dynamic", "get_segment", "live_segment", "members_select", "refresh_all",
    "refresh_segment", "remove_customers", "restore_segment", "rfm_analysis", "segment_payload",
    "segment_select", "segments_by_ids", "segments_of", "size", "update_segment", "validity",
    "value_concentration",
]
