"""The SDK's own spans and metrics, through OpenTelemetry's API (the ``otel`` extra).

Without ``opentelemetry-api`` installed every hook is a no-op object: nothing is imported,
nothing recorded. Nothing recorded ever holds a phone number in clear, a token, a secret
or text the platform chose (a result description could quote anything): numbers are
masked, result codes kept only when documented, errors named by type.

Telemetry can never change an outcome: every call into OpenTelemetry (and so into the
user's span processors, samplers and meter providers) is contained. What it raises is
logged (its type, once per type at WARNING) and dropped; the call or token fetch goes on
as if nothing were recorded.
"""

from __future__ import annotations

import functools
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar

import attrs

from ._errors import (
    CCMessagingError,
    NotCreatedError,
    OutcomeUnknownError,
    ResultCode,
    ResultCodeError,
)
from ._outcomes import OutcomeStatus, status_of
from ._version import __version__

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
except ImportError:  # the otel extra is not installed
    otel_context = otel_metrics = otel_trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider, Observation
    from opentelemetry.trace import Span, TracerProvider

    from ._endpoints import Endpoint
    from ._pacing import Pacing

__all__ = ["OTEL_INSTALLED", "CallWatch", "Observer", "Telemetry", "observer"]

logger = logging.getLogger("ccmessaging_async")
P = ParamSpec("P")

#: Whether ``opentelemetry-api`` can be imported.
OTEL_INSTALLED = otel_trace is not None
_SCOPE = "ccmessaging_async"
RequestT = TypeVar("RequestT")
_DOCUMENTED = frozenset({"0", *(code.value for code in ResultCode)})

#: The names of the spans and metrics (README, "Observability").
CALL_SPAN = "ccmessaging.createcall"
TOKEN_SPAN = "ccmessaging.token_fetch"  # noqa: S105 - a span name


@attrs.frozen
class Telemetry:
    """Where the session's spans and metrics go (OpenTelemetry; the ``otel`` extra).

    By default the globally configured providers are used, which are no-ops until an
    OpenTelemetry SDK is set up. ``enabled=False`` records nothing.
    """

    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    enabled: bool = True


_reported: set[type[BaseException]] = set()


def _telemetry_failed(error: Exception) -> None:
    kind = type(error)
    level = logging.DEBUG if kind in _reported else logging.WARNING
    _reported.add(kind)
    # The type only: the text is the user's code's, and may quote what it was given.
    logger.log(level, "telemetry failed (%s) and was skipped; the call goes on", kind.__name__)


