"""What one exchange did on the wire, recorded for the code that sent it.

The sender opens a record around each exchange (:func:`recording`); the session's own
connection layers (the tracked httpcore connections and streams, the tracked aiohttp
connections) fill it in from the same task. Afterwards — also after a cancellation, such
as a caller's deadline — it tells whether every byte of the request reached the socket
(SPEC section 3: a request not completely written was not sent).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ExchangeRecord", "current_record", "recording", "tracks_writes"]


class ExchangeRecord:
    """What one request met on its connection."""

    __slots__ = (
        "bytes_read",
        "handed",
        "idle_for",
        "multiplexed",
        "peer_closed",
        "started",
        "write_failed",
    )

    def __init__(self) -> None:
        #: A connection was bound to the request (nothing is written before this).
        self.started = False
        #: The connection multiplexes requests (HTTP/2): whose bytes a write carried is
        #: not known, so nothing is ever proven unwritten.
        self.multiplexed = False
        #: Bytes of the request handed to the socket by writes that did not fail.
        self.handed = 0
        #: A write failed (or was cancelled) part-way: the request is incomplete.
        self.write_failed = False
        #: Seconds the connection had been idle before this request, if it was reused.
        self.idle_for: float | None = None
        #: Bytes of answer received.
        self.bytes_read = 0
        #: The peer closed the connection (or its socket failed), not this process.
        self.peer_closed = False

    @property
    def not_written(self) -> bool:
        """On a connection, the request provably never left completely."""
        return self.started and not self.multiplexed and (self.write_failed or self.handed == 0)

    @property
    def unsent(self) -> bool:
        """The request provably never left completely (or never got a connection)."""
        return not self.started or self.not_written

    @property
    def dropped_after(self) -> float | None:
        """How long the reused connection the peer closed before any answer had idled.

        ``None`` unless the request was on a reused connection that the peer closed
        before one byte of answer.
        """
        if self.peer_closed and self.bytes_read == 0:
            return self.idle_for
        return None


_CURRENT: contextvars.ContextVar[ExchangeRecord | None] = contextvars.ContextVar(
    "ccmessaging_async_exchange", default=None
)


def current_record() -> ExchangeRecord | None:
    """Return the record of the exchange this task is running, if one is open."""
    return _CURRENT.get()


@contextmanager
def recording() -> Iterator[ExchangeRecord]:
    """Open a record for the exchange this task runs next (or join the one open)."""
    record = _CURRENT.get()
    if record is not None:
        yield record
        return
    record = ExchangeRecord()
    token = _CURRENT.set(record)
    try:
        yield record
    finally:
        _CURRENT.reset(token)


def tracks_writes(transport: object) -> bool:
    """Whether ``transport`` fills in exchange records (the session's own transports)."""
    return getattr(transport, "tracks_writes", False) is True
