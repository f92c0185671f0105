"""Models, validation and the converter: what goes on the wire and what comes back."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccmessaging_async import (
    CreateCallRequest,
    CreateCallResult,
    InvalidRequestError,
    ResultCode,
    ResultCodeError,
    mask_number,
)
from ccmessaging_async._converter import structure_create_call, structure_token, unstructure

SEED_REQUEST = {"called": "88884432", "callData": "1", "callerPresent": "95599"}
SEED_RESPONSE = {
    "resultCode": "0",
    "resultDesc": "Success",
    "resultData": {"sipServiceAddress": "10.137.203.215:5063", "accesscode": "179080024609291"},
}


def test_seed_request_round_trip() -> None:
    """The seed document's example request is produced key for key."""
    request = CreateCallRequest(called="88884432", call_data="1", caller_present="95599")
    assert unstructure(request) == SEED_REQUEST


def test_none_fields_are_omitted() -> None:
    """Optional fields left as None do not appear on the wire at all."""
    assert unstructure(CreateCallRequest(called="88884432")) == {"called": "88884432"}
    assert unstructure(CreateCallRequest(called="1", caller_present="2")) == {
        "called": "1",
        "callerPresent": "2",
    }


def test_seed_response_decodes() -> None:
    """The seed's example answer (no callSerialNo) decodes into a result."""
    result = structure_create_call(SEED_RESPONSE)
    assert result == CreateCallResult(
        result_code="0",
        result_desc="Success",
        call_serial_no=None,
        sip_service_address="10.137.203.215:5063",
        access_code="179080024609291",
    )


def test_unknown_response_fields_are_ignored() -> None:
    """Extra fields from a newer platform version do not break decoding."""
    body = {**SEED_RESPONSE, "newField": [1, 2], "resultData": {"callSerialNo": "9", "x": {}}}
    assert structure_create_call(body).call_serial_no == "9"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"resultCode": None},
        {"resultCode": "0", "resultData": [1]},
        {"resultCode": "0", "resultData": {"accesscode": {"a": 1}}},
        [SEED_RESPONSE],
        "0",
    ],
)
def test_malformed_response_is_rejected(body: Any) -> None:
    """Bodies that are not the documented shape raise instead of yielding a half result."""
    with pytest.raises(Exception):  # noqa: B017, PT011 - the session wraps any of them
        structure_create_call(body)


@pytest.mark.parametrize("code", list(ResultCode))
def test_every_documented_code_maps_to_its_enum_member(code: ResultCode) -> None:
    """Each documented resultCode becomes its ResultCode member, with its meaning."""
    error = ResultCodeError(code.value, "desc")
    assert error.result_code is code
    assert error.code == code.value
    assert code.meaning in str(error)


def test_unknown_code_keeps_the_raw_code() -> None:
    """An undocumented code still surfaces, with result_code None."""
    error = ResultCodeError("42", "new failure")
    assert error.result_code is None
    assert error.code == "42"
    assert "42" in str(error)


@pytest.mark.parametrize(
    ("expires", "create_time"),
    [("600", "1545650171"), (600, 1545650171), (600.0, "1545650171 "), ("600.0", 1.5e9)],
)
def test_token_numbers_parse_from_strings_or_numbers(expires: Any, create_time: Any) -> None:
    """Expires and CreateTime are accepted as strings or numbers."""
    token = structure_token({"AccessToken": "t", "Expires": expires, "CreateTime": create_time})
    assert token.expires == 600.0
    assert token.create_time is not None


def test_token_with_only_the_token_is_enough() -> None:
    """Missing optional token fields are tolerated; unknown ones ignored."""
    token = structure_token({"AccessToken": "t", "Extra": 1})
    assert token.access_token == "t"
    assert token.expires is None


@pytest.mark.parametrize(
    "body", [{}, {"AccessToken": ""}, {"AccessToken": None}, {"AccessToken": "t", "Expires": []}]
)
def test_bad_token_bodies_are_rejected(body: dict[str, Any]) -> None:
    """A token answer without a usable AccessToken is an error."""
    with pytest.raises(Exception):  # noqa: B017, PT011 - the fetcher wraps any of them
        structure_token(body)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"called": ""}, "called"),
        ({"called": "   "}, "called"),
        ({"called": "1" * 33}, "called"),
        ({"called": "123\n4"}, "called"),
        ({"called": 88884432}, "called"),
        ({"called": None}, "called"),
        ({"called": "1", "caller_present": "9" * 33}, "caller_present"),
        ({"called": "1", "caller_present": ""}, "caller_present"),
        ({"called": "1", "caller_present": 95599}, "caller_present"),
        ({"called": "1", "call_data": "x" * 1025}, "call_data"),
        ({"called": "1", "call_data": b"bytes"}, "call_data"),
        ({"called": "1", "call_data": "\ud800"}, "call_data"),
    ],
)
def test_each_field_limit_is_enforced(kwargs: dict[str, Any], field: str) -> None:
    """A value over a documented limit, of the wrong type or empty raises a typed error."""
    with pytest.raises(InvalidRequestError) as info:
        CreateCallRequest(**kwargs)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_limits_are_inclusive() -> None:
    """Values exactly at the documented limits are accepted."""
    request = CreateCallRequest(called="1" * 32, call_data="x" * 1024, caller_present="9" * 32)
    assert len(unstructure(request)["callData"]) == 1024


def test_requests_are_frozen() -> None:
    """A request cannot be changed after validation."""
    request = CreateCallRequest(called="1")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.called = "2"  # type: ignore[misc]


def test_repr_masks_numbers_and_hides_call_data() -> None:
    """The request repr never shows a full phone number."""
    text = repr(CreateCallRequest(called="13812345678", call_data="secret", caller_present="95599"))
    assert "13812345678" not in text
    assert "95599" not in text
    assert "secret" not in text
    assert "1381****78" in text


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("88884432", "8888****32"),
        ("13812345678", "1381****78"),
        ("12345", "1****45"),
        ("12", "****"),
    ],
)
def test_mask_number(number: str, masked: str) -> None:
    """Masking keeps a prefix and the last two digits, never the length."""
    assert mask_number(number) == masked


@given(
    called=st.text(max_size=40),
    call_data=st.none() | st.text(max_size=1100),
    caller_present=st.none() | st.text(max_size=40),
)
def test_any_text_validates_and_round_trips_or_is_rejected(
    called: str, call_data: str | None, caller_present: str | None
) -> None:
    """Arbitrary strings either survive JSON exactly or raise InvalidRequestError."""
    try:
        request = CreateCallRequest(
            called=called, call_data=call_data, caller_present=caller_present
        )
    except InvalidRequestError:
        return
    wire = json.loads(json.dumps(unstructure(request), ensure_ascii=False).encode())
    assert wire["called"] == called
    assert wire.get("callData") == call_data
    assert wire.get("callerPresent") == caller_present
