"""Bad input, hostile bodies, secrets and TLS."""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccmessaging_async import (
    AsyncSession,
    CCMessagingError,
    CertificateError,
    CreateCallRequest,
    CreateCallResult,
    ResponseDecodeError,
    ResultCodeError,
    ServerError,
)
from ccmessaging_async._classify import decode_success
from ccmessaging_async._converter import structure_token
from ccmessaging_async._endpoints import CREATE_CALL
from ccmessaging_async.cli import main
from ccmessaging_async.testing import DropPoint, Emulator, EmulatorServer, TokenFailure
from tests._helpers import APP_KEY, APP_SECRET, TOKEN_PATH, token_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
wire_keys = st.sampled_from(
    ["resultCode", "resultDesc", "resultData", "callSerialNo", "sipServiceAddress", "accesscode"]
)
response_like = st.recursive(
    json_values,
    lambda children: st.dictionaries(wire_keys | st.text(max_size=5), children, max_size=6),
    max_leaves=20,
)


@given(body=response_like)
def test_any_json_body_decodes_or_raises_a_typed_error(body: Any) -> None:
    """Arbitrary JSON answers give a result or a typed error, never an unhandled exception."""
    content = json.dumps(body).encode()
    try:
        result = decode_success(CREATE_CALL, content)
    except (ResponseDecodeError, ResultCodeError):
        return
    assert isinstance(result, CreateCallResult)
    assert result.result_code == "0"


@given(content=st.binary(max_size=200))
def test_any_bytes_decode_or_raise_a_typed_error(content: bytes) -> None:
    """Arbitrary bytes as a 200 body never escape as an untyped exception."""
    with contextlib.suppress(CCMessagingError):
        decode_success(CREATE_CALL, content)


@given(body=json_values)
def test_token_bodies_never_crash_the_converter_silently(body: Any) -> None:
    """A token answer either has a non-empty AccessToken or raises (the fetcher wraps it)."""
    try:
        token = structure_token(body)
    except Exception:  # noqa: BLE001 - the fetcher turns any failure into an auth error
        return
    assert token.access_token


class _Endless(httpx.AsyncByteStream):
    """A body that never ends (an iterator, not a generator, so nothing is left to GC)."""

    def __init__(self) -> None:
        self.sent = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        self.sent += 65536
        return b" " * 65536


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("status", [200, 500, 403])
async def test_never_ending_bodies_are_not_read_whole(status: int) -> None:
    """A never-ending body is read only up to a bound, for success and error answers."""
    streams: list[_Endless] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            return httpx.Response(200, json=token_json())
        streams.append(_Endless())
        return httpx.Response(status, stream=streams[-1])

    async with AsyncSession(
        "http://127.0.0.1", APP_KEY, APP_SECRET, transport=httpx.MockTransport(handler)
    ) as session:
        with anyio.fail_after(10), pytest.raises(CCMessagingError):
            await session.create_call(CreateCallRequest(called="88884432"))
    assert streams
    assert all(stream.sent <= 128 * 1024 for stream in streams)


