"""Group commit: many claims and outcomes in one durable transaction, off the event loop.

A call claims its row at the last moment before sending and waits until that claim is on
disk. Claims and outcomes that arrive while a commit is running go together into the next
one, so the number of fsyncs per second stays bounded however many calls are in flight,
and no claim waits for more than one commit beyond its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import anyio

from ._errors import JobStoppedError
from ._records import Deferral, Final, Recorded, RunProgress
from ._store import JobStore

__all__ = ["ClaimRefusedError", "GroupCommitter"]


class ClaimRefusedError(Exception):
    """The store refused a claim: this run no longer holds the row's lease. Not dialled."""


class GroupCommitter:
    """Commits claims and outcomes to a :class:`JobStore` in groups, in a worker thread.

    ``on_commit`` runs on the event loop after each commit with the outcomes it recorded
    (the report and the counters follow the job file, never run ahead of it). With
    ``progress``, each commit also notes how the run is paced, when that changed. Once a commit
    or ``on_commit`` fails, :attr:`failure` is set, every claim raises
    :class:`JobStoppedError`, and nothing more is committed.
    """

    def __init__(
        self,
        store: JobStore,
        on_commit: Callable[[list[Recorded]], None],
        storage_errors: tuple[type[Exception], ...] = (sqlite3.Error, OSError),
        progress: Callable[[], RunProgress] | None = None,
    ) -> None:
        self._store = store
        self._progress = progress
        self._noted: RunProgress | None = None
        self._storage_errors = storage_errors
        self._refused: frozenset[int] = frozenset()
        self._on_commit = on_commit
        self._claims: list[int] = []
        self._releases: list[int] = []
        self._finals: list[Final] = []
        self._deferrals: list[Deferral] = []
        self._wake = anyio.Event()
        self._committed = anyio.Event()  # set once the group being gathered is committed
        self._closing = False
        self._done = anyio.Event()
        #: Why the job file or the report could not be written, once that happened.
        self.failure: str | None = None
        #: Commits made (for the benchmark's group-size figure).
        self.commits = 0

    def _check(self) -> None:
        if self.failure is not None:
            raise JobStoppedError(self.failure)

    async def claim(self, row: int) -> None:
        """Mark ``row`` as being sent; return once that is durable.

        Raises :class:`ClaimRefusedError` if the store refused it (a lost lease).
        """
        self._check()
        self._claims.append(row)
        committed = self._committed
        self._wake.set()
        await committed.wait()
        self._check()
        if row in self._refused:
            raise ClaimRefusedError(row)

    async def sync(self) -> None:
        """Return once everything queued so far is committed (call it after queueing)."""
        if self.failure is not None:
            return  # nothing more is committed; the run is stopping
        committed = self._committed
        self._wake.set()
        await committed.wait()

    def release(self, row: int) -> None:
        """Queue ``row`` to go back to ``pending``: its call was provably never created."""
        self._check()
        self._releases.append(row)
        self._wake.set()

    def defer(self, deferral: Deferral) -> None:
        """Queue a row to go back to ``pending`` until its calling hours."""
        self._check()
        self._deferrals.append(deferral)
        self._wake.set()

    def finish(self, final: Final) -> None:
        """Queue the outcome of a row for the next commit."""
        self._check()
        self._finals.append(final)
        self._wake.set()

    async def run(self) -> None:
        """Commit whatever was queued, group after group, until :meth:`close`."""
        try:
            while True:
                if not (self._claims or self._finals or self._releases or self._deferrals):
                    if self._closing:
                        return
                    await self._wake.wait()
                    self._wake = anyio.Event()
                elif not await self._commit_group():
                    return
        finally:
            self._done.set()

    async def _commit_group(self) -> bool:
        claims, self._claims = self._claims, []
        releases, self._releases = self._releases, []
        finals, self._finals = self._finals, []
        deferrals, self._deferrals = self._deferrals, []
        committed, self._committed = self._committed, anyio.Event()
        progress = None if self._progress is None else self._progress()
        if progress == self._noted:
            progress = None  # written already
        try:
            # Not cancellable: a commit that started is finished and its claims released.
            done = await anyio.to_thread.run_sync(
                self._store.commit, claims, finals, releases, deferrals, progress
            )
        except self._storage_errors as exc:
            return self._fail(exc, committed)
        self._noted = progress or self._noted
        self._refused |= done.refused  # kept: a claim may read it after later commits
        committed.set()
        self.commits += 1
        try:
            self._on_commit(done.recorded)
        except OSError as exc:
            return self._fail(exc, committed)
        return True

    def _fail(self, exc: Exception, committed: anyio.Event) -> bool:
        self.failure = f"{type(exc).__name__}: {exc}"
        committed.set()
        self._committed.set()  # claims that arrived meanwhile wake up, and fail
        return False

    async def close(self) -> None:
        """Commit what is still queued and stop :meth:`run`."""
        self._closing = True
        self._wake.set()
        with anyio.CancelScope(shield=True):
            await self._done.wait()
