"""Rate limits by query cost: one token bucket per principal, or per client address when anonymous.

Each request is charged its cost (``graphql/cost.py``; at least 1, so refused and trivial
documents count too) before it runs. A bucket holds at most ``capacity`` points and refills
``refill`` points per second; a request that finds too few points is refused with
``RATE_LIMITED`` (HTTP 429, a ``Retry-After`` header and ``extensions.retryAfter``), and is not
charged. Every answer carries the ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` headers (seconds until the bucket is full again), as in the IETF
httpapi rate-limit headers draft.

Buckets live in the process (docs/deployment.md): several server processes each keep their own,
so a client's budget is that many times larger; a shared store would put a database write on
every request, which costs more than the limit protects. Time comes from ``core/clock.py``.
Memory is bounded: at most ``max_buckets`` buckets, the least recently used dropped first (a
bucket idle for ``capacity / refill`` seconds is full again, so dropping it loses nothing).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from crm_graph.core import clock


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full
    retry_after: int = 0  # seconds until the refused request would fit

    def headers(self) -> dict[str, str]:
        found = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                 "RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            found["Retry-After"] = str(self.retry_after)
        return found


class TokenBuckets:
    """Buckets of one kind of client (signed-in principals, or anonymous addresses)."""

    def __init__(self, capacity: float, refill: float, max_buckets: int) -> None:
        self.capacity, self.refill, self.max_buckets = capacity, refill, max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (points, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: str, now: float) -> float:
        points, at = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, points + max(0.0, now - at) * self.refill)

    def take(self, key: str, cost: int) -> Decision:
        now = clock.utcnow().timestamp()
        points = self._level(key, now)
        allowed = points >= cost
        if allowed:
            points -= cost
        self._buckets[key] = (points, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)
        retry = 0 if allowed else max(1, math.ceil((cost - points) / self.refill))
        return Decision(allowed, int(self.capacity), int(points), self._reset(points), retry)

    def peek(self, key: str) -> Decision:
        points = self._level(key, clock.utcnow().timestamp())
        return Decision(True, int(self.capacity), int(points), self._reset(points))

    def _reset(self, points: float) -> int:
        return math.ceil((self.capacity - points) / self.refill)


class RateLimiter:
    """The buckets of one server: principals and anonymous addresses apart. ``None`` from
    ``from_settings`` when rate limiting is off (``CRM_RATE_LIMIT_CAPACITY=0``)."""

    def __init__(self, principals: TokenBuckets, anonymous: TokenBuckets) -> None:
        self.principals, self.anonymous = principals, anonymous

    @classmethod
    def from_settings(cls, settings: Any) -> RateLimiter | None:
        if settings.rate_limit_capacity <= 0:
            return None
        return cls(
            TokenBuckets(settings.rate_limit_capacity, settings.rate_limit_refill, settings.rate_limit_max_buckets),
            TokenBuckets(settings.anonymous_rate_limit_capacity, settings.anonymous_rate_limit_refill,
                         settings.rate_limit_max_buckets),
        )

    def buckets(self, context: Any) -> tuple[TokenBuckets, str]:
        """Which bucket pays for a request: its principal's (``api_key:3``, ``user:5``), else,
        for a request that is not signed in, its client address's."""
        actor = getattr(context, "actor", None)
        if actor is not None and actor.authenticated:
            return self.principals, actor.principal or actor.label
        request = getattr(context, "request", None)
        client = getattr(request, "client", None)
        return self.anonymous, f"address:{client.host if client is not None else 'unknown'}"

    def charge(self, context: Any, cost: int) -> Decision:
        buckets, key = self.buckets(context)
        return buckets.take(key, cost)

    def peek(self, context: Any) -> Decision:
        buckets, key = self.buckets(context)
        return buckets.peek(key)
