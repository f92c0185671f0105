"""The helpers users test with: emulator behaviour, respx routes, the pytest plugin."""

from __future__ import annotations

import datetime
import importlib.metadata
from typing import Any

import httpx
import pytest
import respx

from ccmessaging_async import (
    AsyncSession,
    AuthenticationError,
    CreateCallRequest,
    ResultCode,
    ResultCodeError,
    RetryPolicy,
    TokenPolicy,
)
from ccmessaging_async.testing import Emulator, TokenFailure, add_responses, mock_routes

pytestmark = pytest.mark.anyio

TOKEN = "/apigovernance/api/oauth/tokenByAkSk"
CALL = "/apiaccess/ccmessaging/v1/mobileagent/createcall"


async def test_plugin_session_fixture(
    ccmessaging_session: AsyncSession, ccmessaging_emulator: Emulator
) -> None:
    """The pytest plugin's fixtures give a ready session wired to an emulator."""
    result = await ccmessaging_session.create_call(CreateCallRequest(called="88884432"))
    assert result.access_code
    assert ccmessaging_emulator.calls_for("88884432") == 1
    assert ccmessaging_emulator.token_requests == 1


async def test_mock_routes_success_by_default() -> None:
    """mock_routes registers documented answers; a session works against them."""
    with respx.mock(assert_all_called=False) as router:
        routes = mock_routes(router, "https://127.0.0.1:8443")
        async with AsyncSession("https://127.0.0.1:8443", "k", "s") as session:
            result = await session.create_call(CreateCallRequest(called="1"))
    assert result.sip_service_address == "10.137.203.215:5063"
    assert routes.token.call_count == 1
    assert routes.create_call.call_count == 1


async def test_mock_routes_failures() -> None:
    """mock_routes can answer a result code or refuse the credentials."""
    with respx.mock(assert_all_called=False) as router:
        mock_routes(router, "https://127.0.0.1:8443", result_code="30010010002")
        async with AsyncSession("https://127.0.0.1:8443", "k", "s") as session:
            with pytest.raises(ResultCodeError) as info:
                await session.create_call(CreateCallRequest(called="1"))
    assert info.value.result_code is ResultCode.VDN_UNAVAILABLE
    with respx.mock(assert_all_called=False) as router:
        mock_routes(router, "https://127.0.0.1:8443", token_status=401)
        with pytest.raises(AuthenticationError):
            async with AsyncSession("https://127.0.0.1:8443", "k", "s"):
                pass


async def test_emulator_refuses_wrong_credentials_and_bad_tokens() -> None:
    """Wrong key/secret get 401; a missing or unknown token gets the gateway's 403."""
    emulator = Emulator()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator), base_url="http://127.0.0.1"
    ) as client:
        bad = await client.post(TOKEN, json={"app_key": emulator.app_key, "app_secret": "no"})
        assert bad.status_code == 401
        good = await client.post(
            TOKEN,
            json={"app_key": emulator.app_key, "app_secret": emulator.app_secret},
            headers={"X-Token-Expire": "99999"},
        )
        assert good.json()["Expires"] == "3600"
        refused = await client.post(CALL, json={"called": "1"}, headers={"Authorization": "x"})
        assert refused.status_code == 403
        assert "auth fail" in refused.json()["exceptionInfo"]
        headers = {
            "Authorization": "Bearer " + good.json()["AccessToken"],
            "X-APP-Key": emulator.app_key,
        }
        invalid = await client.post(CALL, json={"called": "1" * 33}, headers=headers)
        assert invalid.json()["resultCode"] == ResultCode.INVALID_PARAMETER.value
        missing = await client.post(CALL, json={"callData": "1"}, headers=headers)
        assert missing.json()["resultCode"] == ResultCode.INVALID_PARAMETER.value
        ok = await client.post(CALL, json={"called": "1"}, headers=headers)
        assert ok.json()["resultCode"] == "0"
    assert emulator.calls_for("1") == 1
    assert emulator.createcall_requests == 4


@pytest.mark.parametrize("kind", list(TokenFailure))
async def test_token_failures_then_recovery(kind: TokenFailure) -> None:
    """Token-service failures are retried; the session opens once the service answers."""
    emulator = Emulator()
    emulator.fail_token_requests(2, kind)
    async with AsyncSession(
        "http://127.0.0.1",
        emulator.app_key,
        emulator.app_secret,
        transport=httpx.ASGITransport(app=emulator),
        retry=RetryPolicy.for_tests(),
        token=TokenPolicy.for_tests(),
    ) as session:
        await session.create_call(CreateCallRequest(called="1"))
    assert emulator.token_requests == 3


