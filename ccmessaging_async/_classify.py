"""What one exchange means under SPEC section 3: a result, or the typed error for it.

Pure functions of what came back; no I/O. :mod:`._retry` then decides whether to send
again.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from . import _http
from ._endpoints import Endpoint
from ._errors import (
    AuthenticationError,
    CCMessagingError,
    ConnectionLostError,
    NotSentError,
    RequestRejectedError,
    ResponseDecodeError,
    ServerError,
)
from ._transports.base import Answer
from ._transports.connection import ConnectionDropped, RequestNotWritten

__all__ = ["classify_answer", "classify_deadline", "classify_failure", "decode_success"]

ResultT = TypeVar("ResultT")


def classify_failure(
    endpoint: Endpoint[Any, Any], exc: _http.RequestError
) -> NotSentError | ConnectionLostError:
    """Type a transport failure: not sent only if the request never fully left."""
    # The session's own connections say on the cause whether the request was written.
    cause = exc.__cause__
    if isinstance(exc, _http.NOT_SENT_ERRORS) or isinstance(cause, RequestNotWritten):
        return NotSentError(f"{endpoint.name} was not sent: {_http.describe_error(exc)}")
    error = ConnectionLostError(
        f"{endpoint.name} may have reached the platform: {_http.describe_error(exc)}"
    )
    if isinstance(cause, ConnectionDropped):
        error.reused = True
        error.idle_for = cause.idle_for
    # Not chained: httpx's exception holds the request, and its headers hold the token.
    return error


def classify_deadline(endpoint: Endpoint[Any, Any], deadline: float) -> ConnectionLostError:
    """Type an exchange that ran out of its overall deadline: it may have been written."""
    return ConnectionLostError(
        f"{endpoint.name} got no complete answer within {deadline:g}s (the sum of the "
        "timeouts); it may have reached the platform"
    )


def classify_answer(endpoint: Endpoint[Any, ResultT], answer: Answer) -> ResultT | CCMessagingError:
    """Return the result of a 200 with the documented body, or the typed error for the answer."""
    outcome: ResultT | CCMessagingError
    if answer.status == 200:  # noqa: SIM108 - mypy cannot type the generic call in a ternary
        outcome = _success(endpoint, answer)
    else:
        outcome = _refusal(endpoint, answer)
    if isinstance(outcome, CCMessagingError):
        outcome.trace_id = _http.trace_id(answer.request_id)
    return outcome


def _success(endpoint: Endpoint[Any, ResultT], answer: Answer) -> ResultT | CCMessagingError:
    if answer.truncated:
        return ResponseDecodeError(
            f"{endpoint.name} answered 200 with a body over its size limit; "
            "the call may have been created"
        )
    if answer.encoded:
        return ResponseDecodeError(
            f"{endpoint.name} answered 200 with a {answer.content_encoding} body although "
            "identity was asked (not decoded); the call may have been created"
        )
    try:
        return decode_success(endpoint, answer.content)
    except CCMessagingError as error:
        return error


def _refusal(endpoint: Endpoint[Any, Any], answer: Answer) -> CCMessagingError:
    status = answer.status
    text = "" if answer.encoded else answer.content.decode("utf-8", "replace")
    retry_after = _http.parse_retry_after(answer.retry_after)
    if status in (401, 403):
        return AuthenticationError(
            f"the gateway refused the access token for {endpoint.name} (HTTP {status})",
            status_code=status,
        )
    if 400 <= status < 500:
        what = "was rate limited" if status == 429 else "was refused"
        return RequestRejectedError(
            f"{endpoint.name} {what} (HTTP {status})",
            status_code=status,
            body=text,
            retry_after=retry_after,
        )
    # A 5xx, or any 1xx/2xx/3xx other than the documented 200, leaves it unknown whether
    # the call was created.
    return ServerError(
        f"{endpoint.name} answered HTTP {status}; the call may have been created",
        status_code=status,
        body=text,
        retry_after=retry_after,
    )


def decode_success(endpoint: Endpoint[Any, ResultT], content: bytes) -> ResultT:
    """Decode a 200 body into the result; raise a typed error for any other body."""
    try:
        return endpoint.decode(json.loads(content))
    except CCMessagingError:
        raise
    except Exception as exc:  # noqa: BLE001 - every malformed body is the same failure
        raise ResponseDecodeError(
            f"{endpoint.name} answered 200 with a body that is not the documented JSON "
            f"({_describe_decode_error(exc)}); the call may have been created"
        ) from None


def _describe_decode_error(exc: Exception) -> str:
    import cattrs  # noqa: PLC0415 - only needed on this rare path

    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at position {exc.pos}"
    return type(exc).__name__
