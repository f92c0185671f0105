"""`ccmessaging-async` with the job file's fsyncs off: only to measure what they cost.

Never use this for real calls: a job run this way can lose its claims on a power cut.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccmessaging_async.cli import main
from ccmessaging_async.jobs._sqlite import SQLiteStore

_open = SQLiteStore.__init__


def _without_fsync(self: SQLiteStore, path: Path, *, synchronous: str = "OFF") -> None:
    _open(self, path, synchronous=synchronous)


SQLiteStore.__init__ = _without_fsync  # type: ignore[method-assign]
sys.exit(main())
