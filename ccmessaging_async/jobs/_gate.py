"""The last-moment decision to dial a row: every reason not to, checked in one place.

A row's call reaches :meth:`DialGate.admit` once it holds a token, an in-flight slot and
its turn in the batch's pace (the engine waits for it just before), and, on a job whose
workers share a pace, its turn in the job's; immediately before its claim is committed
and its request can leave; and again before each re-send of a throttled call. So nothing
is dialled because it was taken up before a reason appeared: a row waiting for its turn
when a stop arrives is not dialled, and stays ``pending``; a number put on the
suppression list meanwhile is ``skipped``; a row whose calling hours closed meanwhile is
deferred to their next opening. (Calling hours are also checked when rows are taken, so
that rows outside them never wait for a turn.)
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable

import attrs

from .._pacing import Pacing
from ._hours import CallingHours, Opening
from ._records import PendingRow
from ._shared_pace import SharedPace

__all__ = ["Defer", "DialGate", "IsSuppressed", "Skip"]

#: Whether a number (a row's key: E.164 where the job could tell) may not be called.
IsSuppressed = Callable[[str], Awaitable[bool]]


@attrs.frozen
class Skip:
    """The row ends without a call, for this reason (its report line's error)."""

    reason: str


@attrs.frozen
class Defer:
    """The row is outside its calling hours: it waits, ``pending``, for this opening."""

    opening: Opening


class DialGate:
    """Decides, at the last moment, whether a row may be dialled.

    With a ``shared`` pace (a job whose workers share one), a row also waits for one of
    this worker's turns at the job's pace. With ``is_suppressed``, a row whose number is
    suppressed at that moment is skipped; with ``hours``, a row outside its calling hours
    at that moment (by ``clock``: the store's, Unix time) is deferred.
    """

    def __init__(
        self,
        pacing: Pacing,
        shared: SharedPace | None = None,
        is_suppressed: IsSuppressed | None = None,
        hours: CallingHours | None = None,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._pacing = pacing
        self._shared = shared
        self._is_suppressed = is_suppressed
        self._hours = hours
        self._clock = clock

    def outside_hours(self, row: PendingRow) -> Skip | Defer | None:
        """Return why ``row`` may not be dialled now for its calling hours (``None``: it may)."""
        if self._hours is None:
            return None
        zones = self._hours.zones(row.number or row.called)
        if not zones:
            return Skip(
                "OutsideCallingHoursError: no time zone is known for this number, so no "
                "calling hours; not called (a default zone, --tz, serves such numbers)"
            )
        now = datetime.datetime.fromtimestamp(self._clock(), datetime.UTC)
        try:
            opening = self._hours.opening(zones, now)
        except ValueError as exc:
            return Skip(f"OutsideCallingHoursError: {exc}; not called")
        return None if opening is None else Defer(opening)

    def stop(self) -> None:
        """Dial nothing more; rows waiting for their turn give it up at once."""
        self._pacing.stop()

    @property
    def stopped(self) -> bool:
        """Whether nothing more may be dialled: a stop, or the platform throttled too long."""
        return self._pacing.stopped

    async def admit(self, row: PendingRow) -> bool | Skip | Defer:
        """Return whether ``row``, whose turn it is, may be dialled now, or why not.

        Exceptions of ``is_suppressed`` propagate: a row that cannot be checked is not
        dialled.
        """
        if self.stopped:
            return False
        if self._shared is not None and not await self._shared.turn(
            lambda: self.stopped, self.idle
        ):
            return False
        if self._is_suppressed is not None:
            number = row.number or row.called
            if await self._is_suppressed(number):
                return Skip(
                    "SuppressedNumberError: the number is on the suppression list; not called"
                )
        return self.outside_hours(row) or not self.stopped

    async def idle(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the gate stops meanwhile."""
        await self._pacing.hold(seconds)
