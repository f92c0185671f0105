"""The SDK's own spans and metrics (OpenTelemetry), on both transports, leaking nothing."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import attrs
import httpx
import pytest
import respx
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from ccmessaging_async import (
    AsyncSession,
    AuthenticationError,
    CreateCallRequest,
    NotSentError,
    Pacing,
    RetryPolicy,
    Telemetry,
    TokenPolicy,
    aiohttp_transport,
)
from ccmessaging_async.testing import DropPoint, Emulator, EmulatorServer
from tests._helpers import APP_KEY, APP_SECRET, BASE_URL, CALL_PATH, TOKEN_PATH, token_json

pytestmark = pytest.mark.anyio

CALL_SPAN = "ccmessaging.createcall"
TOKEN_SPAN = "ccmessaging.token_fetch"


@attrs.frozen
class Recorded:
    """Where a session's spans and metrics land in a test."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    telemetry: Telemetry
    tracer_provider: TracerProvider

    def named(self, name: str) -> list[ReadableSpan]:
        """The finished spans called ``name``."""
        return [span for span in self.spans.get_finished_spans() if span.name == name]

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """``(attributes, value)`` of each data point of ``metric`` (a sum's or a count)."""
        data = self.metrics.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for each in scope.metrics:
                    if each.name == metric:
                        for point in each.data.data_points:
                            # A sum's value, or a histogram's count.
                            value = getattr(point, "value", getattr(point, "count", None))
                            found.append((dict(point.attributes or {}), value))
        return found

    def total(self, metric: str, **labels: Any) -> Any:
        """The sum of ``metric``'s points whose attributes include ``labels``."""
        return sum(
            value
            for attributes, value in self.points(metric)
            if all(attributes.get(key) == wanted for key, wanted in labels.items())
        )

    def everything(self) -> str:
        """Every span (attributes, events, status) and metric point, as one text."""
        spans = [span.to_json() for span in self.spans.get_finished_spans()]
        data = self.metrics.get_metrics_data()
        return "\n".join([*spans, data.to_json() if data else ""])


