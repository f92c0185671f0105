"""Validated, frozen settings shared by the session, the token manager and the batch engine."""

from __future__ import annotations

import random

import attrs

from . import _http

__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "RetryPolicy", "backoff_delay"]

#: connect 5 s (a healthy gateway answers a SYN in milliseconds), read 15 s (createcall sets
#: up a call task; the platform answers within seconds), write 10 s, pool 10 s.
DEFAULT_TIMEOUT = _http.Timeout(connect=5.0, read=15.0, write=10.0, pool=10.0)

#: Keep every connection alive (httpx keeps only 20 of 100, which churns under load), and
#: let idle ones go after 4 s, before common server idle timeouts (uvicorn: 5 s) close them.
DEFAULT_LIMITS = _http.Limits(
    max_connections=100, max_keepalive_connections=100, keepalive_expiry=4.0
)


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how the SDK re-sends, within what SPEC section 3 allows.

    A createcall is only re-sent when the platform certainly did not act on it: the
    connection could not be made or taken from the pool, or the gateway answered 429.
    A token refused by the gateway (401/403) always gets exactly one refresh and one
    re-send, outside this policy.
    """

    #: Re-sends of one createcall after a not-sent failure or a 429 (so at most 1 + this
    #: many sends). 2 rides out a brief connection blip without piling on an outage.
    max_resends: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    #: First backoff delay in seconds; doubles per attempt, with full jitter.
    backoff_initial: float = attrs.field(default=0.2, validator=_non_negative)
    #: Longest backoff delay between re-sends, in seconds.
    backoff_max: float = attrs.field(default=5.0, validator=_non_negative)
    #: A 429 asking to wait longer than this many seconds is not waited for.
    max_retry_after: float = attrs.field(default=30.0, validator=_non_negative)
    #: Sends of one token request (it is idempotent) on connection errors, 429 and 5xx.
    token_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    #: First delay before the background refresher tries again after a failed refresh.
    token_backoff_initial: float = attrs.field(default=1.0, validator=_positive)
    #: Longest delay between background refresh attempts after failures, in seconds; also
    #: the pause after the token service rejects the credentials, so they are not hammered.
    token_backoff_max: float = attrs.field(default=30.0, validator=_positive)


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Capped exponential backoff with full jitter for the ``attempt``-th retry (from 1)."""
    ceiling = min(maximum, initial * (2 ** min(attempt - 1, 32)))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
