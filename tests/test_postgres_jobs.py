"""Jobs in PostgreSQL: the store's protocol, then workers as operators run them.

Everything runs against a real PostgreSQL (a database of the test run's own, see
``tests/_postgres.py``), never a mock: the protocol's guarantees are the database's.
"""

from __future__ import annotations

import concurrent.futures
import secrets
from collections.abc import Iterator

import anyio
import httpx
import psycopg
import pytest

from ccmessaging_async import AsyncSession, CreateCallRequest, Pacing
from ccmessaging_async.jobs import JobRefusedError
from ccmessaging_async.jobs._errors import storage_errors
from ccmessaging_async.jobs._input import RequestRows
from ccmessaging_async.jobs._job import open_stored_job
from ccmessaging_async.jobs._postgres import PostgresStore
from ccmessaging_async.jobs._postgres_schema import SCHEMA_VERSION
from ccmessaging_async.jobs._records import Final, InputRules
from ccmessaging_async.jobs._runner import run_job
from ccmessaging_async.jobs._shared_pace import SharedPacing
from ccmessaging_async.testing import Emulator
from tests._postgres import own_database


def job_name() -> str:
    return f"job-{secrets.token_hex(4)}"


def requests(n: int, prefix: str = "1391") -> list[CreateCallRequest]:
    return [CreateCallRequest(called=f"{prefix}{i:07d}", caller_present="95599") for i in range(n)]


@pytest.fixture
def name() -> str:
    return job_name()


def new_job(url: str, name: str, n: int, *, lease: float = 30.0) -> PostgresStore:
    store = PostgresStore(url, name, lease=lease)
    rows = RequestRows(requests(n))
    store.import_rows(rows, "(requests)", "requests", rows.identity, InputRules())
    return store


@pytest.fixture
def workers(postgres_url: str, name: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two workers on one new job of 20 rows."""
    first = new_job(postgres_url, name, 20)
    second = PostgresStore(postgres_url, name, lease=30.0)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def final(row: int, status: str = "succeeded") -> Final:
    return Final(row, row + 1, None, status, None, "0", None, 1, 1.0)


def lapse(url: str, store: PostgresStore) -> None:
    """Make ``store``'s lease expire, as the database's clock would after a silence."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "UPDATE ccmessaging.workers SET expires_at = now() - interval '1 second' WHERE id = %s",
            (store.worker,),
        )


def outcomes_per_row(url: str, store: PostgresStore) -> dict[int, int]:
    with psycopg.connect(url) as db:
        return dict(
            db.execute(
                "SELECT row, count(*) FROM ccmessaging.outcomes WHERE job = %s GROUP BY row",
                (store.job,),
            ).fetchall()
        )


def test_workers_take_disjoint_groups(workers: tuple[PostgresStore, PostgresStore]) -> None:
    """Two workers taking at once never get the same row (SKIP LOCKED), in row order."""
    first, second = workers
    a, b = first.take(8), second.take(8)
    assert [r.row for r in a] == list(range(8))
    assert [r.row for r in b] == list(range(8, 16))
    assert [r.row for r in first.take(8)] == [16, 17, 18, 19]
    assert second.take(8) == []
    assert second.others_working()  # first holds rows it has not dialled


def test_a_claim_is_fenced_by_the_lease(
    postgres_url: str, workers: tuple[PostgresStore, PostgresStore]
) -> None:
    """A claim under a lease that lapsed matches nothing: the row is not dialled."""
    first, _second = workers
    taken = [r.row for r in first.take(4)]
    assert first.commit(taken[:2], []).refused == frozenset()
    lapse(postgres_url, first)
    refused = first.commit(taken[2:], []).refused
    assert refused == frozenset(taken[2:])
    assert first.counts()["sending"] == 2


def test_a_claim_for_a_row_taken_by_another_is_refused(
    workers: tuple[PostgresStore, PostgresStore],
) -> None:
    """A worker cannot move a row it did not take (or took under an old token)."""
    first, second = workers
    row = first.take(1)[0].row
    assert second.commit([row], []).refused == frozenset({row})
    assert first.commit([row], []).refused == frozenset()


