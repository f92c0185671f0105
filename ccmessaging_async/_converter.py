"""The one cattrs converter between the attrs models and the wire's JSON."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._models import AccessToken, CallRecord, CallRecordsPage, CreateCallRequest, CreateCallResult

__all__ = [
    "converter",
    "structure_call_records",
    "structure_create_call",
    "structure_token",
    "unstructure",
]


@attrs.frozen(slots=True)
class _WireResultData:
    call_serial_no: str | None = None
    sip_service_address: str | None = None
    access_code: str | None = None


@attrs.frozen(slots=True)
class _WireCreateCallResponse:
    result_code: str
    result_desc: str | None = None
    result_data: _WireResultData | None = None


@attrs.frozen(slots=True)
class _WireRecords:
    total: int = 0
    call_info: list[CallRecord] = attrs.Factory(list)


@attrs.frozen(slots=True)
class _WireRecordsResponse:
    ret_code: str
    ret_msg: str | None = None
    result: _WireRecords | None = None


def _structure_moment(value: Any, _type: Any) -> datetime.datetime:
    # Milliseconds since the epoch, as a number (or a string of digits, to be lenient).
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected milliseconds since the epoch, got {type(value).__name__}")
    return datetime.datetime.fromtimestamp(float(value) / 1000, datetime.UTC)


def _structure_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _structure_str(value: Any, _type: Any) -> str:
    # cattrs' default is str(value), which would turn null into "None".
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _structure_float(value: Any, _type: Any) -> float:
    # The token service sends Expires and CreateTime as strings of digits.
    if isinstance(value, bool):
        raise TypeError("expected a number, got bool")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _objects_only(hook: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    # A generated hook looks keys up with `in`, so a list or a string would pass as an
    # object whose fields are all missing.
    def structure(value: Any, type_: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object, got {type(value).__name__}")
        return hook(value, type_)

    return structure


def _build() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(datetime.datetime, _structure_moment)
    conv.register_unstructure_hook(
        CreateCallRequest,
        make_dict_unstructure_fn(
            CreateCallRequest,
            conv,
            _cattrs_omit_if_default=True,
            call_data=override(rename="callData"),
            caller_present=override(rename="callerPresent"),
        ),
    )
    conv.register_structure_hook(
        _WireResultData,
        _objects_only(
            make_dict_structure_fn(
                _WireResultData,
                conv,
                call_serial_no=override(rename="callSerialNo"),
                sip_service_address=override(rename="sipServiceAddress"),
                access_code=override(rename="accesscode"),
            )
        ),
    )
    conv.register_structure_hook(
        _WireCreateCallResponse,
        make_dict_structure_fn(
            _WireCreateCallResponse,
            conv,
            result_code=override(rename="resultCode"),
            result_desc=override(rename="resultDesc"),
            result_data=override(rename="resultData"),
        ),
    )
    conv.register_structure_hook(
        AccessToken,
        make_dict_structure_fn(
            AccessToken,
            conv,
            access_token=override(rename="AccessToken"),
            apply_type=override(rename="ApplyType"),
            expires=override(rename="Expires"),
            create_time=override(rename="CreateTime"),
            scope=override(rename="Scope"),
            app_key=override(rename="AppKey"),
            user_id=override(rename="UserID"),
        ),
    )
    conv.register_structure_hook(
        CallRecord,
        _objects_only(
            make_dict_structure_fn(
                CallRecord,
                conv,
                call_serial_no=override(rename="callSerialNo"),
                start_time=override(rename="startTime"),
                caller_present=override(rename="callerPresent"),
                agent_present=override(rename="agentPresent"),
                alerting_time=override(rename="alertingTime"),
                talking_time=override(rename="talkingTime"),
                release_time=override(rename="releaseTime"),
                end_time=override(rename="endTime"),
                talk_duration=override(rename="talkDuration"),
                reason_code=override(rename="reasonCode"),
            )
        ),
    )
    conv.register_structure_hook(
        _WireRecords,
        _objects_only(
            make_dict_structure_fn(_WireRecords, conv, call_info=override(rename="callInfo"))
        ),
    )
    conv.register_structure_hook(
        _WireRecordsResponse,
        make_dict_structure_fn(
            _WireRecordsResponse,
            conv,
            ret_code=override(rename="retCode"),
            ret_msg=override(rename="retMsg"),
        ),
    )
    return conv


#: The SDK's private converter; never the global one.
converter = _build()
_unstructure_request = converter.get_unstructure_hook(CreateCallRequest)
_structure_response = converter.get_structure_hook(_WireCreateCallResponse)
_structure_token = converter.get_structure_hook(AccessToken)
_structure_records = converter.get_structure_hook(_WireRecordsResponse)


def unstructure(request: CreateCallRequest) -> dict[str, str]:
    """Turn a request into its wire dict (camelCase keys, ``None`` fields left out)."""
    return _unstructure_request(request)  # type: ignore[no-any-return]


def structure_create_call(data: Any) -> CreateCallResult:
    """Turn a decoded createcall JSON body into a result; raise on a malformed one.

    Raises ``TypeError``/``ValueError``/``cattrs`` errors for bodies that are not the
    documented shape; the caller turns those into :class:`ResponseDecodeError`.
    """
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    wire: _WireCreateCallResponse = _structure_response(data, _WireCreateCallResponse)
    extra = wire.result_data or _WireResultData()
    return CreateCallResult(
        result_code=wire.result_code,
        result_desc=wire.result_desc,
        call_serial_no=extra.call_serial_no,
        sip_service_address=extra.sip_service_address,
        access_code=extra.access_code,
    )


def structure_token(data: Any) -> AccessToken:
    """Turn a decoded token-service JSON body into an :class:`AccessToken`."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    token: AccessToken = _structure_token(data, AccessToken)
    if not token.access_token:
        raise ValueError("AccessToken is empty")
    return token


def structure_call_records(data: Any) -> tuple[str, str | None, CallRecordsPage]:
    """Turn a decoded call-record JSON body into ``(retCode, retMsg, page)``.

    Raises ``TypeError``/``ValueError``/``cattrs`` errors for a body that is not the
    documented shape (the caller turns those into :class:`ResponseDecodeError`).
    """
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    wire: _WireRecordsResponse = _structure_records(data, _WireRecordsResponse)
    found = wire.result or _WireRecords()
    return wire.ret_code, wire.ret_msg, CallRecordsPage(found.total, tuple(found.call_info))
