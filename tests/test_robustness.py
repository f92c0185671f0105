"""A failing or hostile platform gets no extra load, and every wait and buffer is bounded."""

from __future__ import annotations

import anyio
import pytest
import respx

from ccmessaging_async import (
    AsyncSession,
    CreateCallRequest,
    OutcomeStatus,
    RequestRejectedError,
    RetryPolicy,
    TokenPolicy,
)
from tests._helpers import APP_KEY, APP_SECRET, BASE_URL, CALL_PATH, TOKEN_PATH, token_json

pytestmark = pytest.mark.anyio


def session(**kwargs: object) -> AsyncSession:
    kwargs.setdefault("retry", RetryPolicy.for_tests())
    kwargs.setdefault("token", TokenPolicy.for_tests())
    return AsyncSession(BASE_URL, APP_KEY, APP_SECRET, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry_after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_retry_after_now_does_not_multiply_the_load(
    router: respx.MockRouter, retry_after: str
) -> None:
    """429s saying "come back now" cost at most one budget of re-sends for the whole batch."""
    router.post(TOKEN_PATH).respond(json=token_json())
    calls = router.post(CALL_PATH).respond(429, headers={"Retry-After": retry_after})
    requests = [CreateCallRequest(called=f"1{i:04d}") for i in range(200)]
    with anyio.fail_after(30):
        async with session() as s:
            outcomes = [o async for o in s.create_calls(requests, concurrency=20, retry_budget=20)]
    assert {o.status for o in outcomes} == {OutcomeStatus.FAILED}
    assert all(isinstance(o.error, RequestRejectedError) for o in outcomes)
    assert calls.call_count <= 200 + 20  # 0.1 sent 600: three per call
