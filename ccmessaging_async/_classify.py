"""What one exchange means under SPEC section 3: a result, or the typed error for it.

Pure functions of what came back; no I/O. :mod:`._retry` then decides whether to send
again.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Sequence
from typing import Any, TypeVar

from . import _http, _json
from ._endpoints import Endpoint
from ._errors import (
    AuthenticationError,
    CCMessagingError,
    CertificateError,
    ConnectionLostError,
    NotSentError,
    ProxyRefusedError,
    RequestRejectedError,
    ResponseDecodeError,
    ServerError,
    ThrottledError,
)
from ._transports.base import Answer
from ._transports.connection import ConnectionDropped, RequestNotWritten

__all__ = [
    "certificate_failure",
    "classify_answer",
    "classify_deadline",
    "classify_failure",
    "decode_success",
    "gateway_details",
    "proxy_failure",
]

ResultT = TypeVar("ResultT")


#: At most this much of the gateway's ``exceptionInfo`` is kept on an error.
MAX_GATEWAY_TEXT = 256
_STATUS = re.compile(r"([1-5]\d\d)\b")
_ERROR_CODE = re.compile(r"[\w.\-]{1,64}", re.ASCII)


def classify_failure(
    endpoint: Endpoint[Any, Any], exc: _http.RequestError, url: str
) -> CCMessagingError:
    """Type a transport failure: not sent only if the request never fully left.

    A certificate that fails verification and a proxy's refusal are typed as such: the
    request never reached the platform, and sending it again cannot help.
    """
    refused = certificate_failure(exc, url) or proxy_failure(exc)
    if refused is not None:
        return refused
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


def certificate_failure(exc: BaseException, url: str) -> CertificateError | None:
    """Type ``exc`` as a TLS certificate that failed verification, if that is what it is."""
    problem = _in_chain(exc, ssl.SSLCertVerificationError)
    if problem is None:
        return None
    reason = problem.verify_message or problem.reason or "certificate verify failed"
    host = _http.URL(url).host
    return CertificateError(
        f"the TLS certificate of {host} failed verification ({reason}); nothing was sent. "
        "Fix the certificate, or give verify= the CA bundle that issued it",
        host=host,
        reason=str(reason),
    )


def proxy_failure(exc: BaseException) -> ProxyRefusedError | None:
    """Type ``exc`` as a proxy's refusal to forward the request, if that is what it is."""
    if not isinstance(exc, _http.ProxyError):
        return None
    return ProxyRefusedError(
        f"the proxy refused to forward the request ({exc}); it never reached the platform. "
        "Check the proxy's address and credentials",
        status_code=_leading_status(str(exc)),
    )


def _leading_status(text: str) -> int | None:
    match = _STATUS.match(text)
    return int(match.group(1)) if match else None


def _in_chain(
    exc: BaseException, kind: type[ssl.SSLCertVerificationError]
) -> ssl.SSLCertVerificationError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def gateway_details(content: bytes, redact: Sequence[str] = ()) -> tuple[str | None, str | None]:
    """Read the gateway's ``errorCode`` and ``exceptionInfo`` from a refusal body, made safe.

    The code only if it looks like one; the text bounded to :data:`MAX_GATEWAY_TEXT`
    characters, printable, with every string in ``redact`` (the token, the secret) removed.
    """
    try:
        body = _json.loads(content)
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    code = body.get("errorCode")
    if not (isinstance(code, str) and _ERROR_CODE.fullmatch(code)):
        code = None
    info = body.get("exceptionInfo")
    if not isinstance(info, str):
        return code, None
    for secret in redact:
        if secret:
            info = info.replace(secret, "***")
    info = "".join(c if c.isprintable() else " " for c in info)
    if len(info) > MAX_GATEWAY_TEXT:
        info = info[: MAX_GATEWAY_TEXT - 1] + "…"
    return code, info


