"""Async client for Huawei Cloud CEC CC-Messaging anonymous calls (createcall)."""

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
from ._settings import SessionOptions
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
    "SessionOptions",
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
