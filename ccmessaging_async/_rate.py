"""RateLimiter: starts spaced evenly, a smooth rate and never a burst."""

from __future__ import annotations

import math

import anyio

__all__ = ["RateLimiter"]


class RateLimiter:
    """Spaces starts ``1/rate`` seconds apart: a smooth rate, never a burst."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = -math.inf

    def reserve(self) -> float:
        """Take the next start's turn; return the seconds until it comes (0: now)."""
        now = anyio.current_time()
        start = max(now, self._next)
        self._next = start + self._interval
        return start - now

    async def wait(self) -> None:
        """Wait for this start's turn."""
        delay = self.reserve()
        if delay > 0:
            await anyio.sleep(delay)
