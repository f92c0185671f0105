"""One pace for a job, whatever the number of its workers: kept in the job's database.

A job in PostgreSQL with a rate keeps its pace in its ``jobs`` row: the current limit
and the next free turn (GCRA, on the database's clock). Each worker reserves a few turns
at a time (about a quarter of a second's worth) and dials on them, so all the workers
together never go faster than the limit. What one worker learns from throttling reaches
every worker: a cut of its own pace lowers the job's (at most once a window, see below),
a ``Retry-After`` pause holds everyone's turns, and the limit climbs back by a
twentieth of the job's rate per window without a cut while the workers use it, never
above that rate.

A cut a worker measured on what the platform took from it (its share) sets the job's
pace to that times the workers running, if lower; a cut it could not measure lowers the
job's pace by its factor. A job with no rate has no pace at first (each worker keeps its
own) until a worker's measured cut gives it one; from then on it is shared like a rate's,
climbing by a twentieth of itself.

Turns a worker reserved and did not use (it stopped) are lost: the job runs slower, never
faster.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Awaitable, Callable

import anyio

from .._pacing import Pacing
from ._store import SharedPaceStore

__all__ = ["SharedPace", "SharedPacing"]

logger = logging.getLogger("ccmessaging_async.jobs")

#: Seconds of turns a worker reserves at once.
_LOOKAHEAD = 0.25
#: Seconds after a change of the job's pace before it may change again.
_WINDOW = 1.0
#: A cut when this worker had no limit of its own yet (its rate was measured, not set).
_DECREASE = 0.8


class SharedPace:
    """A worker's view of the job's shared pace: its reserved turns and what it reports."""

    def __init__(self, store: SharedPaceStore) -> None:
        self._store = store
        self._turns: collections.deque[float] = collections.deque()
        self._batch = 1
        self._reserving = anyio.Lock()
        self._unlimited_until = -math.inf  # the job had no pace: look again after it
        self._cut: float | None = None
        self._found: float | None = None
        self._pause = 0.0
        self._wake = anyio.Event()

    async def turn(
        self, stopped: Callable[[], bool], idle: Callable[[float], Awaitable[None]]
    ) -> bool:
        """Wait for this worker's next turn at the job's pace; ``False`` if stopped first."""
        while not self._turns:
            # Asked once per pass: whether the job has no pace depends on the time, which
            # moves between two looks.
            if self._unlimited:
                return not stopped()
            async with self._reserving:
                if not self._turns and not self._unlimited:
                    await self._reserve()
        at = self._turns.popleft()  # no await since the check: still there
        while (wait := at - anyio.current_time()) > 0 and not stopped():
            await idle(wait)
        return not stopped()

    @property
    def _unlimited(self) -> bool:
        return anyio.current_time() < self._unlimited_until

    async def _reserve(self) -> None:
        turns = await anyio.to_thread.run_sync(self._store.reserve_turns, self._batch, _WINDOW)
        if turns is None:
            # The job has no pace (no rate, no throttle yet): each worker keeps its own,
            # and looks again in a window (one found by another worker reaches this one).
            self._unlimited_until = anyio.current_time() + _WINDOW
            return
        now = anyio.current_time()
        self._turns.extend(now + turns.start_in + i * turns.interval for i in range(turns.count))
        self._batch = max(1, math.ceil(_LOOKAHEAD / turns.interval))

    def lowered(self, factor: float, found: float | None = None) -> None:
        """Note that this worker cut its own pace by ``factor`` (reported soon).

        ``found``: the rate it came down to when the cut was measured on what the platform
        took from it (its share of the job's pace; a job with no pace yet gets one).
        """
        self._cut = factor if self._cut is None else min(self._cut, factor)
        if found is not None:
            self._found = found if self._found is None else min(self._found, found)
        self._wake.set()

    def paused(self, seconds: float) -> None:
        """Note a ``Retry-After`` pause of ``seconds`` (reported soon)."""
        self._pause = max(self._pause, seconds)
        self._wake.set()

    async def report(self) -> None:
        """Send what this worker learns to the job's pace as it comes, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self.flush()

    async def flush(self) -> None:
        """Send what this worker learnt (a cut, a pause) to the job's pace now."""
        cut, self._cut = self._cut, None
        found, self._found = self._found, None
        pause, self._pause = self._pause, 0.0
        if cut is None and pause <= 0:
            return
        try:
            if cut is not None:
                await anyio.to_thread.run_sync(self._store.slow_down, cut, _WINDOW, found)
            if pause > 0:
                await anyio.to_thread.run_sync(self._store.pause, pause)
        except Exception:  # the lease keeper deals with a lost database
            logger.warning("could not slow the job's other workers down", exc_info=True)
        self._turns.clear()  # reserved at the old pace: reserve again
        self._unlimited_until = -math.inf


class SharedPacing(Pacing):
    """A worker's :class:`Pacing` on a job whose pace its workers share through ``store``.

    Its own pace goes on as usual; the cuts and pauses it makes are reported to the
    job's (:attr:`shared`), whose turns the worker's last-moment decision waits for.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        max_throttle_wait: float,
        store: SharedPaceStore,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(rate, max_throttle_wait=max_throttle_wait, clock=clock)
        self._store = store
        self._shared: SharedPace | None = None  # made inside the event loop

    @property
    def shared(self) -> SharedPace:
        """The job's pace as this worker sees it."""
        if self._shared is None:
            self._shared = SharedPace(self._store)
        return self._shared

    def throttled(self, retry_after: float | None = None) -> bool:
        """Note a throttle signal here, and the cut or pause it caused for every worker."""
        before = self.rate
        paused = super().throttled(retry_after)
        after = self.rate
        if after is not None and (before is None or after < before):
            factor = _DECREASE if before is None else after / before
            # A cut measured on what the platform took tells the job's pace: this worker's
            # share of it. One that is not (a fifth off a burst) is only a direction.
            self.shared.lowered(factor, found=after if self._pace.measured_cut else None)
        if paused and retry_after:
            self.shared.paused(retry_after)
        return paused
