"""A stateful emulator of tokenByAkSk and createcall, as a plain ASGI application."""

from __future__ import annotations

import collections
import enum
import itertools
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import attrs

from .. import _http
from .._call_records import CALL_RECORDS
from .._endpoints import CREATE_CALL
from .._models import MAX_CALL_DATA, MAX_CALLED, MAX_CALLER_PRESENT
from .._token_policy import MAX_TOKEN_LIFETIME
from .._token_service import TOKEN_PATH
from ._capacity import Capacity, TokenBucket

__all__ = ["DropPoint", "Emulator", "RecordedCall", "TokenFailure"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

EXPIRED_TOKEN_INFO = (
    "auth fail! illegal or expired token info. please apply or refresh the access token "  # noqa: S105
    "from the server!"
)
_MAX_BODY = 64 * 1024


class TokenFailure(enum.Enum):
    """How the emulated token service fails, when told to."""

    SERVER_ERROR = "500"
    RATE_LIMITED = "429"
    HTML_PAGE = "html"


class DropPoint(enum.Enum):
    """Where the emulator drops a createcall connection without a complete answer."""

    #: Before the call is created: the platform did nothing (the client cannot tell).
    BEFORE_RECORD = "before"
    #: After the call is created: the "outcome unknown" case that must never be re-sent.
    AFTER_RECORD = "after"


@attrs.frozen
class RecordedCall:
    """A call the emulator created."""

    called: str
    caller_present: str | None
    call_data: str | None
    serial_no: str
    #: When its request arrived, on the emulator's clock.
    at: float
    #: When it was created, Unix time (its record's ``startTime``).
    created_at: float = 0.0


async def _refuse_as_too_fast(send: Send, capacity: Capacity) -> None:
    if capacity.result_code:
        await _respond(send, 200, _failure("10010000002", "interface flow control failed"))
        return
    headers = {} if capacity.retry_after is None else {"retry-after": f"{capacity.retry_after:g}"}
    await _respond(send, 429, {"error": "too many requests"}, headers)


class Emulator:
    """An in-memory CC-Messaging platform: tokens that expire, createcall, fault knobs.

    Use it in-process (``httpx.ASGITransport(app=emulator)``) or served on loopback with
    :class:`EmulatorServer`. Every knob may be turned while it runs, from any thread.
    """

    def __init__(
        self,
        *,
        app_key: str = "emulator-app-key",
        app_secret: str = "emulator-app-secret",  # noqa: S107 - the emulator's own credentials
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._tokens: dict[str, float] = {}
        self._serials = itertools.count(1)
        self._token_failures: collections.deque[tuple[TokenFailure, float]] = collections.deque()
        self._drops: dict[str, list[Any]] = {}
        self._rate_window = (0.0, 0)
        #: Every token string ever issued (so tests can check none of them leaks).
        self.issued_tokens: list[str] = []
        #: Token requests answered, successful or not.
        self.token_requests: int = 0
        #: createcall requests received, whatever their answer.
        self.createcall_requests: int = 0
        #: Calls created (resultCode "0"), in order.
        self.calls: list[RecordedCall] = []
        self.calls_per_number: collections.Counter[str] = collections.Counter()
        #: A fixed raw answer per called number: (HTTP status, content type, body). The
        #: call is not created. For 5xx errors and bodies that are not the documented JSON.
        self.canned_answers: dict[str, tuple[int, str, bytes]] = {}
        #: A fixed resultCode per called number (e.g. ``{"123": "30010010002"}``).
        self.result_codes: dict[str, str] = {}
        #: Seconds to wait before answering a createcall.
        self.latency: float = 0.0
        #: At most this many createcalls per second; more get 429 with ``Retry-After``.
        self.rate_limit: float | None = None
        #: The ``Retry-After`` seconds sent with a createcall 429.
        self.rate_limit_retry_after: float = 1
        #: Throttling as a tenant meets it (SPEC section 4), set with :meth:`set_capacity`.
        self._bucket: TokenBucket | None = None
        #: createcalls refused as too fast (by ``rate_limit`` or ``capacity``).
        self.throttled_requests: int = 0
        #: When each of them arrived, on the emulator's clock.
        self.throttled_at: list[float] = []
        #: Seconds before a created call appears in the call records (SPEC section 5
        #: leaves it open; minutes are possible).
        self.record_delay: float = 0.0
        #: The calling number the records give the emulator's calls.
        self.record_caller: str = "88889050"
        #: Call-record queries received, whatever their answer.
        self.record_queries: int = 0
        #: A ``retCode`` other than ``"0"`` to answer every call-record query with.
        self.records_ret_code: str | None = None

    def __repr__(self) -> str:
        return (
            f"<Emulator {len(self.calls)} calls, {self.token_requests} token requests, "
            f"{len(self._tokens)} live tokens>"
        )

    # -- knobs ---------------------------------------------------------------------------

    def set_capacity(
        self,
        rate: float | None,
        *,
        burst: int = 10,
        retry_after: float | None = 1.0,
        result_code: bool = False,
    ) -> None:
        """Accept at most ``rate`` createcalls per second, ``burst`` at once (None: any).

        A token bucket, as gateways meter tenants: beyond it a createcall is refused with
        429 (with ``Retry-After: retry_after`` unless None), or with HTTP 200 and
        resultCode ``10010000002`` when ``result_code``. Nothing is created either way.
        """
        capacity = None if rate is None else Capacity(rate, burst, retry_after, result_code)
        with self._lock:
            self._bucket = None if capacity is None else TokenBucket(capacity, self._clock())

    def fail_token_requests(
        self, times: int, kind: TokenFailure = TokenFailure.SERVER_ERROR, retry_after: float = 0
    ) -> None:
        """Make the next ``times`` token requests fail in the given way."""
        with self._lock:
            self._token_failures.extend([(kind, retry_after)] * times)

    def expire_all_tokens(self) -> None:
        """Expire every token issued so far (the next createcall with one gets 403)."""
        with self._lock:
            self._tokens.clear()

    def drop_connection(
        self, called: str, when: DropPoint = DropPoint.AFTER_RECORD, times: int | None = 1
    ) -> None:
        """Drop the connection of the next ``times`` createcalls to ``called`` (None: all)."""
        with self._lock:
            self._drops[called] = [when, times]

    # -- assertions ----------------------------------------------------------------------

    def calls_for(self, called: str) -> int:
        """How many calls were created to ``called``."""
        return self.calls_per_number[called]

    def wait_for_calls(self, count: int, timeout: float) -> bool:
        """Block this thread until ``count`` calls exist (for a server in another thread).

        Returns whether they did within ``timeout`` seconds.
        """
        with self._recorded:
            return self._recorded.wait_for(lambda: len(self.calls) >= count, timeout)

    def wait_for_throttled(self, count: int, timeout: float) -> bool:
        """Block this thread until ``count`` createcalls were refused as too fast.

        Returns whether they were within ``timeout`` seconds.
        """
        with self._recorded:
            return self._recorded.wait_for(lambda: self.throttled_requests >= count, timeout)

    def duplicates(self) -> dict[str, int]:
        """Numbers for which more than one call was created, with their counts."""
        return {number: n for number, n in self.calls_per_number.items() if n > 1}

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path, method = scope["path"], scope["method"]
        if path == TOKEN_PATH and method == "POST":
            await self._token(headers, body, send)
        elif path == CREATE_CALL.path and method == "POST":
            await self._create_call(headers, body, send)
        elif path == CALL_RECORDS.path and method == "POST":
            await self._call_records(headers, body, send)
        elif path in (TOKEN_PATH, CREATE_CALL.path, CALL_RECORDS.path):
            await _respond(send, 405, {"error": "method not allowed"})
        else:
            await _respond(send, 404, {"error": "not found"})

    async def _token(self, headers: dict[str, str], body: bytes, send: Send) -> None:
        with self._lock:
            self.token_requests += 1
            failure = self._token_failures.popleft() if self._token_failures else None
        if failure is not None:
            kind, retry_after = failure
            if kind is TokenFailure.RATE_LIMITED:
                await _respond(
                    send, 429, {"error": "too many requests"}, {"retry-after": f"{retry_after:g}"}
                )
            elif kind is TokenFailure.HTML_PAGE:
                await _respond_raw(
                    send, 502, b"<html><body>502 Bad Gateway</body></html>", "text/html"
                )
            else:
                await _respond(send, 500, {"error": "internal error"})
            return
        try:
            data = json.loads(body)
            key, secret = data["app_key"], data["app_secret"]
        except (ValueError, TypeError, KeyError):
            await _respond(send, 400, {"error": "bad request body"})
            return
        if key != self.app_key or not secrets.compare_digest(str(secret), self.app_secret):
            await _respond(send, 401, {"error": "invalid app_key or app_secret"})
            return
        try:
            lifetime = int(headers.get("x-token-expire", "600"))
        except ValueError:
            await _respond(send, 400, {"error": "X-Token-Expire must be a number"})
            return
        lifetime = max(1, min(lifetime, int(MAX_TOKEN_LIFETIME)))
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self._clock() + lifetime
            self.issued_tokens.append(token)
        await _respond(
            send,
            200,
            {
                "AccessToken": token,
                "ApplyType": "Bearer",
                "CreateTime": str(int(time.time())),
                "Expires": str(lifetime),
                "Scope": "default",
                "AppKey": key,
                "UserID": "Anonymous",
            },
        )

    def _token_valid(self, headers: dict[str, str]) -> bool:
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer ") or headers.get("x-app-key") != self.app_key:
            return False
        with self._lock:
            expires_at = self._tokens.get(authorization[len("Bearer ") :])
            return expires_at is not None and self._clock() < expires_at

    @property
    def capacity(self) -> Capacity | None:
        """The capacity :meth:`set_capacity` set (``None``: unmetered)."""
        bucket = self._bucket
        return None if bucket is None else bucket.capacity

    def _over_capacity(self, now: float) -> Capacity | None:
        """Take a call from the bucket; return the capacity that refuses it, if it does."""
        with self._lock:
            bucket = self._bucket
            if bucket is None or bucket.take(now):
                return None
            self.throttled_requests += 1
            self.throttled_at.append(now)
            self._recorded.notify_all()
            return bucket.capacity

    def _over_rate(self, now: float) -> bool:
        if self.rate_limit is None:
            return False
        with self._lock:
            second = float(int(now))
            start, count = self._rate_window
            if start != second:
                start, count = second, 0
            count += 1
            self._rate_window = (start, count)
            return count > self.rate_limit

    async def _create_call(self, headers: dict[str, str], body: bytes, send: Send) -> None:
        # One moment per request: the rate window it is counted in is the one it is recorded
        # in, even when handling it crosses a second boundary.
        arrived = self._clock()
        with self._lock:
            self.createcall_requests += 1
        if not self._token_valid(headers):
            await _respond(
                send, 403, {"errorCode": "APIGW.0301", "exceptionInfo": EXPIRED_TOKEN_INFO}
            )
            return
        refusing = self._over_capacity(arrived)
        if refusing is not None:
            await _refuse_as_too_fast(send, refusing)
            return
        if self._over_rate(arrived):
            with self._lock:
                self.throttled_requests += 1
                self.throttled_at.append(arrived)
                self._recorded.notify_all()
            await _respond(
                send,
                429,
                {"error": "rate limited"},
                {"retry-after": str(self.rate_limit_retry_after)},
            )
            return
        if self.latency:
            await anyio.sleep(self.latency)
        data = _parse_call(body)
        if data is None:
            await _respond(
                send, 200, _failure("30010000003", "input parameter verification failed")
            )
            return
        called = data["called"]
        canned = self.canned_answers.get(called)
        if canned is not None:
            await _respond_raw(send, canned[0], canned[2], canned[1])
            return
        code = self.result_codes.get(called)
        if code is not None and code != "0":
            await _respond(send, 200, _failure(code, "emulated failure"))
            return
        drop = self._take_drop(called)
        if drop is DropPoint.BEFORE_RECORD:
            await _drop(send)
        serial = f"{next(self._serials):012d}"
        with self._lock:
            self.calls.append(
                RecordedCall(
                    called=called,
                    caller_present=data.get("callerPresent"),
                    call_data=data.get("callData"),
                    serial_no=serial,
                    at=arrived,
                    created_at=self._wall_clock(),
                )
            )
            self.calls_per_number[called] += 1
            self._recorded.notify_all()
        if drop is DropPoint.AFTER_RECORD:
            await _drop(send)
        await _respond(
            send,
            200,
            {
                "resultCode": "0",
                "resultDesc": "Success",
                "resultData": {
                    "callSerialNo": serial,
                    "sipServiceAddress": "127.0.0.1:5063",
                    "accesscode": f"1790{serial}",
                },
            },
        )

    async def _call_records(self, headers: dict[str, str], body: bytes, send: Send) -> None:
        with self._lock:
            self.record_queries += 1
        if not self._token_valid(headers):
            await _respond(
                send, 403, {"errorCode": "APIGW.0301", "exceptionInfo": EXPIRED_TOKEN_INFO}
            )
            return
        if self.records_ret_code is not None:
            await _respond(
                send, 200, {"retCode": self.records_ret_code, "retMsg": "emulated failure"}
            )
            return
        query = _parse_records_query(body)
        if isinstance(query, str):
            await _respond(send, 200, {"retCode": "1", "retMsg": query})
            return
        start, end, task_type, offset, limit, caller = query
        now = self._wall_clock()
        with self._lock:
            found = [
                call
                for call in self.calls
                if start <= call.created_at * 1000 <= end
                and call.created_at + self.record_delay <= now
                and task_type in ("0", "2")
                and caller in (None, self.record_caller)
            ]
        page = found[offset : offset + limit]
        await _respond(
            send,
            200,
            {
                "retCode": "0",
                "retMsg": "Query call detail record successfully",
                "result": {"total": len(found), "callInfo": [self._record(c) for c in page]},
            },
        )

    def _record(self, call: RecordedCall) -> dict[str, Any]:
        started = round(call.created_at * 1000)
        record: dict[str, Any] = {
            "callSerialNo": call.serial_no,
            "caller": self.record_caller,
            "called": call.called,
            "startTime": started,
            "alertingTime": started + 2000,
            "talkingTime": started + 3000,
            "releaseTime": started + 30000,
            "endTime": started + 30000,
            "talkDuration": 27,
            "state": 3,
            "reasonCode": 0,
        }
        if call.caller_present is not None:
            record["callerPresent"] = call.caller_present
        return record

    def _take_drop(self, called: str) -> DropPoint | None:
        with self._lock:
            entry = self._drops.get(called)
            if entry is None:
                return None
            when, times = entry
            if times is not None:
                if times <= 1:
                    del self._drops[called]
                else:
                    entry[1] = times - 1
            return when  # type: ignore[no-any-return]


def _parse_call(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    called = data.get("called")
    if not isinstance(called, str) or not called or len(called) > MAX_CALLED:
        return None
    for key, limit in (("callData", MAX_CALL_DATA), ("callerPresent", MAX_CALLER_PRESENT)):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            return None
    return data


_SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


def _parse_records_query(
    body: bytes,
) -> tuple[int, int, str, int, int, str | None] | str:
    """Read the query: (start, end, taskType, offset, limit, caller), or why it is refused."""
    try:
        data = json.loads(body)
    except ValueError:
        return "the request body is not JSON"
    if not isinstance(data, dict):
        return "the request body is not a JSON object"
    try:
        start, end = int(str(data["startTime"])), int(str(data["endTime"]))
        offset, limit = int(str(data.get("offset", "0"))), int(str(data.get("limit", "100")))
    except (KeyError, ValueError):
        return "startTime and endTime are required, in milliseconds"
    if end < start:
        return "endTime is before startTime"
    if end - start > _SEVEN_DAYS_MS:
        return "the time range exceeds 7 days"
    caller = data.get("caller")
    return start, end, str(data.get("taskType", "0")), offset, limit, caller


def _failure(code: str, description: str) -> dict[str, Any]:
    return {"resultCode": code, "resultDesc": description}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(
    send: Send, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    await _respond_raw(send, status, json.dumps(payload).encode(), "application/json", headers)


async def _respond_raw(
    send: Send,
    status: int,
    content: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    raw_headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(content)).encode()),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})


async def _drop(send: Send) -> None:
    # Start an answer and abort it: a real server then closes the connection mid-response,
    # and httpx's in-process ASGITransport re-raises this same transport error.
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
    )
    raise _http.RemoteProtocolError("emulator dropped the connection")
