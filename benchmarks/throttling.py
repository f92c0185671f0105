"""How a batch meets a tenant the platform meters: goodput, 429s, failed rows.

The emulator (served by uvicorn on loopback, in this process) accepts at most C createcalls
per second (a token bucket, burst 10) and answers 429 with ``Retry-After: 1`` beyond it.
Three clients create the same calls at concurrency 100, one after another:

- ``adaptive``: ``create_calls`` with no ``rate`` (it finds the platform's pace);
- ``fixed rate=C``: ``create_calls(rate=C)``, the best a hand-tuned operator does;
- ``naive``: raw httpx workers that send each call again after every 429, as
  ``Retry-After`` says (what many hand-written clients do).

Figures from the emulator's side: goodput (calls created per second) and the share of
answers that were 429, both after the first 5 s; rows that did not end created; numbers
created twice.

    python benchmarks/throttling.py                 # C = 100 and 300, 3,000 calls each
    python benchmarks/throttling.py --smoke         # C = 100, 300 calls
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ccmessaging_async import AsyncSession, CreateCallRequest, OutcomeStatus
from ccmessaging_async._endpoints import CREATE_CALL
from ccmessaging_async._token_service import TOKEN_PATH
from ccmessaging_async.testing import Emulator, EmulatorServer

CONCURRENCY = 100
WARM_UP = 5.0


def _numbers(count: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(count)]


async def _sdk(url: str, emulator: Emulator, numbers: list[str], rate: float | None) -> int:
    """Run a batch; return the rows that did not end created."""
    async with AsyncSession(url, emulator.app_key, emulator.app_secret) as session:
        requests = (CreateCallRequest(called=n) for n in numbers)
        failed = 0
        async for outcome in session.create_calls(requests, concurrency=CONCURRENCY, rate=rate):
            failed += outcome.status is not OutcomeStatus.SUCCEEDED
        return failed


async def _naive(url: str, emulator: Emulator, numbers: list[str]) -> int:
    """Workers that send each call again after every 429, waiting its Retry-After."""
    pending = list(reversed(numbers))
    failed = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        token = (
            await client.post(
                TOKEN_PATH, json={"app_key": emulator.app_key, "app_secret": emulator.app_secret}
            )
        ).json()["AccessToken"]
        headers = {"X-APP-Key": emulator.app_key, "Authorization": f"Bearer {token}"}

        async def worker() -> None:
            nonlocal failed
            while pending:
                called = pending.pop()
                while True:
                    answer = await client.post(
                        CREATE_CALL.path, json={"called": called}, headers=headers
                    )
                    if answer.status_code != 429:
                        break
                    await anyio.sleep(float(answer.headers.get("retry-after", "1")))
                failed += answer.status_code != 200

        async with anyio.create_task_group() as workers:
            for _ in range(CONCURRENCY):
                workers.start_soon(worker)
    return failed


def _scenario(capacity: float, calls: int, mode: str) -> dict[str, Any]:
    emulator = Emulator()
    emulator.set_capacity(capacity, burst=10, retry_after=1.0)
    numbers = _numbers(calls, "1380")
    with EmulatorServer(emulator) as server:
        started = time.monotonic()  # the emulator's clock
        if mode == "naive":
            failed = anyio.run(_naive, server.url, emulator, numbers)
        else:
            rate = capacity if mode == "fixed" else None
            failed = anyio.run(_sdk, server.url, emulator, numbers, rate)
        ended = time.monotonic()
    since = started + WARM_UP
    created_after = sum(call.at >= since for call in emulator.calls)
    throttled_after = sum(at >= since for at in emulator.throttled_at)
    answered_after = created_after + throttled_after
    span = ended - since
    return {
        "capacity": capacity,
        "mode": mode,
        "seconds": ended - started,
        "goodput": created_after / span if span > 0 else 0.0,
        "throttled_share": throttled_after / answered_after if answered_after else 0.0,
        "requests": emulator.createcall_requests,
        "failed": failed,
        "twice": len(emulator.duplicates()),
        "created": len(emulator.calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="C = 100, 300 calls")
    parser.add_argument("--out", type=Path, help="append the table (Markdown) to this file")
    args = parser.parse_args()
    plan = [(100.0, 300)] if args.smoke else [(100.0, 3000), (300.0, 3000)]
    lines = [
        f"`python benchmarks/throttling.py`, {time.strftime('%Y-%m-%d')}, "
        f"{platform.machine()}, Python {platform.python_version()}; concurrency "
        f"{CONCURRENCY}, 429 with Retry-After: 1 beyond capacity (burst 10); goodput and "
        f"429 share after the first {WARM_UP:g} s.",
        "",
        "| capacity C | client | goodput | / C | 429 share | requests | not created | twice "
        "| time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for capacity, calls in plan:
        for mode in ("adaptive", "fixed", "naive"):
            got = _scenario(capacity, calls, mode)
            label = {"adaptive": "adaptive (no rate)", "fixed": f"rate={capacity:g}"}.get(
                mode, "naive re-send"
            )
            lines.append(
                f"| {capacity:g}/s | {label} | {got['goodput']:.1f}/s | "
                f"{got['goodput'] / capacity:.2f} | {got['throttled_share']:.1%} | "
                f"{got['requests']:,} | {got['failed']} | {got['twice']} | {got['seconds']:.1f} s |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
