"""An aiohttp-backed httpx transport whose errors keep SPEC section 3's meaning.

Imported only by :func:`ccmessaging_async.aiohttp_transport`: aiohttp is an extra.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import httpx

from .. import _http
from .aiohttp_wire import WIRE_SUPPORTED, TrackedConnector, typed_failure
from .base import Answer, BodyLimits, HiddenHeaders
from .record import ExchangeRecord, recording

__all__ = ["SafeAiohttpTransport"]

_CONNECT_FAILURES = (aiohttp.ClientConnectorError,)
_CONNECT_TIMEOUTS = (aiohttp.ConnectionTimeoutError,)
_READ_CHUNK = 65536


class SafeAiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over aiohttp, typing each failure by whether the request left.

    It sends every request itself (the token request through :meth:`handle_async_request`,
    createcall through :meth:`exchange`). Typing aiohttp's errors by their type alone (as
    httpx-aiohttp, which it once built on, does) reports a connection dropped *after* the
    request was written as a connect timeout. Here a failure to connect, or a request its
    exchange record shows was not completely written, is not sent; one a reused
    connection lost before any answer is a ``ConnectionDropped`` read error (and teaches
    the connector the peer's idle timeout); anything else is a read error (outcome
    unknown), so the SDK never re-sends it.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        verify: ssl.SSLContext | bool = True,
        proxy: httpx.Proxy | None = None,
        trust_env: bool = False,
    ) -> None:
        #: The pool's limits: its size, and how long an idle connection is kept.
        self.limits = limits
        #: The TLS settings of every connection (``SSL_CERT_FILE`` read with ``trust_env``).
        self.ssl_context = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
        #: The proxy every request goes through, if any.
        self.proxy = proxy
        #: The aiohttp session, made on first use (inside the event loop).
        self.client: aiohttp.ClientSession | None = None
        self._trust_env = trust_env

    async def aclose(self) -> None:
        """Close the aiohttp session and its connections."""
        if self.client is not None:
            await self.client.close()

    @property
    def tracks_writes(self) -> bool:
        """Whether its connections record what each request did (see ``record``).

        Before its first request, whether this aiohttp allows it; after, whether its
        connector does.
        """
        client = self.client
        if client is None:
            return WIRE_SUPPORTED
        connector = client.connector
        return isinstance(connector, TrackedConnector) and connector.tracking

    def get_client(self) -> aiohttp.ClientSession:
        """Build the aiohttp session, over a :class:`TrackedConnector` where aiohttp allows."""
        connector_class = TrackedConnector if WIRE_SUPPORTED else aiohttp.TCPConnector
        connector = connector_class(
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
            limit=self.limits.max_connections or 0,
        )
        return aiohttp.ClientSession(connector=connector, trust_env=self._trust_env)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through aiohttp (the token request), typed as :meth:`exchange`."""
        if self.client is None:
            self.client = self.get_client()
        body = await request.aread()
        timeout = request.extensions.get("timeout", {})
        with recording() as record:
            response = await self._request(
                request.method, str(request.url), request.headers, body, timeout, record
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_BodyStream(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

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
        if self.client is None:
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

    def _proxy_options(
        self, url: str, headers: Mapping[str, str] | HiddenHeaders
    ) -> dict[str, Any]:
        """Return one request's headers and proxy arguments.

        Credentials go as a header: aiohttp 3.14 deprecates ``BasicAuth``. aiohttp puts
        ``proxy_headers`` on a ``CONNECT`` only; a plain-http target's request goes to the
        proxy itself, so it carries them too.
        """
        proxy = self.proxy
        if proxy is None:
            return {"headers": headers}
        extra = dict(proxy.headers)
        if proxy.auth is not None:
            pair = f"{proxy.auth[0]}:{proxy.auth[1]}".encode()
            extra["Proxy-Authorization"] = "Basic " + base64.b64encode(pair).decode()
        if extra and url.startswith("http://"):
            items = headers.items() if isinstance(headers, Mapping) else headers
            headers = HiddenHeaders([*items, *extra.items()])
        return {"headers": headers, "proxy": str(proxy.url), "proxy_headers": extra}

    async def _request(  # noqa: PLR0917 - one exchange's parts
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | HiddenHeaders,
        body: bytes,
        timeout: dict[str, float | None],  # noqa: ASYNC109 - httpx's timeout dict, passed on
        record: ExchangeRecord,
    ) -> aiohttp.ClientResponse:
        """Send the request and read the answer's head, typing a failure."""
        client = self.client
        assert client is not None  # made by the caller  # noqa: S101
        try:
            return await client.request(
                method,
                url,
                data=body,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                **self._proxy_options(url, headers),
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
            )
        except aiohttp.ClientHttpProxyError as exc:
            raise httpx.ProxyError(f"{exc.status} {exc.message}") from exc
        except _CONNECT_FAILURES as exc:
            raise httpx.ConnectError(str(exc)) from exc
        except _CONNECT_TIMEOUTS as exc:
            raise httpx.ConnectTimeout(str(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = typed_failure(exc, record)
            raise error from error.__cause__


class _BodyStream(httpx.AsyncByteStream):
    """An answer's body as httpx reads it (the token request's): a failure is a read error.

    The request was answered: whatever cuts the body short, it reached the platform.
    """

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_READ_CHUNK):
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Give the connection back (or close it, if the body was not read to its end)."""
        await self._response.__aexit__(None, None, None)


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