def attributes(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes (typed for the assertions)."""
    return dict(span.attributes or {})


def in_process(emulator: Emulator, telemetry: Telemetry, *, app_secret: str = "") -> AsyncSession:
    """A session talking to ``emulator`` in-process (no socket), recording to ``telemetry``."""
    return AsyncSession(
        BASE_URL,
        emulator.app_key,
        app_secret or emulator.app_secret,
        token=TokenPolicy.for_tests(),
        transport=httpx.ASGITransport(app=emulator),
        telemetry=telemetry,
    )


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[metrics])
    yield Recorded(spans, metrics, Telemetry(tracer_provider, meter_provider), tracer_provider)
    meter_provider.shutdown()
    tracer_provider.shutdown()


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as running:
        yield running


@pytest.fixture(params=["default", "aiohttp"])
def transport(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("the aiohttp transport runs on asyncio only")
    return str(request.param)


@pytest.mark.e2e
async def test_each_call_is_one_span_with_what_happened_and_metrics_count_it(
    server: EmulatorServer, recorded: Recorded, transport: str
) -> None:
    emulator = server.app
    emulator.result_codes["88881002"] = "30010010002"
    emulator.drop_connection("88881003", DropPoint.AFTER_RECORD)
    options: dict[str, Any] = {}
    if transport == "aiohttp":
        options["transport"] = aiohttp_transport()
    session = AsyncSession(
        server.url,
        emulator.app_key,
        emulator.app_secret,
        token=TokenPolicy.for_tests(),
        retry=RetryPolicy.for_tests(),
        telemetry=recorded.telemetry,
        **options,
    )
    # The HTTP spans, as the user's instrumentation of httpx or of aiohttp makes them.
    aiohttp_instrumented = AioHttpClientInstrumentor()
    if transport == "default":
        HTTPXClientInstrumentor().instrument_client(
            session.client, tracer_provider=recorded.tracer_provider
        )
    else:
        aiohttp_instrumented.instrument(tracer_provider=recorded.tracer_provider)
    try:
        async with session:
            await session.create_call(CreateCallRequest(called="88881001"))
            with pytest.raises(Exception, match="30010010002"):
                await session.create_call(CreateCallRequest(called="88881002"))
            with pytest.raises(Exception, match="may have reached"):
                await session.create_call(CreateCallRequest(called="88881003"))
            emulator.expire_all_tokens()  # the gateway refuses the token: refreshed, re-sent
            await session.create_call(CreateCallRequest(called="88881004"))
    finally:
        if transport == "aiohttp":
            aiohttp_instrumented.uninstrument()

    calls = {attributes(span)["ccmessaging.called"]: span for span in recorded.named(CALL_SPAN)}
    assert set(calls) == {"8888****01", "8888****02", "8888****03", "8888****04"}
    ok, refused, lost, refreshed = (calls[f"8888****0{n}"] for n in range(1, 5))
    assert attributes(ok)["ccmessaging.outcome"] == "succeeded"
    assert attributes(ok)["ccmessaging.result_code"] == "0"
    assert attributes(ok)["ccmessaging.attempts"] == 1
    assert attributes(ok)["ccmessaging.token_refreshed"] is False
    assert ok.status.status_code is not StatusCode.ERROR
    assert attributes(refused)["ccmessaging.outcome"] == "failed"
    assert attributes(refused)["ccmessaging.result_code"] == "30010010002"
    assert attributes(refused)["error.type"] == "ResultCodeError"
    assert refused.status.status_code is StatusCode.ERROR
    assert attributes(lost)["ccmessaging.outcome"] == "unknown"
    assert attributes(lost)["error.type"] == "ConnectionLostError"
    assert "ccmessaging.result_code" not in attributes(lost)
    assert attributes(refreshed)["ccmessaging.token_refreshed"] is True
    assert attributes(refreshed)["ccmessaging.attempts"] == 2
    assert [event.name for event in refreshed.events] == ["ccmessaging.resend"]

    tokens = recorded.named(TOKEN_SPAN)
    assert len(tokens) == 2  # the first, and the one after the refusal
    assert all(attributes(span)["ccmessaging.attempts"] == 1 for span in tokens)

    # The HTTP spans hang under the SDK's own, on either transport.
    http = [s for s in recorded.spans.get_finished_spans() if s.name == "POST"]
    parents = {span.context.span_id: span.name for span in (*calls.values(), *tokens)}
    assert len(http) == 2 + 5  # token requests, and createcalls (one re-sent)
    assert all(span.parent and span.parent.span_id in parents for span in http)
    createcalls = [s for s in http if parents[s.parent.span_id] == CALL_SPAN]  # type: ignore[union-attr]
    assert len(createcalls) == 5

    assert recorded.total("ccmessaging.calls", **{"ccmessaging.outcome": "succeeded"}) == 2
    assert recorded.total("ccmessaging.calls", **{"ccmessaging.outcome": "failed"}) == 1
    assert recorded.total("ccmessaging.calls", **{"ccmessaging.outcome": "unknown"}) == 1
    assert recorded.total("ccmessaging.calls", **{"ccmessaging.result_code": "30010010002"}) == 1
    assert recorded.total("ccmessaging.call.duration") == 4
    assert recorded.total("ccmessaging.calls.in_flight") == 0
    assert (
        recorded.total("ccmessaging.resends", **{"ccmessaging.resend.reason": "token_refused"}) == 1
    )
    assert recorded.total("ccmessaging.token.fetches", **{"ccmessaging.token.outcome": "ok"}) == 2

    text = recorded.everything()
    for secret in [emulator.app_secret, *emulator.issued_tokens]:
        assert secret not in text
    for number in ("88881001", "88881002", "88881003", "88881004"):
        assert number not in text


@pytest.mark.fake_clock
async def test_resends_and_budget_refusals_are_counted(recorded: Recorded) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        mock.post(TOKEN_PATH).respond(200, json=token_json("t0ken-123"))
        mock.post(CALL_PATH).mock(side_effect=httpx.ConnectError("refused"))
        session = AsyncSession(
            BASE_URL,
            APP_KEY,
            APP_SECRET,
            token=TokenPolicy.for_tests(),
            retry=RetryPolicy.for_tests(max_resends=2),
            telemetry=recorded.telemetry,
        )
        async with session:
            requests = [CreateCallRequest(called=f"8888200{n}") for n in range(3)]
            outcomes = [o async for o in session.create_calls(requests, retry_budget=2)]
    assert all(isinstance(outcome.error, NotSentError) for outcome in outcomes)
    assert (
        recorded.total("ccmessaging.resends", **{"ccmessaging.resend.reason": "NotSentError"}) == 2
    )
    # A call that did not reach its 3 sends (1 + max_resends) ended on the spent budget.
    cut_short = sum(outcome.attempts < 3 for outcome in outcomes)
    assert cut_short >= 2
    assert recorded.total("ccmessaging.retry_budget.refusals") == cut_short
    refused = [
        span
        for span in recorded.named(CALL_SPAN)
        if any(event.name == "ccmessaging.retry_budget.refused" for event in span.events)
    ]
    assert len(refused) == cut_short
    assert "t0ken-123" not in recorded.everything()


async def test_a_token_service_that_refuses_is_a_failed_token_span(recorded: Recorded) -> None:
    emulator = Emulator()
    session = in_process(emulator, recorded.telemetry, app_secret="a-wrong-app-secret")
    with pytest.raises(AuthenticationError):
        async with session:
            pass
    (span,) = recorded.named(TOKEN_SPAN)
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == "AuthenticationError"
    assert attributes(span)["http.response.status_code"] == 401
    assert (
        recorded.total("ccmessaging.token.failures", **{"error.type": "AuthenticationError"}) == 1
    )
    assert "a-wrong-app-secret" not in recorded.everything()


async def test_telemetry_off_records_nothing(recorded: Recorded) -> None:
    emulator = Emulator()
    session = in_process(emulator, attrs.evolve(recorded.telemetry, enabled=False))
    async with session:
        await session.create_call(CreateCallRequest(called="88883001"))
    assert recorded.spans.get_finished_spans() == ()
    assert recorded.points("ccmessaging.calls") == []


def test_without_opentelemetry_installed_the_sdk_works_and_records_nothing() -> None:
    script = """
import sys
sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
import anyio, httpx
from ccmessaging_async import AsyncSession, CreateCallRequest, TokenPolicy, _telemetry
from ccmessaging_async.testing import Emulator
assert not _telemetry.OTEL_INSTALLED
assert type(_telemetry.observer(None)) is _telemetry.Observer

async def main():
    emulator = Emulator()
    transport = httpx.ASGITransport(app=emulator)
    async with AsyncSession("https://127.0.0.1", emulator.app_key, emulator.app_secret,
                            token=TokenPolicy.for_tests(), transport=transport) as session:
        result = await session.create_call(CreateCallRequest(called="88884001"))
    print(json.dumps([result.result_code, sorted(m for m in sys.modules if "opentelemetry" in m)]))

import json
anyio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == "0"
    assert loaded == ["opentelemetry"]  # only the blocked name itself


async def test_the_refreshers_token_fetches_start_traces_of_their_own(recorded: Recorded) -> None:
    """A session opened inside a span (a service's start-up) does not grow that trace forever."""
    emulator = Emulator()
    tracer = recorded.tracer_provider.get_tracer("the-service")
    with tracer.start_as_current_span("start-up") as start_up:
        session = in_process(emulator, recorded.telemetry)
        async with session:
            emulator.expire_all_tokens()  # refused: the refresher fetches another
            await session.create_call(CreateCallRequest(called="88885001"))
    first, refresh = sorted(recorded.named(TOKEN_SPAN), key=lambda span: span.start_time or 0)
    assert first.parent is not None
    assert first.parent.span_id == start_up.get_span_context().span_id
    assert refresh.parent is None


class _Raising(SpanProcessor):
    """A user's span processor that raises where it is told to."""

    def __init__(self, *, on_start: bool = False, on_end: bool = False) -> None:
        self.fail_on_start, self.fail_on_end = on_start, on_end

    def on_start(self, span: Span, parent_context: object = None) -> None:
        if self.fail_on_start:
            raise RuntimeError("the user's processor broke in on_start")

    def on_end(self, span: ReadableSpan) -> None:
        if self.fail_on_end:
            raise RuntimeError("the user's processor broke in on_end")


@pytest.mark.parametrize(
    "processor",
    [_Raising(on_start=True), _Raising(on_end=True), _Raising(on_start=True, on_end=True)],
    ids=["on_start", "on_end", "both"],
)
async def test_a_raising_span_processor_changes_no_outcome(
    processor: _Raising, caplog: pytest.LogCaptureFixture
) -> None:
    """A processor that raises for every span: the token comes, calls and batches succeed."""
    caplog.set_level(logging.DEBUG, logger="ccmessaging_async")  # WARNING once per type
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(processor)
    emulator = Emulator()
    telemetry = Telemetry(tracer_provider=tracer_provider)
    async with in_process(emulator, telemetry) as session:
        result = await session.create_call(CreateCallRequest(called="88881001"))
        outcomes = [
            outcome
            async for outcome in session.create_calls(
                [CreateCallRequest(called=f"8888200{i}") for i in range(5)], concurrency=2
            )
        ]
    assert result.result_code == "0"
    assert [outcome.status.value for outcome in outcomes] == ["succeeded"] * 5
    assert len(emulator.calls) == 6
    assert emulator.duplicates() == {}
    assert "telemetry failed (RuntimeError)" in caplog.text
    assert "broke" not in caplog.text  # the type is logged, not the user's text


async def test_a_meter_provider_that_raises_leaves_the_session_working() -> None:
    """Instruments that cannot be created: the session opens and records nothing."""

    class Broken(MeterProvider):
        def get_meter(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("no meter today")

    emulator = Emulator()
    async with in_process(emulator, Telemetry(meter_provider=Broken())) as session:
        result = await session.create_call(CreateCallRequest(called="88881001"))
    assert result.result_code == "0"


@pytest.mark.fake_clock
async def test_a_throttled_batch_reports_its_throttles_pauses_and_limit(
    recorded: Recorded,
) -> None:
    """Throttles and pauses are counted; the running batch's limit is a gauge."""
    emulator = Emulator(clock=anyio.current_time)
    emulator.set_capacity(50.0, burst=5, retry_after=0.05)
    pacing = Pacing()
    async with in_process(emulator, recorded.telemetry) as session:
        requests = [CreateCallRequest(called=f"8888{i:04d}") for i in range(100)]
        outcomes = [o async for o in session.create_calls(requests, concurrency=20, pacing=pacing)]
        limits = recorded.points("ccmessaging.pace.limit")
    assert all(o.status.value == "succeeded" for o in outcomes)
    assert recorded.total("ccmessaging.throttles") == pacing.throttles > 0
    assert recorded.total("ccmessaging.pauses") == pacing.pauses
    assert [value for _, value in limits] == [pytest.approx(pacing.rate)]
