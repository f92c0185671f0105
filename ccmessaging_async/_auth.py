"""Credentials, the tokenByAkSk client and the background token manager."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable

import anyio
import attrs

from . import _http
from ._config import RetryPolicy, backoff_delay
from ._converter import structure_token
from ._errors import AuthenticationError
from ._models import AccessToken

__all__ = ["MAX_TOKEN_LIFETIME", "TOKEN_PATH", "Credentials", "TokenFetcher", "TokenManager"]

logger = logging.getLogger("ccmessaging_async")

TOKEN_PATH = "/apigovernance/api/oauth/tokenByAkSk"  # noqa: S105 - a path
#: The token service's documented maximum lifetime, in seconds.
MAX_TOKEN_LIFETIME = 3600.0
_MAX_TOKEN_BODY = 64 * 1024


@attrs.frozen(slots=True)
class Credentials:
    """An app key and its secret. The secret never appears in the repr."""

    app_key: str = attrs.field(validator=attrs.validators.instance_of(str))
    app_secret: str = attrs.field(
        validator=attrs.validators.instance_of(str), repr=lambda _: "'***'"
    )


class _RetryableTokenError(AuthenticationError):
    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class TokenFetcher:
    """Asks ``tokenByAkSk`` for a token, retrying what is safe to retry (all of it)."""

    def __init__(
        self,
        client: _http.AsyncClient,
        url: str,
        credentials: Credentials,
        lifetime: float,
        policy: RetryPolicy,
    ) -> None:
        self._client = client
        self._url = url
        self._policy = policy
        self._body = json.dumps(
            {"app_key": credentials.app_key, "app_secret": credentials.app_secret}
        ).encode()
        self._headers = {"Content-Type": "application/json", "X-Token-Expire": str(int(lifetime))}

    def __repr__(self) -> str:
        return f"<TokenFetcher {self._url}>"

    async def __call__(self) -> AccessToken:
        """Fetch one token; raise :class:`AuthenticationError` when none can be had."""
        policy = self._policy
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._fetch_once(attempt)
            except _RetryableTokenError as exc:
                if attempt >= policy.token_attempts:
                    raise AuthenticationError(
                        f"no access token after {attempt} attempts: {exc}",
                        status_code=exc.status_code,
                    ) from exc
                delay = exc.retry_after
                if delay is None:
                    delay = backoff_delay(attempt, policy.backoff_initial, policy.backoff_max)
                elif delay > policy.max_retry_after:
                    raise AuthenticationError(
                        f"token service asked to retry after {delay:.0f}s "
                        f"(more than max_retry_after): {exc}",
                        status_code=exc.status_code,
                    ) from exc
                await anyio.sleep(delay)

    async def _fetch_once(self, attempt: int) -> AccessToken:
        started = time.perf_counter()
        request = self._client.build_request(
            "POST", self._url, content=self._body, headers=self._headers
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                body, _ = await _http.read_bounded(response, _MAX_TOKEN_BODY)
            finally:
                await response.aclose()
        except _http.TransportError as exc:
            logger.debug("POST %s attempt %d failed: %s", TOKEN_PATH, attempt, type(exc).__name__)
            raise _RetryableTokenError(
                f"token service unreachable ({_http.describe_error(exc)})"
            ) from exc
        status = response.status_code
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "POST %s -> %d in %.1f ms (attempt %d)",
                TOKEN_PATH,
                status,
                (time.perf_counter() - started) * 1000,
                attempt,
            )
        if status == 200:
            try:
                return structure_token(json.loads(body))
            except Exception as exc:  # noqa: BLE001 - any malformed body is the same failure
                # Not chained: the body may hold a token, and a cause's message may quote it.
                raise _RetryableTokenError(
                    "token service answered 200 with a body that is not the documented JSON "
                    f"({type(exc).__name__})",
                    status_code=status,
                ) from None
        if status in (401, 403):
            raise AuthenticationError(
                f"token service rejected the app key/secret (HTTP {status})", status_code=status
            )
        if status == 429 or status >= 500:
            raise _RetryableTokenError(
                f"token service answered HTTP {status}",
                status_code=status,
                retry_after=_http.parse_retry_after(response.headers.get("retry-after")),
            )
        raise AuthenticationError(f"token service answered HTTP {status}", status_code=status)


@attrs.frozen(slots=True, eq=False)
class _Token:
    value: str = attrs.field(repr=False)
    #: Monotonic times: refresh in the background from advisory_at, make callers wait
    #: from mandatory_at, and never use the token from expires_at.
    advisory_at: float
    mandatory_at: float
    expires_at: float


def _windows(lifetime: float) -> tuple[float, float, float]:
    """Advisory margin, its jitter and the mandatory margin, scaled to the lifetime.

    Fixed margins break short lifetimes (a 15-minute margin on a 10-minute token refreshes
    on every call: botocore #2189), so each is capped by a share of the lifetime.
    """
    return min(120.0, 0.25 * lifetime), min(10.0, 0.05 * lifetime), min(30.0, 0.10 * lifetime)


class TokenManager:
    """Keeps one valid access token, refreshed ahead of expiry by a background task.

    Only the refresher task talks to the token service, so any number of concurrent
    callers cause one token request per refresh. Callers keep the current token during the
    advisory window and wait for the refresh in the mandatory window. A failed refresh
    keeps the old token while it is valid and is retried with capped, jittered backoff.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[AccessToken]],
        *,
        lifetime: float,
        wait_timeout: float,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._lifetime = lifetime
        self._wait_timeout = wait_timeout
        self._policy = policy
        self._clock = clock
        self._token: _Token | None = None
        self._wake = anyio.Event()
        self._finished = anyio.Event()
        self._in_flight = False
        self._failures = 0
        self._retry_at = -math.inf
        self._last_error: AuthenticationError | None = None
        #: How many times the token service was asked (successful or not).
        self.fetches = 0

    def __repr__(self) -> str:
        state = "no token" if self._token is None else "token held"
        return f"<TokenManager {state}, {self.fetches} fetches>"

    async def start(self) -> None:
        """Fetch the first token; raise :class:`AuthenticationError` if none can be had."""
        await self._attempt()
        if self._token is None:
            assert self._last_error is not None  # noqa: S101 - set by a failed attempt
            raise self._last_error

    async def run(self) -> None:
        """Refresh ahead of expiry until cancelled (the session's background task)."""
        while True:
            delay = self._next_attempt_at() - self._clock()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._wake.wait()
                self._wake = anyio.Event()
            if self._clock() >= self._next_attempt_at():
                await self._attempt()

    async def get(self) -> _Token:
        """Return a token to send now, waiting for a refresh only when it must."""
        token = self._token
        now = self._clock()
        if token is not None and now < token.mandatory_at:
            if now >= token.advisory_at and not self._in_flight and now >= self._retry_at:
                self._wake.set()
            return token
        return await self._get_slow(token, now)

    def invalidate(self, token: _Token) -> None:
        """Drop ``token`` after the gateway refused it, unless a newer one replaced it."""
        if self._token is token:
            self._token = None
            self._wake.set()

    async def _get_slow(self, token: _Token | None, now: float) -> _Token:
        if not self._in_flight and now < self._retry_at:
            # Backing off after a failure: do not add load, use what is left.
            return self._usable_or_raise(token, now)
        finished = self._finished
        self._wake.set()
        with anyio.move_on_after(self._wait_timeout):
            await finished.wait()
        if not finished.is_set():
            raise AuthenticationError(
                f"timed out after {self._wait_timeout:g}s waiting for an access token"
            )
        token = self._token
        now = self._clock()
        if token is not None and now < token.mandatory_at:
            return token
        return self._usable_or_raise(token, now)

    def _usable_or_raise(self, token: _Token | None, now: float) -> _Token:
        if token is not None and now < token.expires_at:
            return token
        error = self._last_error
        if error is None:
            raise AuthenticationError("the access token expired and no new one is available")
        raise AuthenticationError(f"no valid access token: {error}", status_code=error.status_code)

    def _next_attempt_at(self) -> float:
        if self._token is None:
            return self._retry_at
        return max(self._token.advisory_at, self._retry_at)

    async def _attempt(self) -> None:
        self._in_flight = True
        self.fetches += 1
        try:
            access = await self._fetch()
        except AuthenticationError as exc:
            self._failed(exc)
        except Exception as exc:  # noqa: BLE001 - the refresher must outlive any bug here
            self._failed(AuthenticationError(f"token fetch failed: {type(exc).__name__}"))
        else:
            self._token = self._make_token(access)
            self._failures = 0
            self._retry_at = -math.inf
            self._last_error = None
        finally:
            self._in_flight = False
            finished, self._finished = self._finished, anyio.Event()
            finished.set()

    def _failed(self, error: AuthenticationError) -> None:
        self._failures += 1
        self._last_error = error
        maximum = self._policy.token_backoff_max
        if error.status_code in (401, 403):
            delay = maximum
        else:
            # Half fixed, half jitter: never zero, so a failing service is not hammered.
            ceiling = min(
                maximum, self._policy.token_backoff_initial * 2 ** min(self._failures - 1, 32)
            )
            delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311
        self._retry_at = self._clock() + delay
        logger.warning("access token refresh failed (retrying in %.1fs): %s", delay, error)

    def _make_token(self, access: AccessToken) -> _Token:
        now = self._clock()
        lifetime = self._lifetime
        if access.expires is not None and math.isfinite(access.expires) and access.expires > 0:
            lifetime = min(lifetime, access.expires)
        advisory, jitter, mandatory = _windows(lifetime)
        return _Token(
            value=access.access_token,
            advisory_at=now + lifetime - advisory - random.uniform(0, jitter),  # noqa: S311
            mandatory_at=now + lifetime - mandatory,
            expires_at=now + lifetime,
        )
