"""A tenant's capacity as a gateway meters it: a token bucket of createcalls per second."""

from __future__ import annotations

import attrs

__all__ = ["Capacity", "TokenBucket"]


@attrs.frozen
class Capacity:
    """How many createcalls per second the emulated tenant may make, and how it is told."""

    #: Calls per second, on average.
    rate: float
    #: Calls at once, after a quiet spell.
    burst: int
    #: The ``Retry-After`` sent with a 429 (``None``: none).
    retry_after: float | None
    #: Refuse with HTTP 200 and resultCode ``10010000002`` instead of 429.
    result_code: bool


class TokenBucket:
    """Holds up to ``burst`` calls, refilled at ``rate`` per second (not thread-safe)."""

    def __init__(self, capacity: Capacity, now: float) -> None:
        self.capacity = capacity
        self._tokens = float(capacity.burst)
        self._at = now

    def take(self, now: float) -> bool:
        """Take one call's token at ``now``; return whether there was one."""
        capacity = self.capacity
        self._tokens = min(float(capacity.burst), self._tokens + (now - self._at) * capacity.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
