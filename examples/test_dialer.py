"""Testing code that creates calls, with the pytest plugin that comes with the package.

``ccmessaging_session`` is a session on an in-process emulator (no socket), and
``ccmessaging_emulator`` that emulator, to shape its answers and check what it saw.
Run it with ``pytest examples/test_dialer.py`` (pytest and anyio's plugin installed).
"""

from __future__ import annotations

import pytest

from ccmessaging_async import AsyncSession, CreateCallRequest, OutcomeStatus, ResultCodeError
from ccmessaging_async.testing import Emulator


async def remind(session: AsyncSession, numbers: list[str]) -> int:
    """Call each number once; return how many calls were created (the code under test)."""
    requests = (CreateCallRequest(called=n, caller_present="95599") for n in numbers)
    return sum([o.status is OutcomeStatus.SUCCEEDED async for o in session.create_calls(requests)])


@pytest.mark.anyio
async def test_each_number_is_called_once(
    ccmessaging_session: AsyncSession, ccmessaging_emulator: Emulator
) -> None:
    assert await remind(ccmessaging_session, ["88880001", "88880002"]) == 2
    assert ccmessaging_emulator.calls_for("88880001") == 1
    assert ccmessaging_emulator.duplicates() == {}


@pytest.mark.anyio
async def test_a_refused_call_is_reported(
    ccmessaging_session: AsyncSession, ccmessaging_emulator: Emulator
) -> None:
    ccmessaging_emulator.result_codes["88880003"] = "30010010002"  # VDN unavailable
    with pytest.raises(ResultCodeError) as refused:
        await ccmessaging_session.create_call(CreateCallRequest(called="88880003"))
    assert refused.value.code == "30010010002"
