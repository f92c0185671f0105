"""pytest fixtures for code that uses ccmessaging_async: the package's pytest11 plugin.

A module of its own, outside the package: pytest loads every installed plugin in every run,
and a run that uses none of these fixtures should not pay for importing the SDK. Each
fixture imports what it needs when first used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ccmessaging_async import AsyncSession
    from ccmessaging_async.testing import Emulator, EmulatorServer

__all__ = [
    "ccmessaging_emulator",
    "ccmessaging_server",
    "ccmessaging_session",
    "ccmessaging_split_server",
]


@pytest.fixture
def ccmessaging_emulator() -> Emulator:
    """Give a fresh emulator; inspect ``calls``, ``token_requests`` and turn its knobs."""
    from ccmessaging_async.testing import Emulator  # noqa: PLC0415 - lazy, see the module

    return Emulator()


@pytest.fixture
async def ccmessaging_session(ccmessaging_emulator: Emulator) -> AsyncIterator[AsyncSession]:
    """Give an open session wired in-process to ``ccmessaging_emulator`` (no socket)."""
    import httpx  # noqa: PLC0415 - lazy, see the module

    from ccmessaging_async import AsyncSession  # noqa: PLC0415 - lazy, see the module

    emulator = ccmessaging_emulator
    transport = httpx.ASGITransport(app=emulator)
    async with AsyncSession(
        "http://127.0.0.1", emulator.app_key, emulator.app_secret, transport=transport
    ) as session:
        yield session


@pytest.fixture
def ccmessaging_server(ccmessaging_emulator: Emulator) -> Iterator[EmulatorServer]:
    """Serve ``ccmessaging_emulator`` by uvicorn on a free loopback port."""
    from ccmessaging_async.testing import EmulatorServer  # noqa: PLC0415 - lazy, see the module

    with EmulatorServer(ccmessaging_emulator) as server:
        yield server


@pytest.fixture
def ccmessaging_split_server(ccmessaging_emulator: Emulator) -> Iterator[EmulatorServer]:
    """Serve ``ccmessaging_emulator`` with the token service on a port of its own.

    Give the session ``token_url=server.token_url``; the base URL answers 404 there.
    """
    from ccmessaging_async.testing import EmulatorServer  # noqa: PLC0415 - lazy, see the module

    with EmulatorServer(ccmessaging_emulator, separate_token_service=True) as server:
        yield server
