"""AsyncSession: one connection pool, one token manager, the createcall interface."""

from __future__ import annotations

import asyncio
import datetime
import enum
import logging
import os
import sys
import warnings
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
)
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self, Unpack

import anyio
import anyio.abc

from . import _http
from ._batch import check_batch_options, run_batch
from ._call_records import CALL_RECORDS, read_records
from ._client import build_client
from ._config import (
    ENV_TOKEN_URL,
    check_deadline,
    read_env,
)
from ._endpoints import CREATE_CALL
from ._errors import ConfigurationError, SessionStateError
from ._exchange import open_exchange
from ._logging import configure_from_env
from ._models import (
    MAX_PAGE_SIZE,
    CallRecord,
    CallRecordsPage,
    CallRecordsQuery,
    CallTaskType,
    CreateCallRequest,
    CreateCallResult,
)
from ._outcomes import CallOutcome
from ._pacing import Pacing
from ._sender import Sender
from ._settings import SessionOptions, Settings
from ._telemetry import observer
from ._token_manager import TokenManager
from ._token_service import Credentials, TokenFetcher

__all__ = ["AsyncSession"]

logger = logging.getLogger("ccmessaging_async")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


def _running_loop() -> object:
    """Return the event loop running this task: asyncio's loop, or trio's run token."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        trio = sys.modules.get("trio")
        return None if trio is None else trio.lowlevel.current_trio_token()


class AsyncSession:
    """A client of the CC-Messaging createcall interface.

    Use it as ``async with AsyncSession(...) as session``: entering fetches the first
    access token and starts the background refresher; leaving stops it and closes the
    connection pool. Every call goes through one pooled ``httpx.AsyncClient``.

    ``base_url`` is ``https://{domain}`` (plain http only to loopback, or with
    ``allow_insecure_http=True``); ``token_url`` is the token service's full URL when it
    has an address of its own (default: ``base_url`` + the documented
    ``/apigovernance/api/oauth/tokenByAkSk``).
    ``headers`` are sent on every request (token and createcall), such as a tenant's
    ``X-TenantSpaceID``; they cannot replace the headers the SDK sets. ``proxy`` (an
    ``http://`` or ``https://`` URL, credentials allowed) carries the token request and
    every createcall; ``trust_env=True`` reads ``HTTPS_PROXY``/``NO_PROXY`` and
    ``SSL_CERT_FILE`` as curl does (off by default). ``telemetry`` says where spans and
    metrics go (:class:`Telemetry`; OpenTelemetry's global providers by default, when the
    ``otel`` extra is installed). ``token`` sets how
    tokens are fetched and refreshed (:class:`TokenPolicy`), ``retry`` when a createcall is
    sent again (:class:`RetryPolicy`).
    Pass ``client`` or ``transport`` to bring your own (a client you pass is not closed);
    ``timeout``, ``limits``, ``http2`` and ``verify`` (``False``, an ``ssl.SSLContext``,
    or the path of a CA bundle file or folder) configure the client otherwise.

    The settings (:class:`SessionOptions`, all keyword-only) default to: ``timeout``
    connect 5 s, read 15 s, write 10 s, pool 10 s; ``limits`` 100 connections, all kept
    alive, idle ones closed after 4 s; ``token=TokenPolicy()``, ``retry=RetryPolicy()``;
    ``http2=False``, ``verify=True``, ``allow_insecure_http=False``, ``trust_env=False``;
    no ``client``, ``transport``, ``token_url``, ``headers``, ``proxy`` or ``telemetry``.
    They are checked before anything is sent (:class:`ConfigurationError`).
    """

    def __init__(
        self, base_url: str, app_key: str, app_secret: str, **options: Unpack[SessionOptions]
    ) -> None:
        self._settings = settings = Settings.of(base_url, app_key, app_secret, **options)
        configure_from_env()
        credentials = Credentials(settings.app_key, settings.app_secret)
        client, limits, own = settings.client, settings.limits, None
        if client is None:
            own = build_client(
                settings.base_url,
                transport=settings.transport,
                proxy=settings.proxy,
                trust_env=settings.trust_env,
                verify=settings.verify,
                http2=settings.http2,
                limits=limits,
                timeout=settings.timeout,
            )
            client, limits = own.client, own.limits
        self._owns_client = own is not None
        self._client = client
        self._limits = limits  # the pool's, when the session built the client
        self._observer = watching = observer(settings.telemetry)
        self._tokens = TokenManager(
            TokenFetcher(
                client,
                settings.token_url,
                credentials,
                settings.token,
                settings.headers,
                observer=watching,
            ),
            settings.token,
        )
        self._sender = Sender(
            client,
            settings.base_url,
            settings.app_key,
            self._tokens,
            settings.retry,
            exchange=open_exchange(client, own, settings.transport),
            extra_headers=settings.headers,
            observer=watching,
        )
        self._state = _State.UNOPENED
        self._loop: object = None  # the event loop it was opened on
        self._stack: AsyncExitStack | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **options: Unpack[SessionOptions]
    ) -> AsyncSession:
        """Build a session from ``CCMESSAGING_BASE_URL``, ``_APP_KEY`` and ``_APP_SECRET``.

        ``CCMESSAGING_TOKEN_URL``, when set, is the ``token_url`` (unless one is given).
        The other settings are the constructor's. A missing variable raises
        :class:`ConfigurationError` naming every one that is missing.
        """
        env = os.environ if environ is None else environ
        if options.get("token_url") is None and env.get(ENV_TOKEN_URL):
            options["token_url"] = env[ENV_TOKEN_URL]
        return cls(*read_env(env), **options)

    def __repr__(self) -> str:
        return (
            f"<AsyncSession {self._state.value} {self._settings.base_url} "
            f"app_key={self._settings.app_key!r}>"
        )

    @property
    def base_url(self) -> str:
        """The platform's base URL, without a trailing slash."""
        return self._settings.base_url

    @property
    def token_url(self) -> str:
        """The token service's full URL."""
        return self._settings.token_url

    @property
    def client(self) -> _http.AsyncClient:
        """The ``httpx.AsyncClient`` every request goes through (to instrument it, say).

        Send nothing through it yourself, and change none of its settings.
        """
        return self._client

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
        self._loop = _running_loop()
        try:
            async with AsyncExitStack() as stack:
                if self._owns_client:
                    await stack.enter_async_context(self._client)
                await self._tokens.start()
                task_group = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(task_group.cancel_scope.cancel)
                with self._observer.background():
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
        self._sender.close()  # calls waiting for a token or a slot end now, unsent
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
        if _running_loop() is not self._loop:
            # Its pool, locks and refresher belong to that loop: a call from another one
            # would be sent and then fail, so it is refused before anything is sent.
            raise SessionStateError(
                "this AsyncSession was opened on another event loop (or thread); open one "
                "session per event loop"
            )

    async def create_call(
        self,
        request: CreateCallRequest,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline with a typed answer
    ) -> CreateCallResult:
        """Create one anonymous call and return what the platform answered.

        Raises a :class:`NotCreatedError` when the call certainly does not exist (safe to
        send again), an :class:`OutcomeUnknownError` when it may (never re-send blindly),
        or a :class:`UsageError` for a session used outside ``async with``.

        ``timeout`` (seconds) bounds the whole call — waiting for a token and a connection,
        re-sends included. When it passes: :class:`NotSentError` if the request never left
        completely, :class:`ConnectionLostError` if it may have; nothing is sent after it.
        """
        self._check_open()
        deadline = check_deadline("timeout", timeout)
        return (await self._sender.send(CREATE_CALL, request, deadline=deadline)).result

    def call_records(
        self,
        start: datetime.datetime,
        end: datetime.datetime,
        *,
        caller: str | None = None,
        task_type: CallTaskType | int = CallTaskType.ANONYMOUS_OUTBOUND,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[CallRecord]:
        """Yield the platform's records of the calls from ``start`` to ``end`` (SPEC section 5).

        ``start`` and ``end`` are timezone-aware; a range longer than 7 days is asked as
        several queries, each paged (``page_size`` records a page, at most 100). By default
        only anonymous outbound calls (what :meth:`create_call` creates); ``caller`` keeps
        those from one calling number. Reading changes nothing, so every failure that may
        be retried is (token refresh, connections, 5xx, an undecodable answer), within the
        session's retry policy. Raises :class:`CallRecordsError` for a ``retCode`` other
        than ``"0"``, :class:`InvalidRequestError` for bad arguments before anything is sent.

        A record found proves the call was created; a call may take minutes to appear, so
        a record not found proves nothing until long after the call.
        """
        self._check_open()

        async def send(query: CallRecordsQuery) -> CallRecordsPage:
            return (await self._sender.send(CALL_RECORDS, query)).result

        return read_records(
            send, start, end, caller=caller, task_type=task_type, page_size=page_size
        )

    def create_calls(
        self,
        requests: Iterable[CreateCallRequest] | AsyncIterable[CreateCallRequest],
        *,
        concurrency: int = 50,
        rate: float | None = None,
        ordered: bool = False,
        retry_budget: int | None = None,
        on_send: Callable[[int, CreateCallRequest], object] | None = None,
        call_timeout: float | None = None,
        max_throttle_wait: float = 600.0,
        pacing: Pacing | None = None,
    ) -> AsyncGenerator[CallOutcome, None]:
        """Create many calls; yield one :class:`CallOutcome` per input.

        ``requests`` (sync or async iterable) is consumed lazily: the next input is pulled
        only when one of the ``concurrency`` slots is free. ``rate`` caps the starts per
        second, evenly spaced. Outcomes come as calls finish, or in input order with
        ``ordered=True``. One failing call never stops the batch.

        Throttling slows the batch and fails no input (SPEC section 4): a call answered
        429 or resultCode ``10010000002`` was not created, so it waits and goes again,
        while the whole batch's pace drops, pauses for ``Retry-After``, and climbs back
        (never above ``rate``; see :class:`Pacing`, which ``pacing=`` may give instead of
        ``rate`` to watch or stop the pace). If the platform accepts nothing for
        ``max_throttle_wait`` seconds while throttling, the batch stops taking inputs: the
        inputs in hand end with their :class:`ThrottledError`, then the iteration raises
        :class:`ThrottlingTimeoutError`. Re-sends after not-sent failures draw from one
        budget of ``retry_budget`` re-sends (default ``max(10, concurrency)``,
        replenished by successes) shared by the whole batch.

        ``on_send(index, request)`` (a function or a coroutine function) runs at the last
        moment before a request can be written: the call holds a valid token, an
        in-flight slot and its turn in the pace, so a journal that records it there records
        only calls that may really leave. It runs again before each re-send of a throttled
        call. If it raises, that input fails unsent.
        ``call_timeout`` bounds each input as ``create_call(timeout=...)`` does, from when
        it is taken up (its waits while throttled included); an input past it ends
        ``FAILED`` or ``UNKNOWN`` accordingly.

        Keep ``concurrency`` at or below the pool's ``max_connections`` (100 by default)
        so requests never queue for a connection. Stopping the iteration cancels the
        calls in flight and waits for them to end.
        """
        self._check_open()
        check_batch_options(concurrency, rate, retry_budget)
        if pacing is None:
            pacing = Pacing(rate, max_throttle_wait=max_throttle_wait)
        elif rate is not None:
            raise ConfigurationError("give rate= or pacing=, not both (Pacing takes the rate)")
        assert self._task_group is not None  # noqa: S101 - set whenever the state is OPEN
        return run_batch(
            self._sender,
            self._task_group,
            requests,
            concurrency=concurrency,
            pacing=pacing,
            ordered=ordered,
            retry_budget=retry_budget,
            on_send=on_send,
            call_timeout=check_deadline("call_timeout", call_timeout),
        )
