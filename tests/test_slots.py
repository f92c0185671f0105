"""Slots: the in-flight bound every createcall passes through."""

from __future__ import annotations

import anyio
import pytest

from ccmessaging_async import SessionStateError
from ccmessaging_async._slots import Slots

pytestmark = pytest.mark.anyio


async def test_free_slots_are_taken_without_waiting() -> None:
    """While slots are free, acquire returns at once and counts them down."""
    slots = Slots(2)
    with anyio.fail_after(1):
        await slots.acquire()
        await slots.acquire()
    assert (slots.free, slots.waiting) == (0, 0)
    slots.release()
    slots.release()
    assert slots.free == 2


async def test_waiters_are_served_first_come_first_served() -> None:
    """A released slot goes to the longest waiter, in order."""
    slots = Slots(1)
    await slots.acquire()
    served: list[int] = []

    async def waiter(number: int) -> None:
        await slots.acquire()
        served.append(number)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for number in range(3):
                tg.start_soon(waiter, number)
                await anyio.wait_all_tasks_blocked()
            assert slots.waiting == 3
            for _ in range(3):
                slots.release()
                await anyio.wait_all_tasks_blocked()
    assert served == [0, 1, 2]
    assert slots.free == 0  # each waiter still holds the slot it got


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    """Cancelling a waiter removes it; the next release goes to the one behind it."""
    slots = Slots(1)
    await slots.acquire()
    got: list[str] = []

    async def waiter(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await slots.acquire()
            got.append(name)

    first, second = anyio.CancelScope(), anyio.CancelScope()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, "first", first)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(waiter, "second", second)
            await anyio.wait_all_tasks_blocked()
            first.cancel()
            await anyio.wait_all_tasks_blocked()
            assert slots.waiting == 1
            slots.release()
    assert got == ["second"]


async def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_is_not_lost() -> None:
    """A slot granted to a waiter that is cancelled before it runs passes to the next one."""
    slots = Slots(1)
    await slots.acquire()
    got: list[str] = []

    async def waiter(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await slots.acquire()
            got.append(name)
            slots.release()

    first = anyio.CancelScope()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, "first", first)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(waiter, "second", anyio.CancelScope())
            await anyio.wait_all_tasks_blocked()
            slots.release()  # granted to "first"...
            first.cancel()  # ...which is cancelled before it could run
    assert "second" in got
    assert (slots.free, slots.waiting) == (1, 0)  # every slot is back


async def test_close_wakes_every_waiter_and_refuses_later_acquires() -> None:
    """After close, waiters and new callers get SessionStateError instead of a slot."""
    slots = Slots(1)
    await slots.acquire()
    refused: list[str] = []

    async def waiter() -> None:
        try:
            await slots.acquire()
        except SessionStateError:
            refused.append("woken")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            slots.close()
    assert refused == ["woken"] * 3
    with pytest.raises(SessionStateError):
        await slots.acquire()
