"""The same documented answers for users who mock the SDK with pytest-httpx."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._call_records import CALL_RECORDS
from .._endpoints import CREATE_CALL
from .._token_service import TOKEN_PATH
from ._answers import call_answer, records_answer, token_answer

if TYPE_CHECKING:
    from pytest_httpx import HTTPXMock

__all__ = ["add_responses"]


def add_responses(
    httpx_mock: HTTPXMock,
    base_url: str = "https://service.besclouds.com",
    *,
    token: str = "pytest-httpx-access-token",  # noqa: S107 - a fake token
    expires: int = 3600,
    result_code: str = "0",
    result_desc: str | None = None,
    token_status: int = 200,
    call_status: int = 200,
    records: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Register documented token, createcall and call-record answers on ``httpx_mock``.

    The options are :func:`mock_routes`' (``records``: a call-record answer too). The
    answers may be asked for any number of
    times and need not be asked at all. Inspect ``httpx_mock.get_requests()`` afterwards.
    """
    base = base_url.rstrip("/")
    # pytest-httpx 0.32+ answers each response once and fails a test that leaves one
    # unasked unless told otherwise; older ones reuse the last and have no such options.
    import pytest_httpx  # noqa: PLC0415 - only its users have it

    options: dict[str, Any] = {}
    if _version(pytest_httpx.__version__) >= (0, 32):
        options = {"is_reusable": True, "is_optional": True}
    httpx_mock.add_response(
        method="POST",
        url=base + TOKEN_PATH,
        status_code=token_status,
        json=token_answer(token, expires, token_status),
        **options,
    )
    httpx_mock.add_response(
        method="POST",
        url=base + CREATE_CALL.path,
        status_code=call_status,
        json=call_answer(result_code, result_desc, call_status),
        **options,
    )
    if records is not None:
        httpx_mock.add_response(
            method="POST",
            url=base + CALL_RECORDS.path,
            json=records_answer(records),
            **options,
        )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())
