"""SDK-added CPU per call on the in-process path (no sockets, no server).

Every client talks to the same ``httpx.MockTransport`` that answers instantly with the
documented JSON, so what differs between them is only the client-side work: raw httpx
(a ``client.post`` plus ``json.loads``), ``session.create_call`` (validation, conversion,
token, auth headers, bounded read, decode) and ``session.create_calls`` (plus the batch
engine's task, slot and outcome). Rounds alternate the clients so drift cancels; the
medians of CPU time (``time.process_time``) per call are reported.

    python benchmarks/overhead.py [--calls 20000] [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx
from servers import CALL_JSON, TOKEN_JSON

from ccmessaging_async import AsyncSession, CreateCallRequest

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


def _session() -> AsyncSession:
    return AsyncSession("http://127.0.0.1", "key", "secret", transport=httpx.MockTransport(handler))


async def sdk_create_call(calls: int) -> float:
    async with _session() as session:
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
    "sdk create_call": sdk_create_call,
    "sdk create_calls": sdk_create_calls,
}


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
        print(f"{name:18s} {value:8.1f} µs/call  (+{value - raw:6.1f} over raw httpx)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"calls": args.calls, "rounds": args.rounds, "medians": medians}, handle)


if __name__ == "__main__":
    main()
