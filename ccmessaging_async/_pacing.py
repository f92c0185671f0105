"""Pacing: a batch's pace, lowered when the platform throttles and raised back (AIMD).

SPEC section 4: a 429 or resultCode ``10010000002`` means "not created, too fast". A batch
then slows down instead of failing rows. The pace is loss-based, not latency-based: a
createcall's latency includes setting up a phone call, which says nothing about the
platform's load.

- **Signals**: a throttled answer, or a request that could not be sent (no connection).
- **Down, once per window**: with at least two signals in a window (about
  ``max(1 s, 2 x median latency)``) and none lowered it in the last one, the rate becomes
  0.8 x what the batch was doing (its limit, or with none its measured rate of starts),
  or 0.95 x what the platform took in that window if that is lower and no pause skewed it.
- **Retry-After** holds the call that got it; when the rate is lowered and throttles were
  more than a tenth of the window's answers, the window's longest ``Retry-After`` pauses
  the whole batch too (a few probes above the platform's rate do not stop everyone).
- **Up, additively**: after each clean window in which starts had to wait for their turn
  (the batch used its limit), by a twentieth of the limit that was throttled; a quarter
  of that from 90 % of that limit on.
- **Never above** the user's ``rate`` (with none, the batch starts unlimited, bounded by
  its concurrency, and finds the platform's rate).
- **Giving up**: when the platform has accepted nothing for ``max_throttle_wait`` while
  throttling, the pacing stops: nothing more is dialled.
"""

from __future__ import annotations

import collections
import math
import statistics
from collections.abc import Callable

import anyio

from ._errors import ConfigurationError

__all__ = ["MAX_PAUSE", "MIN_RATE", "Pace", "Pacing"]

#: The slowest pace, in calls per second: the rate never goes below it.
MIN_RATE = 0.1
#: The longest a ``Retry-After`` pauses a batch, in seconds.
MAX_PAUSE = 60.0
_DECREASE = 0.8
#: A cut to what the platform took leaves this much of it, to stay just under it.
_MARGIN = 0.95
#: Throttles above this share of a window's answers pause the whole batch.
_HEAVY = 0.1
#: From this share of the last throttled limit on, the rate climbs a quarter as fast.
_NEAR = 0.9
#: The shortest time a rate is measured over (the first starts come all at once).
_SHORTEST_SPAN = 0.05
_LATENCIES = 64


class Pace:
    """The AIMD decision alone, on times given to it: no clock, no waiting (testable)."""

    def __init__(self, rate: float | None, now: float) -> None:
        self.ceiling = None if rate is None else float(rate)
        #: The current limit in calls per second (``None``: unlimited).
        self.rate = self.ceiling
        self.throttles = 0
        self.pauses = 0
        self.paused_until = -math.inf
        self.accepted_at = now  # the last accepted call (or the start)
        self._next = -math.inf  # the next start's turn
        self._window_start = now
        self._window_length = 1.0
        self._signals = 0  # in this window
        self._retry_after = 0.0  # the longest asked for in this window
        self._waited = False  # a start waited for its turn in this window
        self._lowered_at = -math.inf
        self._throttled_limit = math.inf  # the limit the last cut came from
        self._step = 1.0
        self._starts: collections.deque[float] = collections.deque()
        self._accepted: collections.deque[float] = collections.deque()
        self._first_start: float | None = None
        self._latencies: collections.deque[float] = collections.deque(maxlen=_LATENCIES)

    def turn(self, now: float) -> tuple[float, bool]:
        """Ask for a start at ``now``: how long to wait, and whether a turn is held.

        With a turn held, the start goes after the wait (unless a pause began meanwhile);
        without (a pause), it asks again after the wait.
        """
        self._roll(now)
        if now < self.paused_until:
            return self.paused_until - now, False
        if self.rate is None:
            return 0.0, True
        start = max(now, self._next)
        self._next = start + 1.0 / self.rate
        if start > now:
            self._waited = True
        return start - now, True

    def paused(self, now: float) -> bool:
        """Whether a ``Retry-After`` pause holds every start at ``now``."""
        return now < self.paused_until

    def started(self, now: float) -> None:
        """Note a start at ``now`` (the measured rate counts the last window's)."""
        if self._first_start is None:
            self._first_start = now
        starts = self._starts
        starts.append(now)
        while starts[0] < now - self._window_length:
            starts.popleft()

    def accepted(self, now: float, latency: float) -> None:
        """Note a call the platform took (answered, throttling aside) in ``latency`` s."""
        self._latencies.append(latency)
        self.accepted_at = now
        accepted = self._accepted
        accepted.append(now)
        while accepted[0] < now - self._window_length:
            accepted.popleft()

    def throttled(self, now: float, retry_after: float | None) -> bool:
        """Note a throttle signal; return whether it paused every start (``retry_after``)."""
        self._roll(now)
        self.throttles += 1
        self._signals += 1
        if retry_after is not None:
            self._retry_after = max(self._retry_after, min(retry_after, MAX_PAUSE))
        retry_after_seen = self._retry_after
        if self._signals >= 2 and now - self._lowered_at >= self._window_length:
            heavy = self._signals > _HEAVY * (self._signals + len(self._accepted))
            self._lower(now)
            if heavy and retry_after_seen > 0 and now + retry_after_seen > self.paused_until:
                self.paused_until = now + retry_after_seen
                self.pauses += 1
                return True
        return False

    def _lower(self, now: float) -> None:
        # What the batch was doing: its limit, or (unlimited) its measured starts.
        base = self.rate if self.rate is not None else self._measured_rate(now, self._starts)
        lowered = _DECREASE * base
        # What the platform took is the best guess of its capacity: go down to it at once,
        # unless a pause (Retry-After) kept the window's calls from going.
        if self.paused_until <= now - self._window_length:
            taken = _MARGIN * self._measured_rate(now, self._accepted)
            if 0 < taken < lowered:
                lowered = taken
        self.rate = max(MIN_RATE, lowered)
        self._step = max(MIN_RATE, base / 20.0)
        self._throttled_limit = base
        self._next = min(self._next, now + 1.0 / self.rate)
        self._lowered_at = now
        self._signals = 0
        self._retry_after = 0.0
        self._window_start = now
        self._waited = False

    def _measured_rate(self, now: float, moments: collections.deque[float]) -> float:
        """Return ``moments`` per second over the last window (or since the first start)."""
        while moments and moments[0] < now - self._window_length:
            moments.popleft()
        if self._first_start is None:
            return 0.0
        span = min(self._window_length, max(now - self._first_start, _SHORTEST_SPAN))
        return len(moments) / span

    def _roll(self, now: float) -> None:
        """Close the window if it ended: one step up if it was clean and used its limit."""
        if now - self._window_start < self._window_length:
            return
        if self._signals == 0 and self._waited and self.rate is not None:
            # Carefully near the limit that was throttled last: a quarter step.
            near = self.rate >= _NEAR * self._throttled_limit
            raised = self.rate + (self._step / 4 if near else self._step)
            self.rate = raised if self.ceiling is None else min(raised, self.ceiling)
        self._window_start = now
        self._signals = 0
        self._retry_after = 0.0
        self._waited = False
        if self._latencies:
            self._window_length = max(1.0, 2.0 * statistics.median(self._latencies))


