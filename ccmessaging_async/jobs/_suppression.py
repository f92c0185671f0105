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

import array
import bisect
import hashlib
import logging
import os
from pathlib import Path

import anyio

from ._errors import JobStoppedError
from ._numbers import NumberPlan, NumberReader

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
        #: The file.
        self.path: Path = Path(path)
        self._reader = NumberReader(NumberPlan(default_region))
        self._numbers = _Fingerprints()
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime) when read
        self._complete = 0  # bytes read up to the last newline
        self._digest = hashlib.blake2b()  # of those bytes: an append keeps them
        self._lock = anyio.Lock()
        #: Lines that are not numbers (they suppress nothing), at the last reading.
        self.ignored: int = 0
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
        # An append adds to the numbers in use; a rewrite builds anew, swapped in whole.
        numbers = self._numbers if kept else _Fingerprints()
        if not kept:
            self._digest, self.ignored = hashlib.blake2b(), 0
        os.lseek(fd, kept, os.SEEK_SET)
        complete = kept
        with os.fdopen(os.dup(fd), "rb") as handle:
            for raw in handle:
                if raw.endswith(b"\n"):  # a last line without one is read again later
                    self._digest.update(raw)
                    complete += len(raw)
                self._add(numbers, raw.decode("utf-8", "replace").strip())
        self._complete = complete
        numbers.settle()
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

    def _add(self, numbers: _Fingerprints, line: str) -> None:
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


class _Fingerprints:
    """A set of numbers kept as 64-bit fingerprints: 8 bytes a number, once settled.

    Two numbers sharing a fingerprint (about one chance in 10^13 with a million numbers)
    could only keep a second person from being called, never call one on the list.
    """

    def __init__(self) -> None:
        self._settled = array.array("Q")  # sorted
        self._added: set[int] = set()

    def __len__(self) -> int:
        return len(self._settled) + len(self._added)

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, str):
            return False
        print_ = _fingerprint(number)
        if print_ in self._added:
            return True
        at = bisect.bisect_left(self._settled, print_)
        return at < len(self._settled) and self._settled[at] == print_

    def add(self, number: str) -> None:
        """Add ``number`` (visible at once)."""
        self._added.add(_fingerprint(number))

    def settle(self) -> None:
        """Fold many additions into the sorted array (after a reading)."""
        if len(self._added) < _SETTLE_AT:
            return
        merged = array.array("Q", sorted({*self._settled, *self._added}))
        self._settled, self._added = merged, set()


#: Additions kept in a set before they are folded into the sorted array.
_SETTLE_AT = 4096


def _fingerprint(number: str) -> int:
    return int.from_bytes(hashlib.blake2b(number.encode(), digest_size=8).digest(), "big")
