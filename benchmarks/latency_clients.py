"""One client run against ``slow_server.py``, in its own process; prints one JSON line.

    python benchmarks/latency_clients.py CLIENT --url URL --calls N --concurrency C
    python benchmarks/latency_clients.py CLIENT --url URL --calls N --bursts T

Steady mode: N createcalls at concurrency C after a warm-up; calls/s, client CPU µs per
call (getrusage), p50/p99 latency and failures. Burst mode: N calls in bursts of 20 spaced
T·U(0.9, 1.1) apart, so pooled connections idle about as long as the server's idle
timeout; the called number of every call by outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import ssl
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import httpx

from ccmessaging_async import AsyncSession, CreateCallRequest

TOKEN_PATH = "/apigovernance/api/oauth/tokenByAkSk"  # noqa: S105 - a path
CALL_PATH = "/apiaccess/ccmessaging/v1/mobileagent/createcall"
APP_KEY, APP_SECRET = "bench-app-key", "bench-app-secret"
BURST = 20

#: Per call: (latency s, outcome "ok" / "failed" / "unknown", called number).
Result = tuple[float, str, str]
Runner = Callable[[list[str]], Awaitable[list[Result]]]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _limits(concurrency: int) -> httpx.Limits:
    size = max(100, concurrency)
    return httpx.Limits(max_connections=size, max_keepalive_connections=size, keepalive_expiry=4.0)


def _body(number: str) -> bytes:
    return json.dumps({"called": number, "callerPresent": "95599"}).encode()


def _headers(token: str) -> dict[str, str]:
    return {
        "X-APP-Key": APP_KEY,
        "Authorization": "Bearer " + token,
        "Content-Type": "application/json",
    }


async def raw_httpx(url: str, concurrency: int, work: Callable[[Runner], Awaitable[None]]) -> None:
    async with httpx.AsyncClient(limits=_limits(concurrency), timeout=30.0) as client:
        answer = await client.post(
            url + TOKEN_PATH, json={"app_key": APP_KEY, "app_secret": APP_SECRET}
        )
        headers = _headers(answer.json()["AccessToken"])
        limiter = anyio.CapacityLimiter(concurrency)

        async def batch(numbers: list[str]) -> list[Result]:
            results: list[Result] = []

            async def one(number: str) -> None:
                async with limiter:
                    start = time.perf_counter()
                    try:
                        response = await client.post(
                            url + CALL_PATH, content=_body(number), headers=headers
                        )
                        outcome = "ok" if response.json()["resultCode"] == "0" else "failed"
                    except httpx.HTTPError:
                        outcome = "unknown"
                    results.append((time.perf_counter() - start, outcome, number))

            async with anyio.create_task_group() as group:
                for number in numbers:
                    group.start_soon(one, number)
            return results

        await work(batch)


async def raw_aiohttp(
    url: str, concurrency: int, work: Callable[[Runner], Awaitable[None]]
) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=max(100, concurrency), keepalive_timeout=4.0)
    async with aiohttp.ClientSession(connector=connector) as client:
        async with client.post(
            url + TOKEN_PATH, json={"app_key": APP_KEY, "app_secret": APP_SECRET}
        ) as answer:
            headers = _headers((await answer.json(content_type=None))["AccessToken"])
        semaphore = asyncio.Semaphore(concurrency)

        async def one(number: str) -> Result:
            async with semaphore:
                start = time.perf_counter()
                try:
                    async with client.post(
                        url + CALL_PATH, data=_body(number), headers=headers
                    ) as r:
                        ok = json.loads(await r.read())["resultCode"] == "0"
                    outcome = "ok" if ok else "failed"
                except aiohttp.ClientError:
                    outcome = "unknown"
                return (time.perf_counter() - start, outcome, number)

        async def batch(numbers: list[str]) -> list[Result]:
            return list(await asyncio.gather(*(one(n) for n in numbers)))

        await work(batch)


def _sdk(
    transport: Callable[[int], httpx.AsyncBaseTransport | None], *, http2: bool = False
) -> Callable[..., Coroutine[Any, Any, None]]:
    async def client(url: str, concurrency: int, work: Callable[[Runner], Awaitable[None]]) -> None:
        made = transport(concurrency)
        # Settings for the transport the session builds; one brought carries its own.
        own: dict[str, Any] = (
            {"limits": _limits(concurrency), "http2": http2, "verify": _trusted()}
            if made is None
            else {}
        )
        async with AsyncSession(
            url, APP_KEY, APP_SECRET, timeout=30.0, transport=made, **own
        ) as session:

            async def batch(numbers: list[str]) -> list[Result]:
                requests = [CreateCallRequest(called=n, caller_present="95599") for n in numbers]
                statuses = {"SUCCEEDED": "ok", "FAILED": "failed", "UNKNOWN": "unknown"}
                return [
                    (o.latency, statuses[o.status.name], o.request.called)
                    async for o in session.create_calls(requests, concurrency=concurrency)
                ]

            await work(batch)

    return client


def _aiohttp_transport(concurrency: int) -> httpx.AsyncBaseTransport:
    from ccmessaging_async import aiohttp_transport

    return aiohttp_transport(limits=_limits(concurrency), verify=_trusted())


def _aiohttp_before(concurrency: int) -> httpx.AsyncBaseTransport:
    """The aiohttp transport over aiohttp's own connector (before write tracking)."""
    from ccmessaging_async._transports import aiohttp_transport as module

    module.WIRE_SUPPORTED = False  # type: ignore[attr-defined]  # this process runs one client
    return _aiohttp_transport(concurrency)


