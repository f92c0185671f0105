"""An asyncio event loop on a fake clock, as trio's ``MockClock(autojump_threshold=0)``.

When no callback is ready and nothing has arrived from outside, the clock jumps to the
next timer instead of sleeping until it: a test's waits (a pace, a ``Retry-After``, a
backoff) take no real time, and the test sees the times it would see in real time.

Only for tests with nothing outside the loop (respx, the in-process emulator): the clock
would jump over a real socket's or a worker thread's wait as well. (looptime does this
too, but its pytest plugin fails every fixture of a run without pytest-asyncio, and the
suite starts such runs: the examples, the documents' tests.)
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any


class FakeClockEventLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock starts at 0 and jumps when every task waits."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        selector: selectors.BaseSelector = self._selector  # type: ignore[attr-defined]
        real_select = selector.select

        def select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            ready = real_select(0)
            if ready or timeout is None:
                # Something came in, or nothing is scheduled: only the outside can wake it.
                return ready or real_select(timeout)
            self._now += max(0.0, timeout)
            return []

        selector.select = select  # type: ignore[method-assign]

    def time(self) -> float:
        """The fake clock: it moves only when the loop would sleep."""
        return self._now


def fake_clock_options(backend: str) -> dict[str, Any]:
    """Return the anyio run options for ``backend`` on a fake clock."""
    if backend == "trio":
        from trio.testing import MockClock  # noqa: PLC0415 - trio is imported only for trio

        return {"clock": MockClock(autojump_threshold=0)}
    return {"loop_factory": FakeClockEventLoop}
