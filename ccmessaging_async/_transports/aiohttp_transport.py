"""An aiohttp-backed httpx transport whose errors keep SPEC section 3's meaning.

Imported only by :func:`ccmessaging_async.aiohttp_transport`: aiohttp is an extra.
"""

from __future__ import annotations

from typing import cast

import aiohttp
import httpx
import httpx_aiohttp

from .. import _http
from .aiohttp_wire import WIRE_SUPPORTED, TrackedConnector, typed_failure
from .base import Answer, BodyLimits, HiddenHeaders
from .record import ExchangeRecord, recording

__all__ = ["SafeAiohttpTransport"]

_CONNECT_FAILURES = (aiohttp.ClientConnectorError,)
_CONNECT_TIMEOUTS = (aiohttp.ConnectionTimeoutError,)
_READ_CHUNK = 65536


class SafeAiohttpTransport(httpx_aiohttp.AiohttpTransport):
    """httpx-aiohttp's transport, typing each failure by whether the request left.

    httpx-aiohttp maps aiohttp's errors by type, and reports a connection dropped *after*
    the request was written as a connect timeout. Here a failure to connect, or a request
    its connection's record shows was not completely written, is not sent; one a reused
    connection lost before any answer is a ``ConnectionDropped`` read error (and teaches the
    connector the peer's idle timeout); anything else is a ``ReadError`` (outcome unknown),
    so the SDK never re-sends it.
    """

    @property
    def tracks_writes(self) -> bool:
        """Whether its connections record what each request did (see ``record``)."""
        return WIRE_SUPPORTED

    def get_client(self) -> aiohttp.ClientSession:
        """Build the aiohttp session: over a :class:`TrackedConnector` unless a client was given."""
        if self.client is not None or not WIRE_SUPPORTED:
            client: aiohttp.ClientSession = super().get_client()
            return client
        connector = TrackedConnector(
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
            limit=self.limits.max_connections or 0,
        )
        return aiohttp.ClientSession(connector=connector)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through aiohttp, correcting the error mapping."""
        with recording() as record:
            try:
                response: httpx.Response = await super().handle_async_request(request)
            except httpx.TransportError as exc:
                cause = exc.__cause__
                if isinstance(cause, _CONNECT_FAILURES):
                    raise httpx.ConnectError(str(exc), request=request) from cause
                if isinstance(cause, _CONNECT_TIMEOUTS):
                    raise httpx.ConnectTimeout(str(exc), request=request) from cause
                if record.not_written or record.dropped_after is not None:
                    error = typed_failure(cause or exc, record)
                    error.request = request
                    raise error from error.__cause__
                if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    # Anything else may have happened after the request was written.
                    raise httpx.ReadError(str(exc), request=request) from cause
                raise
        return response

    async def exchange(  # noqa: PLR0917 - the ExchangeTransport signature
        self,
        method: str,
        url: str,
        headers: HiddenHeaders,
        body: bytes,
        timeout: dict[str, float | None],  # noqa: ASYNC109 - httpx's timeout dict, passed on
        limits: BodyLimits,
    ) -> Answer:
        """One request straight through aiohttp, skipping httpx's request and response.

        The classification is the same as :meth:`handle_async_request`'s.
        """
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        with recording() as record:
            response = await self._request(method, url, headers, body, timeout, record)
        limit = limits.for_status(response.status)
        try:
            content, truncated = await _read_bounded(response, limit)
        except (aiohttp.ClientError, TimeoutError) as exc:
            response.close()
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        except BaseException:  # cancelled mid-body (a deadline): the connection is unusable
            response.close()
            raise
        if truncated:
            response.close()  # the rest is never read: the connection cannot be reused
        else:
            response.release()
        return Answer(
            response.status,
            response.headers.get("Retry-After"),
            content,
            truncated,
            response.headers.get(_http.TRACE_HEADER),
            response.headers.get("Content-Encoding"),
        )

    async def _request(  # noqa: PLR0917 - one exchange's parts
        self,
        method: str,
        url: str,
        headers: HiddenHeaders,
        body: bytes,
        timeout: dict[str, float | None],  # noqa: ASYNC109 - httpx's timeout dict, passed on
        record: ExchangeRecord,
    ) -> aiohttp.ClientResponse:
        """Send the request and read the answer's head, typing a failure."""
        client = cast("aiohttp.ClientSession", self.client)
        try:
            return await client.request(
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
        except _CONNECT_FAILURES as exc:
            raise httpx.ConnectError(str(exc)) from exc
        except _CONNECT_TIMEOUTS as exc:
            raise httpx.ConnectTimeout(str(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = typed_failure(exc, record)
            raise error from error.__cause__


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    length = response.content_length
    if length is not None and length > limit:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(_READ_CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False
