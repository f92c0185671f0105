"""A session's settings: their names and types, their defaults and their checks, once.

``AsyncSession(...)`` and ``AsyncSession.from_env(...)`` take the same keyword settings
(:class:`SessionOptions`) and both build one :class:`Settings`, which checks them before
anything is sent.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import TypedDict, Unpack

import attrs

from . import _http
from ._config import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    check_base_url,
    check_headers,
    check_reach,
    check_token_url,
)
from ._errors import ConfigurationError
from ._retry import RetryPolicy
from ._telemetry import Telemetry
from ._token_policy import TokenPolicy
from ._token_service import TOKEN_PATH
from ._transports.default import pool_limits

__all__ = ["SessionOptions", "Settings"]


class SessionOptions(TypedDict, total=False):
    """The keyword settings of :class:`AsyncSession` and :meth:`AsyncSession.from_env`.

    Each is optional; the defaults are :class:`AsyncSession`'s.
    """

    token: TokenPolicy | None
    retry: RetryPolicy | None
    timeout: _http.Timeout | float
    limits: _http.Limits
    http2: bool
    verify: ssl.SSLContext | str | os.PathLike[str] | bool
    client: _http.AsyncClient | None
    transport: _http.AsyncBaseTransport | None
    allow_insecure_http: bool
    token_url: str | None
    headers: Mapping[str, str] | None
    proxy: str | _http.Proxy | None
    trust_env: bool
    telemetry: Telemetry | None


def _token_policy(value: TokenPolicy | None) -> TokenPolicy:
    return TokenPolicy() if value is None else value


def _retry_policy(value: RetryPolicy | None) -> RetryPolicy:
    return RetryPolicy() if value is None else value


@attrs.frozen(kw_only=True)
class Settings:
    """A session's settings, defaults filled in and checked (:class:`ConfigurationError`).

    ``base_url`` loses its trailing slash, ``token_url`` defaults to ``base_url`` + the
    documented token path, ``headers`` are checked and copied.
    """

    base_url: str
    app_key: str
    app_secret: str = attrs.field(repr=False)
    token: TokenPolicy = attrs.field(default=None, converter=_token_policy)
    retry: RetryPolicy = attrs.field(default=None, converter=_retry_policy)
    timeout: _http.Timeout | float = DEFAULT_TIMEOUT
    limits: _http.Limits = DEFAULT_LIMITS
    http2: bool = False
    verify: ssl.SSLContext | str | os.PathLike[str] | bool = True
    client: _http.AsyncClient | None = None
    transport: _http.AsyncBaseTransport | None = None
    allow_insecure_http: bool = False
    given_token_url: str | None = attrs.field(default=None, alias="token_url", repr=False)
    headers: Mapping[str, str] = attrs.field(default=None, converter=check_headers)
    proxy: str | _http.Proxy | None = None
    trust_env: bool = False
    telemetry: Telemetry | None = None
    #: The token service's full URL: ``token_url``, or ``base_url`` + the documented path.
    token_url: str = attrs.field(init=False)

    @classmethod
    def of(
        cls, base_url: str, app_key: str, app_secret: str, **options: Unpack[SessionOptions]
    ) -> Settings:
        """Return the settings of ``AsyncSession(base_url, app_key, app_secret, **options)``.

        A name that is not a setting is a ``TypeError``, as for any misspelt argument.
        """
        for name in options.keys() - SessionOptions.__optional_keys__:
            raise TypeError(f"AsyncSession() got an unexpected keyword argument {name!r}")
        return cls(base_url=base_url, app_key=app_key, app_secret=app_secret, **options)

    def __attrs_post_init__(self) -> None:
        base_url = check_base_url(self.base_url, self.allow_insecure_http)
        given = self.given_token_url
        token_url = (
            base_url + TOKEN_PATH
            if given is None
            else check_token_url(given, self.allow_insecure_http)
        )
        # Normalised once here; frozen from then on.
        object.__setattr__(self, "base_url", base_url)
        object.__setattr__(self, "token_url", token_url)
        if not isinstance(self.app_key, str) or not self.app_key:
            raise ConfigurationError("app_key must be a non-empty string")
        if not isinstance(self.app_secret, str) or not self.app_secret:
            raise ConfigurationError("app_secret must be a non-empty string")
        check_reach(
            client=self.client,
            transport=self.transport,
            proxy=self.proxy,
            trust_env=self.trust_env,
            verify=self.verify,
            http2=self.http2,
            limits=self.limits,
            transport_limits=pool_limits(self.transport),
        )
