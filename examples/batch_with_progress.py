"""Create many calls with bounded concurrency and a pace, printing progress as they end.

``create_calls`` takes any iterable (here a generator: nothing is held in memory) and
yields exactly one outcome per input. Throttling by the platform slows the batch down;
it fails no call. For a job that survives crashes and resumes, use ``ccmessaging-async
batch`` or ``ccmessaging_async.jobs`` instead. Run it against the emulator as
``first_call.py`` says: ``python examples/batch_with_progress.py 500``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import Iterator

from ccmessaging_async import AsyncSession, CreateCallRequest, OutcomeStatus


def requests(count: int) -> Iterator[CreateCallRequest]:
    for i in range(count):
        yield CreateCallRequest(called=f"1390{i:07d}", caller_present="95599")


async def main(count: int) -> Counter[OutcomeStatus]:
    tally: Counter[OutcomeStatus] = Counter()
    async with AsyncSession.from_env() as session:
        outcomes = session.create_calls(requests(count), concurrency=20, rate=200.0)
        async with contextlib.aclosing(outcomes) as ending:
            async for outcome in ending:
                tally[outcome.status] += 1
                done = sum(tally.values())
                if done % 100 == 0 or done == count:
                    print(
                        f"{done}/{count}: {tally[OutcomeStatus.SUCCEEDED]} created, "
                        f"{tally[OutcomeStatus.FAILED]} not created, "
                        f"{tally[OutcomeStatus.UNKNOWN]} unknown",
                        flush=True,
                    )
    return tally


if __name__ == "__main__":
    ended = asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
    sys.exit(0 if ended[OutcomeStatus.SUCCEEDED] == sum(ended.values()) else 1)
