"""A FastAPI service that creates a call per HTTP request (``pip install fastapi uvicorn``).

One session for the application's lifetime, opened and closed by its lifespan, shared
by every request; each request gives the SDK its own deadline. The answer says what
the outcome means for the caller of the service:

- 201 created;
- 503 certainly not created (``NotCreatedError``): the client may try again;
- 502 unknown (``OutcomeUnknownError``): the call may exist; do not try again blindly.

Run it with ``uvicorn examples.web_service:app`` and the ``CCMESSAGING_*`` variables set
(against the emulator, as ``first_call.py`` says).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ccmessaging_async import (
    AsyncSession,
    CreateCallRequest,
    InvalidRequestError,
    NotCreatedError,
    OutcomeUnknownError,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncSession.from_env() as session:
        app.state.calls = session
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/calls")
async def create_call(request: Request, body: dict[str, Any]) -> JSONResponse:
    session: AsyncSession = request.app.state.calls
    try:
        call = CreateCallRequest(
            called=str(body.get("called", "")), caller_present=body.get("caller_present")
        )
        result = await session.create_call(call, timeout=5.0)
    except InvalidRequestError as exc:  # before anything was sent
        return JSONResponse({"error": str(exc)}, status_code=422)
    except NotCreatedError as exc:
        return JSONResponse({"created": False, "error": type(exc).__name__}, status_code=503)
    except OutcomeUnknownError as exc:
        return JSONResponse({"created": None, "error": type(exc).__name__}, status_code=502)
    return JSONResponse({"created": True, "call_serial_no": result.call_serial_no}, status_code=201)
