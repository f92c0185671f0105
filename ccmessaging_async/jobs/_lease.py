"""A shared job's lease, kept by its worker: renewed, or given up before it can lapse."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from ._gate import DialGate
from ._store import JobStore

__all__ = ["LEASE_TAKEN", "LeaseKeeper"]

#: Why a worker stopped when the store had given its rows to others.
LEASE_TAKEN = (
    "this worker's lease was taken back (it was not renewed in time): its rows went to "
    "other workers; stopped dialling"
)


class LeaseKeeper:
    """Renews a shared store's lease; stops the run's dialling once it may have lapsed.

    A worker that could not renew for half its lease stops dialling by itself, well before
    the store gives its rows to others (the store's clock decides that, not this one).
    """

    def __init__(
        self, store: JobStore, lease: float, gate: DialGate, on_lost: Callable[[str], None]
    ) -> None:
        self._store, self._lease, self._gate = store, lease, gate
        self._lose = on_lost  # says why, and stops the gate

    async def run(self) -> None:
        """Renew every sixth of the lease until the gate stops (or the lease is lost)."""
        interval = self._lease / 6
        renewed = anyio.current_time()
        while not self._gate.stopped:
            deadline = renewed + self._lease / 2
            held: bool | None = None
            error = "no answer"
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                try:
                    held = await anyio.to_thread.run_sync(
                        self._store.keep_alive, abandon_on_cancel=True
                    )
                except Exception as exc:  # noqa: BLE001 - any failure to renew is a missed renewal
                    error = f"{type(exc).__name__}: {exc}"
            if held is False:
                self._lose(LEASE_TAKEN)
                return
            if held:
                renewed = anyio.current_time()
                await self._gate.idle(interval)
            elif anyio.current_time() >= deadline:
                self._lose(
                    f"could not renew this worker's lease for {self._lease / 2:g}s ({error}); "
                    "stopped dialling"
                )
                return
            else:
                await self._gate.idle(min(interval, 1.0))
