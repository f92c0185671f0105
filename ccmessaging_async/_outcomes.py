"""What a batch yields: one :class:`CallOutcome` per input, with its :class:`OutcomeStatus`."""

from __future__ import annotations

import enum

import attrs

from ._errors import CCMessagingError, NotCreatedError, OutcomeUnknownError
from ._models import CreateCallRequest, CreateCallResult

__all__ = ["CallOutcome", "OutcomeStatus", "status_of"]


class OutcomeStatus(enum.Enum):
    """What is known about one call of a batch."""

    #: The platform created the call.
    SUCCEEDED = "succeeded"
    #: The call was certainly not created.
    FAILED = "failed"
    #: The call may have been created: do not re-send it blindly.
    UNKNOWN = "unknown"


@attrs.frozen(slots=True)
class CallOutcome:
    """The one outcome of one input of :meth:`AsyncSession.create_calls`."""

    #: Position of the input in the iterable (from 0).
    index: int
    #: The input as given (normally a :class:`CreateCallRequest`).
    request: CreateCallRequest
    status: OutcomeStatus
    result: CreateCallResult | None = None
    error: CCMessagingError | None = None
    #: How many times the request was sent (0: never sent).
    attempts: int = 0
    #: Seconds from the first attempt to the outcome, waits included.
    latency: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the call was created."""
        return self.status is OutcomeStatus.SUCCEEDED


def status_of(error: NotCreatedError | OutcomeUnknownError) -> OutcomeStatus:
    """Return the batch status an error means: one ``isinstance``."""
    if isinstance(error, NotCreatedError):
        return OutcomeStatus.FAILED
    return OutcomeStatus.UNKNOWN
