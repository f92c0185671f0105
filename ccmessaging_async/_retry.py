"""Whether and when to send a createcall again: SPEC section 3 as a pure decision.

:func:`decide` takes what happened to one send (a typed error) and the call's retry state
and returns a :class:`Resend` or the final error. It does no I/O and draws no random
number, so every row of SPEC section 3 is a line of a test table. :func:`backoff` holds
every delay formula of the SDK; :class:`RetryBudget` is the re-send allowance a batch
shares.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from ._errors import (
    AuthenticationError,
    CCMessagingError,
    ConfigurationError,
    NotSentError,
    OutcomeUnknownError,
    ThrottledError,
)

#: An attrs validator.
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]

__all__ = [
    "Resend",
    "RetryBudget",
    "RetryPolicy",
    "Validator",
    "backoff",
    "decide",
    "finite_at_least",
]

#: Exponents above this give delays beyond any sane maximum; capping keeps 2**n finite.
_MAX_EXPONENT = 64


def finite_at_least(minimum: float, *, strict: bool = False) -> Validator:
    """Return an attrs validator: a finite number >= ``minimum`` (> with ``strict``)."""
    relation = ">" if strict else ">="

    def check(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
        ok = isinstance(value, int | float) and math.isfinite(value)
        if not ok or value < minimum or (strict and value == minimum):
            raise ConfigurationError(
                f"{attribute.name} must be a finite number {relation} {minimum:g}, got {value!r}"
            )

    return check


def _count_at_least(minimum: int) -> Validator:
    def check(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigurationError(f"{attribute.name} must be an int >= {minimum}, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how the SDK re-sends a createcall, within what SPEC section 3 allows.

    A createcall is only re-sent when the platform certainly did not act on it: the
    request never fully left (no connection, no pool slot, an incomplete write), or the
    gateway answered 429. A token refused by the gateway (401/403) always gets exactly one
    refresh and one re-send, outside this policy. Token settings live in
    :class:`TokenPolicy`.
    """

    #: Re-sends of one createcall after a not-sent failure or a 429 (so at most 1 + this
    #: many sends). 2 rides out a brief connection blip without piling on an outage.
    max_resends: int = attrs.field(default=2, validator=_count_at_least(0))
    #: First backoff delay in seconds; doubles per attempt, with full jitter.
    backoff_initial: float = attrs.field(default=0.2, validator=finite_at_least(0))
    #: Longest backoff delay between re-sends, in seconds.
    backoff_max: float = attrs.field(default=5.0, validator=finite_at_least(0))
    #: A 429 asking to wait longer than this many seconds is not waited for.
    max_retry_after: float = attrs.field(default=30.0, validator=finite_at_least(0))
    #: Multiplies every wait (backoff and Retry-After): 0 in tests, 1 otherwise.
    time_scale: float = attrs.field(default=1.0, validator=finite_at_least(0))

    @classmethod
    def for_tests(cls, *, max_resends: int = 2) -> RetryPolicy:
        """Return a policy that decides as the default one does, and never waits."""
        return cls(max_resends=max_resends, time_scale=0)


def backoff(
    attempt: int, initial: float, maximum: float, draw: float, *, fixed: float = 0
) -> float:
    """Return the delay before the ``attempt``-th retry (from 1): the SDK's one backoff formula.

    The ceiling doubles from ``initial`` up to ``maximum``; ``draw`` (in [0, 1], the caller's
    random number) places the delay between ``fixed * ceiling`` and the ceiling: ``fixed=0``
    is full jitter, ``fixed=0.5`` never waits less than half. Safe for any ``attempt``.
    """
    exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
    ceiling = min(maximum, initial * 2.0**exponent)
    return ceiling * (fixed + (1 - fixed) * min(max(draw, 0.0), 1.0))


@attrs.frozen(slots=True)
class Resend:
    """Send the request again after ``delay`` seconds."""

    delay: float
    #: The re-send draws one unit from the batch's :class:`RetryBudget`.
    spends_budget: bool
    #: Send with a fresh token (the sender dropped the one the gateway refused).
    refresh_token: bool = False


def decide(
    happened: CCMessagingError,
    *,
    resends: int,
    token_refreshed: bool,
    budget_left: bool,
    policy: RetryPolicy,
    draw: float,
    paced: bool = False,
    idempotent: bool = False,
) -> Resend | CCMessagingError:
    """Decide what follows one failed send of a createcall: a :class:`Resend`, or ``happened``.

    ``happened`` is the typed error the send ended in; ``resends`` counts the re-sends so far
    (token refreshes excluded), ``token_refreshed`` says the one refresh was used, and
    ``budget_left`` whether the batch's budget can pay for one more re-send. ``draw`` is a
    random number in [0, 1] for the jitter. ``paced``: a batch paces throttled calls
    itself (:mod:`._pacing`), so a throttle is handed back to it at once. ``idempotent``:
    a request that may be sent twice (a read), so an uncertain outcome is re-sent too.
    """
    if isinstance(happened, AuthenticationError):
        # A gateway 401/403 on createcall: the platform did not act on it (SPEC section 3).
        return happened if token_refreshed else Resend(0.0, spends_budget=False, refresh_token=True)
    throttled = isinstance(happened, ThrottledError)
    if throttled and paced:
        return happened
    again = throttled or isinstance(happened, NotSentError)
    again = again or (idempotent and isinstance(happened, OutcomeUnknownError))
    if not again or resends >= policy.max_resends:
        return happened
    if not budget_left:
        # Every re-send is paid from the batch's budget, so an outage cannot multiply the
        # load, whatever Retry-After says (0, or a date in the past, would not slow it).
        return happened
    retry_after = getattr(happened, "retry_after", None) if throttled or idempotent else None
    if retry_after is None:
        delay = backoff(resends + 1, policy.backoff_initial, policy.backoff_max, draw)
    elif retry_after > policy.max_retry_after:
        return happened
    else:
        delay = retry_after  # the platform said when to come back: no backoff on top
    return Resend(delay * policy.time_scale, spends_budget=True)


class RetryBudget:
    """Re-sends shared by a whole batch, so an outage cannot multiply the load.

    Each re-send spends one unit; each success returns a fraction of one, up to the
    capacity (botocore's retry quota works the same way). Counted in thousandths, so ten
    successes at 0.1 earn exactly one re-send back.
    """

    _SCALE = 1000

    def __init__(self, capacity: int, refill_per_success: float = 0.1) -> None:
        self.capacity = capacity
        self._available = capacity * self._SCALE
        self._refill = round(refill_per_success * self._SCALE)

    def __repr__(self) -> str:
        return f"<RetryBudget {self._available / self._SCALE:.1f}/{self.capacity}>"

    @property
    def can_spend(self) -> bool:
        """Whether one more re-send can be paid for."""
        return self._available >= self._SCALE

    def spend(self) -> None:
        """Pay for one re-send (check :attr:`can_spend` first)."""
        self._available = max(0, self._available - self._SCALE)

    def refund(self) -> None:
        """Give back part of a re-send after a success."""
        self._available = min(self.capacity * self._SCALE, self._available + self._refill)
