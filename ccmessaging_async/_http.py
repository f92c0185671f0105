"""Every use of httpx goes through this module, so that swapping it is a small change."""

from __future__ import annotations

import email.utils
import math
import time

import attrs
import httpx

__all__ = [
    "NOT_SENT_ERRORS",
    "URL",
    "ASGITransport",
    "Answer",
    "AsyncBaseTransport",
    "AsyncClient",
    "Limits",
    "RemoteProtocolError",
    "RequestFactory",
    "Timeout",
    "TransportError",
    "describe_error",
    "exchange",
    "parse_retry_after",
    "read_bounded",
    "send_direct",
]

AsyncClient = httpx.AsyncClient
ASGITransport = httpx.ASGITransport
AsyncBaseTransport = httpx.AsyncBaseTransport
Limits = httpx.Limits
Timeout = httpx.Timeout
TransportError = httpx.TransportError
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


class RequestFactory:
    """Builds requests for one client with its headers and timeouts merged once.

    ``client.build_request`` merges headers, cookies and the timeout and parses the URL on
    every call; for a fixed set of endpoints all of that can be done up front.
    """

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        merged = httpx.Headers(client.headers)
        merged.update(headers)
        #: The merged headers, as (name, value) pairs.
        self.headers = merged.multi_items()
        #: The client's timeouts, as httpx passes them to transports.
        self.timeout = client.timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}

    def build(
        self, method: str, url: str, content: bytes, header: tuple[str, str]
    ) -> httpx.Request:
        """Build a request to ``url`` with the merged headers plus ``header``."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        return httpx.Request(
            method,
            parsed,
            content=content,
            headers=[*self.headers, header],
            extensions={"timeout": self.timeout},
        )


@attrs.frozen(slots=True)
class Answer:
    """What one exchange brought back: the status, its Retry-After and a bounded body."""

    status: int
    retry_after: str | None
    content: bytes
    #: The body was longer than the limit and was cut.
    truncated: bool


async def exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
    limits: tuple[int, int],
    *,
    direct: bool,
) -> Answer:
    """Send ``request`` and read at most ``limits[0]`` bytes of a 200 body (else ``[1]``).

    Raises httpx's transport errors unchanged.
    """
    if direct:
        response = await send_direct(client, request)
    else:
        response = await client.send(request, stream=True)
    try:
        limit = limits[0] if response.status_code == 200 else limits[1]
        content, truncated = await read_bounded(response, limit)
    finally:
        await response.aclose()
    return Answer(response.status_code, response.headers.get("retry-after"), content, truncated)


async def send_direct(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send through the client's transport, skipping ``AsyncClient.send``'s per-call work.

    That work (auth and redirect flows, cookie extraction, event hooks, elapsed-time
    wrapping) is not used by a client the session built itself and costs as much CPU as
    the SDK's own per-call work. The transport is looked up the way ``send`` does (and the
    way ``respx.mock(using="httpx")`` intercepts). The response is streamed: close it.
    """
    transport = client._transport_for_url(request.url)
    response = await transport.handle_async_request(request)
    response.request = request
    return response


async def read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of a streamed response; say whether it was cut short."""
    length = response.headers.get("content-length", "")
    if length.isdigit():
        if int(length) > limit:
            return b"", True
        return await response.aread(), False
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            # Leaving early abandons httpx's nested stream generators; closing the response
            # afterwards releases the connection (trio may warn when it collects them).
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


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