class Pacing:
    """The pace of one batch: at most ``rate`` calls per second, slower while throttled.

    Pass one to ``create_calls(pacing=...)`` to read the pace as it changes (:attr:`rate`,
    :attr:`throttles`, :attr:`pauses`) or to :meth:`stop` the batch from elsewhere; by
    default ``create_calls`` builds one from ``rate=`` and ``max_throttle_wait=``. It may be
    made outside an event loop; its clock starts with the batch.
    """

    def __init__(
        self,
        rate: float | None = None,
        *,
        max_throttle_wait: float = 600.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if rate is not None and not (isinstance(rate, int | float) and 0 < rate < math.inf):
            raise ConfigurationError(f"rate must be > 0 calls per second, or None, got {rate!r}")
        if not (isinstance(max_throttle_wait, int | float) and 0 < max_throttle_wait < math.inf):
            raise ConfigurationError(
                f"max_throttle_wait must be > 0 seconds, got {max_throttle_wait!r}"
            )
        self._max_throttle_wait = float(max_throttle_wait)
        self._clock = clock or anyio.current_time
        self._rate = rate
        self._started: Pace | None = None  # made on first use, inside the event loop
        self._stop_asked = False
        self._stop_event: anyio.Event | None = None
        #: Whether it stopped because the platform accepted nothing for too long.
        self.gave_up: bool = False

    @property
    def _pace(self) -> Pace:
        if self._started is None:
            self._started = Pace(self._rate, self._clock())
        return self._started

    @property
    def _stopped(self) -> anyio.Event:
        if self._stop_event is None:
            self._stop_event = anyio.Event()
            if self._stop_asked:
                self._stop_event.set()
        return self._stop_event

    def __repr__(self) -> str:
        rate = "unlimited" if self.rate is None else f"{self.rate:.1f}/s"
        return f"<Pacing {rate}, {self.throttles} throttles, {self.pauses} pauses>"

    @property
    def rate(self) -> float | None:
        """The current limit in calls per second (``None``: only the concurrency bounds it)."""
        return self._rate if self._started is None else self._started.rate

    @property
    def throttles(self) -> int:
        """Throttle signals seen."""
        return 0 if self._started is None else self._started.throttles

    @property
    def pauses(self) -> int:
        """Pauses asked for by ``Retry-After``."""
        return 0 if self._started is None else self._started.pauses

    @property
    def stopped(self) -> bool:
        """Whether nothing more may be dialled (:meth:`stop`, or it gave up)."""
        return self._stop_asked

    @property
    def max_throttle_wait(self) -> float:
        """Seconds without an accepted call, while throttled, before giving up."""
        return self._max_throttle_wait

    def stop(self) -> None:
        """Dial nothing more: starts waiting for their turn give it up at once."""
        self._stop_asked = True
        if self._stop_event is not None:
            self._stop_event.set()

    async def admit(self) -> bool:
        """Wait for the next start's turn; return whether the call may be sent now."""
        pace = self._pace
        while not self.stopped:
            wait, held = pace.turn(self._clock())
            if wait > 0:
                with anyio.move_on_after(wait):
                    await self._stopped.wait()
                if self.stopped or not held or pace.paused(self._clock()):
                    continue
            pace.started(self._clock())
            return True
        return False

    async def hold(self, seconds: float) -> None:
        """Hold one call ``seconds`` (its own ``Retry-After``), or until the pace stops."""
        with anyio.move_on_after(min(seconds, MAX_PAUSE)):
            await self._stopped.wait()

    def accepted(self, latency: float) -> None:
        """Note a call the platform took (it answered, throttling aside) in ``latency`` s."""
        self._pace.accepted(self._clock(), latency)

    def throttled(self, retry_after: float | None = None) -> bool:
        """Note a throttle signal; return whether its ``retry_after`` paused the batch."""
        now = self._clock()
        paused = self._pace.throttled(now, retry_after)
        if now - self._pace.accepted_at >= self._max_throttle_wait:
            self.gave_up = True
            self.stop()
        return paused
