"""TokenPolicy: every setting of how the SDK gets, keeps and refreshes its access token."""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from ._errors import ConfigurationError
from ._retry import finite_at_least

__all__ = ["MAX_TOKEN_LIFETIME", "MIN_REFRESH_INTERVAL", "MIN_TOKEN_LIFETIME", "TokenPolicy"]

#: The token service's documented maximum lifetime, in seconds.
MAX_TOKEN_LIFETIME = 3600.0
#: A token is kept at least this long (or the asked lifetime, if shorter) whatever its
#: ``Expires`` says: a service answering ``0.001`` must not be asked again on every call.
#: A token the gateway refuses before then is replaced at once (SPEC section 3).
MIN_TOKEN_LIFETIME = 30.0
#: The refresher starts a fetch at most once per this many seconds.
MIN_REFRESH_INTERVAL = 1.0


def _lifetime(_inst: object, _attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or not 0 < value <= MAX_TOKEN_LIFETIME:
        raise ConfigurationError(f"lifetime must be in (0, {MAX_TOKEN_LIFETIME:g}] seconds")


def _attempts(_inst: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"attempts must be an int >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class TokenPolicy:
    """How the session asks ``tokenByAkSk`` for tokens and refreshes them.

    The token request is idempotent, so it is retried freely within ``attempts``; a
    background refresher renews the token ahead of expiry and backs off after failures
    (never zero outside tests, so a failing token service is not hammered).
    """

    #: The lifetime asked of the token service, in seconds (at most 3600).
    lifetime: float = attrs.field(default=MAX_TOKEN_LIFETIME, validator=_lifetime)
    #: The longest a call waits for a token before :class:`AuthenticationError`.
    timeout: float = attrs.field(default=30.0, validator=finite_at_least(0, strict=True))
    #: Sends of one token request on connection errors, 429 and 5xx.
    attempts: int = attrs.field(default=3, validator=_attempts)
    #: First delay between those sends; doubles per send, with full jitter.
    retry_backoff_initial: float = attrs.field(default=0.2, validator=finite_at_least(0))
    #: Longest delay between those sends.
    retry_backoff_max: float = attrs.field(default=5.0, validator=finite_at_least(0))
    #: A 429 from the token service asking to wait longer than this is not waited for.
    max_retry_after: float = attrs.field(default=30.0, validator=finite_at_least(0))
    #: First delay before the refresher tries again after a failed refresh.
    refresh_backoff_initial: float = attrs.field(
        default=1.0, validator=finite_at_least(0, strict=True)
    )
    #: Longest delay between refresh attempts after failures; also the pause after the
    #: token service rejects the credentials, so they are not hammered.
    refresh_backoff_max: float = attrs.field(
        default=30.0, validator=finite_at_least(0, strict=True)
    )
    #: Multiplies every wait (backoffs, Retry-After): 0 in tests, 1 otherwise.
    time_scale: float = attrs.field(default=1.0, validator=finite_at_least(0))
    #: The monotonic clock the refresh windows are measured on (a fake one in tests).
    clock: Callable[[], float] = attrs.field(default=time.monotonic, eq=False)

    @classmethod
    def for_tests(
        cls,
        *,
        lifetime: float = MAX_TOKEN_LIFETIME,
        timeout: float = 30.0,
        attempts: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> TokenPolicy:
        """Return a policy that decides as the default one does, and never waits.

        A failing token service is then asked again only when a call needs a token.
        """
        return cls(lifetime=lifetime, timeout=timeout, attempts=attempts, clock=clock, time_scale=0)