def _trusted() -> ssl.SSLContext:
    """The default trust, plus ``h2_server.py``'s CA when ``BENCH_CA`` names it."""
    context = ssl.create_default_context()
    if os.environ.get("BENCH_CA"):
        context.load_verify_locations(os.environ["BENCH_CA"])
    return context


def _h2_before(concurrency: int) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(limits=_limits(concurrency), http2=True, verify=_trusted())


CLIENTS = {
    "raw httpx": raw_httpx,
    "sdk, httpx's pool": _sdk(lambda c: httpx.AsyncHTTPTransport(limits=_limits(c))),
    "sdk": _sdk(lambda c: None),
    "raw aiohttp": raw_aiohttp,
    "sdk + aiohttp transport": _sdk(_aiohttp_transport),
    "sdk + aiohttp, aiohttp's connector": _sdk(_aiohttp_before),
    "sdk, http2, httpx's pool": _sdk(_h2_before),
    "sdk, http2": _sdk(lambda c: None, http2=True),
}


def numbers(start: int, count: int) -> list[str]:
    return [f"1380{i:07d}" for i in range(start, start + count)]


def steady(
    calls: int, concurrency: int
) -> tuple[Callable[[Runner], Awaitable[None]], dict[str, object]]:
    report: dict[str, object] = {}

    async def work(batch: Runner) -> None:
        await batch(numbers(0, min(calls, 2 * concurrency)))  # warm-up: connections open
        cpu, wall = _cpu(), time.perf_counter()
        results = await batch(numbers(10**6, calls))
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
        latencies = sorted(r[0] for r in results)
        report.update(
            calls=calls,
            calls_s=calls / wall,
            cpu_us=cpu / calls * 1e6,
            p50_ms=statistics.median(latencies) * 1e3,
            p99_ms=latencies[int(0.99 * (len(latencies) - 1))] * 1e3,
            failures=sum(r[1] != "ok" for r in results),
        )

    return work, report


def bursts(
    calls: int, spacing: float
) -> tuple[Callable[[Runner], Awaitable[None]], dict[str, object]]:
    report: dict[str, object] = {}
    rng = random.Random(7)

    async def work(batch: Runner) -> None:
        outcomes: dict[str, list[str]] = {"ok": [], "failed": [], "unknown": []}
        for start in range(0, calls, BURST):
            for _, outcome, number in await batch(numbers(start, min(BURST, calls - start))):
                outcomes[outcome].append(number)
            await asyncio.sleep(spacing * rng.uniform(0.9, 1.1))
        report.update(calls=calls, **outcomes)

    return work, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=list(CLIENTS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=BURST)
    parser.add_argument("--bursts", type=float, default=None, help="spacing T of bursts")
    args = parser.parse_args()
    if args.bursts is None:
        work, report = steady(args.calls, args.concurrency)
    else:
        work, report = bursts(args.calls, args.bursts)
    asyncio.run(CLIENTS[args.client](args.url, args.concurrency, work))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
