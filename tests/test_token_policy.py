"""TokenPolicy: refresh windows, the test mode, and where token settings live."""

from __future__ import annotations

import anyio
import pytest

from ccmessaging_async import (
    AccessToken,
    AsyncSession,
    AuthenticationError,
    ConfigurationError,
    RetryPolicy,
    TokenPolicy,
)
from ccmessaging_async._token_manager import TokenManager, refresh_windows
from tests._helpers import (
    APP_KEY,
    APP_SECRET,
    BASE_URL,
    FakeClock,
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


def test_the_token_settings_are_only_a_token_policy() -> None:
    """Nothing was released: the 0.1 aliases of TokenPolicy's fields are gone, not kept."""
    with pytest.raises(TypeError):
        AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token_lifetime=60)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        RetryPolicy(token_attempts=4)  # type: ignore[call-arg]


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