def test_no_secret_anywhere_in_a_full_failing_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEBUG logs, errors and the batch output hold no secret or token; numbers are masked."""
    caplog.set_level(logging.DEBUG)
    emulator = Emulator(app_secret="TOP-SECRET-app-secret-1234")
    emulator.fail_token_requests(2, TokenFailure.HTML_PAGE)
    called = [f"1399{i:07d}" for i in range(60)]
    emulator.result_codes[called[1]] = "30010010002"
    emulator.canned_answers[called[2]] = (500, "text/plain", b"oops")
    emulator.canned_answers[called[3]] = (200, "text/html", b"<html></html>")
    emulator.canned_answers[called[4]] = (404, "application/json", b"{}")
    emulator.drop_connection(called[5], DropPoint.AFTER_RECORD)
    emulator.drop_connection(called[6], DropPoint.BEFORE_RECORD)
    emulator.rate_limit = 1000
    source, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    rows = [f"{n},95599,data" for n in called] + [",,", "x" * 40 + ",,"]
    source.write_text("called,caller_present,call_data\n" + "\n".join(rows) + "\n")
    with EmulatorServer(emulator) as server:
        monkeypatch.setenv("CCMESSAGING_BASE_URL", server.url)
        monkeypatch.setenv("CCMESSAGING_APP_KEY", emulator.app_key)
        monkeypatch.setenv("CCMESSAGING_APP_SECRET", emulator.app_secret)
        assert main(["batch", str(source), "--out", str(out), "--concurrency", "20"]) == 3
        emulator.expire_all_tokens()
        assert main(["call", "--called", "13999999999"]) == 0
        monkeypatch.setenv("CCMESSAGING_APP_SECRET", "WRONG-but-still-secret")
        assert main(["call", "--called", "13999999999"]) == 1

        async def errors() -> list[str]:
            texts = []
            async with AsyncSession(server.url, emulator.app_key, emulator.app_secret) as session:
                # the session and every object it holds
                texts += [repr(session), *map(repr, vars(session).values())]
                for number in called[1:7]:
                    try:
                        await session.create_call(CreateCallRequest(called=number))
                    except CCMessagingError as exc:
                        texts += [str(exc), repr(exc), repr(exc.__cause__), repr(vars(exc))]
            return texts

        texts = anyio.run(errors)
    job_file = Path(f"{out}.job").read_bytes().decode("latin-1")  # the job's SQLite file too
    blob = "\n".join(
        [*texts, out.read_text(), job_file, *(record.getMessage() for record in caplog.records)]
    )
    assert len(emulator.issued_tokens) >= 3
    for secret in [emulator.app_secret, "WRONG-but-still-secret", *emulator.issued_tokens]:
        assert secret not in blob
    logs = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ccmessaging"))
    assert "1399****01" in logs
    assert not any(number in logs for number in called)


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(
    certificate_authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorServer]:
    folder = tmp_path_factory.mktemp("tls")
    cert = certificate_authority.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    with EmulatorServer(Emulator(), ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)) as srv:
        yield srv


@pytest.mark.anyio
async def test_untrusted_certificate_is_refused(tls_server: EmulatorServer) -> None:
    """Verification is on by default: an unknown CA is a certificate error, nothing sent."""
    emulator = tls_server.app
    assert tls_server.url.startswith("https://")
    before = emulator.token_requests  # the server is the module's: others may have used it
    with pytest.raises(CertificateError, match=r"certificate"):
        async with AsyncSession(tls_server.url, emulator.app_key, emulator.app_secret):
            pass
    assert emulator.token_requests == before


@pytest.mark.anyio
async def test_custom_ca_is_accepted(
    tls_server: EmulatorServer, certificate_authority: trustme.CA, tmp_path: Path
) -> None:
    """A CA bundle path or an SSLContext passed as verify= makes TLS work."""
    emulator = tls_server.app
    bundle = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(bundle))
    context = ssl.create_default_context()
    certificate_authority.configure_trust(context)
    for verify in (str(bundle), context):
        async with AsyncSession(
            tls_server.url, emulator.app_key, emulator.app_secret, verify=verify
        ) as session:
            result = await session.create_call(CreateCallRequest(called="88884432"))
        assert result.result_code == "0"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(retry_after=st.text(max_size=40))
def test_retry_after_parsing_never_crashes(retry_after: str) -> None:
    """Any Retry-After header parses to a non-negative delay or None."""
    from ccmessaging_async._http import parse_retry_after  # noqa: PLC0415

    try:
        response = httpx.Response(429, headers={"Retry-After": retry_after})
    except (UnicodeEncodeError, ValueError):
        return
    delay = parse_retry_after(response.headers.get("retry-after"))
    assert delay is None or delay >= 0


def test_server_error_keeps_only_a_bounded_body() -> None:
    """Error bodies kept on exceptions are cut at 1 KiB."""
    error = ServerError("x", status_code=500, body="a" * 100_000)
    assert len(error.body) == 1024
