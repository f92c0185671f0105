"""The ``tokenByAkSk`` client: app key and secret in, one access token out."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Mapping

import anyio
import attrs

from . import _http, _json
from ._classify import certificate_failure, describe_gateway, gateway_details, proxy_failure
from ._converter import structure_token
from ._errors import (
    AuthenticationError,
    CCMessagingError,
    ProxyRefusedError,
    TokenServiceUnreachableError,
)
from ._models import AccessToken
from ._retry import backoff
from ._telemetry import Observer
from ._token_policy import TokenPolicy
from ._transports.httpx_transport import read_bounded

__all__ = ["TOKEN_ENDPOINT", "TOKEN_PATH", "Credentials", "TokenFetcher"]

logger = logging.getLogger("ccmessaging_async")

TOKEN_PATH = "/apigovernance/api/oauth/tokenByAkSk"  # noqa: S105 - a path
#: The name errors of the token service carry as their ``endpoint``.
TOKEN_ENDPOINT = "tokenByAkSk"  # noqa: S105 - a name
_MAX_TOKEN_BODY = 64 * 1024


@attrs.frozen(slots=True)
class Credentials:
    """An app key and its secret. The secret never appears in the repr."""

    app_key: str = attrs.field(validator=attrs.validators.instance_of(str))
    app_secret: str = attrs.field(
        validator=attrs.validators.instance_of(str), repr=lambda _: "'***'"
    )


#: A token goes into an HTTP header: visible ASCII, and no longer than this.
_MAX_TOKEN_LENGTH = 8192


def _checked(token: AccessToken) -> AccessToken:
    value = token.access_token
    if len(value) > _MAX_TOKEN_LENGTH or not (value.isascii() and value.isprintable()):
        # Never quoted: whatever it is, it is a credential.
        raise ValueError("the access token is not a visible ASCII string of at most 8192")
    if any(character.isspace() for character in value):
        raise ValueError("the access token holds white space")
    return token


class _RetryableTokenError(AuthenticationError):
    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        unreachable: bool = False,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after
        #: No connection could be made: the service was never reached.
        self.unreachable = unreachable


class TokenFetcher:
    """Asks ``tokenByAkSk`` for a token, retrying what is safe to retry (all of it)."""

    def __init__(
        self,
        client: _http.AsyncClient,
        url: str,
        credentials: Credentials,
        policy: TokenPolicy,
        extra_headers: Mapping[str, str] | None = None,
        *,
        observer: Observer | None = None,
    ) -> None:
        self._client = client
        self._observer = observer if observer is not None else Observer()
        self._url = url
        self._policy = policy
        self._deadline = _http.exchange_deadline(client.timeout)
        self._secret = credentials.app_secret
        self._body = json.dumps(
            {"app_key": credentials.app_key, "app_secret": credentials.app_secret}
        ).encode()
        self._headers = {
            **(extra_headers or {}),
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",  # a compressed body is refused, never decoded
            "X-Token-Expire": str(int(policy.lifetime)),
        }

    def __repr__(self) -> str:
        return f"<TokenFetcher {self._url}>"

    async def __call__(self) -> AccessToken:
        """Fetch one token; raise :class:`AuthenticationError` when none can be had.

        :class:`TokenServiceUnreachableError` instead when no connection could be made.
        """
        with self._observer.token_fetch() as watch:
            token, attempts = await self._fetch()
            watch.fetched(attempts)
            return token

    async def _fetch(self) -> tuple[AccessToken, int]:
        policy = self._policy
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._fetch_once(attempt), attempt
            except _RetryableTokenError as exc:
                if attempt >= policy.attempts:
                    raise self._give_up(
                        f"no access token after {attempt} attempts: {exc}", exc, attempt
                    ) from exc
                delay = exc.retry_after
                if delay is None:
                    delay = backoff(
                        attempt,
                        policy.retry_backoff_initial,
                        policy.retry_backoff_max,
                        random.random(),  # noqa: S311 - jitter, not cryptography
                    )
                elif delay > policy.max_retry_after:
                    raise self._give_up(
                        f"token service asked to retry after {delay:.0f}s "
                        f"(more than max_retry_after): {exc}",
                        exc,
                        attempt,
                    ) from exc
                await anyio.sleep(delay * policy.time_scale)
            except AuthenticationError as exc:
                raise exc.with_context(endpoint=TOKEN_ENDPOINT, attempts=attempt) from None

    def _give_up(
        self, message: str, last: AuthenticationError, attempt: int
    ) -> AuthenticationError | TokenServiceUnreachableError:
        if isinstance(last, _RetryableTokenError) and last.unreachable:
            host = _http.URL(self._url).host
            unreachable = TokenServiceUnreachableError(
                f"the token service at {host} could not be reached after {attempt} attempts "
                f"({last}); no token, so nothing was sent"
            )
            return unreachable.with_context(endpoint=TOKEN_ENDPOINT, attempts=attempt)
        error = AuthenticationError(message, status_code=last.status_code)
        error.trace_id = last.trace_id
        error.with_context(endpoint=TOKEN_ENDPOINT, attempts=attempt)
        return error

    async def _fetch_once(self, attempt: int) -> AccessToken:
        started = time.perf_counter()
        response, body = await self._send(attempt)
        status = response.status_code
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "POST %s -> %d in %.1f ms (attempt %d)",
                TOKEN_PATH,
                status,
                (time.perf_counter() - started) * 1000,
                attempt,
            )
        encoding = response.headers.get("content-encoding", "identity")
        if status == 200 and encoding in ("", "identity"):
            try:
                return _checked(structure_token(_json.loads(body)))
            except Exception as exc:  # noqa: BLE001 - any malformed body is the same failure
                # Not chained: the body may hold a token, and a cause's message may quote it.
                error: CCMessagingError = _RetryableTokenError(
                    "token service answered 200 with a body that is not the documented JSON "
                    f"({type(exc).__name__})",
                    status_code=status,
                )
        elif status == 200:
            error = _RetryableTokenError(
                f"token service answered with a {encoding} body although identity was asked",
                status_code=status,
            )
        else:
            error = self._refusal(response, body)
        error.trace_id = _http.trace_id(response.headers.get(_http.TRACE_HEADER))
        raise error.with_context(endpoint=TOKEN_ENDPOINT, attempts=attempt)

    async def _send(self, attempt: int) -> tuple[_http.Response, bytes]:
        """Send the token request; a failure is raised as retryable unless it is permanent."""
        failure: str | CCMessagingError
        unreachable = False
        try:
            with anyio.fail_after(self._deadline):
                response = await self._client.send(
                    self._client.build_request(
                        "POST", self._url, content=self._body, headers=self._headers
                    ),
                    stream=True,
                )
                try:
                    body, _ = await read_bounded(response, _MAX_TOKEN_BODY)
                finally:
                    await response.aclose()
        except TimeoutError:
            failure = f"token service gave no complete answer within {self._deadline:g}s"
        except _http.RequestError as exc:
            logger.debug("POST %s attempt %d failed: %s", TOKEN_PATH, attempt, type(exc).__name__)
            # A certificate or a proxy refusal: sending again cannot help.
            failure = (
                certificate_failure(exc, self._url)
                or proxy_failure(exc)
                or (f"token service unreachable ({_http.describe_error(exc)})")
            )
            unreachable = isinstance(exc, _http.CONNECT_ERRORS)
        else:
            return response, body
        # Raised outside the except clause and not chained: httpx's exception holds the
        # request, whose body is the app secret.
        if isinstance(failure, CCMessagingError):
            raise failure.with_context(endpoint=TOKEN_ENDPOINT, attempts=attempt)
        raise _RetryableTokenError(failure, unreachable=unreachable)

    def _refusal(self, response: _http.Response, body: bytes) -> CCMessagingError:
        """Type an answer other than 200."""
        status = response.status_code
        if status == 407:
            return ProxyRefusedError(
                "a proxy refused the token request (HTTP 407 Proxy Authentication Required); "
                "it never reached the token service. Check the proxy's credentials",
                status_code=status,
            )
        if status in (401, 403):
            code, info = gateway_details(body, redact=(self._secret,))
            return AuthenticationError(
                f"token service rejected the app key/secret (HTTP {status}"
                f"{describe_gateway(code, info)})",
                status_code=status,
                error_code=code,
                exception_info=info,
            )
        if status == 429 or status >= 500:
            return _RetryableTokenError(
                f"token service answered HTTP {status}",
                status_code=status,
                retry_after=_http.parse_retry_after(response.headers.get("retry-after")),
            )
        return AuthenticationError(f"token service answered HTTP {status}", status_code=status)
