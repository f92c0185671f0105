"""Type-checked (never run) use of the public API the way users write it."""

from __future__ import annotations

from ccmessaging_async import (
    AsyncSession,
    CCMessagingError,
    CreateCallRequest,
    CreateCallResult,
    OutcomeUnknownError,
    ResultCode,
    ResultCodeError,
    RetryPolicy,
    TokenPolicy,
)


async def place_call(number: str) -> CreateCallResult | None:
    async with AsyncSession(
        "https://service.besclouds.com",
        "app-key",
        "app-secret",
        token=TokenPolicy(lifetime=600),
        retry=RetryPolicy(max_resends=1),
    ) as session:
        try:
            return await session.create_call(
                CreateCallRequest(called=number, caller_present="95599")
            )
        except ResultCodeError as error:
            if error.result_code is ResultCode.VDN_UNAVAILABLE:
                return None
            raise
        except OutcomeUnknownError:
            return None
        except CCMessagingError:
            raise


async def from_environment() -> str:
    async with AsyncSession.from_env(token=TokenPolicy(timeout=10.0)) as session:
        result = await session.create_call(CreateCallRequest(called="88884432"))
        return result.access_code or ""


def misspelt_settings_do_not_type_check() -> None:
    """``from_env`` takes the constructor's settings by name: a typo is a type error."""
    AsyncSession.from_env(timeot=5)  # type: ignore[call-arg]
    AsyncSession.from_env(limits="many")  # type: ignore[arg-type]
