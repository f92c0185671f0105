"""How a command ends: its exit codes, each with what a wrapper script may do about it."""

from __future__ import annotations

import enum
import signal

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """Exit codes of ``call`` and ``batch``; a wrapper script can act on each one."""

    OK = 0
    NOT_CREATED = 1
    USAGE = 2
    UNKNOWN = 3
    STORAGE = 4
    THROTTLED = 5
    INTERRUPTED = 128 + signal.SIGINT
    TERMINATED = 128 + signal.SIGTERM

    @property
    def meaning(self) -> str:
        """What the code says, and what a wrapper may do about it."""
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "every call was created",
    ExitCode.NOT_CREATED: "some calls were certainly not created, none may exist: safe to retry",
    ExitCode.USAGE: "usage or configuration error, or the job refused to start: nothing dialled",
    ExitCode.UNKNOWN: "some calls may have been created (outcome unknown): never retry blindly",
    ExitCode.STORAGE: "the job could not record (disk full, read-only, size limit) and stopped",
    ExitCode.THROTTLED: "the platform throttled every call for --max-throttle-wait: resume later",
    ExitCode.INTERRUPTED: "interrupted by Ctrl-C: re-run the same command to resume",
    ExitCode.TERMINATED: "stopped by SIGTERM: re-run the same command to resume",
}
