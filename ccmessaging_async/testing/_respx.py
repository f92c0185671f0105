"""Realistic respx routes for users who mock the SDK with respx."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .._endpoints import CREATE_CALL
from .._token_service import TOKEN_PATH
from ._answers import call_answer, token_answer

if TYPE_CHECKING:
    import respx

__all__ = ["MockedRoutes", "mock_routes"]


@attrs.frozen
class MockedRoutes:
    """The two routes :func:`mock_routes` registered; change their side effects at will."""

    token: respx.Route
    create_call: respx.Route


def mock_routes(
    router: respx.MockRouter,
    base_url: str = "https://service.besclouds.com",
    *,
    token: str = "respx-access-token",  # noqa: S107 - a fake token
    expires: int = 3600,
    result_code: str = "0",
    result_desc: str | None = None,
    token_status: int = 200,
    call_status: int = 200,
) -> MockedRoutes:
    """Register documented token and createcall answers on ``router`` for ``base_url``.

    By default both succeed. ``result_code`` makes every createcall answer that code;
    ``token_status`` / ``call_status`` make them answer an HTTP error instead (403 on
    createcall is the gateway's expired-token answer).
    """
    base = base_url.rstrip("/")
    token_json = token_answer(token, expires, token_status)
    call_json = call_answer(result_code, result_desc, call_status)
    token_route = router.post(base + TOKEN_PATH).respond(token_status, json=token_json)
    call_route = router.post(base + CREATE_CALL.path).respond(call_status, json=call_json)
    return MockedRoutes(token=token_route, create_call=call_route)