def _contained(method: Callable[P, None]) -> Callable[P, None]:
    """Run ``method``; whatever OpenTelemetry or the user's processors raise is dropped."""

    @functools.wraps(method)
    def contained(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - telemetry must never change an outcome
            _telemetry_failed(error)

    return contained


def result_code_label(code: str | None) -> str | None:
    """Return ``code`` if it is ``"0"`` or documented, else ``"other"`` (never free text)."""
    if code is None:
        return None
    return code if code in _DOCUMENTED else "other"


def outcome_of(error: BaseException) -> OutcomeStatus | None:
    """Return the batch status an error means (``None``: a usage error, a cancellation)."""
    if isinstance(error, NotCreatedError | OutcomeUnknownError):
        return status_of(error)
    return None


class _Watch:
    """A context manager around one operation; this base records nothing."""

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class CallWatch(_Watch):
    """What one call reports while it runs; this base reports nothing (no OpenTelemetry)."""

    __slots__ = ()

    def resent(self, error: CCMessagingError, *, refresh_token: bool) -> None:
        """Note that the call is sent again after ``error``."""

    def budget_refused(self, error: CCMessagingError) -> None:
        """Note that a re-send after ``error`` was refused: the retry budget is spent."""

    def finished(self, *, attempts: int, result_code: str | None) -> None:
        """Note a call that got its result (an error raised through the watch is noted by it)."""


class TokenWatch(_Watch):
    """What one token fetch reports; this base reports nothing (no OpenTelemetry)."""

    __slots__ = ()

    def fetched(self, attempts: int) -> None:
        """Note that a token came after ``attempts`` requests."""


class Observer:
    """Hands out watches for calls and token fetches; this base records nothing."""

    __slots__ = ()

    def call(self, endpoint: Endpoint[RequestT, Any], request: RequestT) -> CallWatch:
        """Watch one call of ``endpoint`` with ``request`` (described with numbers masked)."""
        return _NO_CALL

    def token_fetch(self) -> TokenWatch:
        """Watch one token fetch (its re-sends included)."""
        return _NO_TOKEN

    def watch_pacing(self, pacing: Pacing) -> None:
        """Report ``pacing``'s limit (a gauge) while it lives."""

    def throttled(self, *, paused: bool) -> None:
        """Note a throttled answer, and whether it paused the whole batch."""

    def background(self) -> AbstractContextManager[None]:
        """Clear the current span while a background task is started inside.

        The task's spans then start traces of their own instead of growing, for the
        session's whole life, the trace that happened to open it.
        """
        return nullcontext()


_NO_CALL = CallWatch()
_NO_TOKEN = TokenWatch()


def observer(telemetry: Telemetry | None) -> Observer:
    """Return the observer for a session: recording when OpenTelemetry's API is installed."""
    if telemetry is None:
        telemetry = Telemetry()
    if not (OTEL_INSTALLED and telemetry.enabled):
        return Observer()
    try:
        return _OtelObserver(telemetry)
    except Exception as error:  # noqa: BLE001 - a provider that fails records nothing
        _telemetry_failed(error)
        return Observer()


class _OtelObserver(Observer):
    """Records through OpenTelemetry: its instruments are what the watches record into."""

    __slots__ = (
        "budget_refusals",
        "calls",
        "duration",
        "in_flight",
        "pacings",
        "pauses",
        "resends",
        "throttles",
        "token_failures",
        "token_fetches",
        "tracer",
    )

    def __init__(self, telemetry: Telemetry) -> None:
        self.tracer = otel_trace.get_tracer(
            _SCOPE, __version__, tracer_provider=telemetry.tracer_provider
        )
        meter = otel_metrics.get_meter(_SCOPE, __version__, meter_provider=telemetry.meter_provider)
        self.calls = meter.create_counter(
            "ccmessaging.calls", unit="{call}", description="Calls ended, by outcome"
        )
        self.duration = meter.create_histogram(
            "ccmessaging.call.duration",
            unit="s",
            description="Time from a call's start to its outcome, waits and re-sends included",
        )
        self.in_flight = meter.create_up_down_counter(
            "ccmessaging.calls.in_flight", unit="{call}", description="Calls not yet ended"
        )
        self.resends = meter.create_counter(
            "ccmessaging.resends", unit="{request}", description="Requests sent again"
        )
        self.budget_refusals = meter.create_counter(
            "ccmessaging.retry_budget.refusals",
            unit="{request}",
            description="Re-sends refused because the batch's retry budget was spent",
        )
        self.token_fetches = meter.create_counter(
            "ccmessaging.token.fetches", unit="{fetch}", description="Token fetches ended"
        )
        self.token_failures = meter.create_counter(
            "ccmessaging.token.failures", unit="{fetch}", description="Token fetches that failed"
        )
        self.throttles = meter.create_counter(
            "ccmessaging.throttles",
            unit="{answer}",
            description="Answers that said too fast (429, resultCode 10010000002) in batches",
        )
        self.pauses = meter.create_counter(
            "ccmessaging.pauses", unit="{pause}", description="Batches paused for Retry-After"
        )
        self.pacings: weakref.WeakSet[Pacing] = weakref.WeakSet()
        meter.create_observable_gauge(
            "ccmessaging.pace.limit",
            callbacks=[self._limits],
            unit="{call}/s",
            description="Each running batch's limit in calls per second (unlimited: none)",
        )

    def _limits(self, _options: Any) -> Iterator[Observation]:
        for pacing in list(self.pacings):
            rate = pacing.rate
            if rate is not None and not pacing.stopped:
                yield otel_metrics.Observation(rate)

    @_contained
    def watch_pacing(self, pacing: Pacing) -> None:
        self.pacings.add(pacing)

    @_contained
    def throttled(self, *, paused: bool) -> None:
        self.throttles.add(1)
        if paused:
            self.pauses.add(1)

    def call(self, endpoint: Endpoint[RequestT, Any], request: RequestT) -> CallWatch:
        return _OtelCallWatch(self, endpoint.name, endpoint.attributes(request))

    def start_span(self, name: str, attributes: dict[str, Any] | None = None) -> Span:
        """Start a span; a span that does nothing if OpenTelemetry raises."""
        try:
            return self.tracer.start_span(
                name, attributes=attributes, record_exception=False, set_status_on_exception=False
            )
        except Exception as error:  # noqa: BLE001 - a processor's on_start, a sampler
            _telemetry_failed(error)
            return otel_trace.INVALID_SPAN

    def token_fetch(self) -> TokenWatch:
        return _OtelTokenWatch(self)

    @contextmanager
    def background(self) -> Iterator[None]:
        token = otel_context.attach(otel_context.Context())
        try:
            yield
        finally:
            otel_context.detach(token)


def _error_status(span: Span, error_type: str) -> None:
    span.set_attribute("error.type", error_type)
    # The description is the type only: a message may quote what the platform answered.
    span.set_status(otel_trace.StatusCode.ERROR, error_type)


class _OtelCallWatch(CallWatch):
    __slots__ = ("_endpoint", "_observer", "_result_code", "_span", "_span_scope", "_started")

    def __init__(self, observer: _OtelObserver, endpoint: str, attributes: dict[str, str]) -> None:
        self._observer = observer
        self._endpoint = endpoint
        self._result_code: str | None = None
        self._span = observer.start_span(
            CALL_SPAN,
            {"ccmessaging.endpoint": endpoint, "ccmessaging.token_refreshed": False, **attributes},
        )
        self._span_scope = otel_trace.use_span(self._span, end_on_exit=True)
        self._started = time.perf_counter()

    def __enter__(self) -> Self:
        self._enter()
        return self

    @_contained
    def _enter(self) -> None:
        self._span_scope.__enter__()
        self._observer.in_flight.add(1, {"ccmessaging.endpoint": self._endpoint})

    @_contained
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._record_end(exc)
        finally:
            # Ends the span; the exception (if any) is not recorded: its text is not ours.
            self._span_scope.__exit__(None, None, None)

    def _record_end(self, exc: BaseException | None) -> None:
        span = self._span
        labels: dict[str, Any] = {"ccmessaging.endpoint": self._endpoint}
        if exc is None:
            outcome: OutcomeStatus | None = OutcomeStatus.SUCCEEDED
        else:
            outcome = outcome_of(exc)
            error_type = type(exc).__name__
            labels["error.type"] = error_type
            _error_status(span, error_type)
            if isinstance(exc, CCMessagingError):
                span.set_attribute("ccmessaging.attempts", exc.attempts)
            if isinstance(exc, ResultCodeError):
                self._result_code = result_code_label(exc.code)
        if outcome is not None:
            labels["ccmessaging.outcome"] = outcome.value
            span.set_attribute("ccmessaging.outcome", outcome.value)
        if self._result_code is not None:
            labels["ccmessaging.result_code"] = self._result_code
            span.set_attribute("ccmessaging.result_code", self._result_code)
        observer = self._observer
        observer.in_flight.add(-1, {"ccmessaging.endpoint": self._endpoint})
        observer.calls.add(1, labels)
        observer.duration.record(time.perf_counter() - self._started, labels)

    @_contained
    def resent(self, error: CCMessagingError, *, refresh_token: bool) -> None:
        reason = "token_refused" if refresh_token else type(error).__name__
        if refresh_token:
            self._span.set_attribute("ccmessaging.token_refreshed", True)
        self._span.add_event("ccmessaging.resend", {"ccmessaging.resend.reason": reason})
        self._observer.resends.add(
            1, {"ccmessaging.endpoint": self._endpoint, "ccmessaging.resend.reason": reason}
        )

    @_contained
    def budget_refused(self, error: CCMessagingError) -> None:
        error_type = type(error).__name__
        self._span.add_event("ccmessaging.retry_budget.refused", {"error.type": error_type})
        self._observer.budget_refusals.add(1, {"ccmessaging.endpoint": self._endpoint})

    @_contained
    def finished(self, *, attempts: int, result_code: str | None) -> None:
        self._span.set_attribute("ccmessaging.attempts", attempts)
        self._result_code = result_code_label(result_code)


class _OtelTokenWatch(TokenWatch):
    __slots__ = ("_observer", "_scope", "_span")

    def __init__(self, observer: _OtelObserver) -> None:
        self._observer = observer
        self._span = observer.start_span(TOKEN_SPAN)
        self._scope = otel_trace.use_span(self._span, end_on_exit=True)

    def __enter__(self) -> Self:
        self._enter()
        return self

    @_contained
    def _enter(self) -> None:
        self._scope.__enter__()

    @_contained
    def fetched(self, attempts: int) -> None:
        self._span.set_attribute("ccmessaging.attempts", attempts)

    @_contained
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._record_end(exc)
        finally:
            self._scope.__exit__(None, None, None)

    def _record_end(self, exc: BaseException | None) -> None:
        fetches = self._observer.token_fetches
        if exc is None:
            fetches.add(1, {"ccmessaging.token.outcome": "ok"})
        else:
            error_type = type(exc).__name__
            _error_status(self._span, error_type)
            if isinstance(exc, CCMessagingError):
                self._span.set_attribute("ccmessaging.attempts", exc.attempts)
                status_code = getattr(exc, "status_code", None)
                if isinstance(status_code, int):
                    self._span.set_attribute("http.response.status_code", status_code)
            fetches.add(1, {"ccmessaging.token.outcome": "failed"})
            self._observer.token_failures.add(1, {"error.type": error_type})
