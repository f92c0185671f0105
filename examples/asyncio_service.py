"""A long-running asyncio service: one session for its whole life, calls from a queue.

Work arrives on an ``asyncio.Queue`` (from a message broker, a database poller, ...);
a few workers create the calls through the one shared session, and each outcome is
handled by what it means: created, certainly not created (may be retried), or unknown
(may exist: never retried blindly). Run it against the emulator as ``first_call.py``
says; it creates the numbers given on the command line and stops.
"""

from __future__ import annotations

import asyncio
import sys

from ccmessaging_async import (
    AsyncSession,
    CreateCallRequest,
    NotCreatedError,
    OutcomeUnknownError,
)

WORKERS = 4


async def worker(
    session: AsyncSession, queue: asyncio.Queue[str], outcomes: dict[str, str]
) -> None:
    while True:
        called = await queue.get()
        try:
            result = await session.create_call(
                CreateCallRequest(called=called, caller_present="95599"), timeout=10.0
            )
            outcomes[called] = f"created {result.call_serial_no}"
        except NotCreatedError as exc:
            outcomes[called] = f"not created ({type(exc).__name__}): may be retried"
        except OutcomeUnknownError as exc:
            outcomes[called] = f"unknown ({type(exc).__name__}): check before calling again"
        finally:
            queue.task_done()


async def main(numbers: list[str]) -> dict[str, str]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    outcomes: dict[str, str] = {}
    async with AsyncSession.from_env() as session:
        workers = [asyncio.create_task(worker(session, queue, outcomes)) for _ in range(WORKERS)]
        for number in numbers:
            queue.put_nowait(number)
        await queue.join()  # a real service would run until told to stop
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return outcomes


if __name__ == "__main__":
    for number, outcome in sorted(asyncio.run(main(sys.argv[1:] or ["88884432"])).items()):
        print(number, outcome)
