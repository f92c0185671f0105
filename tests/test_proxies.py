"""Proxies on every transport, through a real forward proxy (tinyproxy) on loopback."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from ccmessaging_async import (
    AsyncSession,
    ConfigurationError,
    CreateCallRequest,
    ProxyRefusedError,
    RetryPolicy,
    TokenPolicy,
    aiohttp_transport,
)
from ccmessaging_async._config import DEFAULT_LIMITS
from ccmessaging_async._proxies import environment_proxy
from ccmessaging_async.cli import main
from ccmessaging_async.testing import Emulator, EmulatorServer
from tests._helpers import APP_KEY, APP_SECRET, BASE_URL, CALL_PATH, TOKEN_PATH
from tests._tinyproxy import Tinyproxy

pytestmark = pytest.mark.anyio

PASSWORD = "pr0xy-pa55word"
CREDENTIALS = ("dialer", PASSWORD)

#: Builds the session for a target URL: the default transport or the aiohttp one.
Build = Callable[..., AsyncSession]


@pytest.fixture(params=["default", "aiohttp"])
def build(request: pytest.FixtureRequest, anyio_backend: str) -> Build:
    """A session over the default transport, or over the aiohttp one (asyncio only)."""
    aiohttp = request.param == "aiohttp"
    if aiohttp and anyio_backend != "asyncio":
        pytest.skip("the aiohttp transport runs on asyncio only")

    def make(
        url: str,
        emulator: Emulator,
        *,
        proxy: str | None = None,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> AsyncSession:
        options: dict[str, object] = {}
        if aiohttp:
            options["transport"] = aiohttp_transport(
                proxy=proxy, verify=verify, trust_env=trust_env, limits=limits
            )
        else:
            options.update(proxy=proxy, verify=verify, trust_env=trust_env, limits=limits)
        return AsyncSession(
            url,
            emulator.app_key,
            emulator.app_secret,
            token=TokenPolicy.for_tests(),
            retry=RetryPolicy.for_tests(),
            **options,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(
    authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorServer]:
    folder = tmp_path_factory.mktemp("tls")
    cert = authority.issue_cert("127.0.0.1")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    with EmulatorServer(Emulator(), ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)) as srv:
        yield srv


@pytest.fixture
def trusting(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


@pytest.fixture
def plain_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as server:
        yield server


@pytest.mark.e2e
async def test_an_http_target_goes_through_the_forward_proxy(
    build: Build, plain_server: EmulatorServer, tmp_path: Path
) -> None:
    # tinyproxy closes each plain-http connection after one answer without saying so: a
    # connection reused before its close arrives would race it (README, "Behind a proxy").
    one_request_each = httpx.Limits(max_connections=100, keepalive_expiry=0)
    with Tinyproxy(tmp_path) as proxy:
        session = build(
            plain_server.url, plain_server.app, proxy=proxy.url(), limits=one_request_each
        )
        async with session:
            result = await session.create_call(CreateCallRequest(called="88881001"))
        seen = proxy.requests()
    assert result.result_code == "0"
    assert f"POST {plain_server.url}{TOKEN_PATH}" in seen
    assert f"POST {plain_server.url}{CALL_PATH}" in seen


@pytest.mark.e2e
async def test_proxy_credentials_reach_the_proxy_for_an_http_target(
    build: Build, plain_server: EmulatorServer, tmp_path: Path
) -> None:
    """A plain-http target through a proxy that asks for a password: no 407, one call."""
    one_request_each = httpx.Limits(max_connections=100, keepalive_expiry=0)
    with Tinyproxy(tmp_path, credentials=CREDENTIALS) as proxy:
        session = build(
            plain_server.url,
            plain_server.app,
            proxy=proxy.url(CREDENTIALS),
            limits=one_request_each,
        )
        async with session:
            result = await session.create_call(CreateCallRequest(called="88881004"))
    assert result.result_code == "0"
    assert plain_server.app.calls_for("88881004") == 1


@pytest.mark.e2e
async def test_an_https_target_goes_through_a_connect_tunnel(
    build: Build, tls_server: EmulatorServer, trusting: ssl.SSLContext, tmp_path: Path
) -> None:
    """The token request and createcall both tunnel; the session's CA reaches the target."""
    with Tinyproxy(tmp_path) as proxy:
        session = build(tls_server.url, tls_server.app, proxy=proxy.url(), verify=trusting)
        async with session:
            result = await session.create_call(CreateCallRequest(called="88881002"))
        seen = proxy.requests()
    assert result.result_code == "0"
    assert seen
    assert set(seen) == {f"CONNECT 127.0.0.1:{tls_server.port}"}


