"""Pacing: a batch's pace, lowered when the platform throttles and raised back (AIMD).

SPEC section 4: a 429 or resultCode ``10010000002`` means "not created, too fast". A batch
then slows down instead of failing rows. The pace is loss-based, not latency-based: a
createcall's latency includes setting up a phone call, which says nothing about the
platform's load.

- **Signals**: a throttled answer, or a request that could not be sent (no connection).
- **Down, once per window**: with at least two signals in a window (about
  ``max(1 s, 2 x median latency)``) and none lowered it in the last one, the rate becomes
  0.95 x what the platform took (measured while calls were offered throughout at the
  current limit: not over a pause, a change of the rate or the batch's first burst) when
  that is known, else 0.8 x what the batch was doing (its limit, or with none its starts
  in the last window). Just after a pause or a change, it waits to measure before
  lowering again. The turns already handed out are given again at the lowered rate
  (kept, they would go on at the old one).
- **Retry-After** holds the call that got it; when the rate is lowered and throttles were
  more than a tenth of the window's answers, the window's longest ``Retry-After`` pauses
  the whole batch too (a few probes above the platform's rate do not stop everyone).
- **Up**, after each clean window in which starts had to wait for their turn (the batch
  used its limit): while no cut was measured (the first came from a burst), twice as fast
  (a slow start); after a measured cut, by a twentieth of the limit that was throttled
  back to it, then beyond it from a quarter of that, twice as far each clean window (up to
  two twentieths: the limit may have been measured low). The turns already handed out
  are given again at the raised rate too: spaced for the old one, a concurrency's worth
  of them would hold the batch there for as long again.
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
#: Beyond the last throttled limit the climb starts at this share of a step...
_PROBE_FIRST = 0.25
#: ... and doubles each clean window up to this many steps.
_PROBE_MAX = 2.0
#: What the platform took is measured over at least this share of a window.
_MEASURED = 0.25
#: ... and from at least this many calls.
_FEWEST_TAKEN = 10
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
        #: How often the turns handed out were voided (the rate changed): a turn is good
        #: until the next.
        self.issue = 0
        self._measured = False  # a cut came from what the platform took (else: slow start)
        #: Whether the last cut came from what the platform took (else: a fifth off).
        self.measured_cut = False
        self._changed_at = -math.inf  # the rate's last change
        self._probe = _PROBE_FIRST  # of a step, the next climb beyond the throttled limit
        self._throttled_limit = math.inf  # the limit the last cut came from
        self._step = 1.0
        self._starts: collections.deque[float] = collections.deque()
        self._accepted: collections.deque[float] = collections.deque()
        self._first_start: float | None = None
        self._latencies: collections.deque[float] = collections.deque(maxlen=_LATENCIES)

    def turn(self, now: float) -> tuple[float, int | None]:
        """Ask for a start at ``now``: how long to wait, and the turn held (``None``: none).

        With a turn held, the start may go after the wait if :meth:`start` agrees; without
        (a pause), it asks again after the wait.
        """
        self._roll(now)
        if now < self.paused_until:
            return self.paused_until - now, None
        if self.rate is None:
            return 0.0, self.issue
        start = max(now, self._next)
        self._next = start + 1.0 / self.rate
        if start > now:
            self._waited = True
        return start - now, self.issue

    def start(self, now: float, turn: int) -> bool:
        """Start on ``turn`` at ``now``, if it still stands; else ask for a new one.

        A turn stands unless a pause began or the rate changed since it was given: the
        turns handed out before are spaced for the old rate, and up to a concurrency's
        worth of them would keep that rate for as long again.
        """
        if now < self.paused_until or turn != self.issue:
            return False
        self.started(now)
        return True

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
            taken = self._taken_rate(now)
            if taken is None and now - self._settled_at < self._window_length:
                return False  # just after a pause or a change: measure what it takes first
            heavy = self._signals > _HEAVY * (self._signals + len(self._accepted))
            self._lower(now, taken)
            if heavy and retry_after_seen > 0 and now + retry_after_seen > self.paused_until:
                self.paused_until = now + retry_after_seen
                self.pauses += 1
                return True
        return False

    def _lower(self, now: float, taken: float | None) -> None:
        # What the batch was doing: its limit, or (unlimited) its measured starts.
        base = self.rate if self.rate is not None else self._started_rate(now)
        if taken is None:
            limit, lowered = base, _DECREASE * base
        else:
            # What the platform took is the best guess of its capacity: just under it at
            # once (down to it, or not as far down as a fifth off).
            limit = min(base, taken)
            lowered = _MARGIN * limit
            self._measured = True
        self.measured_cut = taken is not None
        self.rate = max(MIN_RATE, lowered)
        self._changed_at = now
        self._step = max(MIN_RATE, limit / 20.0)
        self._throttled_limit = limit
        self._probe = _PROBE_FIRST
        self._next = min(self._next, now + 1.0 / self.rate)
        self.issue += 1
        self._lowered_at = now
        self._signals = 0
        self._retry_after = 0.0
        self._window_start = now
        self._waited = False

    @property
    def _settled_at(self) -> float:
        """Since when the batch has been offering calls at its current limit."""
        return max(self.paused_until, self._changed_at)

    def _taken_rate(self, now: float) -> float | None:
        """Return the calls per second the platform took while calls were offered throughout.

        Over the last window, but not before a pause (Retry-After) ended, the rate last
        changed or the batch's first start (its first starts came at once, and a platform
        takes only its burst of those), plus a latency for their answers to come.
        ``None`` when that leaves less than a quarter of a window, or too few calls.
        """
        latency = statistics.median(self._latencies) if self._latencies else 0.0
        first = math.inf if self._first_start is None else self._first_start
        since = max(now - self._window_length, self._settled_at + latency, first + latency)
        if now - since < _MEASURED * self._window_length:
            return None
        taken = sum(moment >= since for moment in self._accepted)
        return taken / (now - since) if taken >= _FEWEST_TAKEN else None

    def _started_rate(self, now: float) -> float:
        """Return the starts per second over the last window.

        Over a whole window even at the batch's beginning: its first starts come at once,
        and a rate measured over the instant they took would be no rate at all.
        """
        starts = self._starts
        while starts and starts[0] < now - self._window_length:
            starts.popleft()
        return len(starts) / self._window_length

    def _roll(self, now: float) -> None:
        """Close the window if it ended: one step up if it was clean and used its limit."""
        if now - self._window_start < self._window_length:
            return
        if self._signals == 0 and self._waited and self.rate is not None:
            if not self._measured:
                # Nothing known of the platform's rate yet (the cuts so far came from
                # bursts): double, until a throttle in a paced window measures it.
                raised = 2 * self.rate
            elif self.rate < self._throttled_limit:
                # Back to where the platform refused.
                raised = min(self.rate + self._step, self._throttled_limit)
            else:
                # Beyond it carefully, a quarter step, then twice as far each clean window
                # (up to two steps): the limit may have been measured low.
                raised = self.rate + self._step * self._probe
                self._probe = min(_PROBE_MAX, 2 * self._probe)
            raised = raised if self.ceiling is None else min(raised, self.ceiling)
            if raised != self.rate:
                self.rate, self._changed_at = raised, now
                self._next = min(self._next, now)
                self.issue += 1
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
        self._wake_event: anyio.Event | None = None
        #: Whether it stopped because the platform accepted nothing for too long.
        self.gave_up: bool = False

    @property
    def _pace(self) -> Pace:
        if self._started is None:
            self._started = Pace(self._rate, self._clock())
        return self._started

    @property
    def _waiting(self) -> anyio.Event:
        """Set when the waits for a turn end early: a stop, or turns given again."""
        if self._wake_event is None:
            self._wake_event = anyio.Event()
            if self._stop_asked:
                self._wake_event.set()
        return self._wake_event

    def _reissued(self) -> None:
        """Wake the starts waiting for turns that no longer stand, to ask again."""
        if self._wake_event is not None:
            self._wake_event.set()
            self._wake_event = None

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
        if self._wake_event is not None:
            self._wake_event.set()

    async def admit(self) -> bool:
        """Wait for the next start's turn; return whether the call may be sent now."""
        pace = self._pace
        while not self.stopped:
            issue = pace.issue
            wait, turn = pace.turn(self._clock())
            if pace.issue != issue:
                self._reissued()
            if wait > 0:
                with anyio.move_on_after(wait):
                    await self._waiting.wait()
            # (Stopped or given a new turn during the wait: no start is counted.)
            if turn is not None and not self.stopped and pace.start(self._clock(), turn):
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
        pace = self._pace
        issue = pace.issue
        paused = pace.throttled(now, retry_after)
        if pace.issue != issue:
            self._reissued()
        if now - pace.accepted_at >= self._max_throttle_wait:
            self.gave_up = True
            self.stop()
        return paused
