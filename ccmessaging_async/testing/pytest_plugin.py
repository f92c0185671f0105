"""pytest fixtures for testing code that uses ccmessaging_async (registered as pytest11)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from .. import _http
from .._session import AsyncSession
from ._emulator import Emulator
from ._server import EmulatorServer

__all__ = [
    "ccmessaging_emulator",
    "ccmessaging_server",
    "ccmessaging_session",
    "ccmessaging_split_server",
]


@pytest.fixture
def ccmessaging_emulator() -> Emulator:
    """Give a fresh emulator; inspect ``calls``, ``token_requests`` and turn its knobs."""
    return Emulator()


@pytest.fixture
async def ccmessaging_session(ccmessaging_emulator: Emulator) -> AsyncIterator[AsyncSession]:
    """Give an open session wired in-process to ``ccmessaging_emulator`` (no socket)."""
    emulator = ccmessaging_emulator
    transport = _http.ASGITransport(app=emulator)
    async with AsyncSession(
        "http://127.0.0.1", emulator.app_key, emulator.app_secret, transport=transport
    ) as session:
        yield session


@pytest.fixture
def ccmessaging_server(ccmessaging_emulator: Emulator) -> Iterator[EmulatorServer]:
    """Serve ``ccmessaging_emulator`` by uvicorn on a free loopback port."""
    with EmulatorServer(ccmessaging_emulator) as server:
        yield server


@pytest.fixture
def ccmessaging_split_server(ccmessaging_emulator: Emulator) -> Iterator[EmulatorServer]:
    """Serve ``ccmessaging_emulator`` with the token service on a port of its own.

    Give the session ``token_url=server.token_url``; the base URL answers 404 there.
    """
    with EmulatorServer(ccmessaging_emulator, separate_token_service=True) as server:
        yield server