def classify_deadline(
    endpoint: Endpoint[Any, Any], deadline: float, *, unsent: bool = False
) -> NotSentError | ConnectionLostError:
    """Type an exchange that ran out of its overall deadline.

    Not sent when the connection layer recorded that the request never left completely;
    otherwise it may have been written.
    """
    if unsent:
        return NotSentError(
            f"{endpoint.name} was not sent: it could not be written within {deadline:g}s "
            "(the sum of the timeouts)"
        )
    return ConnectionLostError(
        f"{endpoint.name} got no complete answer within {deadline:g}s (the sum of the "
        "timeouts); it may have reached the platform"
    )


def classify_answer(
    endpoint: Endpoint[Any, ResultT], answer: Answer, redact: Sequence[str] = ()
) -> ResultT | CCMessagingError:
    """Return the result of a 200 with the documented body, or the typed error for the answer.

    ``redact`` lists the secrets (the token sent) never to keep from the answer's text.
    """
    outcome: ResultT | CCMessagingError
    if answer.status == 200:
        outcome = _success(endpoint, answer)
    else:
        outcome = _refusal(endpoint, answer, redact)
    if isinstance(outcome, CCMessagingError):
        outcome.trace_id = _http.trace_id(answer.request_id)
    return outcome


def _success(endpoint: Endpoint[Any, ResultT], answer: Answer) -> ResultT | CCMessagingError:
    if answer.truncated:
        return ResponseDecodeError(
            f"{endpoint.name} answered 200 with a body over its size limit; {endpoint.unknown}"
        )
    if answer.encoded:
        return ResponseDecodeError(
            f"{endpoint.name} answered 200 with a {answer.content_encoding} body although "
            f"identity was asked (not decoded); {endpoint.unknown}"
        )
    try:
        return decode_success(endpoint, answer.content)
    except CCMessagingError as error:
        return error


def _refusal(
    endpoint: Endpoint[Any, Any], answer: Answer, redact: Sequence[str]
) -> CCMessagingError:
    status = answer.status
    text = "" if answer.encoded else answer.content.decode("utf-8", "replace")
    retry_after = _http.parse_retry_after(answer.retry_after)
    if status == 407:
        return ProxyRefusedError(
            f"a proxy refused {endpoint.name} (HTTP 407 Proxy Authentication Required); it "
            "never reached the platform. Check the proxy's credentials",
            status_code=status,
        )
    if status in (401, 403):
        code, info = (None, None) if answer.encoded else gateway_details(answer.content, redact)
        return AuthenticationError(
            f"the gateway refused the access token for {endpoint.name} (HTTP {status}"
            f"{describe_gateway(code, info)})",
            status_code=status,
            error_code=code,
            exception_info=info,
        )
    if 400 <= status < 500:
        if status == 429:
            return ThrottledError(
                f"{endpoint.name} was rate limited (HTTP 429)",
                status_code=status,
                body=text,
                retry_after=retry_after,
            )
        return RequestRejectedError(
            f"{endpoint.name} was refused (HTTP {status})",
            status_code=status,
            body=text,
            retry_after=retry_after,
        )
    # A 5xx, or any 1xx/2xx/3xx other than the documented 200, leaves it unknown whether
    # the call was created.
    return ServerError(
        f"{endpoint.name} answered HTTP {status}; {endpoint.unknown}",
        status_code=status,
        body=text,
        retry_after=retry_after,
    )


def describe_gateway(code: str | None, info: str | None) -> str:
    """``, errorCode X: info`` for a message, or nothing when the gateway said nothing."""
    said = ": ".join(part for part in (code and f"errorCode {code}", info) if part)
    return f", {said}" if said else ""


def decode_success(endpoint: Endpoint[Any, ResultT], content: bytes) -> ResultT:
    """Decode a 200 body into the result; raise a typed error for any other body."""
    try:
        return endpoint.decode(_json.loads(content))
    except CCMessagingError:
        raise
    except Exception as exc:  # noqa: BLE001 - every malformed body is the same failure
        raise ResponseDecodeError(
            f"{endpoint.name} answered 200 with a body that is not the documented JSON "
            f"({_describe_decode_error(exc)}); {endpoint.unknown}"
        ) from None


def _describe_decode_error(exc: Exception) -> str:
    import cattrs  # noqa: PLC0415 - only needed on this rare path

    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at position {exc.pos}"
    return type(exc).__name__
