"""``ccmessaging_async.jobs``, the library: a job made from requests, run with a session.

On asyncio and trio, on both stores (a job file, and a job in PostgreSQL).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import anyio
import pytest

from ccmessaging_async import CreateCallRequest
from ccmessaging_async.cli import ExitCode, main
from ccmessaging_async.jobs import JobRefusedError, Recorded, describe_job, export_job, open_job
from ccmessaging_async.jobs._commits import GroupCommitter
from ccmessaging_async.jobs._errors import storage_errors
from ccmessaging_async.jobs._job import open_stored_job
from ccmessaging_async.jobs._records import RunProgress
from ccmessaging_async.testing import Emulator
from tests._helpers import in_process_session

pytestmark = pytest.mark.anyio


def calls(n: int, prefix: str = "1397") -> list[CreateCallRequest]:
    return [CreateCallRequest(called=f"{prefix}{i:07d}", caller_present="95599") for i in range(n)]


async def test_a_job_from_requests_runs_once_and_resumes_to_nothing(
    store: tuple[str, str | None], tmp_path: Path
) -> None:
    """Every request dialled once, its outcome recorded, the report written; then idle."""
    location, name = store
    emulator = Emulator()
    seen: list[Recorded] = []
    report = tmp_path / "calls.jsonl"
    async with in_process_session(emulator) as session:
        async with open_job(location, name=name, requests=calls(40), report=report) as job:
            assert job.imported == 40
            run = await job.run(session, concurrency=8, on_recorded=seen.extend)
            assert run.how == "finished"
            assert (await job.counts())["succeeded"] == 40
        async with open_job(location, name=name, requests=calls(40)) as job:
            assert job.imported == 0
            again = await job.run(session, concurrency=8)
            assert again.how == "finished"
    assert len(emulator.calls) == 40
    assert emulator.duplicates() == {}
    assert sorted(r.final.row for r in seen) == list(range(40))
    assert len(report.read_text().splitlines()) == 40
    assert "succeeded 40" in await describe_job(location, name=name)
    assert await export_job(location, tmp_path / "again.csv", name=name) == 40


async def test_other_requests_under_the_same_job_are_refused(
    store: tuple[str, str | None],
) -> None:
    """A resume with different requests is refused before anything is dialled."""
    location, name = store
    async with open_job(location, name=name, requests=calls(3)):
        pass
    with pytest.raises(JobRefusedError, match="not the ones this job was started with"):
        async with open_job(location, name=name, requests=calls(4)):
            pass


async def test_a_stop_leaves_the_rest_pending(store: tuple[str, str | None]) -> None:
    """Setting ``stop`` ends the run: no new calls; what was not dialled stays pending."""
    location, name = store
    emulator = Emulator()
    stop = anyio.Event()
    made = 0

    def recorded(records: list[Recorded]) -> None:
        nonlocal made
        made += len(records)
        if made >= 5:
            stop.set()

    async with (
        in_process_session(emulator) as session,
        open_job(location, name=name, requests=calls(200)) as job,
    ):
        run = await job.run(session, concurrency=2, rate=200, stop=stop, on_recorded=recorded)
        counts = await job.counts()
    assert run.how == "interrupted"
    assert counts["pending"] == 200 - len(emulator.calls) > 0
    assert counts["sending"] == counts["unknown"] == 0


@pytest.mark.slow
async def test_two_runs_in_one_program_share_a_job_in_postgresql(postgres_url: str) -> None:
    """Two workers (two stores) in one event loop: the rows split between them, once each."""
    name = f"api-{secrets.token_hex(4)}"
    emulator = Emulator()
    runs = []
    async with open_job(postgres_url, name=name, requests=calls(120, "1398")):
        pass

    async def work() -> None:
        async with (
            in_process_session(emulator) as session,
            open_job(postgres_url, name=name) as job,
        ):
            runs.append(await job.run(session, concurrency=4, rate=300))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(work)
        tasks.start_soon(work)
    assert [run.how for run in runs] == ["finished", "finished"]
    assert len(emulator.calls) == 120
    assert emulator.duplicates() == {}


async def test_a_job_is_run_once_per_opening(tmp_path: Path) -> None:
    """A second run on the same opening is refused (open the job again to resume)."""
    emulator = Emulator()
    async with (
        in_process_session(emulator) as session,
        open_job(tmp_path / "x.job", requests=calls(2)) as job,
    ):
        await job.run(session)
        with pytest.raises(RuntimeError, match="open it again"):
            await job.run(session)


@pytest.mark.parametrize("command", ["batch", "work", "status", "export"])
def test_without_the_postgres_extra_a_database_job_says_what_to_install(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No psycopg: exit 2 naming the extra, before anything is dialled (no traceback)."""
    for module in (
        "psycopg",
        "ccmessaging_async.jobs._postgres",
        "ccmessaging_async.jobs._postgres_status",
    ):
        monkeypatch.setitem(sys.modules, module, None)
    url = "postgresql://ops@127.0.0.1:1/campaigns"
    source = tmp_path / "in.csv"
    source.write_text("called\n13900000001\n")
    argv = {
        "batch": ["batch", str(source), "--out", str(tmp_path / "out.jsonl"), "--job", url],
        "work": ["work", "--job", url],
        "status": ["status", url],
        "export": ["export", url, "--out", str(tmp_path / "out.csv")],
    }[command]
    monkeypatch.setenv("CCMESSAGING_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CCMESSAGING_APP_KEY", "k")
    monkeypatch.setenv("CCMESSAGING_APP_SECRET", "s")
    assert main([*argv, "--name", "spring"]) == ExitCode.USAGE
    assert "pip install 'ccmessaging-async[postgres]'" in capsys.readouterr().err


async def test_status_shows_the_throttles_of_a_run_while_it_goes(
    store: tuple[str, str | None],
) -> None:
    """Each commit notes the run's throttles and pace; `status` reads them mid-run."""
    location, name = store
    job = await anyio.to_thread.run_sync(
        lambda: open_stored_job(
            None,
            None,
            location if name else Path(location),
            name=name,
            resend_unknown=False,
            requests=calls(3),
        )
    )
    try:
        committer = GroupCommitter(
            job.store,
            lambda _records: None,
            storage_errors(),
            progress=lambda: RunProgress(throttles=3, pace=12.5),
        )
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(committer.run)
            (row,) = await anyio.to_thread.run_sync(job.store.take, 1)
            await committer.claim(row.row)
            shown = await describe_job(location, name=name)
            await committer.close()
    finally:
        await anyio.to_thread.run_sync(lambda: job.close("stopped"))
    if name is None:
        assert "throttled 3 times so far; its pace now 12.5 calls/s" in shown
    else:
        assert "the workers running were throttled 3 times so far" in shown
