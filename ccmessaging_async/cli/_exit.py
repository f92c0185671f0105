"""How a command ends: its exit codes, and the errors that end a batch job early."""

from __future__ import annotations

import enum
import signal

__all__ = ["ExitCode", "JobRefusedError", "JobStoppedError"]


class ExitCode(enum.IntEnum):
    """Exit codes of ``call`` and ``batch``; a wrapper script can act on each one."""

    #: Every call was created.
    OK = 0
    #: Some calls were certainly not created (and none may have been): safe to retry those.
    NOT_CREATED = 1
    #: Usage or configuration error, or the job refused to start; nothing was dialled.
    USAGE = 2
    #: Some calls may have been created (outcome unknown): never retry those blindly.
    UNKNOWN = 3
    #: The job stopped because it could not record (disk full, read-only, size limit);
    #: nothing was dialled unrecorded. Fix the cause and re-run the same command.
    STORAGE = 4
    #: Interrupted by Ctrl-C (SIGINT); re-run the same command to resume.
    INTERRUPTED = 128 + signal.SIGINT
    #: Stopped by SIGTERM; re-run the same command to resume.
    TERMINATED = 128 + signal.SIGTERM


class JobRefusedError(Exception):
    """The job refuses to start: its input, files or lock say it would be unsafe.

    Raised before anything is dialled; the message says what to do.
    """


class JobStoppedError(Exception):
    """The job could not write its job file or report, and stopped dialling."""