@pytest.mark.e2e
async def test_proxy_credentials_work_and_never_leak(
    build: Build,
    tls_server: EmulatorServer,
    trusting: ssl.SSLContext,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="ccmessaging_async")
    with Tinyproxy(tmp_path, credentials=CREDENTIALS) as proxy:
        good = build(tls_server.url, tls_server.app, proxy=proxy.url(CREDENTIALS), verify=trusting)
        async with good:
            await good.create_call(CreateCallRequest(called="88881003"))
        wrong = build(
            tls_server.url,
            tls_server.app,
            proxy=proxy.url((CREDENTIALS[0], "wrong")),
            verify=trusting,
        )
        with pytest.raises(ProxyRefusedError) as caught:
            async with wrong:
                pass
    error = caught.value
    assert error.status_code in (401, 407)  # tinyproxy answers a bad password with 401
    assert error.endpoint == "tokenByAkSk"
    assert "proxy" in str(error)
    for text in (str(error), repr(error), repr(good), repr(wrong), caplog.text):
        assert PASSWORD not in text
        assert "wrong" not in text


@pytest.mark.e2e
async def test_without_trust_env_the_environments_proxy_is_ignored(
    build: Build,
    tls_server: EmulatorServer,
    trusting: ssl.SSLContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Tinyproxy(tmp_path) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with build(tls_server.url, tls_server.app, verify=trusting) as session:
            await session.create_call(CreateCallRequest(called="88881004"))
        assert proxy.requests() == []
        async with build(tls_server.url, tls_server.app, verify=trusting, trust_env=True) as s:
            await s.create_call(CreateCallRequest(called="88881005"))
        assert proxy.requests()
        used = len(proxy.requests())
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with build(tls_server.url, tls_server.app, verify=trusting, trust_env=True) as s:
            await s.create_call(CreateCallRequest(called="88881006"))
        assert len(proxy.requests()) == used  # NO_PROXY names the host: direct


def test_the_environment_proxy_as_curl_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy("https://gw.example.com") is None
    monkeypatch.setenv("ALL_PROXY", "proxy.corp:3128")
    found = environment_proxy("https://gw.example.com")
    assert found is not None
    assert str(found.url) == "http://proxy.corp:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://u:p@secure.corp:8080")
    found = environment_proxy("https://gw.example.com")
    assert found is not None
    assert found.url.host == "secure.corp"
    assert found.auth == ("u", "p")
    monkeypatch.setenv("NO_PROXY", ".example.com")
    assert environment_proxy("https://gw.example.com") is None


# What cannot reach a client or transport the caller brings ---------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"proxy": "http://127.0.0.1:3128"}, "proxy"),
        ({"trust_env": True}, "trust_env"),
        ({"verify": False}, "verify"),
        ({"http2": True}, "http2"),
        ({"limits": httpx.Limits(max_connections=7)}, "limits"),
    ],
)
@pytest.mark.parametrize("brought", ["transport", "client"])
def test_settings_that_cannot_reach_what_you_bring_are_refused(
    options: dict[str, object], named: str, brought: str
) -> None:
    mine: dict[str, object] = (
        {"transport": httpx.AsyncHTTPTransport()}
        if brought == "transport"
        else {"client": httpx.AsyncClient()}
    )
    with pytest.raises(ConfigurationError, match=rf"{named} cannot reach the {brought}"):
        AsyncSession(BASE_URL, APP_KEY, APP_SECRET, **mine, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["httpx", "aiohttp"])
def test_a_brought_transports_limits_are_the_sessions_bound(kind: str) -> None:
    limits = httpx.Limits(max_connections=7, max_keepalive_connections=7, keepalive_expiry=2)
    transport = (
        aiohttp_transport(limits=limits)
        if kind == "aiohttp"
        else httpx.AsyncHTTPTransport(limits=limits)
    )
    session = AsyncSession(BASE_URL, APP_KEY, APP_SECRET, transport=transport)
    assert session.limits == limits
    same = AsyncSession(BASE_URL, APP_KEY, APP_SECRET, transport=transport, limits=limits)
    assert same.limits == limits


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "not a url", "http://"])
def test_an_unusable_proxy_is_refused(proxy: str) -> None:
    with pytest.raises(ConfigurationError, match="proxy"):
        AsyncSession(BASE_URL, APP_KEY, APP_SECRET, proxy=proxy)


def test_a_proxy_password_never_shows_in_a_refusal() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AsyncSession(BASE_URL, APP_KEY, APP_SECRET, proxy=f"ftp://u:{PASSWORD}@host:21")
    assert PASSWORD not in str(caught.value)


@pytest.mark.e2e
def test_the_cli_honours_the_environments_proxy_as_curl_does(
    tls_server: EmulatorServer,
    authority: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``HTTPS_PROXY`` carries the calls and ``SSL_CERT_FILE`` names the CA, as for curl."""
    emulator = tls_server.app
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("CCMESSAGING_BASE_URL", tls_server.url)
    monkeypatch.setenv("CCMESSAGING_APP_KEY", emulator.app_key)
    monkeypatch.setenv("CCMESSAGING_APP_SECRET", emulator.app_secret)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    for name in ("NO_PROXY", "no_proxy", "https_proxy", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    with Tinyproxy(tmp_path) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        assert main(["call", "--called", "88881007"]) == 0
        seen = proxy.requests()
    assert seen
    assert set(seen) == {f"CONNECT 127.0.0.1:{tls_server.port}"}
    assert '"result_code": "0"' in capsys.readouterr().out
