"""Realistic respx routes for users who mock the SDK with respx."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from .._endpoints import CREATE_CALL
from .._token_service import TOKEN_PATH

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
    token_json: dict[str, Any] = {
        "AccessToken": token,
        "ApplyType": "Bearer",
        "CreateTime": "1545650171",
        "Expires": str(expires),
        "Scope": "default",
        "UserID": "Anonymous",
    }
    if token_status != 200:
        token_json = {"error": f"HTTP {token_status}"}
    if call_status == 403:
        call_json: dict[str, Any] = {
            "errorCode": "APIGW.0301",
            "exceptionInfo": "auth fail! illegal or expired token info.",
        }
    elif result_code == "0":
        call_json = {
            "resultCode": "0",
            "resultDesc": result_desc or "Success",
            "resultData": {
                "callSerialNo": "000000000001",
                "sipServiceAddress": "10.137.203.215:5063",
                "accesscode": "179080024609291",
            },
        }
    else:
        call_json = {"resultCode": result_code, "resultDesc": result_desc or "failure"}
    token_route = router.post(base + TOKEN_PATH).respond(token_status, json=token_json)
    call_route = router.post(base + CREATE_CALL.path).respond(call_status, json=call_json)
    return MockedRoutes(token=token_route, create_call=call_route)
