"""Reading the platform's call records (SPEC section 5): paging, 7-day ranges, retries.

HTTP mocked with respx on asyncio and trio; then the emulator, which serves the records
of the calls it created.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import anyio
import httpx
import pytest
import respx

from ccmessaging_async import (
    AsyncSession,
    CallRecord,
    CallRecordsError,
    CallState,
    CallTaskType,
    CreateCallRequest,
    InvalidRequestError,
    ResponseDecodeError,
    RetryPolicy,
    TokenPolicy,
)
from ccmessaging_async.testing import Emulator
from tests._helpers import APP_KEY, APP_SECRET, BASE_URL, token_json

pytestmark = pytest.mark.anyio

TOKEN_PATH = "/apigovernance/api/oauth/tokenByAkSk"
RECORDS_PATH = "/apiaccess/CC-Management/v1/mobileAgent/queryCallDetailRecord"
UTC = datetime.UTC
DAY = datetime.timedelta(days=1)
START = datetime.datetime(2026, 12, 1, tzinfo=UTC)


def session(**kwargs: Any) -> AsyncSession:
    kwargs.setdefault("retry", RetryPolicy.for_tests())
    kwargs.setdefault("token", TokenPolicy.for_tests())
    return AsyncSession(BASE_URL, APP_KEY, APP_SECRET, **kwargs)


def ms(moment: datetime.datetime) -> int:
    return round(moment.timestamp() * 1000)


def wire_record(serial: str, at: datetime.datetime, **extra: Any) -> dict[str, Any]:
    return {"callSerialNo": serial, "called": "13800000001", "startTime": ms(at), **extra}


def answer(records: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    return {
        "retCode": "0",
        "retMsg": "Query call detail record successfully",
        "result": {"total": len(records) if total is None else total, "callInfo": records},
    }


def sent_bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


async def test_a_record_is_read_as_documented(router: respx.MockRouter) -> None:
    """The vendor's sample: every field, times as aware datetimes, unknown keys ignored."""
    router.post(TOKEN_PATH).respond(json=token_json())
    sample = {
        "callSerialNo": "1037058396471308289",
        "caller": "88889050",
        "called": "88889060",
        "callerPresent": "640003",
        "agentPresent": "640060",
        "startTime": 1621576992000,
        "alertingTime": 1621576994000,
        "talkingTime": 1621576995000,
        "releaseTime": 1621577022000,
        "endTime": 1621577022000,
        "talkDuration": 26,
        "state": 3,
        "reasonCode": 1,
        "somethingNew": {"the platform": "may add fields"},
    }
    route = router.post(RECORDS_PATH).respond(json=answer([sample]))
    async with session() as client:
        found = [r async for r in client.call_records(START, START + DAY)]
    (record,) = found
    assert record.call_serial_no == "1037058396471308289"
    assert record.called == "88889060"
    assert record.caller_present == "640003"
    assert record.start_time == datetime.datetime(2021, 5, 21, 6, 3, 12, tzinfo=UTC)
    assert record.end_time is not None
    assert record.end_time.tzinfo is not None
    assert record.talk_duration == 26
    assert record.state == CallState.ENDED
    assert record.reason_code == 1
    assert "88889060" not in repr(record)  # numbers masked
    body = sent_bodies(route)[0]
    assert body == {
        "startTime": str(ms(START)),
        "endTime": str(ms(START + DAY)),
        "taskType": "2",
        "offset": "0",
        "limit": "100",
    }
    assert route.calls[0].request.headers["authorization"].startswith("Bearer ")


