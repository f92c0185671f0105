"""The last-moment decision to dial a row: every reason not to, checked in one place.

A row's call reaches :meth:`DialGate.admit` once it holds a token, an in-flight slot and
its turn in the batch's pace (the engine waits for it just before), immediately before
its claim is committed and its request can leave; and again before each re-send of a
throttled call. So nothing is dialled because it was taken up before a reason appeared:
a row waiting for its turn when a stop arrives is not dialled, and stays ``pending``.
"""

from __future__ import annotations

from .._pacing import Pacing

__all__ = ["DialGate"]


class DialGate:
    """Decides, at the last moment, whether a row may be dialled."""

    def __init__(self, pacing: Pacing) -> None:
        self._pacing = pacing

    def stop(self) -> None:
        """Dial nothing more; rows waiting for their turn give it up at once."""
        self._pacing.stop()

    @property
    def stopped(self) -> bool:
        """Whether nothing more may be dialled: a stop, or the platform throttled too long."""
        return self._pacing.stopped

    def admit(self) -> bool:
        """Return whether the row whose turn it is may be dialled now."""
        return not self.stopped

    async def idle(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the gate stops meanwhile."""
        await self._pacing.hold(seconds)
