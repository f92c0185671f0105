"""Endpoints as data: where each interface lives and how its request and answer convert."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs

from ._converter import structure_create_call, unstructure
from ._errors import ResultCode, ResultCodeError, ThrottledError
from ._models import CreateCallRequest, CreateCallResult, mask_number

__all__ = ["CREATE_CALL", "Endpoint"]

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")


@attrs.frozen
class Endpoint(Generic[RequestT, ResultT]):
    """One interface: where it lives and how its request and answer are converted.

    ``decode`` turns the decoded JSON of a 200 answer into the result, raising a
    :class:`CCMessagingError` for a business failure and anything else for a body that is
    not the documented shape. ``describe`` names a request in logs and ``attributes`` in
    spans (numbers masked).
    """

    name: str
    method: str
    path: str
    request_type: type[RequestT]
    encode: Callable[[RequestT], dict[str, Any]]
    decode: Callable[[Any], ResultT]
    describe: Callable[[RequestT], str]
    #: Span attributes describing a request (numbers masked).
    attributes: Callable[[RequestT], dict[str, str]]
    #: Whether sending it twice is harmless (a read): then an uncertain outcome (a lost
    #: connection, a 5xx, an undecodable answer) may be sent again too.
    idempotent: bool = False
    #: What an answer that cannot be trusted means for it, in error messages.
    unknown: str = "the call may have been created"


def _decode_create_call(data: Any) -> CreateCallResult:
    result = structure_create_call(data)
    if result.result_code == ResultCode.FLOW_CONTROL.value:
        raise ThrottledError(
            f"createcall was throttled (resultCode {result.result_code}: "
            f"{ResultCode.FLOW_CONTROL.meaning})",
            status_code=200,
            code=result.result_code,
        )
    if result.result_code != "0":
        raise ResultCodeError(result.result_code, result.result_desc)
    return result


CREATE_CALL: Endpoint[CreateCallRequest, CreateCallResult] = Endpoint(
    name="createcall",
    method="POST",
    path="/apiaccess/ccmessaging/v1/mobileagent/createcall",
    request_type=CreateCallRequest,
    encode=unstructure,
    decode=_decode_create_call,
    describe=lambda request: f"called={mask_number(request.called)}",
    attributes=lambda request: {"ccmessaging.called": mask_number(request.called)},
)
