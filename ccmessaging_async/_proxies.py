"""Which proxy a session goes through: the one it is given, or the environment's.

Reading ``HTTPS_PROXY``/``NO_PROXY`` is opt-in (``trust_env=True``): a service that
inherits a developer's or a CI runner's environment would otherwise send the app secret
through a proxy nobody chose for it.
"""

from __future__ import annotations

import urllib.request

from . import _http
from ._errors import ConfigurationError

__all__ = ["check_proxy", "environment_proxy", "masked"]


def check_proxy(proxy: str | _http.Proxy | None) -> _http.Proxy | None:
    """Return ``proxy`` as an ``httpx.Proxy``, or raise :class:`ConfigurationError`."""
    if proxy is None:
        return None
    if isinstance(proxy, str):
        try:
            proxy = _http.Proxy(proxy)
        except Exception as exc:  # noqa: BLE001 - httpx raises several types for bad URLs
            raise ConfigurationError(
                f"proxy is not a usable proxy URL ({type(exc).__name__})"
            ) from None
    if not isinstance(proxy, _http.Proxy):
        raise ConfigurationError("proxy must be a URL such as http://proxy:3128, or httpx.Proxy")
    if proxy.url.scheme not in ("http", "https") or not proxy.url.host:
        raise ConfigurationError(
            f"proxy must be an http:// or https:// proxy URL, got {masked(proxy)}"
        )
    return proxy


def environment_proxy(url: str) -> _http.Proxy | None:
    """Return the proxy the environment names for ``url`` (as curl reads it), if any.

    ``HTTPS_PROXY`` / ``HTTP_PROXY`` by the URL's scheme, then ``ALL_PROXY``; none for a
    host ``NO_PROXY`` lists.
    """
    target = _http.URL(url)
    proxies = urllib.request.getproxies_environment()
    chosen = proxies.get(target.scheme) or proxies.get("all")
    if not chosen or urllib.request.proxy_bypass(target.host):
        return None
    if "://" not in chosen:
        chosen = "http://" + chosen  # curl's reading of a bare host:port
    return check_proxy(chosen)


def masked(proxy: _http.Proxy | str) -> str:
    """Return the proxy's URL with its password (if any) replaced by ``***``."""
    url = proxy.url if isinstance(proxy, _http.Proxy) else _http.URL(proxy)
    if url.password:
        url = url.copy_with(password="***")  # noqa: S106 - the mask, not a password
    return str(url)
