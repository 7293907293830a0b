"""Error codes of the support domain (in addition to those of ``crm_graph.core.errors``).

Each is a stable SCREAMING_SNAKE_CASE string a client may branch on; docs/support.md lists them.
"""

from __future__ import annotations

# A status change the ticket's status machine does not allow (e.g. OPEN -> NEW, CLOSED -> OPEN).
INVALID_TRANSITION = "INVALID_TRANSITION"
# The ticket is CLOSED: it takes no replies, assignments or edits any more.
TICKET_CLOSED = "TICKET_CLOSED"
# Rating a ticket that is not RESOLVED or CLOSED.
TICKET_NOT_RESOLVED = "TICKET_NOT_RESOLVED"
# A number outside its allowed range: a rating or expectation outside 1-5, a non-positive target.
OUT_OF_RANGE = "OUT_OF_RANGE"
# A time zone name that is not in the IANA time zone database (e.g. "Europe/Berlin" is fine).
INVALID_TIME_ZONE = "INVALID_TIME_ZONE"
# Business hours that describe no time: the day ends before it starts.
INVALID_BUSINESS_HOURS = "INVALID_BUSINESS_HOURS"

CODES = (INVALID_TRANSITION, TICKET_CLOSED, TICKET_NOT_RESOLVED, OUT_OF_RANGE, INVALID_TIME_ZONE, INVALID_BUSINESS_HOURS)