def test_a_lapsed_worker_is_reaped_and_its_late_outcomes_change_nothing(
    postgres_url: str, workers: tuple[PostgresStore, PostgresStore]
) -> None:
    """Rows it was sending become unknown (once); rows it only held go to the others."""
    first, second = workers
    taken = [r.row for r in first.take(4)]
    first.commit(taken[:2], [])  # two are sending, two only held
    lapse(postgres_url, first)
    given = [r.row for r in second.take(20)]
    assert taken[2:] == given[:2]  # the held rows came back first, in order
    assert second.counts()["unknown"] == 2
    assert not first.keep_alive()  # the lapsed worker cannot come back to life
    late = first.commit([], [final(taken[0]), final(taken[1], "failed")])
    assert late.recorded == []
    assert second.counts()["unknown"] == 2
    assert outcomes_per_row(postgres_url, first) == {taken[0]: 1, taken[1]: 1}


def test_the_heartbeat_keeps_the_lease(
    postgres_url: str, workers: tuple[PostgresStore, PostgresStore]
) -> None:
    """A renewed lease keeps a worker's rows from the others."""
    first, second = workers
    first.take(20)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(
            "UPDATE ccmessaging.workers SET expires_at = now() + interval '1 second' WHERE id = %s",
            (first.worker,),
        )
    assert first.keep_alive()
    assert second.take(20) == []  # nothing lapsed: nothing to reap or take


def test_outcomes_are_recorded_once_and_counted(
    postgres_url: str, workers: tuple[PostgresStore, PostgresStore]
) -> None:
    """Every dialled row ends with exactly one outcome, in the report's order."""
    first, second = workers
    for store in (first, second):
        rows = [r.row for r in store.take(10)]
        store.commit(rows, [])
        recorded = store.commit([], [final(row) for row in rows]).recorded
        assert [r.final.row for r in recorded] == rows
    assert first.counts() == {
        "pending": 0,
        "sending": 0,
        "succeeded": 20,
        "failed": 0,
        "unknown": 0,
        "skipped": 0,
    }
    assert outcomes_per_row(postgres_url, first) == dict.fromkeys(range(20), 1)
    assert [r.seq for r in first.outcomes()] == list(range(1, 21))
    assert [r.seq for r in first.outcomes(15)] == list(range(16, 21))
    assert not first.others_working()


def test_a_job_that_ended_gives_back_what_it_did_not_dial(
    workers: tuple[PostgresStore, PostgresStore],
) -> None:
    """A worker that ends (a stop) frees the rows it held; those it sent become unknown."""
    first, second = workers
    rows = [r.row for r in first.take(6)]
    first.commit(rows[:1], [])
    first.end_run("interrupted")
    assert [r.row for r in second.take(5)] == rows[1:]
    assert second.counts()["unknown"] == 1


def test_the_same_name_is_one_job(postgres_url: str, name: str) -> None:
    """A job is created once; a second creation under the same name is refused."""
    first = new_job(postgres_url, name, 3)
    late = PostgresStore(postgres_url, name, lease=30.0)
    try:
        late._job = None  # noqa: SLF001 - as if it had looked before the first created it
        rows = RequestRows(requests(3))
        with pytest.raises(JobRefusedError, match="started by another process meanwhile"):
            late.import_rows(rows, "(requests)", "requests", rows.identity, InputRules())
    finally:
        first.close()
        late.close()


def test_a_schema_of_a_newer_release_is_refused() -> None:
    """The schema is versioned: a database written by a newer release is never changed."""
    with own_database() as url:
        PostgresStore(url, "first", lease=30.0).close()  # creates the schema
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("UPDATE ccmessaging.schema_version SET version = %s", (SCHEMA_VERSION + 1,))
        with pytest.raises(JobRefusedError, match="newer release"):
            PostgresStore(url, "first", lease=30.0)


