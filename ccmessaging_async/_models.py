"""Request and result classes of createcall, the call records and the token service."""

from __future__ import annotations

import datetime
import enum
import re

import attrs

from ._errors import InvalidRequestError

__all__ = [
    "MAX_PAGE_SIZE",
    "AccessToken",
    "CallRecord",
    "CallRecordsPage",
    "CallRecordsQuery",
    "CallState",
    "CallTaskType",
    "CreateCallRequest",
    "CreateCallResult",
    "mask_number",
]

MAX_CALLED = 32
MAX_CALLER_PRESENT = 32
MAX_CALL_DATA = 1024


def mask_number(number: str) -> str:
    """Mask a phone number for logs: ``"88884432"`` becomes ``"8888****32"``.

    The mask always has four stars so that it does not reveal the number's length.
    """
    if len(number) <= 4:
        return "****"
    head = min(4, len(number) - 4)
    return f"{number[:head]}****{number[-2:]}"


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _check_str(name: str, value: object, limit: int, *, number: bool) -> None:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a str, not {type(value).__name__}", field=name)
    if len(value) > limit:
        raise InvalidRequestError(
            f"{name} is {len(value)} characters long; at most {limit} are allowed", field=name
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError(
                f"{name} is not valid Unicode text (lone surrogate)", field=name
            ) from None
    if number:
        if not value.strip():
            raise InvalidRequestError(f"{name} must not be empty", field=name)
        if _CONTROL.search(value):
            raise InvalidRequestError(f"{name} must not contain control characters", field=name)


def _validate_called(_inst: object, _attr: object, value: str) -> None:
    _check_str("called", value, MAX_CALLED, number=True)


def _validate_caller_present(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None:
        _check_str("caller_present", value, MAX_CALLER_PRESENT, number=True)


def _validate_call_data(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None:
        _check_str("call_data", value, MAX_CALL_DATA, number=False)


def _masked_repr(value: str | None) -> str:
    return "None" if value is None else repr(mask_number(value))


@attrs.frozen(slots=True)
class CreateCallRequest:
    """One anonymous call to create.

    ``called`` is the number to ring (1 to 32 characters, no control characters),
    ``call_data`` optional call data (at most 1024 characters), ``caller_present`` the
    number shown to the called party (at most 32 characters; the platform's default when
    omitted). Bad values raise :class:`InvalidRequestError` here, before anything is sent.
    The repr masks both numbers.
    """

    called: str = attrs.field(validator=_validate_called, repr=_masked_repr)
    call_data: str | None = attrs.field(
        default=None, validator=_validate_call_data, repr=lambda v: "None" if v is None else "..."
    )
    caller_present: str | None = attrs.field(
        default=None, validator=_validate_caller_present, repr=_masked_repr
    )


@attrs.frozen(slots=True)
class CreateCallResult:
    """A created call: what the platform answered with ``resultCode "0"``."""

    result_code: str
    result_desc: str | None = None
    call_serial_no: str | None = None
    sip_service_address: str | None = None
    access_code: str | None = None


@attrs.frozen(slots=True)
class AccessToken:
    """The token service's answer. The token value never appears in the repr."""

    access_token: str = attrs.field(repr=False)
    apply_type: str | None = None
    expires: float | None = None
    create_time: float | None = None
    scope: str | None = None
    app_key: str | None = None
    user_id: str | None = None


#: The most call records asked for in one page (the documented default).
MAX_PAGE_SIZE = 100


class CallTaskType(enum.IntEnum):
    """Which calls a query asks for (``taskType``)."""

    #: Every kind, except ITA two-way calls.
    ALL = 0
    CEC_TWO_WAY = 1
    #: Anonymous outbound call tasks: what createcall creates.
    ANONYMOUS_OUTBOUND = 2
    VOICE_NOTIFICATION = 3
    ITA_TWO_WAY = 4


class CallState(enum.IntEnum):
    """A record's ``state`` (compare :attr:`CallRecord.state` with these)."""

    TO_BE_CALLED = 0
    CALLING = 1
    TALKING = 2
    ENDED = 3


def _masked_number(value: str | None) -> str:
    return "None" if value is None else repr(mask_number(value))


@attrs.frozen
class CallRecord:
    """One call in the platform's records. Times are aware datetimes (UTC).

    ``state`` is a :class:`CallState` value and ``reason_code`` the vendor's reason (0
    callee hung up, 1 caller hung up, 2 caller leg failed, 3 callee leg failed, 4 caller
    did not answer, 5 callee did not answer, 6 start failed), as plain integers so that
    a value the platform adds later is kept, not refused.
    """

    call_serial_no: str
    called: str = attrs.field(repr=_masked_number)
    start_time: datetime.datetime
    caller: str | None = attrs.field(default=None, repr=_masked_number)
    caller_present: str | None = attrs.field(default=None, repr=_masked_number)
    agent_present: str | None = None
    alerting_time: datetime.datetime | None = None
    talking_time: datetime.datetime | None = None
    release_time: datetime.datetime | None = None
    end_time: datetime.datetime | None = None
    talk_duration: int | None = None
    state: int | None = None
    reason_code: int | None = None


@attrs.frozen
class CallRecordsQuery:
    """One page of one query, as sent: times in milliseconds since the epoch."""

    start_ms: int
    end_ms: int
    task_type: int = CallTaskType.ANONYMOUS_OUTBOUND
    offset: int = 0
    limit: int = MAX_PAGE_SIZE
    caller: str | None = attrs.field(default=None, repr=_masked_number)

    def encode(self) -> dict[str, str]:
        """Return the wire body: every value a string; ``caller`` only when given."""
        body = {
            "startTime": str(self.start_ms),
            "endTime": str(self.end_ms),
            "taskType": str(int(self.task_type)),
            "offset": str(self.offset),
            "limit": str(self.limit),
        }
        if self.caller is not None:
            body["caller"] = self.caller
        return body


@attrs.frozen
class CallRecordsPage:
    """One page of records, and how many the query matches in all."""

    total: int
    records: tuple[CallRecord, ...]
