"""AsyncSession: one connection pool, one token manager, the createcall interface."""

from __future__ import annotations

import enum
import ipaddress
import logging
import os
import ssl
import sys
import time
import warnings
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc

from . import _http
from ._auth import MAX_TOKEN_LIFETIME, TOKEN_PATH, Credentials, TokenFetcher, TokenManager
from ._batch import CallOutcome, run_batch
from ._config import DEFAULT_LIMITS, DEFAULT_TIMEOUT, RetryPolicy
from ._endpoints import CREATE_CALL, Sender
from ._errors import ConfigurationError, SessionStateError
from ._models import CreateCallRequest, CreateCallResult

__all__ = ["AsyncSession"]

logger = logging.getLogger("ccmessaging_async")

ENV_BASE_URL = "CCMESSAGING_BASE_URL"
ENV_APP_KEY = "CCMESSAGING_APP_KEY"
ENV_APP_SECRET = "CCMESSAGING_APP_SECRET"  # noqa: S105 - a variable name, not a secret
ENV_LOG = "CCMESSAGING_LOG"


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


def _check_base_url(base_url: str, allow_insecure_http: bool) -> str:
    if not isinstance(base_url, str) or not base_url:
        raise ConfigurationError("base_url must be a non-empty string such as https://host")
    try:
        url = _http.URL(base_url)
    except Exception as exc:  # noqa: BLE001 - httpx raises several types for bad URLs
        raise ConfigurationError(f"base_url is not a valid URL: {type(exc).__name__}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError("base_url must look like https://host[:port][/prefix]")
    if url.query or url.fragment:
        raise ConfigurationError("base_url must not have a query or a fragment")
    if url.scheme == "http" and not allow_insecure_http and not _is_loopback(url.host):
        raise ConfigurationError(
            "base_url uses plain http to a non-loopback host, which would send the app "
            "secret and tokens in clear text; use https, or pass allow_insecure_http=True"
        )
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ssl_verify(
    verify: ssl.SSLContext | str | os.PathLike[str] | bool,
) -> ssl.SSLContext | bool:
    """Turn a CA bundle file or folder into an SSL context (httpx deprecates paths)."""
    if isinstance(verify, ssl.SSLContext | bool):
        return verify
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=os.fspath(verify))
    if not os.path.isfile(verify):
        raise ConfigurationError(f"verify= names no CA bundle file or folder: {verify!s}")
    return ssl.create_default_context(cafile=os.fspath(verify))


def _configure_env_logging() -> None:
    level = os.environ.get(ENV_LOG, "").strip().upper()
    if not level:
        return
    package_logger = logging.getLogger("ccmessaging_async")
    if level not in logging.getLevelNamesMapping():
        return
    package_logger.setLevel(level)
    if not package_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package_logger.addHandler(handler)


