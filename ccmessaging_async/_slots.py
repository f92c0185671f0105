"""Slots: the in-flight bound, a semaphore with a free uncontended acquire."""

from __future__ import annotations

import collections

import anyio

from ._errors import SessionStateError

__all__ = ["Slots"]


class Slots:
    """A semaphore whose uncontended acquire does not yield to the event loop.

    anyio's semaphores take two scheduler checkpoints per acquire; on the hot path of every
    call that is measurable, and the send that follows yields anyway. Even with
    ``fast_acquire=True`` an acquire checks for cancellation (nine more Python calls per
    createcall, measured: benchmarks/RESULTS.md), and it has no :meth:`close`. Waiters are served
    first come, first served; a slot handed to a waiter that is cancelled at that moment
    passes on to the next one.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: collections.deque[anyio.Event] = collections.deque()
        self._closed = False

    def __repr__(self) -> str:
        return f"<Slots {self._free} free, {len(self._waiters)} waiting>"

    @property
    def free(self) -> int:
        """Slots not held by anyone."""
        return self._free

    @property
    def waiting(self) -> int:
        """Tasks waiting for a slot."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting (first come, first served) while none is free.

        Raises :class:`SessionStateError` once :meth:`close` was called.
        """
        if self._closed:
            raise _closed_error()
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        granted = anyio.Event()
        self._waiters.append(granted)
        try:
            await granted.wait()
        except BaseException:
            if granted.is_set():
                self.release()  # handed over just as we were cancelled: pass it on
            else:
                self._waiters.remove(granted)
            raise
        if self._closed:
            raise _closed_error()  # woken by close(); nothing is held once closed

    def release(self) -> None:
        """Give a slot back, straight to the longest waiter if there is one."""
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._free += 1

    def close(self) -> None:
        """Refuse every later acquire and wake every waiter with :class:`SessionStateError`."""
        self._closed = True
        while self._waiters:
            self._waiters.popleft().set()


def _closed_error() -> SessionStateError:
    return SessionStateError("the session was closed before this call could be sent")
