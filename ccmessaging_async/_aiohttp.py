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

        async def exchange(  # noqa: PLR0917 - the FastExchange signature the Sender calls
            self,
            method: str,
            url: str,
            headers: list[tuple[str, str]],
            body: bytes,
            timeout: dict[str, float | None],  # noqa: ASYNC109 - httpx's timeout dict, passed on
            limits: tuple[int, int],
        ) -> _http.Answer:
            """One request straight through aiohttp, skipping httpx's request/response.

            The SDK uses this for createcall when the session owns the client; the
            classification is the same as ``handle_async_request``'s.
            """
            if not isinstance(self.client, aiohttp.ClientSession):
                self.client = self.get_client()
            try:
                response = await self.client.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    auto_decompress=False,
                    compress=False,
                    timeout=aiohttp.ClientTimeout(
                        sock_connect=timeout.get("connect"),
                        sock_read=timeout.get("read"),
                        connect=timeout.get("pool"),
                    ),
                )
            except connect_failures as exc:
                raise httpx.ConnectError(str(exc)) from exc
            except connect_timeouts as exc:
                raise httpx.ConnectTimeout(str(exc)) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
            try:
                limit = limits[0] if response.status == 200 else limits[1]
                chunks: list[bytes] = []
                size = 0
                truncated = False
                length = response.content_length
                if length is not None and length > limit:
                    truncated = True
                else:
                    while chunk := await response.content.read(65536):
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > limit:
                            truncated = True
                            break
            except (aiohttp.ClientError, TimeoutError) as exc:
                response.close()
                raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
            if truncated:
                response.close()  # the rest is never read: the connection cannot be reused
            else:
                response.release()
            return _http.Answer(
                response.status,
                response.headers.get("Retry-After"),
                b"".join(chunks)[:limit],
                truncated,
            )

    return _SafeAiohttpTransport(limits=limits, verify=verify)