def test_a_schema_of_version_2_is_brought_to_version_3_with_its_jobs() -> None:
    """A job made by the last release keeps its rows; its old unknown rows stay unsettled."""
    with own_database() as url:
        store = PostgresStore(url, "old", lease=30.0)
        rows = RequestRows(requests(2))
        store.import_rows(rows, "(requests)", "requests", rows.identity, InputRules())
        store.close()
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(
                "UPDATE ccmessaging.rows SET state = 'unknown' WHERE row = 0;"
                "INSERT INTO ccmessaging.outcomes (job, row, status, attempts, latency_ms) "
                "SELECT id, 0, 'unknown', 1, 0 FROM ccmessaging.jobs;"
                "DROP INDEX ccmessaging.outcomes_settled; DROP INDEX ccmessaging.outcomes_created;"
                "ALTER TABLE ccmessaging.rows DROP COLUMN sent_at, DROP COLUMN settled_by;"
                "ALTER TABLE ccmessaging.outcomes DROP COLUMN sent_at, DROP COLUMN settled_by;"
                "UPDATE ccmessaging.schema_version SET version = 2"
            )
        store = PostgresStore(url, "old", lease=30.0)
        try:
            assert store.counts()["unknown"] == 1
            (row,) = store.unknown_rows()
            assert [a.sent_at for a in row.attempts] == [None]  # no window: never guessed
        finally:
            store.close()
        with psycopg.connect(url, autocommit=True) as db:
            found = db.execute("SELECT version FROM ccmessaging.schema_version").fetchone()
            assert found == (SCHEMA_VERSION,)


def test_an_unreachable_database_names_host_and_database_not_the_password() -> None:
    """Nothing is dialled, and the password never appears in the message."""
    with pytest.raises(JobRefusedError) as caught:
        PostgresStore("postgresql://ops:sekret-pw@127.0.0.1:1/campaigns", "x", lease=30.0)
    message = str(caught.value)
    assert "127.0.0.1" in message
    assert "campaigns" in message
    assert "sekret-pw" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or "sekret-pw" not in repr(caught.value.__context__)


