"""Serve an ASGI app (the emulator) with uvicorn on a loopback port, in a background thread."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

from ._emulator import Emulator

__all__ = ["EmulatorServer"]


class EmulatorServer:
    """Run ``app`` under uvicorn on ``host:port`` (port 0: any free one) in a thread.

    ``with EmulatorServer(emulator) as server:`` blocks until the socket is listening;
    ``server.url`` is then the base URL to give a session. Needs the ``cli`` extra.
    Extra keyword arguments go to ``uvicorn.Config`` (e.g. ``timeout_keep_alive``,
    ``ssl_certfile``).
    """

    def __init__(
        self,
        app: Emulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **config: Any,
    ) -> None:
        import uvicorn  # noqa: PLC0415 - an optional dependency (the cli extra)

        self.app = app if app is not None else Emulator()
        config.setdefault("log_level", "critical")
        config.setdefault("lifespan", "off")
        self._config = uvicorn.Config(self.app, host=host, port=port, **config)
        self._server = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = port
        self._scheme = "https" if config.get("ssl_certfile") else "http"

    def __repr__(self) -> str:
        return f"<EmulatorServer {self.url}>"

    @property
    def url(self) -> str:
        """The base URL the server listens on."""
        return f"{self._scheme}://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """How many client connections the server has open right now."""
        return len(self._server.server_state.connections)

    def start(self) -> None:
        """Start serving and wait until the socket listens."""
        self._thread = threading.Thread(target=self._server.run, name="emulator", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the emulator server failed to start")
            self._thread.join(0.005)
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                self.port = sock.getsockname()[1]
                return

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

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
