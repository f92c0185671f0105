"""Refusals that say who refused: a certificate, a proxy, or the gateway (and why)."""

from __future__ import annotations

import ssl

import anyio
import httpx
import pytest
import respx
import trustme

from ccmessaging_async import (
    AsyncSession,
    AuthenticationError,
    CertificateError,
    CreateCallRequest,
    NotSentError,
    OutcomeStatus,
    ProxyRefusedError,
    RetryPolicy,
    TokenPolicy,
)
from ccmessaging_async._token_manager import TokenManager
from tests._helpers import (
    APP_KEY,
    APP_SECRET,
    BASE_URL,
    CALL_PATH,
    TOKEN_PATH,
    call_json,
    token_json,
)
from tests._loopback import LoopbackServer, json_answer

pytestmark = pytest.mark.anyio


def server_context(authority: trustme.CA, host: str = "127.0.0.1") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(host).configure_cert(context)
    return context


def session(base_url: str, **kwargs: object) -> AsyncSession:
    return AsyncSession(
        base_url,
        APP_KEY,
        APP_SECRET,
        token=TokenPolicy.for_tests(),
        retry=RetryPolicy.for_tests(),
        **kwargs,  # type: ignore[arg-type]
    )


# Certificates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cert_host", "trusted", "reason"),
    [
        ("127.0.0.1", False, "unable to get local issuer certificate"),
        ("example.org", True, "mismatch, certificate is not valid for '127.0.0.1'"),
    ],
    ids=["unknown-ca", "hostname-mismatch"],
)
async def test_a_token_service_certificate_that_fails_is_named_and_tried_once(
    cert_host: str, trusted: bool, reason: str
) -> None:
    authority = trustme.CA()
    client = ssl.create_default_context()
    if trusted:
        authority.configure_trust(client)
    async with LoopbackServer(tls=server_context(authority, cert_host)) as server:
        with pytest.raises(CertificateError) as caught:
            async with session(server.url, verify=client):
                pass
        await server.wait_until(lambda: server.handshake_failures >= 1)
    error = caught.value
    assert reason in error.reason
    assert error.host == "127.0.0.1"
    assert reason in str(error)
    assert error.endpoint == "tokenByAkSk"
    assert error.attempts == 1
    assert server.handshake_failures == 1  # TokenPolicy.for_tests() allows 3 attempts
    assert server.requests == []


async def test_a_createcall_certificate_that_fails_is_never_sent_again() -> None:
    """The token service is fine; the platform's certificate is not: one handshake, no re-send."""
    tokens = LoopbackServer(answers={TOKEN_PATH: json_answer(token_json())})
    platform = LoopbackServer(tls=server_context(trustme.CA()))
    async with tokens, platform:
        async with session(platform.url, token_url=tokens.url + TOKEN_PATH) as s:
            with pytest.raises(CertificateError) as caught:
                await s.create_call(CreateCallRequest(called="1"))
            outcomes = [o async for o in s.create_calls([CreateCallRequest(called="2")])]
        await platform.wait_until(lambda: platform.handshake_failures >= 2)
    assert caught.value.attempts == 1
    assert caught.value.endpoint == "createcall"
    (outcome,) = outcomes
    assert outcome.status is OutcomeStatus.FAILED
    assert isinstance(outcome.error, NotSentError)
    assert isinstance(outcome.error.__cause__, CertificateError)
    assert platform.handshake_failures == 2  # one per call, none re-sent
    assert platform.requests == []


async def test_a_certificate_failure_stops_the_refresher_and_every_call_gets_it() -> None:
    fetches = 0

    async def fetch() -> object:
        nonlocal fetches
        fetches += 1
        raise CertificateError(
            "certificate has expired", host="h", reason="certificate has expired"
        )

    manager = TokenManager(fetch, TokenPolicy.for_tests())  # type: ignore[arg-type]
    with pytest.raises(CertificateError):
        await manager.start()
    with anyio.fail_after(5):
        await manager.run()  # returns at once: nothing left to retry
    for _ in range(3):
        with pytest.raises(CertificateError, match="expired"):
            await manager.get()
    assert fetches == 1


