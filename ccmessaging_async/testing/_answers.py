"""The documented answers of the interfaces, for the mock-library helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["call_answer", "records_answer", "token_answer"]


def token_answer(token: str, expires: int, status: int) -> dict[str, Any]:
    """Return the token service's JSON: a documented token, or an error body for ``status``."""
    if status != 200:
        return {"error": f"HTTP {status}"}
    return {
        "AccessToken": token,
        "ApplyType": "Bearer",
        "CreateTime": "1545650171",
        "Expires": str(expires),
        "Scope": "default",
        "UserID": "Anonymous",
    }


def call_answer(result_code: str, result_desc: str | None, status: int) -> dict[str, Any]:
    """Return createcall's JSON: success, a result code, or the gateway's expired-token 403."""
    if status == 403:
        return {
            "errorCode": "APIGW.0301",
            "exceptionInfo": "auth fail! illegal or expired token info.",
        }
    if result_code == "0":
        return {
            "resultCode": "0",
            "resultDesc": result_desc or "Success",
            "resultData": {
                "callSerialNo": "000000000001",
                "sipServiceAddress": "10.137.203.215:5063",
                "accesscode": "179080024609291",
            },
        }
    return {"resultCode": result_code, "resultDesc": result_desc or "failure"}


def records_answer(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Return queryCallDetailRecord's JSON with ``records`` (wire form: camelCase, ms)."""
    return {
        "retCode": "0",
        "retMsg": "Query call detail record successfully",
        "result": {"total": len(records), "callInfo": [dict(record) for record in records]},
    }
