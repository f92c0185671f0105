"""httpx's names the SDK uses, and what HTTP headers and transport errors mean to it."""

from __future__ import annotations

import email.utils
import math
import time

import httpx

__all__ = [
    "CONNECT_ERRORS",
    "NOT_SENT_ERRORS",
    "TRACE_HEADER",
    "URL",
    "ASGITransport",
    "AsyncBaseTransport",
    "AsyncClient",
    "Limits",
    "Proxy",
    "ProxyError",
    "RemoteProtocolError",
    "RequestError",
    "Response",
    "Timeout",
    "TransportError",
    "describe_error",
    "exchange_deadline",
    "parse_retry_after",
    "trace_id",
]

AsyncClient = httpx.AsyncClient
ASGITransport = httpx.ASGITransport
AsyncBaseTransport = httpx.AsyncBaseTransport
Limits = httpx.Limits
Timeout = httpx.Timeout
TransportError = httpx.TransportError
#: Everything httpx raises about one request: transport errors, and also a body that would
#: not decode or redirects without end.
RequestError = httpx.RequestError
ProxyError = httpx.ProxyError
Proxy = httpx.Proxy
Response = httpx.Response
URL = httpx.URL
RemoteProtocolError = httpx.RemoteProtocolError

#: Failures that happen before the request is written: SPEC section 3 "provably unsent".
#: Everything else under ``httpx.TransportError`` (read/write errors, read timeouts,
#: ``RemoteProtocolError``) may come after the bytes left, so its outcome is unknown.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)

#: Failures to make a connection at all: the server was never reached.
CONNECT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout)

#: The header an API gateway names its request with (kept on errors as ``trace_id``).
TRACE_HEADER = "X-Request-Id"
_MAX_TRACE_ID = 128


def trace_id(value: str | None) -> str | None:
    """Return the gateway's request id if it looks like one (short, printable, no spaces)."""
    if not value or len(value) > _MAX_TRACE_ID or not value.isascii():
        return None
    if not value.isprintable() or any(character.isspace() for character in value):
        return None
    return value


def exchange_deadline(timeout: httpx.Timeout) -> float:
    """Return the longest one exchange may take: the sum of its timeouts (inf if one is off).

    httpx's timeouts bound each wait (one read, one write), so an answer dripped a byte at a
    time never trips them; this bounds the whole exchange.
    """
    parts = (timeout.connect, timeout.write, timeout.read, timeout.pool)
    if any(part is None for part in parts):
        return math.inf
    return sum(part for part in parts if part is not None)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value (seconds or HTTP date), if usable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (ValueError, TypeError):
            return None
        if parsed.tzinfo is None:
            return None
        seconds = parsed.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def describe_error(exc: BaseException) -> str:
    """``TypeName: message``, taking the message from the cause chain when it is empty.

    Some backends raise with an empty message (trio's TLS errors, for one) and keep the
    useful text on the cause.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        if text:
            return f"{type(exc).__name__}: {text}"
        current = current.__cause__ or current.__context__
    return type(exc).__name__
