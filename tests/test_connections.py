"""A session over connections a middlebox closes.

What was never written is sent again; what was written and then dropped is reported as
unknown, with how long the connection had idled.
"""

from __future__ import annotations

import pytest

from ccmessaging_async import (
    AsyncSession,
    ConnectionLostError,
    CreateCallRequest,
    RetryPolicy,
    TokenPolicy,
)
from ccmessaging_async._transports.connection import TrackedConnection
from tests._helpers import APP_KEY, APP_SECRET, CALL_PATH, TOKEN_PATH, call_json, token_json
from tests._loopback import LoopbackServer, json_answer

pytestmark = pytest.mark.anyio


def platform() -> LoopbackServer:
    return LoopbackServer(
        answers={TOKEN_PATH: json_answer(token_json()), CALL_PATH: json_answer(call_json())}
    )


def session_for(server: LoopbackServer) -> AsyncSession:
    return AsyncSession(
        server.url,
        APP_KEY,
        APP_SECRET,
        token=TokenPolicy.for_tests(),
        retry=RetryPolicy.for_tests(),
    )


def calls_received(server: LoopbackServer) -> int:
    return sum(path == CALL_PATH for _, path, _ in server.requests)


async def test_a_call_on_a_connection_reset_after_the_reuse_check_is_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reset races the reuse check: the write fails, so the call is provably unsent."""
    async with platform() as server, session_for(server) as session:
        await session.create_call(CreateCallRequest(called="1"))
        monkeypatch.setattr(TrackedConnection, "peer_closed", lambda self: False)
        assert await server.close_idle(reset=True)
        result = await session.create_call(CreateCallRequest(called="2"))
    assert result.result_code == "0"
    assert calls_received(server) == 2


async def test_a_reused_connection_dropped_before_answering_is_unknown_with_its_idle_time() -> None:
    async with platform() as server, session_for(server) as session:
        await session.create_call(CreateCallRequest(called="1"))
        server.drop_next = True
        with pytest.raises(ConnectionLostError) as caught:
            await session.create_call(CreateCallRequest(called="2"))
    assert caught.value.reused
    assert caught.value.idle_for is not None
    assert caught.value.idle_for >= 0
    assert caught.value.attempts == 1
    assert calls_received(server) == 2  # received, and never sent again
