"""What a tenant's first day needs: the token service at its own address, tenant headers."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import respx

from ccmessaging_async import (
    AsyncSession,
    AuthenticationError,
    ConfigurationError,
    CreateCallRequest,
    RetryPolicy,
    TokenPolicy,
)
from ccmessaging_async.cli import main
from ccmessaging_async.testing import Emulator, EmulatorServer
from tests._helpers import (
    APP_KEY,
    APP_SECRET,
    BASE_URL,
    CALL_PATH,
    TOKEN_PATH,
    call_json,
    token_json,
)

pytestmark = pytest.mark.anyio

TENANT = {"X-TenantSpaceID": "tenant-0042-secret-ish"}


def session_for(url: str, emulator: Emulator, **kwargs: object) -> AsyncSession:
    return AsyncSession(
        url,
        emulator.app_key,
        emulator.app_secret,
        token=TokenPolicy.for_tests(),
        retry=RetryPolicy.for_tests(),
        **kwargs,  # type: ignore[arg-type]
    )


# The token service at its own address ---------------------------------------------------


@pytest.mark.e2e
async def test_the_token_service_on_its_own_port() -> None:
    emulator = Emulator()
    with EmulatorServer(emulator, separate_token_service=True) as server:
        assert server.token_url != server.url + TOKEN_PATH
        async with session_for(server.url, emulator, token_url=server.token_url) as session:
            result = await session.create_call(CreateCallRequest(called="88880001"))
            assert session.token_url == server.token_url
        assert result.result_code == "0"
        assert emulator.token_requests == 1
        assert emulator.calls_for("88880001") == 1
        with pytest.raises(AuthenticationError, match="404"):
            async with session_for(server.url, emulator):
                pass  # the base URL does not serve the token service


@pytest.mark.e2e
async def test_the_split_server_fixture(
    ccmessaging_split_server: EmulatorServer, ccmessaging_emulator: Emulator
) -> None:
    server = ccmessaging_split_server
    async with session_for(server.url, ccmessaging_emulator, token_url=server.token_url) as s:
        await s.create_call(CreateCallRequest(called="88880003"))
    assert ccmessaging_emulator.token_requests == 1


def test_from_env_takes_the_token_url() -> None:
    token_url = "https://127.0.0.1:28070/apigovernance/api/oauth/tokenByAkSk"
    env = {
        "CCMESSAGING_BASE_URL": BASE_URL,
        "CCMESSAGING_APP_KEY": APP_KEY,
        "CCMESSAGING_APP_SECRET": APP_SECRET,
        "CCMESSAGING_TOKEN_URL": token_url,
    }
    assert AsyncSession.from_env(env).token_url == token_url
    del env["CCMESSAGING_TOKEN_URL"]
    assert AsyncSession.from_env(env).token_url == BASE_URL + TOKEN_PATH


@pytest.mark.e2e
def test_the_cli_takes_the_token_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = Emulator()
    with EmulatorServer(emulator, separate_token_service=True) as server:
        monkeypatch.setenv("CCMESSAGING_BASE_URL", server.url)
        monkeypatch.setenv("CCMESSAGING_APP_KEY", emulator.app_key)
        monkeypatch.setenv("CCMESSAGING_APP_SECRET", emulator.app_secret)
        monkeypatch.setenv("CCMESSAGING_TOKEN_URL", server.token_url)
        assert main(["call", "--called", "88880002"]) == 0
    assert json.loads(capsys.readouterr().out)["result_code"] == "0"
    assert emulator.token_requests == 1


@pytest.mark.parametrize(
    ("token_url", "reason"),
    [
        ("http://auth.example.com:28070/apigovernance/api/oauth/tokenByAkSk", "plain http"),
        ("https://auth.example.com:28070", "full URL"),
        ("https://auth.example.com/token?x=1", "query"),
        ("https://user:pw@auth.example.com/token", "user name or password"),
        ("auth.example.com/token", "must look like"),
    ],
)
def test_a_bad_token_url_is_refused(token_url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason) as caught:
        AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token_url=token_url)
    assert "pw" not in str(caught.value)


def test_plain_http_token_url_to_loopback_or_with_the_opt_in() -> None:
    loopback = "http://127.0.0.1:28070/apigovernance/api/oauth/tokenByAkSk"
    assert AsyncSession(BASE_URL, APP_KEY, APP_SECRET, token_url=loopback).token_url == loopback
    remote = "http://auth.internal:28070/apigovernance/api/oauth/tokenByAkSk"
    session = AsyncSession(
        BASE_URL, APP_KEY, APP_SECRET, token_url=remote, allow_insecure_http=True
    )
    assert session.token_url == remote


# Extra headers ---------------------------------------------------------------------------


async def test_extra_headers_go_on_the_token_request_and_every_createcall(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ccmessaging_async")
    token = router.post(TOKEN_PATH).respond(json=token_json())
    call = router.post(CALL_PATH).respond(json=call_json())
    session = AsyncSession(
        BASE_URL, APP_KEY, APP_SECRET, headers=TENANT, retry=RetryPolicy.for_tests()
    )
    async with session:
        await session.create_call(CreateCallRequest(called="1"))
        await session.create_call(CreateCallRequest(called="2"))
    sent = [c.request for c in (*token.calls, *call.calls)]
    assert len(sent) == 3
    for request in sent:
        assert request.headers["X-TenantSpaceID"] == TENANT["X-TenantSpaceID"]
    assert call.calls.last.request.headers["X-APP-Key"] == APP_KEY
    assert call.calls.last.request.headers["Content-Type"] == "application/json"
    assert TENANT["X-TenantSpaceID"] not in caplog.text
    assert TENANT["X-TenantSpaceID"] not in repr(session)


@pytest.mark.parametrize(
    "name", ["Authorization", "x-app-key", "CONTENT-TYPE", "Accept-Encoding", "Host"]
)
def test_extra_headers_cannot_replace_the_sdks_own(name: str) -> None:
    with pytest.raises(ConfigurationError, match="set by the SDK") as caught:
        AsyncSession(BASE_URL, APP_KEY, APP_SECRET, headers={name: "sneaky-value"})
    assert "sneaky-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Tenant": "a\r\nX-Injected: 1"}, "visible ASCII"),
        ({"X-Tenant": 42}, "visible ASCII"),
        ({"Bad Name": "v"}, "not a valid header name"),
        ({"X-Tenant": "a", "x-tenant": "b"}, "given twice"),
    ],
)
def test_malformed_extra_headers_are_refused_without_quoting_values(
    headers: dict[str, object], reason: str
) -> None:
    with pytest.raises(ConfigurationError, match=reason) as caught:
        AsyncSession(BASE_URL, APP_KEY, APP_SECRET, headers=headers)  # type: ignore[arg-type]
    assert "X-Injected" not in str(caught.value)


class _HeaderWatch(Emulator):
    """The emulator, noting each request's tenant header."""

    def __init__(self) -> None:
        super().__init__()
        self.tenants: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            self.tenants.append(headers.get(b"x-tenantspaceid", b"").decode())
        await super().__call__(scope, receive, send)


@pytest.mark.e2e
async def test_extra_headers_reach_the_platform_over_a_socket() -> None:
    emulator = _HeaderWatch()
    with EmulatorServer(emulator) as server:
        async with session_for(server.url, emulator, headers=TENANT) as session:
            await session.create_call(CreateCallRequest(called="3"))
    assert emulator.tenants == [TENANT["X-TenantSpaceID"]] * 2
