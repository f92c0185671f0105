"""SDK-added CPU per call on the in-process path (no sockets, no server).

Every client talks to the same ``httpx.MockTransport`` that answers instantly with the
documented JSON, so what differs between them is only the client-side work: raw httpx
(a ``client.post`` plus ``json.loads``), ``session.create_call`` (validation, conversion,
token, auth headers, bounded read, decode) and ``session.create_calls`` (plus the batch
engine's task, slot and outcome). ``create_call`` runs three ways: telemetry off (what a
session costs without the ``otel`` extra), OpenTelemetry's API with no SDK configured (the
default once the extra is installed), and an SDK recording every span and metric (spans
dropped by a no-op processor, metrics kept for a reader). Rounds alternate the clients so
drift cancels; the medians of CPU time (``time.process_time``) per call are reported.

    python benchmarks/overhead.py [--calls 20000] [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx
from servers import CALL_JSON, TOKEN_JSON

from ccmessaging_async import AsyncSession, CreateCallRequest, Telemetry

TOKEN, CALL = TOKEN_JSON.encode(), CALL_JSON.encode()
URL = "http://127.0.0.1/apiaccess/ccmessaging/v1/mobileagent/createcall"
JSON = {"content-type": "application/json"}


def handler(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("tokenByAkSk"):
        return httpx.Response(200, content=TOKEN, headers=JSON)
    return httpx.Response(200, content=CALL, headers=JSON)


async def raw_httpx(calls: int) -> float:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        headers = {
            "X-APP-Key": "key",
            "Authorization": "Bearer bench-token",
            "Content-Type": "application/json",
        }
        started = time.process_time()
        for _ in range(calls):
            body = json.dumps({"called": "88884432", "callerPresent": "95599"}).encode()
            response = await client.post(URL, content=body, headers=headers)
            json.loads(response.content)
        return time.process_time() - started


def _session(telemetry: Telemetry | None = None) -> AsyncSession:
    return AsyncSession(
        "http://127.0.0.1",
        "key",
        "secret",
        transport=httpx.MockTransport(handler),
        telemetry=telemetry,
    )


def _recording() -> Telemetry:
    """OpenTelemetry's SDK recording everything: what a traced service pays."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropping(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Dropping()))
    return Telemetry(tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()]))


async def sdk_create_call(calls: int, telemetry: Telemetry | None = None) -> float:
    async with _session(telemetry) as session:
        started = time.process_time()
        for _ in range(calls):
            await session.create_call(CreateCallRequest(called="88884432", caller_present="95599"))
        return time.process_time() - started


async def sdk_create_calls(calls: int) -> float:
    async with _session() as session:
        requests = (
            CreateCallRequest(called="88884432", caller_present="95599") for _ in range(calls)
        )
        started = time.process_time()
        async for outcome in session.create_calls(requests, concurrency=10):
            if not outcome.ok:
                raise RuntimeError(outcome)
        return time.process_time() - started


CLIENTS: dict[str, Callable[[int], Awaitable[float]]] = {
    "raw httpx": raw_httpx,
    "sdk create_call": functools.partial(sdk_create_call, telemetry=Telemetry(enabled=False)),
    "sdk create_calls": sdk_create_calls,
}
if importlib.util.find_spec("opentelemetry") is not None:
    CLIENTS["sdk create_call, otel API only"] = sdk_create_call
if importlib.util.find_spec("opentelemetry.sdk") is not None:
    CLIENTS["sdk create_call, otel SDK recording"] = functools.partial(
        sdk_create_call, telemetry=_recording()
    )


def measure(calls: int, rounds: int) -> dict[str, float]:
    """Median CPU µs per call of each client over alternating rounds."""
    samples: dict[str, list[float]] = {name: [] for name in CLIENTS}
    for index in range(rounds):
        names = list(CLIENTS)
        names = names[index % len(names) :] + names[: index % len(names)]
        for name in names:
            seconds = anyio.run(CLIENTS[name], calls)
            samples[name].append(seconds / calls * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args()
    medians = measure(args.calls, args.rounds)
    raw = medians["raw httpx"]
    for name, value in medians.items():
        print(f"{name:36s} {value:8.1f} µs/call  (+{value - raw:6.1f} over raw httpx)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"calls": args.calls, "rounds": args.rounds, "medians": medians}, handle)


if __name__ == "__main__":
    main()