# Proxies -----------------------------------------------------------------------------------

_PROXY_407 = httpx.Response(407, headers={"Proxy-Authenticate": 'Basic realm="corp"'})


async def test_a_proxy_407_on_the_token_request_is_not_blamed_on_the_app_secret(
    router: respx.MockRouter,
) -> None:
    route = router.post(TOKEN_PATH).mock(return_value=_PROXY_407)
    with pytest.raises(ProxyRefusedError, match="proxy") as caught:
        async with session(BASE_URL):
            pass
    assert not isinstance(caught.value, AuthenticationError)
    assert "app key" not in str(caught.value)
    assert caught.value.status_code == 407
    assert route.call_count == 1


@pytest.mark.parametrize(
    "refusal",
    [_PROXY_407, httpx.ProxyError("407 Proxy Authentication Required")],
    ids=["answer", "connect"],
)
async def test_a_proxy_refusing_createcall_is_typed_and_not_sent_again(
    router: respx.MockRouter, refusal: httpx.Response | httpx.ProxyError
) -> None:
    router.post(TOKEN_PATH).respond(json=token_json())
    call = router.post(CALL_PATH)
    if isinstance(refusal, httpx.Response):
        call.mock(return_value=refusal)
    else:
        call.mock(side_effect=refusal)
    async with session(BASE_URL) as s:
        with pytest.raises(ProxyRefusedError) as caught:
            await s.create_call(CreateCallRequest(called="1"))
    assert caught.value.status_code == 407
    assert caught.value.attempts == 1
    assert call.call_count == 1


# The gateway's own words -------------------------------------------------------------------


async def test_a_gateway_refusing_twice_says_why_without_the_token(
    router: respx.MockRouter,
) -> None:
    router.post(TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=token_json("tok-FIRST-1")),
            httpx.Response(200, json=token_json("tok-SECOND-2")),
        ]
    )
    refusal = {
        "errorCode": "APIGW.0307",
        "exceptionInfo": "auth fail! source IP not in the whitelist for tok-SECOND-2 " + "x" * 900,
    }
    call = router.post(CALL_PATH).respond(403, json=refusal)
    async with session(BASE_URL) as s:
        with pytest.raises(AuthenticationError) as caught:
            await s.create_call(CreateCallRequest(called="1"))
    error = caught.value
    assert call.call_count == 2  # refreshed once, sent once more
    assert error.status_code == 403
    assert error.error_code == "APIGW.0307"
    assert error.exception_info is not None
    assert error.exception_info.startswith("auth fail! source IP not in the whitelist")
    assert len(error.exception_info) <= 256
    assert "APIGW.0307" in str(error)
    assert "whitelist" in str(error)
    for secret in ("tok-SECOND-2", "tok-FIRST-1", APP_SECRET):
        assert secret not in str(error)
        assert secret not in (error.exception_info or "")


async def test_a_token_service_refusal_carries_its_code_without_the_secret(
    router: respx.MockRouter,
) -> None:
    router.post(TOKEN_PATH).respond(
        401,
        json={"errorCode": "AUTH.0001", "exceptionInfo": f"bad secret {APP_SECRET}\r\n"},
    )
    with pytest.raises(AuthenticationError) as caught:
        async with session(BASE_URL):
            pass
    assert caught.value.error_code == "AUTH.0001"
    assert caught.value.exception_info == "bad secret ***  "
    assert APP_SECRET not in str(caught.value)


async def test_a_refusal_without_a_json_body_still_reads_well(router: respx.MockRouter) -> None:
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(CALL_PATH).mock(
        side_effect=[httpx.Response(403, text="<html>denied</html>")] * 2
        + [httpx.Response(200, json=call_json())]
    )
    async with session(BASE_URL) as s:
        with pytest.raises(AuthenticationError) as caught:
            await s.create_call(CreateCallRequest(called="1"))
    assert caught.value.error_code is None
    assert caught.value.exception_info is None
    assert str(caught.value).endswith("(HTTP 403)")
