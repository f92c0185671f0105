"""Slots: the in-flight bound, anyio's semaphore that a closing session can empty."""

from __future__ import annotations

import anyio

from ._errors import SessionStateError

__all__ = ["Slots"]


class Slots:
    """A first come, first served semaphore whose uncontended acquire does not yield.

    anyio's ``Semaphore(fast_acquire=True)`` (the send that follows yields anyway), with
    :meth:`close`: a closed session's waiting calls end at once, sending nothing.
    """

    def __init__(self, slots: int) -> None:
        self._semaphore = anyio.Semaphore(slots, fast_acquire=True)
        self._closed = False

    def __repr__(self) -> str:
        return f"<Slots {self.free} free, {self.waiting} waiting>"

    @property
    def free(self) -> int:
        """Slots not held by anyone."""
        return self._semaphore.value

    @property
    def waiting(self) -> int:
        """Tasks waiting for a slot."""
        return self._semaphore.statistics().tasks_waiting

    async def acquire(self) -> None:
        """Take a slot, waiting (first come, first served) while none is free.

        Raises :class:`SessionStateError` once :meth:`close` was called.
        """
        if self._closed:
            raise _closed_error()
        await self._semaphore.acquire()
        self._give_back_if_closed()

    def _give_back_if_closed(self) -> None:
        """Woken by :meth:`close`: nothing is held once closed."""
        if self._closed:
            self._semaphore.release()
            raise _closed_error()

    def release(self) -> None:
        """Give a slot back (to the longest waiter, if there is one)."""
        self._semaphore.release()

    def close(self) -> None:
        """Refuse every later acquire and wake every waiter with :class:`SessionStateError`."""
        self._closed = True
        for _ in range(self.waiting):
            self._semaphore.release()


def _closed_error() -> SessionStateError:
    return SessionStateError("the session was closed before this call could be sent")
