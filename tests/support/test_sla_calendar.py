"""Business-hours arithmetic: due times and business time between two instants."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

from crm_graph.support.sla import (
    BusinessHours,
    add_business_time,
    business_time_between,
)

OFFICE = BusinessHours("Europe/Berlin", frozenset(range(5)), time(9), time(17))
MINUTE = timedelta(minutes=1)


def berlin(*args: int) -> datetime:
    return OFFICE.instant(datetime(*args))


def test_a_target_set_late_on_friday_is_due_on_monday():
    friday_1630 = berlin(2026, 3, 6, 16, 30)
    assert add_business_time(friday_1630, timedelta(minutes=30), OFFICE) == berlin(2026, 3, 6, 17, 0)
    assert add_business_time(friday_1630, timedelta(minutes=31), OFFICE) == berlin(2026, 3, 9, 9, 1)
    assert add_business_time(friday_1630, timedelta(hours=8), OFFICE) == berlin(2026, 3, 9, 16, 30)


def test_a_ticket_opened_outside_business_hours_counts_from_the_next_opening():
    saturday = berlin(2026, 3, 7, 11, 0)
    assert add_business_time(saturday, timedelta(minutes=60), OFFICE) == berlin(2026, 3, 9, 10, 0)
    early_tuesday = berlin(2026, 3, 10, 6, 0)
    assert add_business_time(early_tuesday, timedelta(minutes=1), OFFICE) == berlin(2026, 3, 10, 9, 1)
    # Exactly one business day from an opening lands on that day's closing time.
    assert add_business_time(berlin(2026, 3, 10, 9, 0), timedelta(hours=8), OFFICE) == berlin(2026, 3, 10, 17, 0)


def test_business_hours_follow_the_local_clock_across_daylight_saving_time():
    # Berlin moves from CET (UTC+1) to CEST (UTC+2) on Sunday 29 March 2026.
    friday = datetime(2026, 3, 27, 15, 0, tzinfo=UTC)  # 16:00 CET
    due = add_business_time(friday, timedelta(hours=2), OFFICE)
    assert due == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # Monday 10:00 CEST
    assert business_time_between(friday, due, OFFICE) == timedelta(hours=2)


def test_around_the_clock_is_plain_elapsed_time():
    start = datetime(2026, 3, 7, 23, 0, tzinfo=UTC)
    assert add_business_time(start, timedelta(minutes=90), None) == datetime(2026, 3, 8, 0, 30, tzinfo=UTC)
    assert business_time_between(start, start + timedelta(days=3), None) == timedelta(days=3)


def test_business_time_between_two_instants():
    assert business_time_between(berlin(2026, 3, 6, 16, 30), berlin(2026, 3, 9, 9, 30), OFFICE) == timedelta(hours=1)
    assert business_time_between(berlin(2026, 3, 9, 12, 0), berlin(2026, 3, 9, 11, 0), OFFICE) == timedelta(0)
    # Five whole weeks from a Monday opening: 5 x 40 hours, whatever the week-skipping does.
    assert business_time_between(berlin(2026, 3, 2, 9, 0), berlin(2026, 4, 6, 9, 0), OFFICE) == timedelta(hours=200)


def _minute_walk_add(start: datetime, minutes: int, hours: BusinessHours) -> datetime:
    """The definition, minute by minute on the wall clock."""
    wall, counted = hours.wall(start), 0
    while True:
        window = hours.window(wall.date())
        if window is not None and window[0] <= wall < window[1]:
            counted += 1
            if counted == minutes:
                return hours.instant(wall + MINUTE)
        wall += MINUTE


def _day_walk_add(start: datetime, duration: timedelta, hours: BusinessHours) -> datetime:
    """Day by day, without skipping whole weeks."""
    local, remaining = hours.wall(start), duration
    day = local.date()
    while True:
        window = hours.window(day)
        if window is not None:
            begin = max(local, window[0])
            if begin < window[1]:
                if remaining <= window[1] - begin:
                    return hours.instant(begin + remaining)
                remaining -= window[1] - begin
        day += timedelta(days=1)
        local = datetime.combine(day, time.min)


def _random_hours(rng: random.Random) -> BusinessHours:
    start = rng.randrange(0, 22 * 4)
    end = rng.randrange(start + 1, 24 * 4)
    weekdays = frozenset(rng.sample(range(7), rng.randint(1, 7)))
    zone = rng.choice(["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"])
    return BusinessHours(zone, weekdays, time(start // 4, start % 4 * 15), time(end // 4 % 24, end % 4 * 15) if end < 96 else time(23, 59))


def test_due_times_agree_with_a_minute_by_minute_walk():
    rng = random.Random(4)
    for _ in range(25):
        hours = _random_hours(rng)
        start = datetime(2026, 3, 20, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 14 * 24 * 60))
        minutes = rng.randint(1, 2000)
        assert add_business_time(start, timedelta(minutes=minutes), hours) == _minute_walk_add(start, minutes, hours), hours


def test_skipping_whole_weeks_changes_no_answer():
    rng = random.Random(7)
    for _ in range(150):
        hours = _random_hours(rng)
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        duration = timedelta(minutes=rng.randint(1, 200_000))
        due = add_business_time(start, duration, hours)
        assert due == _day_walk_add(start, duration, hours), hours
        assert business_time_between(start, due, hours) == duration, hours
