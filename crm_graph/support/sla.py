"""Business-hours calendar arithmetic and the rules that say whether an SLA target is met.

Business time is counted on the wall clock of the policy's time zone: a day of 09:00-17:00 is
eight business hours on every listed weekday, including the days the clocks change (such a
window never contains the change unless the hours span the small hours of the night). Windows
run from ``start`` to ``end`` on the same day; windows across midnight are not supported.

Without business hours, targets count around the clock in plain elapsed time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_graph.support.models import (
    CLOCK_RUNNING,
    SlaPolicy,
    SlaStatus,
    Ticket,
    Weekday,
)

ONE_DAY = timedelta(days=1)
_TINY = timedelta(microseconds=1)


class InvalidTimeZone(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called ``name``; ``InvalidTimeZone`` if there is none."""
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise InvalidTimeZone(name)
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTimeZone(name) from None


@dataclass(frozen=True)
class BusinessHours:
    """Open from ``start`` to ``end`` (local wall-clock time) on ``weekdays`` in ``time_zone``."""

    time_zone: str
    weekdays: frozenset[int]  # date.weekday() numbers, Monday = 0
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise ValueError("business hours need at least one weekday")
        if self.start >= self.end:
            raise ValueError("business hours end after they start")

    @cached_property
    def tz(self) -> ZoneInfo:
        return zone(self.time_zone)

    @property
    def day_length(self) -> timedelta:
        return datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start)

    @property
    def week_length(self) -> timedelta:
        return self.day_length * len(self.weekdays)

    def wall(self, moment: datetime) -> datetime:
        """The naive local wall-clock time of an aware instant."""
        return moment.astimezone(self.tz).replace(tzinfo=None)

    def instant(self, wall: datetime) -> datetime:
        """The UTC instant of a local wall-clock time (the earlier one when the clock repeats)."""
        return wall.replace(tzinfo=self.tz).astimezone(UTC)

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        if day.weekday() not in self.weekdays:
            return None
        return datetime.combine(day, self.start), datetime.combine(day, self.end)


def business_hours_of(policy: SlaPolicy | None) -> BusinessHours | None:
    if policy is None or not policy.time_zone or not policy.weekdays or policy.day_start is None or policy.day_end is None:
        return None
    return BusinessHours(
        time_zone=policy.time_zone,
        weekdays=frozenset(Weekday[name].value for name in policy.weekdays),
        start=policy.day_start,
        end=policy.day_end,
    )


def add_business_time(start: datetime, duration: timedelta, hours: BusinessHours | None) -> datetime:
    """The instant at which ``duration`` of business time has passed since ``start``.

    A start outside business hours counts from the next opening. The answer may be the closing
    time of a day (a one-hour target set at 16:00 on a 9-17 day is due at 17:00 that day).
    """
    if hours is None:
        return start + duration
    if duration <= timedelta(0):
        return start
    remaining = duration
    local = hours.wall(start)
    day = local.date()
    while True:
        window = hours.window(day)
        if window is not None:
            opens, closes = window
            begin = max(local, opens)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return hours.instant(begin + remaining)
                remaining -= available
        day += ONE_DAY
        local = datetime.combine(day, time.min)
        # Any seven whole days hold exactly one week of business time: skip them in one step.
        weeks = (remaining - _TINY) // hours.week_length
        if weeks > 0:
            day += timedelta(days=7 * weeks)
            local = datetime.combine(day, time.min)
            remaining -= hours.week_length * weeks


def business_time_between(a: datetime, b: datetime, hours: BusinessHours | None) -> timedelta:
    """Business time from ``a`` to ``b`` (zero when ``b`` is not after ``a``)."""
    if b <= a:
        return timedelta(0)
    if hours is None:
        return b - a
    la, lb = hours.wall(a), hours.wall(b)
    total = timedelta(0)
    day, last = la.date(), lb.date()
    while day <= last:
        window = hours.window(day)
        if window is not None:
            begin, end = max(la, window[0]), min(lb, window[1])
            if end > begin:
                total += end - begin
        day += ONE_DAY
        # Whole weeks strictly between the first and the last day count a full week each.
        weeks = ((last - day).days - 1) // 7
        if day > la.date() and weeks > 0:
            total += hours.week_length * weeks
            day += timedelta(days=7 * weeks)
    return total


# --- target status -----------------------------------------------------------------------------
#
# The same rules are compiled to SQL in crm_graph/support/filters.py (``sla_breached``) and used
# by the statistics; keep the three in step.


def first_response_status(ticket: Ticket, now: datetime) -> SlaStatus | None:
    """MET once answered in time; BREACHED once the due time passed unanswered (and for ever)."""
    if ticket.first_response_due_at is None:
        return None
    if ticket.first_response_breached_at is not None:
        return SlaStatus.BREACHED
    if ticket.first_responded_at is not None:
        return SlaStatus.MET
    return SlaStatus.BREACHED if ticket.first_response_due_at < now else SlaStatus.PENDING


def resolution_status(ticket: Ticket, now: datetime) -> SlaStatus | None:
    """MET when resolved in time; BREACHED once the running clock passed the due time."""
    if ticket.resolution_due_at is None:
        return None
    if ticket.resolution_breached_at is not None:
        return SlaStatus.BREACHED
    if ticket.status in CLOCK_RUNNING:
        return SlaStatus.BREACHED if ticket.resolution_due_at < now else SlaStatus.PENDING
    if ticket.resolved_at is not None:
        return SlaStatus.MET
    return SlaStatus.PENDING  # PENDING: the clock stands still while the customer is asked


def due_times(policy: SlaPolicy | None, created_at: datetime) -> tuple[datetime | None, datetime | None]:
    if policy is None:
        return None, None
    hours = business_hours_of(policy)
    return (
        add_business_time(created_at, timedelta(minutes=policy.first_response_minutes), hours),
        add_business_time(created_at, timedelta(minutes=policy.resolution_minutes), hours),
    )


def policy_matches(policy: SlaPolicy, *, priority: str, channel: str, tags: list[str]) -> bool:
    if policy.priorities and priority not in policy.priorities:
        return False
    if policy.channels and channel not in policy.channels:
        return False
    if policy.tags and not set(policy.tags) & set(tags):
        return False
    return True
