"""The exception hierarchy, by what a caller does about it, and the documented result codes.

Every exception the SDK raises derives from :class:`CCMessagingError`, through exactly one
of three bases (single inheritance: no error is two of them)::

    CCMessagingError
    ├── UsageError                        the program is wrong: fix the code or settings
    │   ├── ConfigurationError (ValueError)   bad session settings or environment
    │   │   └── CertificateError                the server's TLS certificate failed verification
    │   └── SessionStateError (RuntimeError)  session used before ``async with`` or after close
    ├── NotCreatedError                   the call certainly does not exist: safe to send again
    │   ├── InvalidRequestError (ValueError)  bad input; nothing was sent
    │   ├── AuthenticationError               no usable token; the call was not acted on
    │   ├── NotSentError                      the request never fully left the process
    │   ├── ProxyRefusedError                 a proxy refused it; the platform never saw it
    │   ├── ResultCodeError                   resultCode != "0" (10010000002 aside)
    │   ├── RequestRejectedError              a 4xx answer (429 aside)
    │   ├── ThrottledError                    too fast: a 429, or resultCode 10010000002
    │   └── ThrottlingTimeoutError            the platform accepted nothing for too long
    └── OutcomeUnknownError               the call may exist: never re-send blindly
        ├── ResponseDecodeError               a 200 whose body is not the documented JSON
        ├── ConnectionLostError               the connection failed after the request was written
        └── ServerError                       a 5xx, or any answer other than 200 and 4xx

Catch :class:`NotCreatedError` to retry; never retry on :class:`OutcomeUnknownError`.
Every error carries sanitised context: :attr:`~CCMessagingError.endpoint`,
:attr:`~CCMessagingError.attempts` and the gateway's :attr:`~CCMessagingError.trace_id`;
answers add ``status_code``, ``body`` and ``retry_after``. No message, attribute or repr
ever holds the app secret, a token or a header. Every error pickles with its attributes.
"""

from __future__ import annotations

import enum
from typing import Any, Self

