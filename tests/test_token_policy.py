"""TokenPolicy: refresh windows, the test mode, and the deprecated token arguments."""

from __future__ import annotations

import anyio
import httpx
import pytest
import respx

from ccmessaging_async import (
    AccessToken,
    AsyncSession,
    AuthenticationError,
    ConfigurationError,
    CreateCallRequest,
    RetryPolicy,
    TokenPolicy,
)
from ccmessaging_async._token_manager import TokenManager, refresh_windows
from tests._helpers import (
    APP_KEY,
    APP_SECRET,
    BASE_URL,
    CALL_PATH,
    TOKEN_PATH,
    FakeClock,
    call_json,
    token_json,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("lifetime", "expected"),
    [
        (3600, (120.0, 10.0, 30.0)),  # the documented maximum: fixed margins
        (600, (120.0, 10.0, 30.0)),
        (60, (15.0, 3.0, 6.0)),  # short tokens: shares of the lifetime, not every call
        (10, (2.5, 0.5, 1.0)),
    ],
)
def test_refresh_windows_scale_with_the_lifetime(
    lifetime: float, expected: tuple[float, float, float]
) -> None:
    """Advisory margin, its jitter and the mandatory margin are capped by lifetime shares."""
    assert refresh_windows(lifetime) == pytest.approx(expected)
    advisory, _jitter, mandatory = refresh_windows(lifetime)
    assert mandatory < advisory < lifetime


async def test_test_mode_never_refreshes_in_a_loop_of_its_own() -> None:
    """With zero backoff, a failing token service is asked again only when a call needs it."""
    clock = FakeClock()
    fetches = 0

    async def fetch() -> AccessToken:
        nonlocal fetches
        fetches += 1
        if fetches == 1:
            return AccessToken(access_token="tok-1", expires=60)
        raise AuthenticationError("token service down", status_code=503)

    manager = TokenManager(fetch, TokenPolicy.for_tests(clock=clock))
    with anyio.fail_after(5):
        await manager.start()
        async with anyio.create_task_group() as tg:
            tg.start_soon(manager.run)
            clock.advance(61)  # expired
            with pytest.raises(AuthenticationError):
                await manager.get()
            for _ in range(20):  # the refresher is idle, not spinning
                await anyio.wait_all_tasks_blocked()
            assert fetches == 2
            with pytest.raises(AuthenticationError):
                await manager.get()  # a call that needs a token asks once more
            assert fetches == 3
            tg.cancel_scope.cancel()


async def test_deprecated_token_arguments_warn_and_still_apply(router: respx.MockRouter) -> None:
    """token_lifetime=, token_timeout=, clock= and RetryPolicy(token_*) keep working, warned."""
    token_route = router.post(TOKEN_PATH)
    token_route.side_effect = [httpx.Response(503)] * 3 + [httpx.Response(200, json=token_json())]
    router.post(CALL_PATH).respond(json=call_json())
    with pytest.warns(DeprecationWarning, match=r"TokenPolicy\(attempts"):
        retry = RetryPolicy(token_attempts=4, backoff_initial=0)
    with pytest.warns(DeprecationWarning, match="is deprecated: use") as warned:
        session = AsyncSession(
            BASE_URL,
            APP_KEY,
            APP_SECRET,
            retry=retry,
            token_lifetime=600,
            token_timeout=5,
            clock=FakeClock(),
        )
    assert len(warned) == 3
    assert all(w.filename == __file__ for w in warned)  # pointed at the caller's line
    with anyio.fail_after(30):
        async with session as s:
            await s.create_call(CreateCallRequest(called="1"))
    assert token_route.call_count == 4  # token_attempts=4 applied
    assert token_route.calls.last.request.headers["X-Token-Expire"] == "600"


def test_deprecated_and_new_token_settings_together_are_refused() -> None:
    """Mixing token= with a deprecated token argument is a ConfigurationError, not a guess."""
    with (
        pytest.warns(DeprecationWarning, match="token_lifetime"),
        pytest.raises(ConfigurationError, match="not both"),
    ):
        AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token=TokenPolicy(), token_lifetime=60)


@pytest.mark.parametrize(
    "changes",
    [
        {"lifetime": 0},
        {"lifetime": 3601},
        {"timeout": 0},
        {"attempts": 0},
        {"refresh_backoff_max": 0},
        {"time_scale": -1},
    ],
)
def test_bad_token_policy_is_a_configuration_error(changes: dict[str, float]) -> None:
    """A bad TokenPolicy value raises ConfigurationError when it is made."""
    with pytest.raises(ConfigurationError):
        TokenPolicy(**changes)  # type: ignore[arg-type]
