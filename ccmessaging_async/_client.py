"""The pooled ``httpx.AsyncClient`` a session builds when it is given none."""

from __future__ import annotations

import os
import ssl

import attrs

from . import _http
from ._config import ssl_verify
from ._proxies import check_proxy, environment_proxy
from ._transports.default import default_transport, pool_limits
from ._transports.record import tracks_writes

__all__ = ["OwnClient", "build_client"]


@attrs.frozen
class OwnClient:
    """A client the session built, the limits its pool really has, and what it records."""

    client: _http.AsyncClient
    limits: _http.Limits
    #: Its transport records whether each request was completely written.
    tracks_writes: bool


def build_client(
    base_url: str,
    *,
    transport: _http.AsyncBaseTransport | None,
    proxy: str | _http.Proxy | None,
    trust_env: bool,
    verify: ssl.SSLContext | str | os.PathLike[str] | bool,
    http2: bool,
    limits: _http.Limits,
    timeout: _http.Timeout | float,
) -> OwnClient:
    """Build the client over ``transport``, or over the default transport these settings make."""
    built: _http.AsyncBaseTransport
    if transport is None:
        via = check_proxy(proxy)
        if via is None and trust_env:
            via = environment_proxy(base_url)
        built = default_transport(
            verify=ssl_verify(verify), limits=limits, http2=http2, proxy=via, trust_env=trust_env
        )
    else:
        built = transport
        limits = pool_limits(transport) or limits  # the in-flight bound follows its pool
    client = _http.AsyncClient(
        timeout=timeout, transport=built, follow_redirects=False, trust_env=False
    )
    return OwnClient(client, limits, tracks_writes(built))
