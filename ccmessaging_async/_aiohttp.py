"""An aiohttp-backed httpx transport whose errors keep SPEC section 3's meaning."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from . import _http
from ._config import DEFAULT_LIMITS

if TYPE_CHECKING:
    import httpx

__all__ = ["aiohttp_transport"]


def aiohttp_transport(
    *,
    limits: _http.Limits = DEFAULT_LIMITS,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncBaseTransport:
    """Return an httpx transport that sends with aiohttp (extra ``aiohttp``; asyncio only).

    It is several times cheaper per call than httpx's own transport under concurrency
    (see ``benchmarks/RESULTS.md``). Pass it as ``AsyncSession(..., transport=...)`` with
    the same ``limits`` you give the session. It wraps ``httpx-aiohttp``'s transport and
    corrects its error mapping, which reports a connection dropped *after* the request
    was written as a connect timeout: here only a failure to connect counts as not sent,
    so such a call is reported as outcome-unknown and never re-sent. respx's default
    mocking does not see this transport; use ``respx.mock(using="httpx")`` or keep the
    default transport in tests.
    """
    import aiohttp  # noqa: PLC0415 - optional dependencies (the aiohttp extra)
    import httpx  # noqa: PLC0415
    import httpx_aiohttp  # noqa: PLC0415

    connect_failures = (aiohttp.ClientConnectorError,)
    connect_timeouts = (aiohttp.ConnectionTimeoutError,)

    class _SafeAiohttpTransport(httpx_aiohttp.AiohttpTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                response: httpx.Response = await super().handle_async_request(request)
            except httpx.TransportError as exc:
                cause = exc.__cause__
                if isinstance(cause, connect_failures):
                    raise httpx.ConnectError(str(exc), request=request) from cause
                if isinstance(cause, connect_timeouts):
                    raise httpx.ConnectTimeout(str(exc), request=request) from cause
                if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    # Anything else may have happened after the request was written.
                    raise httpx.ReadError(str(exc), request=request) from cause
                raise
            return response

    return _SafeAiohttpTransport(limits=limits, verify=verify)
