"""Async client for Huawei Cloud CEC CC-Messaging anonymous calls (createcall)."""

from importlib.metadata import version as _version

from ._aiohttp import aiohttp_transport
from ._batch import CallOutcome, OutcomeStatus
from ._config import RetryPolicy
from ._errors import (
    AuthenticationError,
    CCMessagingError,
    ConfigurationError,
    HTTPStatusError,
    InvalidRequestError,
    NotSentError,
    OutcomeUnknownError,
    ResponseDecodeError,
    ResultCode,
    ResultCodeError,
    ServerError,
    SessionStateError,
)
from ._models import AccessToken, CreateCallRequest, CreateCallResult, mask_number
from ._session import AsyncSession

__version__ = _version("ccmessaging-async")

__all__ = [
    "AccessToken",
    "AsyncSession",
    "AuthenticationError",
    "CCMessagingError",
    "CallOutcome",
    "ConfigurationError",
    "CreateCallRequest",
    "CreateCallResult",
    "HTTPStatusError",
    "InvalidRequestError",
    "NotSentError",
    "OutcomeStatus",
    "OutcomeUnknownError",
    "ResponseDecodeError",
    "ResultCode",
    "ResultCodeError",
    "RetryPolicy",
    "ServerError",
    "SessionStateError",
    "__version__",
    "aiohttp_transport",
    "mask_number",
]
