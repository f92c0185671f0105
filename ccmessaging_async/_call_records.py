"""Call records (SPEC section 5): the platform's history of calls, read a page at a time.

A query covers at most 7 days, so a longer range is asked as several; each is paged with
``offset``/``limit`` until its ``total`` is read. Reading changes nothing on the platform:
a query that failed in any way may be asked again (the endpoint is idempotent).
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ._converter import structure_call_records
from ._endpoints import Endpoint
from ._errors import CallRecordsError, InvalidRequestError
from ._models import MAX_PAGE_SIZE, CallRecord, CallRecordsPage, CallRecordsQuery, CallTaskType

__all__ = ["CALL_RECORDS", "MAX_SPAN", "read_records", "windows"]

#: The longest range one query may cover.
MAX_SPAN = datetime.timedelta(days=7)


def _decode(data: Any) -> CallRecordsPage:
    ret_code, ret_msg, page = structure_call_records(data)
    if ret_code != "0":
        raise CallRecordsError(ret_code, ret_msg)
    return page


CALL_RECORDS: Endpoint[CallRecordsQuery, CallRecordsPage] = Endpoint(
    name="queryCallDetailRecord",
    method="POST",
    path="/apiaccess/CC-Management/v1/mobileAgent/queryCallDetailRecord",
    request_type=CallRecordsQuery,
    encode=CallRecordsQuery.encode,
    decode=_decode,
    describe=lambda query: f"offset={query.offset} limit={query.limit}",
    attributes=lambda query: {
        "ccmessaging.records.offset": str(query.offset),
        "ccmessaging.records.task_type": str(int(query.task_type)),
    },
    idempotent=True,
    unknown="a query changes nothing, so it may be asked again",
)


def _milliseconds(name: str, moment: datetime.datetime) -> int:
    if not isinstance(moment, datetime.datetime):
        raise InvalidRequestError(f"{name} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRequestError(
            f"{name} must be timezone-aware (datetime.now(datetime.UTC), say): the platform "
            "counts milliseconds since the epoch, and a naive time could be any zone's"
        )
    return round(moment.timestamp() * 1000)


def windows(start: datetime.datetime, end: datetime.datetime) -> Iterator[tuple[int, int]]:
    """Split ``[start, end]`` into ranges of at most :data:`MAX_SPAN`, in milliseconds."""
    first, last = _milliseconds("start", start), _milliseconds("end", end)
    if first >= last:
        raise InvalidRequestError("start must be before end")
    span = int(MAX_SPAN.total_seconds() * 1000)
    while first < last:
        upto = min(first + span, last)
        yield first, upto
        first = upto


async def read_records(
    send: Callable[[CallRecordsQuery], Awaitable[CallRecordsPage]],
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    caller: str | None,
    task_type: CallTaskType | int,
    page_size: int,
) -> AsyncIterator[CallRecord]:
    """Yield every record from ``start`` to ``end``, query after query, page after page."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidRequestError(f"page_size must be 1 to {MAX_PAGE_SIZE}, not {page_size}")
    if caller is not None and not 1 <= len(caller) <= 32:
        raise InvalidRequestError("caller must be 1 to 32 characters")
    kind = CallTaskType(task_type)
    ranges = list(windows(start, end))  # checked before anything is sent
    at_edge: set[str] = set()  # records on the edge of two ranges: counted in the first
    for first, last in ranges:
        offset, before, at_edge = 0, at_edge, set()
        while True:
            query = CallRecordsQuery(first, last, kind, offset, page_size, caller)
            page = await send(query)
            for record in page.records:
                moment = round(record.start_time.timestamp() * 1000)
                if moment == last:
                    at_edge.add(record.call_serial_no)
                if moment != first or record.call_serial_no not in before:
                    yield record
            offset += len(page.records)
            # A short page, or all counted: this range is read (a total that moves as
            # calls are created meanwhile never makes this loop endless).
            if len(page.records) < page_size or offset >= page.total:
                break
