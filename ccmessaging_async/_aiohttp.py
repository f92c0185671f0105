"""The public factory of the aiohttp transport (the ``aiohttp`` extra)."""

from __future__ import annotations

import importlib.util
import ssl
from typing import TYPE_CHECKING

from . import _http
from ._config import DEFAULT_LIMITS

if TYPE_CHECKING:
    import httpx

__all__ = ["aiohttp_installed", "aiohttp_transport"]


def aiohttp_installed() -> bool:
    """Whether the ``aiohttp`` extra is installed (without importing it)."""
    return all(importlib.util.find_spec(name) is not None for name in ("aiohttp", "httpx_aiohttp"))


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
    from ._transports.aiohttp_transport import (  # noqa: PLC0415 - aiohttp is an extra
        SafeAiohttpTransport,
    )

    return SafeAiohttpTransport(limits=limits, verify=verify)
