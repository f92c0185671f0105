"""The last-moment decision to dial a row: every reason not to, checked in one place.

A row's call reaches :meth:`DialGate.admit` once it holds a token and an in-flight slot,
just before its claim is committed and its request can leave. Every wait of the decision
(the job's rate) is followed by a fresh look at the reasons to stop, so nothing is dialled
because it was taken up before a reason appeared: a row waiting for its turn when a stop
arrives is not dialled, and stays ``pending`` for the next run.
"""

from __future__ import annotations

import anyio

from .._rate import RateLimiter

__all__ = ["DialGate"]


class DialGate:
    """Decides, at the last moment, whether the next row may be dialled."""

    def __init__(self, rate: float | None) -> None:
        self._limiter = RateLimiter(rate) if rate is not None else None
        self._stopped = anyio.Event()

    def stop(self) -> None:
        """Dial nothing more; rows waiting for their turn give it up at once."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped.is_set()

    async def admit(self) -> bool:
        """Wait for this row's turn; return whether it may be dialled now."""
        if self.stopped:
            return False
        if self._limiter is not None:
            delay = self._limiter.reserve()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._stopped.wait()
        return not self.stopped
