"""One benchmark client run, in its own process: N createcall POSTs at concurrency C.

Prints one JSON line: calls, errors, wall seconds and client CPU seconds (user+sys of
this process, from getrusage) for the measured part, after a warm-up that fetches the
token and opens the connections. ``run.py`` starts it pinned to one core.

    python benchmarks/clients.py CLIENT --url URL --calls N --concurrency C
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx

from ccmessaging_async import AsyncSession, CreateCallRequest

TOKEN_PATH = "/apigovernance/api/oauth/tokenByAkSk"  # noqa: S105 - a path
CALL_PATH = "/apiaccess/ccmessaging/v1/mobileagent/createcall"
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=4.0)
APP_KEY, APP_SECRET = "bench-app-key", "bench-app-secret"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _body(i: int) -> bytes:
    return json.dumps({"called": f"1380{i:07d}", "callerPresent": "95599"}).encode()


async def _timed(run: Callable[[int], Awaitable[int]], warmup: int, calls: int) -> dict[str, float]:
    await run(warmup)
    cpu, wall = _cpu(), time.perf_counter()
    errors = await run(calls)
    return {
        "calls": calls,
        "errors": errors,
        "cpu": _cpu() - cpu,
        "wall": time.perf_counter() - wall,
    }


async def raw_httpx(url: str, calls: int, concurrency: int, warmup: int) -> dict[str, float]:
    async with httpx.AsyncClient(limits=LIMITS, timeout=30.0) as client:
        token = (
            await client.post(
                url + TOKEN_PATH,
                json={"app_key": APP_KEY, "app_secret": APP_SECRET},
                headers={"X-Token-Expire": "3600"},
            )
        ).json()["AccessToken"]
        headers = {
            "X-APP-Key": APP_KEY,
            "Authorization": "Bearer " + token,
            "Content-Type": "application/json",
        }
        limiter = anyio.CapacityLimiter(concurrency)
        errors = 0

        async def one(i: int) -> None:
            nonlocal errors
            async with limiter:
                response = await client.post(url + CALL_PATH, content=_body(i), headers=headers)
                if response.json()["resultCode"] != "0":
                    errors += 1

        async def run(n: int) -> int:
            nonlocal errors
            errors = 0
            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(one, i)
            return errors

        return await _timed(run, warmup, calls)


async def raw_aiohttp(url: str, calls: int, concurrency: int, warmup: int) -> dict[str, float]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=4.0)
    async with aiohttp.ClientSession(connector=connector) as client:
        async with client.post(
            url + TOKEN_PATH,
            json={"app_key": APP_KEY, "app_secret": APP_SECRET},
            headers={"X-Token-Expire": "3600"},
        ) as answer:
            token = (await answer.json(content_type=None))["AccessToken"]
        headers = {
            "X-APP-Key": APP_KEY,
            "Authorization": "Bearer " + token,
            "Content-Type": "application/json",
        }
        semaphore = asyncio.Semaphore(concurrency)
        errors = 0

        async def one(i: int) -> None:
            nonlocal errors
            async with semaphore, client.post(url + CALL_PATH, data=_body(i), headers=headers) as r:
                if json.loads(await r.read())["resultCode"] != "0":
                    errors += 1

        async def run(n: int) -> int:
            nonlocal errors
            errors = 0
            await asyncio.gather(*(one(i) for i in range(n)))
            return errors

        return await _timed(run, warmup, calls)


async def _sdk(
    url: str, calls: int, concurrency: int, warmup: int, transport: httpx.AsyncBaseTransport | None
) -> dict[str, float]:
    async with AsyncSession(
        url, APP_KEY, APP_SECRET, limits=LIMITS, timeout=30.0, transport=transport
    ) as session:

        async def run(n: int) -> int:
            requests = (
                CreateCallRequest(called=f"1380{i:07d}", caller_present="95599") for i in range(n)
            )
            errors = 0
            async for outcome in session.create_calls(requests, concurrency=concurrency):
                errors += not outcome.ok
            return errors

        return await _timed(run, warmup, calls)


async def sdk(url: str, calls: int, concurrency: int, warmup: int) -> dict[str, float]:
    return await _sdk(url, calls, concurrency, warmup, None)


async def sdk_aiohttp(url: str, calls: int, concurrency: int, warmup: int) -> dict[str, float]:
    from ccmessaging_async import aiohttp_transport

    return await _sdk(url, calls, concurrency, warmup, aiohttp_transport(limits=LIMITS))


CLIENTS = {
    "raw httpx": raw_httpx,
    "sdk": sdk,
    "raw aiohttp": raw_aiohttp,
    "sdk + aiohttp transport": sdk_aiohttp,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=list(CLIENTS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    run = CLIENTS[args.client]
    result = asyncio.run(run(args.url, args.calls, args.concurrency, args.warmup))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
