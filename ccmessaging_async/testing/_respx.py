"""Realistic respx routes for users who mock the SDK with respx."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._call_records import CALL_RECORDS
from .._endpoints import CREATE_CALL
from .._token_service import TOKEN_PATH
from ._answers import call_answer, records_answer, token_answer

if TYPE_CHECKING:
    import respx

__all__ = ["MockedRoutes", "mock_routes"]


@attrs.frozen
class MockedRoutes:
    """The routes :func:`mock_routes` registered; change their side effects at will."""

    token: respx.Route
    create_call: respx.Route
    #: Registered only when :func:`mock_routes` was given ``records``.
    call_records: respx.Route | None = None


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
    records: Sequence[Mapping[str, Any]] | None = None,
) -> MockedRoutes:
    """Register documented token, createcall and call-record answers for ``base_url``.

    By default all succeed. ``result_code`` makes every createcall answer that code;
    ``token_status`` / ``call_status`` make them answer an HTTP error instead (403 on
    createcall is the gateway's expired-token answer). With ``records`` (in their wire
    form: ``callSerialNo``, ``startTime`` in ms...), a call-record route answers them, one
    page (without it there is no such route, so ``respx.mock()`` asks for no more calls).
    """
    base = base_url.rstrip("/")
    token_json = token_answer(token, expires, token_status)
    call_json = call_answer(result_code, result_desc, call_status)
    token_route = router.post(base + TOKEN_PATH).respond(token_status, json=token_json)
    call_route = router.post(base + CREATE_CALL.path).respond(call_status, json=call_json)
    records_route = None
    if records is not None:
        answer = records_answer(records)
        records_route = router.post(base + CALL_RECORDS.path).respond(200, json=answer)
    return MockedRoutes(token=token_route, create_call=call_route, call_records=records_route)
