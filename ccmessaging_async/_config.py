"""Session configuration: defaults, checks of the settings, and the environment variables."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Mapping

from . import _http
from ._errors import ConfigurationError

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "ENV_APP_KEY",
    "ENV_APP_SECRET",
    "ENV_BASE_URL",
    "ENV_TOKEN_URL",
    "check_base_url",
    "check_deadline",
    "check_headers",
    "check_reach",
    "check_token_url",
    "is_loopback",
    "read_env",
    "ssl_verify",
]

#: connect 5 s (a healthy gateway answers a SYN in milliseconds), read 15 s (createcall sets
#: up a call task; the platform answers within seconds), write 10 s, pool 10 s.
DEFAULT_TIMEOUT = _http.Timeout(connect=5.0, read=15.0, write=10.0, pool=10.0)

#: Keep every connection alive (httpx keeps only 20 of 100, which churns under load), and
#: let idle ones go after 4 s, before common server idle timeouts (uvicorn: 5 s) close them.
DEFAULT_LIMITS = _http.Limits(
    max_connections=100, max_keepalive_connections=100, keepalive_expiry=4.0
)

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")

ENV_BASE_URL = "CCMESSAGING_BASE_URL"
ENV_APP_KEY = "CCMESSAGING_APP_KEY"
ENV_APP_SECRET = "CCMESSAGING_APP_SECRET"  # noqa: S105 - a variable name, not a secret
ENV_TOKEN_URL = "CCMESSAGING_TOKEN_URL"  # noqa: S105 - a variable name, not a secret

#: Headers the SDK sets itself: the interface contract, the credentials, the framing and
#: the refusal of compressed answers. ``headers=`` may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "x-app-key",
        "content-type",
        "content-length",
        "transfer-encoding",
        "host",
        "accept-encoding",
        "x-token-expire",
    }
)


def check_base_url(base_url: str, allow_insecure_http: bool) -> str:
    """Return ``base_url`` without its trailing slash, or raise :class:`ConfigurationError`."""
    _check_url("base_url", base_url, allow_insecure_http, "https://host[:port][/prefix]")
    return base_url.rstrip("/")


def check_token_url(token_url: str, allow_insecure_http: bool) -> str:
    """Return the full URL of the token service, or raise :class:`ConfigurationError`."""
    example = "https://host:28070/apigovernance/api/oauth/tokenByAkSk"
    url = _check_url("token_url", token_url, allow_insecure_http, example)
    if url.path in ("", "/"):
        raise ConfigurationError(
            f"token_url must be the token service's full URL, such as {example}"
        )
    return token_url


def _check_url(name: str, value: str, allow_insecure_http: bool, example: str) -> _http.URL:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string such as {example}")
    try:
        url = _http.URL(value)
    except Exception as exc:  # noqa: BLE001 - httpx raises several types for bad URLs
        raise ConfigurationError(f"{name} is not a valid URL: {type(exc).__name__}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"{name} must look like {example}")
    if url.query or url.fragment:
        raise ConfigurationError(f"{name} must not have a query or a fragment")
    if url.userinfo:
        raise ConfigurationError(f"{name} must not hold a user name or password")
    if url.scheme == "http" and not allow_insecure_http and not is_loopback(url.host):
        raise ConfigurationError(
            f"{name} uses plain http to a non-loopback host, which would send the app "
            "secret and tokens in clear text; use https, or allow plain http on purpose "
            "(allow_insecure_http=True; on the command line, --allow-insecure-http)"
        )
    return url


def check_reach(
    *,
    client: object | None,
    transport: object | None,
    proxy: object | None,
    trust_env: bool,
    verify: object,
    http2: bool,
    limits: _http.Limits,
    transport_limits: _http.Limits | None,
) -> None:
    """Refuse settings that would not reach a client or transport the caller brings.

    ``transport_limits`` are the brought transport's own, when it can tell.
    """
    if client is not None and transport is not None:
        raise ConfigurationError("pass either client or transport, not both")
    brought = "client" if client is not None else "transport" if transport is not None else None
    if brought is None:
        return
    unreachable = [
        name
        for name, given in (
            ("proxy", proxy is not None),
            ("trust_env", trust_env),
            ("verify", verify is not True),
            ("http2", http2),
        )
        if given
    ]
    if limits != DEFAULT_LIMITS and (transport_limits is None or transport_limits != limits):
        unreachable.append("limits")
    if unreachable:
        raise ConfigurationError(
            f"{', '.join(unreachable)} cannot reach the {brought} you pass: configure "
            f"{'them' if len(unreachable) > 1 else 'it'} on the {brought} itself (the "
            "aiohttp transport takes limits, verify, proxy and trust_env)"
        )


def check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Return the extra headers to send on every request, or raise :class:`ConfigurationError`.

    Values are never quoted in an error: a tenant header may be a credential.
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError("headers must be a mapping of header names to values")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(f"headers: {name!r} is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise ConfigurationError(
                f"headers: {name} is set by the SDK itself and cannot be replaced"
            )
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise ConfigurationError(
                f"headers: the value of {name} must be a string of visible ASCII and spaces"
            )
        if name.lower() in {n.lower() for n in checked}:
            raise ConfigurationError(f"headers: {name} is given twice")
        checked[name] = value
    return checked


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ssl_verify(verify: ssl.SSLContext | str | os.PathLike[str] | bool) -> ssl.SSLContext | bool:
    """Turn a CA bundle file or folder into an SSL context (httpx deprecates paths)."""
    if isinstance(verify, ssl.SSLContext | bool):
        return verify
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=os.fspath(verify))
    if not os.path.isfile(verify):
        raise ConfigurationError(f"verify= names no CA bundle file or folder: {verify!s}")
    return ssl.create_default_context(cafile=os.fspath(verify))


#: The longest per-call deadline accepted, in seconds (a day).
MAX_DEADLINE = 86400.0


def check_deadline(name: str, value: float | None) -> float | None:
    """Return a per-call deadline in seconds (``None``: none), or raise ConfigurationError."""
    if value is None:
        return None
    if isinstance(value, bool) or not (
        isinstance(value, int | float) and 0 < value <= MAX_DEADLINE
    ):
        shown = value if not isinstance(value, int) or value.bit_length() < 64 else "a huge int"
        raise ConfigurationError(
            f"{name} must be > 0 and at most {MAX_DEADLINE:g} seconds, or None, got {shown!r}"
        )
    return float(value)


def read_env(environ: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """Read base URL, app key and app secret from the environment; name every one missing."""
    env = os.environ if environ is None else environ
    names = (ENV_BASE_URL, ENV_APP_KEY, ENV_APP_SECRET)
    missing = [name for name in names if not env.get(name, "")]
    if missing:
        raise ConfigurationError(f"environment variables not set: {', '.join(missing)}")
    return env[ENV_BASE_URL], env[ENV_APP_KEY], env[ENV_APP_SECRET]