__all__ = [
    "MAX_ERROR_BODY",
    "AuthenticationError",
    "CCMessagingError",
    "CertificateError",
    "ConfigurationError",
    "ConnectionLostError",
    "InvalidRequestError",
    "NotCreatedError",
    "NotSentError",
    "OutcomeUnknownError",
    "ProxyRefusedError",
    "RequestRejectedError",
    "ResponseDecodeError",
    "ResultCode",
    "ResultCodeError",
    "ServerError",
    "SessionStateError",
    "ThrottledError",
    "ThrottlingTimeoutError",
    "UsageError",
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
    #: Documented for other interfaces of the module (SPEC section 4): too fast.
    FLOW_CONTROL = "10010000002"

    @property
    def meaning(self) -> str:
        """The documented meaning of the code."""
        return _MEANINGS[self]


_MEANINGS = {
    ResultCode.FEATURE_NOT_ENABLED: "the feature is not enabled",
    ResultCode.FLOW_CONTROL: "interface flow control failed: too fast",
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


def _rebuild(cls: type[CCMessagingError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class CCMessagingError(Exception):
    """Root of every exception raised by ccmessaging_async."""

    #: The interface that failed (``"createcall"``, ``"tokenByAkSk"``), when one did.
    endpoint: str | None = None
    #: How many times the request was sent before this error (0: never sent).
    attempts: int = 0
    #: The gateway's ``X-Request-Id`` for the last answer, when it sent one.
    trace_id: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduction calls cls(*args), which keyword-only attributes break.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def with_context(self, *, endpoint: str | None = None, attempts: int | None = None) -> Self:
        """Record which interface failed and after how many sends; return ``self``."""
        if endpoint is not None and self.endpoint is None:
            self.endpoint = endpoint
        if attempts is not None:
            self.attempts = attempts
        return self


class UsageError(CCMessagingError):
    """The program or its settings are wrong; nothing was sent. Fix the code, not the call."""


class ConfigurationError(UsageError, ValueError):
    """The session's settings, arguments or environment are unusable."""


class CertificateError(ConfigurationError):
    """The server's TLS certificate failed verification; nothing was sent.

    Sending again cannot help until the certificate or ``verify=`` is fixed: never retried.
    """

    def __init__(self, message: str, *, host: str, reason: str) -> None:
        super().__init__(message)
        #: The host whose certificate failed.
        self.host = host
        #: OpenSSL's reason, such as ``certificate has expired``.
        self.reason = reason


class SessionStateError(UsageError, RuntimeError):
    """The session is used before ``async with`` opened it, or after it was closed."""


class NotCreatedError(CCMessagingError):
    """The call certainly does not exist: sending the request again is safe."""


class OutcomeUnknownError(CCMessagingError):
    """The request may have reached the platform; the call may or may not exist.

    The SDK never re-sends such a request by itself (a second send can ring a person twice).
    """


class InvalidRequestError(NotCreatedError, ValueError):
    """A request field breaks the documented rules; nothing was sent."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        #: The snake_case name of the offending field, when one field is at fault.
        self.field = field


class AuthenticationError(NotCreatedError):
    """No usable access token: wrong credentials, token service failing, or token refused.

    The createcall request was not acted on by the platform.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        exception_info: str | None = None,
    ) -> None:
        super().__init__(message)
        #: HTTP status of the answer that caused it, if there was one.
        self.status_code = status_code
        #: The gateway's own ``errorCode`` from that answer, when it sent one.
        self.error_code = error_code
        #: The gateway's ``exceptionInfo`` text (at most 256 characters, secrets removed),
        #: which tells an expired token from an IP whitelist or a disabled account.
        self.exception_info = exception_info


class CallRecordsError(CCMessagingError):
    """The call-record query answered with a ``retCode`` other than ``"0"`` (SPEC section 5)."""

    def __init__(self, ret_code: str, ret_msg: str | None) -> None:
        super().__init__(f"queryCallDetailRecord answered retCode {ret_code}: {ret_msg or '-'}")
        #: The platform's ``retCode``.
        self.ret_code = ret_code
        #: The platform's ``retMsg``: why.
        self.ret_msg = ret_msg


class NotSentError(NotCreatedError):
    """The request never fully left: connection refused, connect timeout, pool exhausted."""


class TokenServiceUnreachableError(NotSentError):
    """The token service could not be reached (a name that does not resolve, a host down).

    No token could be had, so nothing was sent; no credential was refused.
    """


class ProxyRefusedError(NotCreatedError):
    """A proxy between the SDK and the platform refused the request; the platform never saw it.

    A 407, or a failed ``CONNECT``. Check the proxy's settings; not retried.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        #: The proxy's HTTP status, when it answered with one.
        self.status_code = status_code


class ThrottlingTimeoutError(NotCreatedError):
    """The platform accepted no call for ``max_throttle_wait``: the batch stopped dialling.

    Every input it took up has its outcome; those after it were not taken up.
    """


class ResultCodeError(NotCreatedError):
    """The platform answered HTTP 200 with a non-zero ``resultCode``: the call was not created."""

    def __init__(self, code: str, description: str | None) -> None:
        self.code: str | None = code
        self.description = description
        #: The enum member for a documented code, ``None`` for an unknown one.
        self.result_code: ResultCode | None = _BY_VALUE.get(code)
        meaning = f" ({self.result_code.meaning})" if self.result_code else ""
        super().__init__(f"createcall failed with resultCode {code}{meaning}: {description}")


class _StatusAttributes:
    """What an HTTP answer says, on the errors made from one."""

    status_code: int
    body: str
    retry_after: float | None

    def _set_status(self, status_code: int, body: str, retry_after: float | None) -> None:
        #: The HTTP status code.
        self.status_code = status_code
        #: At most :data:`MAX_ERROR_BODY` characters of the response body.
        self.body = body[:MAX_ERROR_BODY]
        #: The parsed ``Retry-After`` header in seconds, if the server sent one.
        self.retry_after = retry_after


class RequestRejectedError(_StatusAttributes, NotCreatedError):
    """The gateway or platform refused the request with a 4xx (429 included)."""

    def __init__(
        self, message: str, *, status_code: int, body: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self._set_status(status_code, body, retry_after)


class ThrottledError(_StatusAttributes, NotCreatedError):
    """The platform refused the call as too fast (SPEC section 4): it was not created.

    An HTTP 429 (``retry_after`` from its header), or HTTP 200 with resultCode
    ``10010000002``, "interface flow control failed" (:attr:`code`). Send it again later,
    slower: a batch waits and re-sends it at a lower pace by itself.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self._set_status(status_code, body, retry_after)
        #: The resultCode that said so (``10010000002``), or ``None`` for a 429.
        self.code: str | None = code


class ResponseDecodeError(OutcomeUnknownError):
    """The platform answered 200 but the body is not the documented JSON."""


class ConnectionLostError(OutcomeUnknownError):
    """The connection failed after the request was written (reset, read timeout, bad answer)."""

    #: The request went out on a kept-alive connection that the peer then closed before
    #: answering (often a load balancer's idle timeout: see README, "Defaults").
    reused: bool = False
    #: For such a connection, how long it had been idle before the request (seconds).
    idle_for: float | None = None


class ServerError(_StatusAttributes, OutcomeUnknownError):
    """A 5xx answer (or any other than 200 and 4xx): the platform may have acted."""

    def __init__(
        self, message: str, *, status_code: int, body: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self._set_status(status_code, body, retry_after)
