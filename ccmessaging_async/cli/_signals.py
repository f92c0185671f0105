"""SIGINT and SIGTERM, caught at every moment of a batch job and turned into one stop.

An event loop's own signal handling covers only the loop's life: asyncio puts the default
action back when its handler is removed, so a SIGTERM in the instant after the last
outcome (or while the job file is being closed) killed the process unrecorded. Here the
two signals are blocked in the command's thread, and so in every thread it starts, and one
thread receives them with ``sigwait`` for the whole command; a Python handler catches any
that a foreign thread lets through. Each signal is queued with the moment it came, and
:class:`StopSignals` is read the same way on asyncio and trio.

Signals within :data:`SAME_STOP` seconds of the first are the same stop: ``timeout``, a
terminal and a process group each deliver one SIGINT for one Ctrl-C.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any, Self

import anyio
import attrs

from ..jobs._runner import StopControl

__all__ = ["SAME_STOP", "Received", "StopSignals", "TerminatedError", "watch_for_stop"]

#: Seconds after the first signal within which another one is the same stop.
SAME_STOP = 1.0

_CAUGHT = frozenset({signal.SIGINT, signal.SIGTERM})
_BLOCKS = hasattr(signal, "pthread_sigmask") and hasattr(signal, "sigwait")


class TerminatedError(BaseException):
    """SIGTERM ended a command where no run was going to stop by itself."""


@attrs.frozen
class Received:
    """One signal, and when it came (``time.monotonic``)."""

    signal: signal.Signals
    at: float


class StopSignals:
    """Receives SIGINT and SIGTERM from ``__enter__`` to ``__exit__`` (main thread only)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Received | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._first: Received | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self._previous_handlers: dict[signal.Signals, object] = {}
        self._previous_mask: set[int | signal.Signals] = set()

    @property
    def first(self) -> Received | None:
        """The first signal received, if any."""
        return self._first

    def _record(self, number: int) -> None:
        received = Received(signal.Signals(number), time.monotonic())
        with self._lock:
            if self._first is None:
                self._first = received
        self._queue.put(received)

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        self._record(number)

    def _receive(self) -> None:
        while True:
            number = signal.sigwait(_CAUGHT)
            if self._closing:
                return
            self._record(number)

    def raise_if_received(self) -> None:
        """Raise ``KeyboardInterrupt`` or :class:`TerminatedError` once a signal came.

        For work before a run (taking in a big input), which nothing is dialled during.
        """
        first = self._first
        if first is None:
            return
        if first.signal == signal.SIGTERM:
            raise TerminatedError
        raise KeyboardInterrupt

    def next(self) -> Received | None:
        """Block until the next signal (``None`` once closed); run it in a worker thread."""
        return self._queue.get()

    def __enter__(self) -> Self:
        for number in _CAUGHT:
            self._previous_handlers[number] = signal.signal(number, self._handle)
        if _BLOCKS:
            self._previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _CAUGHT)
            self._thread = threading.Thread(
                target=self._receive, name="ccmessaging-signals", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        thread = self._thread
        if thread is not None:
            self._closing = True
            with contextlib.suppress(ProcessLookupError):
                signal.pthread_kill(thread.ident or 0, signal.SIGTERM)
            thread.join()
            signal.pthread_sigmask(signal.SIG_SETMASK, self._previous_mask)
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._queue.put(None)  # a reader still waiting is let go


def watch_for_stop(signals: StopSignals) -> Callable[[StopControl], Coroutine[Any, Any, None]]:
    """Return a job's stop watcher: the first signal stops new calls, a later one abandons the rest.

    A signal at least :data:`SAME_STOP` seconds after the first abandons the calls in
    flight (their rows stay ``sending``, and become ``unknown`` on the next run).
    """

    async def watch(control: StopControl) -> None:
        while received := await anyio.to_thread.run_sync(signals.next, abandon_on_cancel=True):
            first = signals.first
            if control.stop(received.signal):
                print(
                    f"\n{received.signal.name}: no new calls; waiting for the calls in flight "
                    f"to end (send it again after {SAME_STOP:g}s to abandon them: they will "
                    "count as unknown)",
                    file=sys.stderr,
                )
            elif first is not None and received.at - first.at >= SAME_STOP:
                print(f"\n{received.signal.name}: abandoning the calls in flight", file=sys.stderr)
                control.abandon()

    return watch