class AsyncSession:
    """A client of the CC-Messaging createcall interface.

    Use it as ``async with AsyncSession(...) as session``: entering fetches the first
    access token and starts the background refresher; leaving stops it and closes the
    connection pool. Every call goes through one pooled ``httpx.AsyncClient``.

    ``base_url`` is ``https://{domain}`` (plain http only to loopback, or with
    ``allow_insecure_http=True``). ``token_lifetime`` is what the token service is asked
    for (at most 3600 s). ``token_timeout`` bounds how long a call waits for a token.
    Pass ``client`` or ``transport`` to bring your own (a client you pass is not closed);
    ``timeout``, ``limits``, ``http2`` and ``verify`` (``False``, an ``ssl.SSLContext``,
    or the path of a CA bundle file or folder) configure the client otherwise.
    """

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        token_lifetime: float = MAX_TOKEN_LIFETIME,
        token_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        timeout: _http.Timeout | float = DEFAULT_TIMEOUT,
        limits: _http.Limits = DEFAULT_LIMITS,
        http2: bool = False,
        verify: ssl.SSLContext | str | os.PathLike[str] | bool = True,
        client: _http.AsyncClient | None = None,
        transport: _http.AsyncBaseTransport | None = None,
        allow_insecure_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = _check_base_url(base_url, allow_insecure_http)
        if not isinstance(app_key, str) or not app_key:
            raise ConfigurationError("app_key must be a non-empty string")
        if not isinstance(app_secret, str) or not app_secret:
            raise ConfigurationError("app_secret must be a non-empty string")
        if not 0 < token_lifetime <= MAX_TOKEN_LIFETIME:
            raise ConfigurationError(
                f"token_lifetime must be in (0, {MAX_TOKEN_LIFETIME:g}] seconds"
            )
        if not token_timeout > 0:
            raise ConfigurationError("token_timeout must be > 0 seconds")
        if client is not None and transport is not None:
            raise ConfigurationError("pass either client or transport, not both")
        _configure_env_logging()
        self._credentials = Credentials(app_key, app_secret)
        self._retry = retry if retry is not None else RetryPolicy()
        self._owns_client = client is None
        if client is None:
            client = _http.AsyncClient(
                timeout=timeout,
                limits=limits,
                http2=http2,
                verify=_ssl_verify(verify),
                transport=transport,
                follow_redirects=False,
                trust_env=False,
            )
        self._client = client
        self._limits = limits
        self._tokens = TokenManager(
            TokenFetcher(
                client,
                self._base_url + TOKEN_PATH,
                self._credentials,
                token_lifetime,
                self._retry,
            ),
            lifetime=token_lifetime,
            wait_timeout=token_timeout,
            policy=self._retry,
            clock=clock,
        )
        self._sender = Sender(
            client,
            self._base_url,
            app_key,
            self._tokens,
            self._retry,
            # With a client of its own the session knows the pool's size and that no
            # hooks or auth need AsyncClient.send; a user's client gets the full path.
            max_in_flight=limits.max_connections if self._owns_client else None,
            direct=self._owns_client,
            fast=getattr(transport, "exchange", None) if self._owns_client else None,
        )
        self._state = _State.UNOPENED
        self._stack: AsyncExitStack | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> AsyncSession:
        """Build a session from ``CCMESSAGING_BASE_URL``, ``_APP_KEY`` and ``_APP_SECRET``.

        Other keyword arguments are passed to the constructor.
        """
        env = os.environ if environ is None else environ
        values = []
        for name in (ENV_BASE_URL, ENV_APP_KEY, ENV_APP_SECRET):
            value = env.get(name, "")
            if not value:
                raise ConfigurationError(f"environment variable {name} is not set")
            values.append(value)
        return cls(*values, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<AsyncSession {self._state.value} {self._base_url} "
            f"app_key={self._credentials.app_key!r}>"
        )

    @property
    def base_url(self) -> str:
        """The platform's base URL, without a trailing slash."""
        return self._base_url

    @property
    def limits(self) -> _http.Limits:
        """The connection-pool limits of a client the session built."""
        return self._limits

    @property
    def token_fetches(self) -> int:
        """How many times this session asked the token service for a token."""
        return self._tokens.fetches

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            raise SessionStateError(
                f"an AsyncSession can be opened once; this one is {self._state.value}"
            )
        self._state = _State.OPEN
        try:
            async with AsyncExitStack() as stack:
                if self._owns_client:
                    await stack.enter_async_context(self._client)
                await self._tokens.start()
                task_group = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(task_group.cancel_scope.cancel)
                task_group.start_soon(self._tokens.run, name="ccmessaging-token-refresher")
                self._task_group = task_group
                self._stack = stack.pop_all()
        except BaseException:
            self._state = _State.CLOSED
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the token refresher and close the connection pool (if the session owns it)."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_state", None) is _State.OPEN:
            _warn(
                "AsyncSession was not closed; use 'async with' or await aclose()",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            if self._state is _State.UNOPENED:
                raise SessionStateError("use the session inside 'async with AsyncSession(...)'")
            raise SessionStateError("this AsyncSession is closed")

    async def create_call(self, request: CreateCallRequest) -> CreateCallResult:
        """Create one anonymous call and return what the platform answered.

        Raises :class:`InvalidRequestError` (nothing sent), :class:`ResultCodeError`,
        :class:`AuthenticationError`, :class:`HTTPStatusError`, :class:`NotSentError` or
        :class:`OutcomeUnknownError` (the call may exist: do not blindly re-send).
        """
        self._check_open()
        return await self._sender.send(CREATE_CALL, request)

    def create_calls(
        self,
        requests: Iterable[CreateCallRequest] | AsyncIterable[CreateCallRequest],
        *,
        concurrency: int = 50,
        rate: float | None = None,
        ordered: bool = False,
        retry_budget: int | None = None,
        on_send: Callable[[int, CreateCallRequest], object] | None = None,
    ) -> AsyncGenerator[CallOutcome, None]:
        """Create many calls; yield one :class:`CallOutcome` per input.

        ``requests`` (sync or async iterable) is consumed lazily: the next input is pulled
        only when one of the ``concurrency`` slots is free. ``rate`` caps the starts per
        second, evenly spaced. Outcomes come as calls finish, or in input order with
        ``ordered=True``. One failing call never stops the batch. Re-sends after
        not-sent failures and 429s draw from one budget of ``retry_budget`` re-sends
        (default ``max(10, concurrency)``, replenished by successes) shared by the whole
        batch. ``on_send(index, request)`` (a function or a coroutine function) runs once
        per input at the last moment before its request can be written: the call holds a
        valid token and an in-flight slot, so a journal that records it there records only
        calls that may really leave. If it raises, that input fails unsent.

        Keep ``concurrency`` at or below the pool's ``max_connections`` (100 by default)
        so requests never queue for a connection. Stopping the iteration cancels the
        calls in flight and waits for them to end.
        """
        self._check_open()
        assert self._task_group is not None  # noqa: S101 - set whenever the state is OPEN
        return run_batch(
            self._sender,
            self._task_group,
            requests,
            concurrency=concurrency,
            rate=rate,
            ordered=ordered,
            retry_budget=retry_budget,
            on_send=on_send,
        )
