"""Async client for Huawei Cloud CEC CC-Messaging anonymous calls (createcall)."""

import warnings as _warnings
from typing import Any as _Any

from ._aiohttp import aiohttp_transport
from ._errors import (
    AuthenticationError,
    CallRecordsError,
    CCMessagingError,
    CertificateError,
    ConfigurationError,
    ConnectionLostError,
    InvalidRequestError,
    NotCreatedError,
    NotSentError,
    OutcomeUnknownError,
    ProxyRefusedError,
    RequestRejectedError,
    ResponseDecodeError,
    ResultCode,
    ResultCodeError,
    ServerError,
    SessionStateError,
    ThrottledError,
    ThrottlingTimeoutError,
    TokenServiceUnreachableError,
    UsageError,
)
from ._models import (
    AccessToken,
    CallRecord,
    CallState,
    CallTaskType,
    CreateCallRequest,
    CreateCallResult,
    mask_number,
)
from ._outcomes import CallOutcome, OutcomeStatus
from ._pacing import Pacing
from ._retry import RetryPolicy
from ._session import AsyncSession
from ._telemetry import Telemetry
from ._token_policy import TokenPolicy
from ._version import __version__

__all__ = [
    "AccessToken",
    "AsyncSession",
    "AuthenticationError",
    "CCMessagingError",
    "CallOutcome",
    "CallRecord",
    "CallRecordsError",
    "CallState",
    "CallTaskType",
    "CertificateError",
    "ConfigurationError",
    "ConnectionLostError",
    "CreateCallRequest",
    "CreateCallResult",
    "InvalidRequestError",
    "NotCreatedError",
    "NotSentError",
    "OutcomeStatus",
    "OutcomeUnknownError",
    "Pacing",
    "ProxyRefusedError",
    "RequestRejectedError",
    "ResponseDecodeError",
    "ResultCode",
    "ResultCodeError",
    "RetryPolicy",
    "ServerError",
    "SessionStateError",
    "Telemetry",
    "ThrottledError",
    "ThrottlingTimeoutError",
    "TokenPolicy",
    "TokenServiceUnreachableError",
    "UsageError",
    "__version__",
    "aiohttp_transport",
    "mask_number",
]

#: Names of 0.1 that still import, with a DeprecationWarning, and what replaced them.
_DEPRECATED = {
    # 0.1's HTTPStatusError also caught 5xx answers, whose calls may exist; its replacement
    # is the 4xx rejection only, so `except HTTPStatusError: send_again()` is now safe.
    "HTTPStatusError": ("RequestRejectedError", RequestRejectedError),
}


def __getattr__(name: str) -> _Any:
    if name in _DEPRECATED:
        replacement, value = _DEPRECATED[name]
        _warnings.warn(
            f"ccmessaging_async.{name} is deprecated: use {replacement} (a 4xx: the call was "
            "not created); a 5xx is ServerError, an OutcomeUnknownError",
            DeprecationWarning,
            stacklevel=2,
        )
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
