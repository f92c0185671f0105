"""A do-not-call list in a file, read again whenever the file changes.

One number per line, in any spelling the job's number plan reads (blank lines and lines
starting with ``#`` are ignored). Each number is kept as its key (see ``_numbers``), so
``13800000001`` in the file stops ``+86 138 0000 0001`` in the job when both are read with
the region ``CN``.

The file is looked at (``stat``) before every answer. When it has grown with its earlier
lines unchanged (numbers appended: the usual way opt-outs arrive), only the new lines are
read; otherwise it is read again whole. Answers wait for the reading, so a number is never
dialled once its line is in the file. A last line without its newline counts already.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import anyio

from ._errors import JobStoppedError
from ._numbers import NumberPlan, _Reader

__all__ = ["SuppressionList"]

_log = logging.getLogger("ccmessaging_async.jobs")


class SuppressionList:
    """A do-not-call list kept in a file; ``await suppressed(number)`` says if it is on it.

    ``default_region`` reads numbers without a country code, as the job does (give the
    job's). Pass one as ``Job.run(is_suppressed=...)``; ``--suppress FILE`` on the command
    line is the same. If the file cannot be read, it raises :class:`JobStoppedError`: a job
    dials nothing it cannot check.
    """

    def __init__(self, path: str | os.PathLike[str], *, default_region: str | None = None) -> None:
        self.path = Path(path)
        self._reader = _Reader(NumberPlan(default_region))
        self._numbers: set[str] = set()
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime) when read
        self._complete = 0  # bytes read up to the last newline
        self._digest = hashlib.blake2b()  # of those bytes: an append keeps them
        self._lock = anyio.Lock()
        #: Lines that are not numbers (they suppress nothing), at the last reading.
        self.ignored = 0
        self.load()

    def __len__(self) -> int:
        return len(self._numbers)

    def _stat(self) -> tuple[int, int, int]:
        try:
            found = os.stat(self.path)
        except OSError as exc:
            raise JobStoppedError(
                f"the suppression list {self.path} cannot be read ({exc.strerror}); nothing "
                "more is dialled without it"
            ) from None
        return found.st_ino, found.st_size, found.st_mtime_ns

    def load(self) -> None:
        """Read what changed in the file since the last reading (blocking)."""
        seen = self._stat()
        if seen == self._seen:
            return
        try:
            with self.path.open("rb") as handle:
                seen = self._read(handle.fileno(), seen)
        except OSError as exc:
            raise JobStoppedError(
                f"the suppression list {self.path} cannot be read ({exc}); nothing more is "
                "dialled without it"
            ) from None
        self._seen = seen
        _log.debug("suppression list %s: %d numbers", self.path, len(self._numbers))

    def _read(self, fd: int, seen: tuple[int, int, int]) -> tuple[int, int, int]:
        found = os.fstat(fd)
        seen = found.st_ino, found.st_size, found.st_mtime_ns
        kept = self._complete if self._appended_to(fd, seen) else 0
        # An append adds to the set in use; a rewrite builds a new one, swapped in whole.
        numbers = self._numbers if kept else set()
        if not kept:
            self._digest, self.ignored = hashlib.blake2b(), 0
        os.lseek(fd, kept, os.SEEK_SET)
        with os.fdopen(os.dup(fd), "rb") as handle:
            tail = handle.read()
        end = tail.rfind(b"\n") + 1
        self._digest.update(tail[:end])
        self._complete = kept + end
        for line in tail.decode("utf-8", "replace").splitlines():
            self._add(numbers, line.strip())
        self._numbers = numbers
        return seen

    def _appended_to(self, fd: int, seen: tuple[int, int, int]) -> bool:
        """Whether the file is the one read last, grown, its complete lines unchanged."""
        if self._seen is None or seen[0] != self._seen[0] or seen[1] < self._complete:
            return False
        os.lseek(fd, 0, os.SEEK_SET)
        digest, left = hashlib.blake2b(), self._complete
        while left:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                return False
            digest.update(chunk)
            left -= len(chunk)
        return digest.digest() == self._digest.digest()

    def _add(self, numbers: set[str], line: str) -> None:
        if not line or line.startswith("#"):
            return
        read = self._reader.read(line)
        if isinstance(read, str):
            self.ignored += 1
        else:
            numbers.add(read[0])

    async def __call__(self, number: str) -> bool:
        """Return whether ``number`` (a job row's key) is on the list as the file is now."""
        if self._stat() != self._seen:
            async with self._lock:
                await anyio.to_thread.run_sync(self.load)
        return number in self._numbers
