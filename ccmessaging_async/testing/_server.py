"""Serve an ASGI app (the emulator) with uvicorn on a loopback port, in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any, Self

from .._token_service import TOKEN_PATH
from ._emulator import Emulator

__all__ = ["EmulatorServer"]

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_App = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


class EmulatorServer:
    """Run ``app`` under uvicorn on ``host:port`` (port 0: any free one) in a thread.

    ``with EmulatorServer(emulator) as server:`` blocks until the socket is listening;
    ``server.url`` is then the base URL to give a session. With
    ``separate_token_service=True`` the token service listens on a port of its own (as on
    tenants whose token URL is ``https://{domain}:28070/...``): ``server.token_url`` is
    its full URL, and the base URL answers 404 there. Needs the ``cli`` extra. Extra
    keyword arguments go to ``uvicorn.Config`` (e.g. ``timeout_keep_alive``,
    ``ssl_certfile``), for both ports.
    """

    def __init__(
        self,
        app: Emulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        separate_token_service: bool = False,
        **config: Any,
    ) -> None:
        self.app: Emulator = app if app is not None else Emulator()
        config.setdefault("log_level", "critical")
        config.setdefault("lifespan", "off")
        #: The host both ports listen on.
        self.host: str = host
        self._scheme = "https" if config.get("ssl_certfile") else "http"
        served: _App = self.app
        self._token_service: _Uvicorn | None = None
        if separate_token_service:
            served = _paths(self.app, token=False)
            self._token_service = _Uvicorn(_paths(self.app, token=True), host, 0, config)
        self._main = _Uvicorn(served, host, port, config)

    def __repr__(self) -> str:
        return f"<EmulatorServer {self.url}>"

    @property
    def port(self) -> int:
        """The port the platform (createcall) listens on."""
        return self._main.port

    @property
    def url(self) -> str:
        """The base URL the server listens on."""
        return f"{self._scheme}://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The token service's full URL (on its own port with ``separate_token_service``)."""
        if self._token_service is None:
            return self.url + TOKEN_PATH
        return f"{self._scheme}://{self.host}:{self._token_service.port}{TOKEN_PATH}"

    @property
    def open_connections(self) -> int:
        """How many client connections the server has open right now (both ports)."""
        servers = (self._main, self._token_service)
        return sum(server.open_connections for server in servers if server is not None)

    def start(self) -> None:
        """Start serving and wait until the sockets listen."""
        self._main.start()
        if self._token_service is not None:
            self._token_service.start()

    def stop(self) -> None:
        """Stop serving and wait for the threads to end."""
        for server in (self._main, self._token_service):
            if server is not None:
                server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Uvicorn:
    """One uvicorn server in a daemon thread."""

    def __init__(self, app: _App, host: str, port: int, config: dict[str, Any]) -> None:
        import uvicorn  # noqa: PLC0415 - an optional dependency (the cli extra)

        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **config))
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def open_connections(self) -> int:
        return len(self._server.server_state.connections)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.run, name="emulator", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the emulator server failed to start")
            self._thread.join(0.005)
        for server in getattr(self._server, "servers", []):
            for sock in server.sockets:
                self.port = sock.getsockname()[1]
                return

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


def _paths(app: Emulator, *, token: bool) -> _App:
    """``app`` serving only the token service (``token``), or everything but it."""

    async def serve(scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] == "http" and (scope["path"] == TOKEN_PATH) is not token:
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"error": "not found"}'})
            return
        await app(scope, receive, send)

    return serve
