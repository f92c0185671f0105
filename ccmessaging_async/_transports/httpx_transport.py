"""Exchanges through an ``httpx.AsyncClient``: merged headers, a direct send, bounded reads."""

from __future__ import annotations

import inspect

import httpx

from .. import _http
from .base import Answer, BodyLimits

__all__ = ["DIRECT_SEND", "exchange", "merged_headers", "read_bounded", "send_direct"]


def _transport_lookup_works() -> bool:
    """Whether httpx still has the private transport lookup :func:`send_direct` relies on."""
    lookup = getattr(httpx.AsyncClient, "_transport_for_url", None)
    if not callable(lookup):
        return False
    try:
        return list(inspect.signature(lookup).parameters) == ["self", "url"]
    except (TypeError, ValueError):
        return False


#: The direct send is used only when httpx's internals still look as pinned (httpx < 0.30);
#: otherwise every request goes through ``AsyncClient.send``, slower but the same answer.
DIRECT_SEND = _transport_lookup_works()


def merged_headers(client: httpx.AsyncClient, headers: dict[str, str]) -> list[tuple[str, str]]:
    """Return ``client``'s headers updated with ``headers``, once for every request.

    ``client.build_request`` merges them (and cookies and the timeout) on every call; for
    a fixed set of endpoints that can be done up front.
    """
    merged = httpx.Headers(client.headers)
    merged.update(headers)
    return merged.multi_items()


async def exchange(
    client: httpx.AsyncClient, request: httpx.Request, limits: BodyLimits, *, direct: bool
) -> Answer:
    """Send ``request`` and read its body within ``limits``; raise httpx's transport errors."""
    if direct and DIRECT_SEND:
        response = await send_direct(client, request)
    else:
        response = await client.send(request, stream=True)
    try:
        content, truncated = await read_bounded(response, limits.for_status(response.status_code))
    finally:
        await response.aclose()
    headers = response.headers
    return Answer(
        response.status_code,
        headers.get("retry-after"),
        content,
        truncated,
        headers.get(_http.TRACE_HEADER),
        headers.get("content-encoding"),
    )


async def send_direct(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send through the client's transport, skipping ``AsyncClient.send``'s per-call work.

    That work (auth and redirect flows, cookie extraction, event hooks, elapsed-time
    wrapping) is not used by a client the session built itself and costs as much CPU as
    the SDK's own per-call work. The transport is looked up the way ``send`` does (and the
    way ``respx.mock(using="httpx")`` intercepts). The response is streamed: close it.
    """
    # httpx/_client.py, AsyncClient._transport_for_url (line 1474 in 0.28.1): the lookup of
    # mounts and proxies send() itself makes. Pinned by httpx<0.30 (tested on 0.27-0.29),
    # checked at import (DIRECT_SEND) and by tests/test_contracts.py.
    transport = client._transport_for_url(request.url)  # noqa: SLF001 - see above
    response = await transport.handle_async_request(request)
    response.request = request
    return response


async def read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` raw bytes of a streamed response; say whether it was cut short.

    The body is never decompressed (the SDK asks for identity): a compressed answer of a
    few hundred bytes can decode to gigabytes.
    """
    if response.is_stream_consumed:  # already read by whoever made it (respx, httpx mode)
        return response.content[:limit], len(response.content) > limit
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            # Leaving early abandons httpx's nested stream generators; closing the response
            # afterwards releases the connection (trio may warn when it collects them).
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False
