"""The public factory of the aiohttp transport (the ``aiohttp`` extra)."""

from __future__ import annotations

import importlib.util
import ssl
from typing import TYPE_CHECKING

from . import _http
from ._config import DEFAULT_LIMITS
from ._proxies import check_proxy

if TYPE_CHECKING:
    import httpx

__all__ = ["aiohttp_installed", "aiohttp_transport"]


def aiohttp_installed() -> bool:
    """Whether the ``aiohttp`` extra is installed (without importing it)."""
    return importlib.util.find_spec("aiohttp") is not None


def aiohttp_transport(
    *,
    limits: _http.Limits = DEFAULT_LIMITS,
    verify: ssl.SSLContext | bool = True,
    proxy: str | _http.Proxy | None = None,
    trust_env: bool = False,
) -> httpx.AsyncBaseTransport:
    """Return an httpx transport that sends with aiohttp (extra ``aiohttp``; asyncio only).

    It spends about half the CPU per call of httpx's transport (see
    ``benchmarks/RESULTS.md``). Pass it as ``AsyncSession(..., transport=...)``; the
    session then bounds the calls in flight by these ``limits``. ``proxy`` (an
    ``http://`` or ``https://`` URL, credentials allowed) carries the token request and
    every createcall (``CONNECT`` for https targets); ``trust_env=True`` reads
    ``HTTPS_PROXY``/``NO_PROXY`` (and ``~/.netrc``, as aiohttp does) and ``SSL_CERT_FILE``.

    Its connections record whether each request was completely written, so a failure is
    typed as SPEC section 3 wants (typed by their aiohttp error alone, a connection
    dropped *after* the request was written would look like a connect timeout). respx's
    default mocking does not see this transport; use ``respx.mock(using="httpx")`` or
    keep the default transport in tests.
    """
    from ._transports.aiohttp_transport import (  # noqa: PLC0415 - aiohttp is an extra
        SafeAiohttpTransport,
    )

    return SafeAiohttpTransport(
        limits=limits, verify=verify, proxy=check_proxy(proxy), trust_env=trust_env
    )
