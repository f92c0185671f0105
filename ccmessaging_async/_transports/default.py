"""The HTTP transport a session builds for itself: httpx's, over the flat pool.

``httpx.AsyncHTTPTransport`` stays the transport (so respx and pytest-httpx, which patch
it, intercept as ever); only the httpcore pool inside it is replaced: by
:class:`~.pool.FlatConnectionPool` for HTTP/1.1, by :class:`~.tracked_pool.TrackedConnectionPool`
(httpcore's logic) with ``http2=True``. When httpx's or httpcore's internals are not as
pinned, httpx's own pool is kept, with a warning.
"""

from __future__ import annotations

import ssl
import sys
import warnings
from typing import cast

import httpcore
import httpx

from .pool import FLAT_POOL_SUPPORTED, FlatConnectionPool
from .tracked_pool import TrackedConnectionPool

__all__ = ["TrackedHTTPTransport", "default_transport", "pool_limits"]


class TrackedHTTPTransport(httpx.AsyncHTTPTransport):
    """httpx's transport; ``tracks_writes`` once its pool is the session's own."""

    tracks_writes = False


def default_transport(
    *,
    verify: ssl.SSLContext | str | bool,
    limits: httpx.Limits,
    http2: bool,
    proxy: httpx.Proxy | None = None,
    trust_env: bool = False,
) -> httpx.AsyncHTTPTransport:
    """Return httpx's transport for these settings, with the flat pool where it applies.

    Through a ``proxy``, httpx's proxy pool is kept (forwarding, ``CONNECT`` tunnels); its
    connections do not record writes. ``trust_env`` lets httpx read ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR``.
    """
    transport = TrackedHTTPTransport(
        verify=verify, http2=http2, limits=limits, trust_env=trust_env, proxy=proxy
    )
    if proxy is not None:
        return transport
    # httpx keeps its pool, and the pool its TLS context, in private attributes (httpx
    # 0.27-0.29, httpcore 1.0.x, both pinned); anything else keeps httpx's own pool.
    stock = getattr(transport, "_pool", None)
    context = getattr(stock, "_ssl_context", None)
    if not (
        FLAT_POOL_SUPPORTED
        and type(stock) is httpcore.AsyncConnectionPool
        and isinstance(context, ssl.SSLContext)
    ):
        warnings.warn(
            f"httpx {httpx.__version__} / httpcore {httpcore.__version__} differ from the "
            "versions ccmessaging_async was tested with; using httpx's own connection pool, "
            "which slows down with hundreds of calls in flight",
            RuntimeWarning,
            stacklevel=3,
        )
        return transport
    pool_class = TrackedConnectionPool if http2 else FlatConnectionPool
    transport._pool = pool_class(  # noqa: SLF001 - see above
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http2=http2,
    )
    transport.tracks_writes = True
    return transport


def pool_limits(transport: object) -> httpx.Limits | None:
    """Return the limits of a transport's connection pool, when it can tell.

    The aiohttp transport reports its own; httpx's keeps them in its (pinned) private
    httpcore pool.
    """
    limits = getattr(transport, "limits", None)
    if isinstance(limits, httpx.Limits):
        return limits
    pool = getattr(transport, "_pool", None)
    if not isinstance(transport, httpx.AsyncHTTPTransport) or not isinstance(
        pool, httpcore.AsyncConnectionPool
    ):
        return None
    values = [
        getattr(pool, name, None)
        for name in ("_max_connections", "_max_keepalive_connections", "_keepalive_expiry")
    ]
    if not all(v is None or isinstance(v, int | float) for v in values):
        return None
    most, keepalive, expiry = (None if v == sys.maxsize else v for v in values)
    return httpx.Limits(
        max_connections=cast("int | None", most),
        max_keepalive_connections=cast("int | None", keepalive),
        keepalive_expiry=expiry,
    )
