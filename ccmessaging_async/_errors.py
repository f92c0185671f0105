"""The exception hierarchy and the documented result codes.

Every exception the SDK raises derives from :class:`CCMessagingError`::

    CCMessagingError
    ├── ConfigurationError (ValueError)     bad session settings or environment
    ├── SessionStateError (RuntimeError)    session used before ``async with`` or after close
    ├── InvalidRequestError (ValueError)    bad input; nothing was sent
    ├── AuthenticationError                 no usable token; the call was not created
    ├── NotSentError                        transport failure before the request was written
    ├── ResultCodeError                     the platform answered resultCode != "0"
    ├── HTTPStatusError                     a non-2xx answer (4xx: the call was not created)
    │   └── ServerError (also OutcomeUnknownError)   5xx, or any non-200 non-4xx
    └── OutcomeUnknownError                 the request may have reached the platform
        ├── ResponseDecodeError             200 whose body is not the documented JSON
        └── ServerError

Catch :class:`OutcomeUnknownError` to find calls that may have rung someone and must not
be re-sent blindly. No message or repr ever contains the app secret or a token.
"""

from __future__ import annotations

import enum

__all__ = [
    "AuthenticationError",
    "CCMessagingError",
    "ConfigurationError",
    "HTTPStatusError",
    "InvalidRequestError",
    "NotSentError",
    "OutcomeUnknownError",
    "ResponseDecodeError",
    "ResultCode",
    "ResultCodeError",
    "ServerError",
    "SessionStateError",
]

#: How much of an error body is kept on an exception.
MAX_ERROR_BODY = 1024


class ResultCode(enum.Enum):
    """The documented non-zero ``resultCode`` values of ``createcall``."""

    FEATURE_NOT_ENABLED = "30010000001"
    NO_SIP_SERVER = "30010000002"
    INVALID_PARAMETER = "30010000003"
    OUTBOUND_TASK_FAILED = "30010010001"
    VDN_UNAVAILABLE = "30010010002"
    VDN_MISCONFIGURED = "30010010003"
    CCM_ERROR = "30010019999"
    CALL_SETUP_EVENT_MISSING = "30011010001"
    CCUCS_ERROR = "30011019999"
    CHAT_MODULE_ERROR = "30010009999"

    @property
    def meaning(self) -> str:
        """The documented meaning of the code."""
        return _MEANINGS[self]


_MEANINGS = {
    ResultCode.FEATURE_NOT_ENABLED: "the feature is not enabled",
    ResultCode.NO_SIP_SERVER: "no SIP server information found",
    ResultCode.INVALID_PARAMETER: "input parameter verification failed",
    ResultCode.OUTBOUND_TASK_FAILED: "failed to add the outbound call task",
    ResultCode.VDN_UNAVAILABLE: "the VDN is unavailable",
    ResultCode.VDN_MISCONFIGURED: "VDN configuration abnormal, recording path not generated",
    ResultCode.CCM_ERROR: "other CCM exception",
    ResultCode.CALL_SETUP_EVENT_MISSING: (
        "call creation failed: call-setup-success event not received"
    ),
    ResultCode.CCUCS_ERROR: "other CCUCS exception",
    ResultCode.CHAT_MODULE_ERROR: "the chat module is abnormal",
}
_BY_VALUE = {member.value: member for member in ResultCode}


class CCMessagingError(Exception):
    """Root of every exception raised by ccmessaging_async."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigurationError(CCMessagingError, ValueError):
    """The session's settings or environment are unusable (raised before anything runs)."""


class SessionStateError(CCMessagingError, RuntimeError):
    """The session is used before ``async with`` opened it, or after it was closed."""


class InvalidRequestError(CCMessagingError, ValueError):
    """A request field breaks the documented rules; nothing was sent."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        #: The snake_case name of the offending field, when one field is at fault.
        self.field = field


class AuthenticationError(CCMessagingError):
    """No usable access token: wrong credentials, token service failing, or token refused.

    The createcall request was not acted on by the platform.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        #: HTTP status of the answer that caused it, if there was one.
        self.status_code = status_code


class NotSentError(CCMessagingError):
    """The request was never written: connection refused, connect timeout, pool exhausted."""


class OutcomeUnknownError(CCMessagingError):
    """The request may have reached the platform; the call may or may not exist.

    The SDK never re-sends such a request by itself (a second send can ring a person twice).
    """


class ResponseDecodeError(OutcomeUnknownError):
    """The platform answered 200 but the body is not the documented JSON."""


class HTTPStatusError(CCMessagingError):
    """The server answered with a non-2xx status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        #: The HTTP status code.
        self.status_code = status_code
        #: At most :data:`MAX_ERROR_BODY` characters of the response body.
        self.body = body[:MAX_ERROR_BODY]
        #: The parsed ``Retry-After`` header in seconds, if the server sent one.
        self.retry_after = retry_after


class ServerError(HTTPStatusError, OutcomeUnknownError):
    """A 5xx answer (or any other than 200 and 4xx): the platform may have acted."""


class ResultCodeError(CCMessagingError):
    """The platform answered HTTP 200 with a non-zero ``resultCode``: the call was not created."""

    def __init__(self, code: str, description: str | None) -> None:
        self.code = code
        self.description = description
        #: The enum member for a documented code, ``None`` for an unknown one.
        self.result_code = _BY_VALUE.get(code)
        meaning = f" ({self.result_code.meaning})" if self.result_code else ""
        super().__init__(f"createcall failed with resultCode {code}{meaning}: {description}")