def test_the_pytest_plugin_is_registered_for_users() -> None:
    """Installing the package registers the fixtures' plugin with pytest (entry point)."""
    plugins = importlib.metadata.entry_points(group="pytest11")
    assert {"ccmessaging_async_pytest"} <= {ep.value for ep in plugins}


async def test_forgetting_to_mock_the_token_service_says_which_url() -> None:
    """The mock library's refusal names the unmocked URL; the error keeps it, not the secret."""
    secret = "s3cr3t-not-to-be-quoted"
    with respx.mock(base_url="https://127.0.0.1:8443", assert_all_called=False) as router:
        router.post(CALL).respond(json={"resultCode": "0"})
        with pytest.raises(AuthenticationError) as caught:
            async with AsyncSession(
                "https://127.0.0.1:8443", "key", secret, token=TokenPolicy.for_tests()
            ):
                pass
    message = str(caught.value)
    assert "not mocked" in message
    assert TOKEN in message
    assert secret not in message
    assert caught.value.__cause__ is None


async def test_pytest_httpx_helper_answers_as_documented(httpx_mock: Any) -> None:
    add_responses(httpx_mock, "https://127.0.0.1:8443")
    async with AsyncSession(
        "https://127.0.0.1:8443", "key", "secret", token=TokenPolicy.for_tests()
    ) as session:
        first = await session.create_call(CreateCallRequest(called="1"))
        second = await session.create_call(CreateCallRequest(called="2"))
    assert first.result_code == second.result_code == "0"
    assert first.access_code == "179080024609291"
    paths = [request.url.path for request in httpx_mock.get_requests()]
    assert paths == [TOKEN, CALL, CALL]


async def test_pytest_httpx_helper_result_codes_and_unasked_answers(httpx_mock: Any) -> None:
    add_responses(httpx_mock, "https://127.0.0.1:8443", result_code="30010010002")
    async with AsyncSession(
        "https://127.0.0.1:8443", "key", "secret", token=TokenPolicy.for_tests()
    ) as session:
        with pytest.raises(ResultCodeError) as caught:
            await session.create_call(CreateCallRequest(called="1"))
    assert caught.value.result_code is ResultCode.VDN_UNAVAILABLE


async def test_pytest_httpx_helper_need_not_be_used_in_full(httpx_mock: Any) -> None:
    """A test that never reaches createcall does not fail for the answer it left unasked."""
    add_responses(httpx_mock, "https://127.0.0.1:8443", token_status=401)
    with pytest.raises(AuthenticationError):
        async with AsyncSession(
            "https://127.0.0.1:8443", "key", "secret", token=TokenPolicy.for_tests()
        ):
            pass


_RECORD = {"callSerialNo": "42", "called": "13800000001", "startTime": 1764547200000}
_WINDOW = (
    datetime.datetime(2025, 12, 1, tzinfo=datetime.UTC),
    datetime.datetime(2025, 12, 2, tzinfo=datetime.UTC),
)


async def test_mock_routes_may_answer_call_records() -> None:
    """With ``records``, a call-record route answers them; without, no such route exists."""
    with respx.mock() as router:
        routes = mock_routes(router, "https://127.0.0.1:8443", records=[_RECORD])
        async with AsyncSession("https://127.0.0.1:8443", "k", "s") as session:
            await session.create_call(CreateCallRequest(called="1"))
            found = [r async for r in session.call_records(*_WINDOW)]
    assert [r.call_serial_no for r in found] == ["42"]
    assert routes.call_records is not None
    assert routes.call_records.call_count == 1
    assert mock_routes(respx.MockRouter(), "https://x.example").call_records is None


async def test_pytest_httpx_helper_may_answer_call_records(httpx_mock: Any) -> None:
    """``add_responses(records=...)`` answers call-record queries too."""
    add_responses(httpx_mock, "https://127.0.0.1:8443", records=[_RECORD])
    async with AsyncSession(
        "https://127.0.0.1:8443", "key", "secret", token=TokenPolicy.for_tests()
    ) as session:
        found = [r async for r in session.call_records(*_WINDOW)]
    assert [r.called for r in found] == ["13800000001"]