async def test_pages_are_read_until_the_total(router: respx.MockRouter) -> None:
    """250 records, 100 a page: three queries, at offsets 0, 100 and 200."""
    router.post(TOKEN_PATH).respond(json=token_json())
    every = [wire_record(f"{i:04d}", START + datetime.timedelta(minutes=i)) for i in range(250)]

    def page(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        offset, limit = int(body["offset"]), int(body["limit"])
        return httpx.Response(200, json=answer(every[offset : offset + limit], total=250))

    route = router.post(RECORDS_PATH).mock(side_effect=page)
    async with session() as client:
        found = [r.call_serial_no async for r in client.call_records(START, START + DAY)]
    assert found == [f"{i:04d}" for i in range(250)]
    assert [b["offset"] for b in sent_bodies(route)] == ["0", "100", "200"]


async def test_a_range_longer_than_seven_days_is_asked_as_several(
    router: respx.MockRouter,
) -> None:
    """16 days: three queries of at most 7 days; a record on the edge counted once."""
    router.post(TOKEN_PATH).respond(json=token_json())
    edge = START + 7 * DAY

    def inclusive(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        first, last = int(body["startTime"]), int(body["endTime"])
        records = [wire_record("edge", edge)] if first <= ms(edge) <= last else []
        return httpx.Response(200, json=answer(records))

    route = router.post(RECORDS_PATH).mock(side_effect=inclusive)
    async with session() as client:
        found = [
            r.call_serial_no
            async for r in client.call_records(START, START + 16 * DAY, caller="88889050")
        ]
    assert found == ["edge"]
    ranges = [(int(b["startTime"]), int(b["endTime"])) for b in sent_bodies(route)]
    assert ranges == [
        (ms(START), ms(START + 7 * DAY)),
        (ms(START + 7 * DAY), ms(START + 14 * DAY)),
        (ms(START + 14 * DAY), ms(START + 16 * DAY)),
    ]
    assert all(b["caller"] == "88889050" for b in sent_bodies(route))


async def test_a_ret_code_other_than_zero_is_a_typed_error(router: respx.MockRouter) -> None:
    """The error keeps the platform's retCode and retMsg."""
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(RECORDS_PATH).respond(json={"retCode": "1", "retMsg": "time range too long"})
    async with session() as client:
        with pytest.raises(CallRecordsError) as caught:
            _ = [r async for r in client.call_records(START, START + DAY)]
    assert caught.value.ret_code == "1"
    assert caught.value.ret_msg == "time range too long"


async def test_reading_is_retried_after_what_createcall_would_never_resend(
    router: respx.MockRouter,
) -> None:
    """A 503 and a dropped connection are sent again: a query changes nothing."""
    router.post(TOKEN_PATH).respond(json=token_json())
    route = router.post(RECORDS_PATH).mock(
        side_effect=[
            httpx.Response(503),
            httpx.ReadError("connection dropped"),
            httpx.Response(200, json=answer([wire_record("1", START)])),
        ]
    )
    async with session() as client:
        found = [r async for r in client.call_records(START, START + DAY)]
    assert [r.call_serial_no for r in found] == ["1"]
    assert route.call_count == 3


async def test_a_body_that_is_not_the_documented_json_says_it_may_be_asked_again(
    router: respx.MockRouter,
) -> None:
    """Not "the call may have been created": this is a read."""
    router.post(TOKEN_PATH).respond(json=token_json())
    router.post(RECORDS_PATH).respond(json={"retCode": "0", "result": {"callInfo": "nope"}})
    async with session(retry=RetryPolicy(max_resends=0)) as client:
        with pytest.raises(ResponseDecodeError, match="may be asked again"):
            _ = [r async for r in client.call_records(START, START + DAY)]


@pytest.mark.parametrize(
    ("start", "end", "options", "match"),
    [
        (datetime.datetime(2026, 12, 1), START + DAY, {}, "timezone-aware"),
        (START + DAY, START, {}, "before end"),
        (START, START + DAY, {"page_size": 0}, "page_size"),
        (START, START + DAY, {"page_size": 101}, "page_size"),
        (START, START + DAY, {"caller": "9" * 33}, "caller"),
    ],
)
async def test_bad_arguments_send_nothing(
    router: respx.MockRouter,
    start: datetime.datetime,
    end: datetime.datetime,
    options: dict[str, Any],
    match: str,
) -> None:
    """A clear, typed error before any request."""
    token = router.post(TOKEN_PATH).respond(json=token_json())
    route = router.post(RECORDS_PATH).respond(json=answer([]))
    async with session() as client:
        with pytest.raises(InvalidRequestError, match=match):
            _ = [r async for r in client.call_records(start, end, **options)]
    assert route.call_count == 0
    assert token.call_count <= 1  # the session's own start, nothing for the query


# ---- against the emulator --------------------------------------------------------------


class WallClock:
    """A wall clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        """Return the time the test set."""
        return self.now


async def test_the_emulator_serves_the_records_of_the_calls_it_created() -> None:
    """Created calls appear after the record delay, filtered by task type and caller."""
    clock = WallClock(START.timestamp() + 3600)
    emulator = Emulator(wall_clock=clock)
    emulator.record_delay = 60
    async with AsyncSession(
        "http://127.0.0.1",
        emulator.app_key,
        emulator.app_secret,
        transport=httpx.ASGITransport(app=emulator),
    ) as client:
        for number in ("13800000001", "13800000002"):
            await client.create_call(CreateCallRequest(called=number, caller_present="95599"))
        window = (START, START + DAY)
        assert [r async for r in client.call_records(*window)] == []  # not yet
        clock.now += 61
        found: list[CallRecord] = [r async for r in client.call_records(*window, page_size=1)]
        assert [r.called for r in found] == ["13800000001", "13800000002"]
        assert [r.call_serial_no for r in found] == [c.serial_no for c in emulator.calls]
        assert found[0].start_time == datetime.datetime.fromtimestamp(START.timestamp() + 3600, UTC)
        assert found[0].caller_present == "95599"
        voice = client.call_records(*window, task_type=CallTaskType.VOICE_NOTIFICATION)
        assert [r async for r in voice] == []
        other = client.call_records(*window, caller="99999999")
        assert [r async for r in other] == []
    assert emulator.record_queries >= 4


async def test_the_emulator_refuses_more_than_seven_days_in_one_query() -> None:
    """As the platform does: retCode other than 0, with why."""
    emulator = Emulator()
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as raw:
        token = (
            await raw.post(
                TOKEN_PATH, json={"app_key": emulator.app_key, "app_secret": emulator.app_secret}
            )
        ).json()["AccessToken"]
        headers = {"Authorization": f"Bearer {token}", "X-APP-Key": emulator.app_key}
        body = {"startTime": str(ms(START)), "endTime": str(ms(START + 8 * DAY))}
        refused = (await raw.post(RECORDS_PATH, json=body, headers=headers)).json()
        no_token = await raw.post(RECORDS_PATH, json=body)
    assert refused == {"retCode": "1", "retMsg": "the time range exceeds 7 days"}
    assert no_token.status_code == 403


@pytest.mark.fake_clock
async def test_a_token_that_expires_between_pages_is_renewed_and_the_page_read() -> None:
    """The platform forgets every token after the first page: the rest is still read, once."""
    emulator = Emulator()
    async with AsyncSession(
        "http://127.0.0.1",
        emulator.app_key,
        emulator.app_secret,
        transport=httpx.ASGITransport(app=emulator),
        token=TokenPolicy(clock=anyio.current_time),  # its second between fetches: no wait
    ) as client:
        for i in range(5):
            await client.create_call(CreateCallRequest(called=f"1380000000{i}"))
        now = datetime.datetime.now(UTC)
        seen: list[str] = []
        async for record in client.call_records(now - DAY, now + DAY, page_size=2):
            seen.append(record.call_serial_no)
            if len(seen) == 2:
                emulator.expire_all_tokens()
    assert seen == [c.serial_no for c in emulator.calls]
    assert emulator.token_requests == 2
