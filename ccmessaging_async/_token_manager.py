"""TokenManager: one valid access token, refreshed ahead of expiry in the background."""

from __future__ import annotations

import copy
import logging
import math
import random
from collections.abc import Awaitable, Callable

import anyio
import attrs

from ._errors import (
    AuthenticationError,
    CertificateError,
    ProxyRefusedError,
    SessionStateError,
    TokenServiceUnreachableError,
)
from ._models import AccessToken
from ._retry import backoff
from ._token_policy import MIN_REFRESH_INTERVAL, MIN_TOKEN_LIFETIME, TokenPolicy
from ._token_service import TOKEN_ENDPOINT

__all__ = ["Token", "TokenManager", "refresh_windows"]

logger = logging.getLogger("ccmessaging_async")


#: What a failed fetch leaves behind to tell the calls that wait.
_FetchError = AuthenticationError | ProxyRefusedError | TokenServiceUnreachableError


@attrs.frozen(slots=True, eq=False)
class Token:
    """An access token and the monotonic times that govern its use."""

    value: str = attrs.field(repr=False)
    #: Monotonic times: refresh in the background from advisory_at, make callers wait
    #: from mandatory_at, and never use the token from expires_at.
    advisory_at: float
    mandatory_at: float
    expires_at: float


def refresh_windows(lifetime: float) -> tuple[float, float, float]:
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
    keeps the old token while it is valid and is retried with capped, jittered backoff;
    a certificate that fails verification is never retried: every caller gets its error.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[AccessToken]],
        policy: TokenPolicy,
    ) -> None:
        self._fetch = fetch
        self._lifetime = policy.lifetime
        self._wait_timeout = policy.timeout
        self._policy = policy
        self._clock = policy.clock
        self._token: Token | None = None
        self._wake = anyio.Event()
        self._finished = anyio.Event()
        self._in_flight = False
        self._failures = 0
        self._retry_at = -math.inf
        self._fetched_at = -math.inf
        self._last_error: _FetchError | CertificateError | None = None
        self._permanent: CertificateError | None = None
        self._retry_when_asked = False
        self._refusal_pending = False
        self._token_replaces_refused = False
        self._token_accepted = False
        self._closed = False
        #: How many times the token service was asked (successful or not).
        self.fetches = 0

    def __repr__(self) -> str:
        state = "no token" if self._token is None else "token held"
        return f"<TokenManager {state}, {self.fetches} fetches>"

    async def start(self) -> None:
        """Fetch the first token within the policy's ``timeout``.

        Raise :class:`AuthenticationError` if none can be had in that time.
        """
        timeout = self._policy.timeout
        with anyio.move_on_after(timeout) as scope:
            await self._attempt(first=True)
        # httpcore reports a cancelled read as a ReadTimeout, so an expired scope can end
        # in a failed fetch rather than a cancellation: the timeout is what happened.
        if scope.cancel_called:
            raise AuthenticationError(
                f"no access token within token timeout ({timeout:g}s)"
            ).with_context(endpoint=TOKEN_ENDPOINT)
        if self._token is None:
            assert self._last_error is not None  # noqa: S101 - set by a failed attempt
            raise self._last_error

    async def run(self) -> None:
        """Refresh ahead of expiry until cancelled (the session's background task)."""
        while self._permanent is None:
            delay = self._next_attempt_at() - self._clock()
            if delay > 0 or self._retry_when_asked:
                # After a failure with no backoff (TokenPolicy.for_tests), try again only
                # when a call needs a token, never in a loop of its own.
                with anyio.move_on_after(delay if delay > 0 else math.inf):
                    await self._wake.wait()
                self._wake = anyio.Event()
                self._retry_when_asked = False
            if self._clock() >= self._next_attempt_at():
                await self._attempt()

    async def get(self) -> Token:
        """Return a token to send now, waiting for a refresh only when it must."""
        if self._closed:
            raise SessionStateError("the session was closed before this call could be sent")
        if self._permanent is not None:
            raise copy.copy(self._permanent)
        token = self._token
        now = self._clock()
        if token is not None and now < token.mandatory_at:
            if now >= token.advisory_at and not self._in_flight and now >= self._retry_time(now):
                self._wake.set()
            return token
        return await self._get_slow(token, now)

    def close(self) -> None:
        """Refuse tokens from now on and wake every call waiting for one."""
        self._closed = True
        self._finished.set()

    def accepted(self, token: Token) -> None:
        """Note that the gateway accepted ``token``: a call sent with it succeeded."""
        if token is self._token:
            self._token_accepted = True

    def refused(self, token: Token) -> None:
        """Drop ``token``, which the gateway refused, unless a newer one replaced it.

        A token fetched to replace a refused one, and refused before the gateway accepted it
        once, means the gateway refuses every token now: the refresher backs off as after
        the token service rejected the credentials, and calls fail fast meanwhile.
        """
        if self._token is not token:
            return
        self._token = None
        if self._token_replaces_refused and not self._token_accepted:
            self._failed(
                AuthenticationError(
                    "the gateway refused a freshly fetched access token", status_code=403
                ).with_context(endpoint=TOKEN_ENDPOINT)
            )
        else:
            self._refusal_pending = True
            self._wake.set()

    async def _get_slow(self, token: Token | None, now: float) -> Token:
        if not self._in_flight and now < self._retry_time(now):
            # Backing off after a failure: do not add load, use what is left.
            return self._usable_or_raise(token, now)
        finished = self._finished
        self._wake.set()
        with anyio.move_on_after(self._wait_timeout):
            await finished.wait()
        if self._closed:
            raise SessionStateError("the session was closed while this call waited for a token")
        if not finished.is_set():
            raise AuthenticationError(
                f"timed out after {self._wait_timeout:g}s waiting for an access token"
            ).with_context(endpoint=TOKEN_ENDPOINT)
        token = self._token
        now = self._clock()
        if token is not None and now < token.mandatory_at:
            return token
        return self._usable_or_raise(token, now)

    def _usable_or_raise(self, token: Token | None, now: float) -> Token:
        if token is not None and now < token.expires_at:
            return token
        error = self._last_error
        if error is None:
            raise AuthenticationError(
                "the access token expired and no new one is available"
            ).with_context(endpoint=TOKEN_ENDPOINT)
        if not isinstance(error, AuthenticationError):
            raise copy.copy(error)  # a proxy or certificate problem says so itself
        raise AuthenticationError(
            f"no valid access token: {error}", status_code=error.status_code
        ).with_context(endpoint=TOKEN_ENDPOINT)

    def _next_attempt_at(self) -> float:
        now = self._clock()
        if now < self._fetched_at:  # a clock stepped back must not hold the refresher
            self._fetched_at = -math.inf
        spaced = self._fetched_at + MIN_REFRESH_INTERVAL * self._policy.time_scale
        retry_at = max(self._retry_time(now), spaced)
        if self._token is None:
            return retry_at
        return max(self._token.advisory_at, retry_at)

    def _retry_time(self, now: float) -> float:
        # Clamped to the longest backoff from now: an injected clock stepped back after a
        # failure must not lock the session out for the size of the step.
        policy = self._policy
        latest = now + policy.refresh_backoff_max * policy.time_scale
        self._retry_at = min(self._retry_at, latest)
        return self._retry_at

    async def _attempt(self, *, first: bool = False) -> None:
        """Fetch a token; ``first``: the caller gets a failure, so it is not logged."""
        self._in_flight = True
        self._wake = anyio.Event()  # this attempt answers every wake-up asked for so far
        self.fetches += 1
        self._fetched_at = self._clock()
        try:
            access = await self._fetch()
        except CertificateError as exc:
            self._last_error = self._permanent = exc.with_context(endpoint=TOKEN_ENDPOINT)
            if not first:
                logger.error("access token fetch failed and will not be retried: %s", exc)  # noqa: TRY400 - no traceback wanted
        except (AuthenticationError, ProxyRefusedError, TokenServiceUnreachableError) as exc:
            self._failed(exc, announce=not first)
        except Exception as exc:  # noqa: BLE001 - the refresher must outlive any bug here
            self._failed(
                AuthenticationError(f"token fetch failed: {_describe(exc)}").with_context(
                    endpoint=TOKEN_ENDPOINT
                ),
                announce=not first,
            )
        else:
            self._token = self._make_token(access)
            self._token_replaces_refused, self._refusal_pending = self._refusal_pending, False
            self._token_accepted = False
            self._failures = 0
            self._retry_at = -math.inf
            self._last_error = None
        finally:
            self._in_flight = False
            finished, self._finished = self._finished, anyio.Event()
            finished.set()

    def _failed(self, error: _FetchError, *, announce: bool = True) -> None:
        self._failures += 1
        self._last_error = error
        policy = self._policy
        status = getattr(error, "status_code", None)
        if status in (401, 403) or isinstance(error, ProxyRefusedError):
            delay = policy.refresh_backoff_max
        else:
            # Half fixed, half jitter: never zero, so a failing service is not hammered.
            delay = backoff(
                self._failures,
                policy.refresh_backoff_initial,
                policy.refresh_backoff_max,
                random.random(),  # noqa: S311 - jitter, not cryptography
                fixed=0.5,
            )
        delay *= policy.time_scale
        self._retry_at = self._clock() + delay
        self._retry_when_asked = delay <= 0
        if announce:
            logger.warning("access token refresh failed (retrying in %.1fs): %s", delay, error)

    def _make_token(self, access: AccessToken) -> Token:
        now = self._clock()
        lifetime = self._lifetime
        if access.expires is not None and math.isfinite(access.expires) and access.expires > 0:
            lifetime = min(lifetime, max(access.expires, MIN_TOKEN_LIFETIME))
        advisory, jitter, mandatory = refresh_windows(lifetime)
        return Token(
            value=access.access_token,
            advisory_at=now + lifetime - advisory - random.uniform(0, jitter),  # noqa: S311
            mandatory_at=now + lifetime - mandatory,
            expires_at=now + lifetime,
        )


#: How much of a test double's refusal is quoted.
_MAX_QUOTED = 300


def _describe(exc: Exception) -> str:
    """Name an unexpected failure; quote it only when a test double refused the request.

    Mock libraries (respx) refuse an unmocked request with an ``AssertionError`` whose
    message names the URL: the one thing a test author needs. Other messages are not
    quoted (they could hold anything), and nothing is chained (its frames hold the
    request, whose body is the app secret).
    """
    if isinstance(exc, AssertionError) and str(exc):
        return f"{type(exc).__name__}: {str(exc)[:_MAX_QUOTED]}"
    return type(exc).__name__
