"""The one place the code asks for the current time, so tests can drive it explicitly."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Iterator

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def utcnow() -> datetime:
    return _now()


@contextmanager
def frozen_clock(start: datetime) -> Iterator["FrozenClock"]:
    """Replace the clock for the duration of a ``with`` block (tests, back-fills)."""
    global _now
    clock = FrozenClock(start)
    previous, _now = _now, clock
    try:
        yield clock
    finally:
        _now = previous


class FrozenClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock needs a timezone-aware start")
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current