@pytest.mark.anyio
@pytest.mark.parametrize("renewal", ["fails", "refused"])
async def test_a_worker_that_cannot_renew_its_lease_stops_dialling(
    postgres_url: str, name: str, renewal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renewals failing for half the lease, or refused, stop the worker's dialling."""
    emulator = Emulator()
    job = open_stored_job(
        None,
        None,
        postgres_url,
        name=name,
        resend_unknown=False,
        lease=1.0,
        requests=requests(400, "1399"),
    )

    def keep_alive() -> bool:
        if renewal == "refused":
            return False
        raise psycopg.OperationalError("the network is down")

    monkeypatch.setattr(job.store, "keep_alive", keep_alive)
    try:
        async with AsyncSession(
            "http://127.0.0.1",
            emulator.app_key,
            emulator.app_secret,
            transport=httpx.ASGITransport(app=emulator),
        ) as session:
            with anyio.fail_after(30):
                run = await run_job(
                    session,
                    job,
                    concurrency=4,
                    pacing=Pacing(rate=40),
                    storage_errors=storage_errors(),
                )
        counts = job.store.counts()
    finally:
        job.close("stopped")
    assert run.failure is not None
    assert ("could not renew" if renewal == "fails" else "taken back") in run.failure
    assert counts["sending"] == 0
    assert counts["succeeded"] == len(emulator.calls) < 400
    assert counts["pending"] == 400 - len(emulator.calls)


def age_pace_changes(url: str, store: PostgresStore, seconds: float) -> None:
    """Make the job's last pace changes ``seconds`` older, as the database's clock would."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "UPDATE ccmessaging.jobs SET lowered_at = lowered_at - make_interval(secs => %s), "
            "raised_at = raised_at - make_interval(secs => %s) WHERE id = %s",
            (seconds, seconds, store.job),
        )


def test_workers_draw_turns_from_one_rate(
    workers: tuple[PostgresStore, PostgresStore],
) -> None:
    """The job's rate is every worker's together: turns follow one another across workers."""
    first, second = workers
    assert (
        first.shared_pace.reserve_turns(5, 1.0) is None
    )  # no rate: each worker keeps its own pace
    first.shared_pace.set_rate(10.0)
    mine = first.shared_pace.reserve_turns(5, 1.0)
    theirs = second.shared_pace.reserve_turns(5, 1.0)
    assert mine is not None
    assert theirs is not None
    assert mine.interval == theirs.interval == pytest.approx(0.1)
    assert mine.start_in == pytest.approx(0.0, abs=0.05)
    assert theirs.start_in == pytest.approx(0.5, abs=0.05)  # after the first's five


def test_taking_rows_and_reserving_turns_at_once_do_not_mix_transactions(
    postgres_url: str, name: str
) -> None:
    """A worker takes rows and reserves turns in two threads at once; neither fails.

    They shared one connection once, and their transactions interleaved
    (``OutOfOrderTransactionNesting``): a row whose turn failed so was not dialled, yet
    the run ended as finished with it still pending.
    """
    store = new_job(postgres_url, name, 400)
    try:
        store.shared_pace.set_rate(1_000_000.0)
        # One thread takes, one reserves: as a run does (each is one at a time).
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            taking = pool.submit(lambda: [store.take(1) for _ in range(300)])
            reserving = pool.submit(
                lambda: [store.shared_pace.reserve_turns(1, 1.0) for _ in range(300)]
            )
            taken = [row.row for rows in taking.result() for row in rows]
            assert all(turns is not None for turns in reserving.result())
        assert sorted(taken) == list(range(300))
    finally:
        store.close()


def test_a_cut_or_a_pause_by_one_worker_holds_them_all(
    postgres_url: str, workers: tuple[PostgresStore, PostgresStore]
) -> None:
    """One worker's throttling lowers the job's pace once a window, and pauses everyone."""
    first, second = workers
    first.shared_pace.set_rate(10.0)
    first.shared_pace.slow_down(0.8, 1.0)
    first.shared_pace.slow_down(0.8, 1.0)  # the same window: once
    assert second.shared_pace.pace() == pytest.approx(8.0)
    turns = second.shared_pace.reserve_turns(2, 1.0)
    assert turns is not None
    assert turns.interval == pytest.approx(1 / 8.0)
    first.shared_pace.pause(3.0)
    paused = second.shared_pace.reserve_turns(1, 1.0)
    assert paused is not None
    assert 2.5 < paused.start_in <= 3.0
    age_pace_changes(postgres_url, first, 2.0)
    second.shared_pace.reserve_turns(1, 1.0)  # a window without a cut: it climbs by a twentieth
    assert first.shared_pace.pace() == pytest.approx(8.5)
    for _ in range(10):
        age_pace_changes(postgres_url, first, 2.0)
        second.shared_pace.reserve_turns(1, 1.0)
    assert first.shared_pace.pace() == pytest.approx(10.0)  # never above the job's rate
    first.shared_pace.set_rate(10.0)  # a worker joining with the same rate keeps the pace
    first.shared_pace.slow_down(0.5, 0.0)
    first.shared_pace.set_rate(10.0)
    assert first.shared_pace.pace() == pytest.approx(5.0)
    first.shared_pace.set_rate(20.0)  # another rate is the job's new one
    assert first.shared_pace.pace() == pytest.approx(20.0)


def test_a_job_with_no_rate_shares_the_pace_its_first_throttled_worker_found(
    postgres_url: str, workers: tuple[PostgresStore, PostgresStore]
) -> None:
    """No rate: no pace until a throttle; then the worker's found rate times the workers.

    Before, a job with no rate never had a shared pace: each worker found the platform's
    rate alone, and a throttle seen by one slowed nobody else.
    """
    first, second = workers
    assert first.worker != second.worker  # both registered: two workers running
    assert second.shared_pace.reserve_turns(1, 1.0) is None
    first.shared_pace.slow_down(0.8, 1.0)  # a cut with nothing found: nothing to share
    assert first.shared_pace.pace() is None
    first.shared_pace.slow_down(0.8, 1.0, found=30.0)
    assert second.shared_pace.pace() == pytest.approx(60.0)  # two workers running
    first.shared_pace.slow_down(0.8, 1.0, found=5.0)  # the same window: once
    assert second.shared_pace.pace() == pytest.approx(60.0)
    turns = second.shared_pace.reserve_turns(6, 1.0)
    assert turns is not None
    assert turns.interval == pytest.approx(1 / 60.0)
    age_pace_changes(postgres_url, first, 2.0)
    second.shared_pace.reserve_turns(1, 1.0)  # turns still ahead: the pace is used
    assert first.shared_pace.pace() == pytest.approx(63.0)  # a twentieth of itself
    age_pace_changes(postgres_url, first, 2.0)
    first.shared_pace.slow_down(0.5, 1.0)  # a cut not measured: by its factor
    assert second.shared_pace.pace() == pytest.approx(31.5)
    age_pace_changes(postgres_url, first, 2.0)
    first.shared_pace.slow_down(0.8, 1.0, found=10.0)  # measured: to it, per worker
    assert second.shared_pace.pace() == pytest.approx(20.0)
    age_pace_changes(postgres_url, first, 2.0)
    first.shared_pace.slow_down(0.8, 1.0, found=100.0)  # a cut never raises the pace
    assert second.shared_pace.pace() == pytest.approx(20.0)


def test_a_pace_the_workers_do_not_use_does_not_climb(
    postgres_url: str, workers: tuple[PostgresStore, PostgresStore]
) -> None:
    """Reservations that come after the turns ran out (the workers are slower) raise nothing."""
    first, second = workers
    first.shared_pace.set_rate(20.0)
    first.shared_pace.slow_down(0.5, 1.0)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(
            "UPDATE ccmessaging.jobs SET tat = now() - interval '1 second' WHERE id = %s",
            (first.job,),
        )
    age_pace_changes(postgres_url, first, 2.0)
    second.shared_pace.reserve_turns(1, 1.0)
    assert first.shared_pace.pace() == pytest.approx(10.0)


@pytest.mark.anyio
async def test_a_worker_throttled_reports_its_cut_and_pause_to_the_job(
    workers: tuple[PostgresStore, PostgresStore],
) -> None:
    """Its own pace's cut lowers the job's by the same factor; Retry-After pauses all."""
    first, second = workers
    first.shared_pace.set_rate(10.0)
    pacing = SharedPacing(10.0, max_throttle_wait=600, store=first.shared_pace)
    assert await pacing.shared.turn(lambda: False, anyio.sleep)  # turns reserved
    assert not pacing.throttled()
    assert pacing.throttled(retry_after=2.0)  # two signals in a window: cut, and paused
    assert pacing.rate == pytest.approx(8.0)
    await pacing.shared.flush()
    assert second.shared_pace.pace() == pytest.approx(8.0)
    turns = second.shared_pace.reserve_turns(1, 1.0)
    assert turns is not None
    assert turns.start_in > 1.5  # the pause holds the other worker too


@pytest.mark.anyio
async def test_a_worker_of_a_job_with_no_rate_gives_the_job_the_pace_it_found(
    workers: tuple[PostgresStore, PostgresStore],
) -> None:
    """A cut measured on what the platform took from a worker sets the job's pace.

    10 starts in a second, 20 taken: its own pace 9.5/s, the job's 19/s (two workers).
    """
    first, second = workers
    assert first.worker != second.worker
    now = [0.0]
    pacing = SharedPacing(
        None, max_throttle_wait=600, store=first.shared_pace, clock=lambda: now[0]
    )
    assert await pacing.shared.turn(lambda: False, anyio.sleep)  # no pace yet: at once
    for _ in range(10):
        assert await pacing.admit()
    now[0] = 1.0
    for _ in range(20):
        pacing.accepted(0.01)
    pacing.throttled()
    pacing.throttled()
    assert pacing.rate == pytest.approx(0.95 * 10.0)  # what it started, under what was taken
    await pacing.shared.flush()
    assert second.shared_pace.pace() == pytest.approx(19.0)
    assert await pacing.shared.turn(lambda: False, anyio.sleep)  # now from the job's turns
    turns = second.shared_pace.reserve_turns(1, 1.0)
    assert turns is not None
    assert turns.interval == pytest.approx(1 / 19.0)
