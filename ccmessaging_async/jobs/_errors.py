"""The errors that refuse a job before anything is dialled, or end a run early."""

from __future__ import annotations

__all__ = ["JobRefusedError", "JobStoppedError"]


class JobRefusedError(Exception):
    """The job refuses to start: its input, store or lock say it would be unsafe.

    Raised before anything is dialled; the message says what to do.
    """


class JobStoppedError(Exception):
    """The job could not write its store or report (or lost its lease), and stopped dialling."""
