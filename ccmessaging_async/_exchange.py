"""How a session's requests leave: one :class:`Exchange`, built once by :func:`open_exchange`.

Every way a request can leave (the session's own pool, the aiohttp transport, a brought
``transport=``, a brought ``client=``) is an exchange that *declares* what it knows, and
the sender asks it, never the configuration:

- ``tracks_writes``: its transport records whether each request was completely written,
  so a call cut short by its deadline can be told "not sent" (else it is "unknown");
- ``max_in_flight``: the most requests it should have in flight; the sender's calls wait
  for a slot before that (``None``: the client's own pool makes them wait).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

import attrs
import httpx

from . import _http
from ._client import OwnClient
from ._transports.base import Answer, BodyLimits, ExchangeTransport, HiddenHeaders
from ._transports.httpx_transport import exchange
from ._transports.record import tracks_writes

__all__ = ["ClientExchange", "Exchange", "TransportExchange", "open_exchange"]


class Exchange(Protocol):
    """One way a request leaves, and what it knows of it."""

    @property
    def tracks_writes(self) -> bool:
        """Whether a request cut short can be told not completely written (not sent)."""
        ...

    @property
    def max_in_flight(self) -> int | None:
        """The most requests it should have in flight (``None``: its client's pool waits)."""
        ...

    def exchange(
        self, method: str, url: str, headers: HiddenHeaders, body: bytes, limits: BodyLimits
    ) -> Awaitable[Answer]:
        """Send one request and read its bounded body; raise httpx's transport errors.

        (Plain methods returning the awaitable: no coroutine frame of their own on the
        hot path.)
        """
        ...


@attrs.frozen(slots=True)
class TransportExchange:
    """Straight to a transport that exchanges without httpx's request and response objects."""

    transport: ExchangeTransport
    #: The client's timeouts, as httpx passes them to transports.
    timeout: dict[str, float | None]
    max_in_flight: int | None

    @property
    def tracks_writes(self) -> bool:
        """Whether the transport says it records complete writes.

        Asked each time: the aiohttp transport knows for sure once its connector is built.
        """
        return tracks_writes(self.transport)

    def exchange(
        self, method: str, url: str, headers: HiddenHeaders, body: bytes, limits: BodyLimits
    ) -> Awaitable[Answer]:
        """Send one request and read its bounded body; raise httpx's transport errors."""
        return self.transport.exchange(method, url, headers, body, self.timeout, limits)


class ClientExchange:
    """Through an ``httpx.AsyncClient``: a request built per call, its URL parsed once.

    ``direct``: send to the client's transport without ``AsyncClient.send``'s auth,
    redirect, cookie and hook work (only for a client the session built: a user's client
    may rely on any of it).
    """

    def __init__(
        self,
        client: _http.AsyncClient,
        *,
        direct: bool,
        tracks_writes: bool,
        max_in_flight: int | None,
    ) -> None:
        self._client = client
        self._direct = direct
        self._timeout = client.timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}
        self.tracks_writes = tracks_writes
        self.max_in_flight = max_in_flight

    def exchange(
        self, method: str, url: str, headers: HiddenHeaders, body: bytes, limits: BodyLimits
    ) -> Awaitable[Answer]:
        """Send one request and read its bounded body; raise httpx's transport errors."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        request = httpx.Request(
            method, parsed, content=body, headers=headers, extensions={"timeout": self._timeout}
        )
        return exchange(self._client, request, limits, direct=self._direct)


def open_exchange(client: _http.AsyncClient, own: OwnClient | None, transport: object) -> Exchange:
    """Return how requests leave through ``client``: ``own`` if the session built it.

    A user's client goes through ``AsyncClient.send`` (its hooks, auth and mounts apply),
    with nothing known of its pool or of what it wrote. A client the session built is
    bounded by its pool; over a transport that exchanges by itself (the aiohttp one, or a
    brought one implementing it) requests go straight to it.
    """
    if own is None:
        return ClientExchange(client, direct=False, tracks_writes=False, max_in_flight=None)
    bound = own.limits.max_connections
    if isinstance(transport, ExchangeTransport):
        return TransportExchange(transport, client.timeout.as_dict(), max_in_flight=bound)
    return ClientExchange(client, direct=True, tracks_writes=own.tracks_writes, max_in_flight=bound)
