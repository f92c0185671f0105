"""Create one anonymous call: the smallest complete program.

Run it against the emulator (`pip install 'ccmessaging-async[cli]'`):

    ccmessaging-async emulator --port 8080 &      # prints the three variables below
    export CCMESSAGING_BASE_URL=http://127.0.0.1:8080
    export CCMESSAGING_APP_KEY=emulator-app-key CCMESSAGING_APP_SECRET=emulator-app-secret
    python examples/first_call.py 88884432
"""

from __future__ import annotations

import asyncio
import sys

from ccmessaging_async import AsyncSession, CreateCallRequest, NotCreatedError


async def main(called: str) -> int:
    async with AsyncSession.from_env() as session:
        try:
            result = await session.create_call(
                CreateCallRequest(called=called, caller_present="95599")
            )
        except NotCreatedError as exc:  # certainly not created: safe to try again
            print(f"not created: {exc}", file=sys.stderr)
            return 1
        # OutcomeUnknownError (the call may exist) is left to end the program loudly.
        print(f"created: serial {result.call_serial_no}, access code {result.access_code}")
        return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "88884432")))
