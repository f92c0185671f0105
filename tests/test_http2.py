"""HTTP/2 (``http2=True``) over TLS on loopback: a dropped idle connection is not used.

A connection the server closed while idle is noticed before a stream is opened on it.

The server is hypercorn, closing HTTP/2 connections idle for a fraction of a second (it
sends GOAWAY, then closes), as a load balancer's idle timeout does.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpcore
import httpx
import pytest
import trustme

from ccmessaging_async._transports.connection import TrackedConnection
from ccmessaging_async._transports.default import default_transport
from ccmessaging_async._transports.tracked_pool import TrackedConnectionPool

hypercorn = pytest.importorskip("hypercorn")
pytestmark = pytest.mark.anyio


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer ``{}`` to every request (and the lifespan messages)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def h2_server(anyio_backend: str, tmp_path: Any) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    """Hypercorn over TLS (HTTP/2 by ALPN), idle connections closed after 0.2 s."""
    from hypercorn.config import Config  # noqa: PLC0415 - after importorskip

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certificate.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    config = Config()
    config.bind = [f"127.0.0.1:{free_port()}"]
    config.certfile = config.keyfile = str(tmp_path / "server.pem")
    config.keep_alive_timeout = 0.2
    config.accesslog = config.errorlog = None
    if anyio_backend == "trio":
        from hypercorn.trio import serve  # noqa: PLC0415
    else:
        from hypercorn.asyncio import serve  # type: ignore[assignment] # noqa: PLC0415
    stop = anyio.Event()
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        host, port = config.bind[0].split(":")
        with anyio.fail_after(10):
            while True:
                try:
                    await (await anyio.connect_tcp(host, int(port))).aclose()
                    break
                except OSError:
                    await anyio.sleep(0.01)
        yield f"https://{config.bind[0]}", client_context
        stop.set()


def pool_of(transport: httpx.AsyncHTTPTransport) -> httpcore.AsyncConnectionPool:
    return transport._pool  # noqa: SLF001 - the pool the session put there


async def test_an_http2_connection_the_server_closed_while_idle_is_not_used(
    h2_server: tuple[str, ssl.SSLContext],
) -> None:
    url, context = h2_server
    transport = default_transport(verify=context, limits=httpx.Limits(), http2=True)
    pool = pool_of(transport)
    assert isinstance(pool, TrackedConnectionPool)
    async with httpx.AsyncClient(transport=transport) as client:
        first = await client.get(url + "/")
        assert first.http_version == "HTTP/2"
        (connection,) = pool.connections
        assert isinstance(connection, TrackedConnection)
        with anyio.fail_after(10):
            while not connection.peer_closed():  # noqa: ASYNC110 - no event says a GOAWAY came
                await anyio.sleep(0.01)
        second = await client.get(url + "/")
    assert second.status_code == 200
    assert second.http_version == "HTTP/2"
    assert connection not in pool.connections
    # The close was learnt from: idle connections now expire long before the 5 s set.
    assert pool.keepalive.expiry is not None
    assert pool.keepalive.expiry < httpx.Limits().keepalive_expiry / 2  # type: ignore[operator]
