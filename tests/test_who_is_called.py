"""Who a job calls: numbers checked at import, each number once, a suppression list that wins.

Through the library on both stores (a job file, a job in PostgreSQL), asyncio and trio,
and through the command line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from ccmessaging_async import ConfigurationError, CreateCallRequest
from ccmessaging_async.cli import ExitCode, main
from ccmessaging_async.jobs import (
    JobRefusedError,
    Recorded,
    SuppressionList,
    _numbers,
    describe_job,
    open_job,
)
from ccmessaging_async.jobs._errors import JobStoppedError
from ccmessaging_async.testing import Emulator, EmulatorServer
from tests._helpers import emulator_env, in_process_session

pytestmark = pytest.mark.anyio


def requests_for(*called: str) -> list[CreateCallRequest]:
    return [CreateCallRequest(called=number, caller_present="95599") for number in called]


def lines(report: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in report.read_text().splitlines()]


def by_row(report: Path) -> dict[int, dict[str, object]]:
    return {int(str(line["row"])): line for line in lines(report)}


# ---- each number once per job --------------------------------------------------------


async def test_the_same_person_written_two_ways_is_called_once(
    store: tuple[str, str | None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a region, ``13800000001`` and ``+86 138 0000 0001`` are one person: one call."""
    location, name = store
    emulator = Emulator()
    report = tmp_path / "calls.jsonl"
    given = requests_for("13800000001", "13800000002", "+86 138 0000 0001", "13800000002")
    async with (
        in_process_session(emulator) as session,
        open_job(location, name=name, requests=given, report=report, default_region="CN") as job,
    ):
        assert job.duplicates == 2
        run = await job.run(session, concurrency=4)
        assert run.how == "finished", run.failure
        counts = await job.counts()
    assert counts["succeeded"] == 2
    assert counts["skipped"] == 2
    assert emulator.calls_for("13800000001") == 1
    assert emulator.calls_for("13800000002") == 1
    assert len(emulator.calls) == 2
    rows = by_row(report)
    assert rows[2]["status"] == "skipped"
    assert "the same number as row 0 (line 1)" in str(rows[2]["error"])
    assert "the same number as row 1 (line 2)" in str(rows[3]["error"])
    assert "2 duplicates" in await describe_job(location, name=name)
    where = [location, "--name", name] if name else [location]
    assert main(["status", *where, "--json"]) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert data["not_called"] == {"invalid": 0, "duplicates": 2, "suppressed": 0}
    assert data["counts"]["skipped"] == 2
    assert data["input"]["region"] == "CN"


async def test_allow_duplicates_calls_every_row(store: tuple[str, str | None]) -> None:
    """``allow_duplicates=True`` dials each row, also a number an earlier row has."""
    location, name = store
    emulator = Emulator()
    given = requests_for("13800000001", "13800000001")
    async with (
        in_process_session(emulator) as session,
        open_job(location, name=name, requests=given, allow_duplicates=True) as job,
    ):
        assert job.duplicates == 0
        await job.run(session, concurrency=2)
    assert emulator.calls_for("13800000001") == 2


async def test_without_a_region_only_the_same_spelling_is_the_same_person(
    store: tuple[str, str | None],
) -> None:
    """No region: numbers are compared as written (separators aside); say so, not guess."""
    location, name = store
    emulator = Emulator()
    given = requests_for("138-0000-0001", "13800000001", "+8613800000001")
    async with (
        in_process_session(emulator) as session,
        open_job(location, name=name, requests=given) as job,
    ):
        assert job.duplicates == 1
        await job.run(session, concurrency=2)
    assert emulator.calls_for("13800000001") == 1
    assert emulator.calls_for("+8613800000001") == 1


async def test_a_resume_that_reads_the_input_otherwise_is_refused(
    store: tuple[str, str | None],
) -> None:
    """The region, the form sent and duplicates are the job's: a resume gives the same."""
    location, name = store
    given = requests_for("13800000001")
    async with open_job(location, name=name, requests=given, default_region="CN"):
        pass
    with pytest.raises(JobRefusedError, match="took its input in with --region CN"):
        async with open_job(location, name=name, requests=given):
            pass
    with pytest.raises(JobRefusedError, match="--allow-duplicates"):
        async with open_job(
            location, name=name, requests=given, default_region="CN", allow_duplicates=True
        ):
            pass
    async with open_job(location, name=name, requests=given, default_region="CN") as job:
        assert job.imported == 0


# ---- numbers checked at import -------------------------------------------------------


async def test_numbers_that_are_not_numbers_fail_at_import_and_are_never_sent(
    tmp_path: Path,
) -> None:
    """``call-me-maybe`` and ``12`` fail with the reason; `` 13800000051 `` goes trimmed."""
    emulator = Emulator()
    report = tmp_path / "calls.jsonl"
    source = tmp_path / "calls.csv"
    source.write_text("called,caller_present\ncall-me-maybe,95599\n12,95599\n 13800000051 ,95599\n")
    async with (
        in_process_session(emulator) as session,
        open_job(tmp_path / "calls.job", input=source, report=report) as job,
    ):
        assert job.invalid == 2
        await job.run(session, concurrency=2)
    rows = by_row(report)
    assert rows[0]["status"] == rows[1]["status"] == "failed"
    assert str(rows[0]["error"]).startswith("InvalidNumberError: called is not a phone number")
    assert "InvalidNumberError" in str(rows[1]["error"])
    assert [call.called for call in emulator.calls] == ["13800000051"]


async def test_a_region_checks_numbers_with_libphonenumber_and_sends_them_as_asked(
    tmp_path: Path,
) -> None:
    """Invalid for the region fails; ``send_as`` sends E.164 or national; default as written."""
    pytest.importorskip("phonenumbers")
    given = ("88884432", "+1 212 555 0100", "138 0000 0007")
    sent: dict[str, list[str]] = {}
    for send_as in ("input", "e164", "national"):
        emulator = Emulator()
        report = tmp_path / f"{send_as}.jsonl"
        async with (
            in_process_session(emulator) as session,
            open_job(
                tmp_path / f"{send_as}.job",
                requests=requests_for(*given),
                report=report,
                default_region="CN",
                send_as=send_as,
            ) as job,
        ):
            assert job.invalid == 1
            await job.run(session, concurrency=2)
        assert "is not a valid number in region CN" in str(by_row(report)[0]["error"])
        sent[send_as] = sorted(call.called for call in emulator.calls)
    assert sent == {
        "input": ["+12125550100", "13800000007"],
        "e164": ["+12125550100", "+8613800000007"],
        "national": ["13800000007", "2125550100"],
    }


def test_options_that_need_the_phone_extra_say_which_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ``phonenumbers``: a clear error naming the extra, before anything is opened."""
    monkeypatch.setattr(_numbers, "phonenumbers_module", lambda: None)
    with pytest.raises(ConfigurationError, match=r"ccmessaging-async\[phone\]"):
        _numbers.NumberPlan("CN")
    with pytest.raises(ConfigurationError, match=r"ccmessaging-async\[phone\]"):
        _numbers.NumberPlan(send_as="e164")
    # Without the extra and without options, numbers are still checked by their digits.
    reader = _numbers.NumberReader(_numbers.NumberPlan())
    assert reader.read("+86 138 0000 0001") == ("+8613800000001", "+8613800000001")
    assert reader.read("twelve") == "is not a phone number (digits, with an optional leading +)"


def test_an_unknown_region_is_refused() -> None:
    """A region code libphonenumber does not know is a configuration error."""
    pytest.importorskip("phonenumbers")
    with pytest.raises(ConfigurationError, match="not a region code"):
        _numbers.NumberPlan("XX")


# ---- the suppression list ------------------------------------------------------------


async def test_a_number_added_to_the_suppression_list_during_a_run_is_not_dialled(
    store: tuple[str, str | None], tmp_path: Path
) -> None:
    """An opt-out appended while the job runs wins for every row not yet dialled."""
    location, name = store
    emulator = Emulator()
    called = [f"1380000{i:04d}" for i in range(40)]
    opt_outs = tmp_path / "do-not-call.txt"
    opt_outs.write_text("# opted out\n+86 138 0000 0039\n")
    suppressed = SuppressionList(opt_outs, default_region="CN")
    report = tmp_path / "calls.jsonl"
    appended = False

    def recorded(records: list[Recorded]) -> None:
        nonlocal appended
        if not appended and records:
            appended = True  # after the first outcomes: rows 30 to 38 opt out now
            with opt_outs.open("a") as handle:
                handle.writelines(f"{number}\n" for number in called[30:39])

    async with (
        in_process_session(emulator) as session,
        open_job(
            location, name=name, requests=requests_for(*called), report=report, default_region="CN"
        ) as job,
    ):
        run = await job.run(session, concurrency=2, on_recorded=recorded, is_suppressed=suppressed)
        assert run.how == "finished"
        counts = await job.counts()
    assert counts["skipped"] == 10
    assert counts["succeeded"] == 30
    assert all(emulator.calls_for(number) == 0 for number in called[30:])
    rows = by_row(report)
    assert {row for row, line in rows.items() if line["status"] == "skipped"} == set(range(30, 40))
    assert "SuppressedNumberError" in str(rows[39]["error"])
    assert "10 suppressed" in await describe_job(location, name=name)


async def test_a_suppression_list_that_cannot_be_read_stops_the_run(
    store: tuple[str, str | None], tmp_path: Path
) -> None:
    """A list removed mid-run: nothing more is dialled unchecked; the rest stays pending."""
    location, name = store
    emulator = Emulator()
    opt_outs = tmp_path / "do-not-call.txt"
    opt_outs.write_text("")
    suppressed = SuppressionList(opt_outs)

    def recorded(records: list[Recorded]) -> None:
        if records:
            opt_outs.unlink(missing_ok=True)

    called = [f"1380000{i:04d}" for i in range(40)]
    async with (
        in_process_session(emulator) as session,
        open_job(location, name=name, requests=requests_for(*called)) as job,
    ):
        run = await job.run(session, concurrency=2, on_recorded=recorded, is_suppressed=suppressed)
        counts = await job.counts()
    assert run.how == "stopped"
    assert run.failure is not None
    assert "suppression list" in run.failure
    assert counts["pending"] >= 30
    assert len(emulator.calls) == counts["succeeded"]


async def test_a_rewritten_list_replaces_the_old_one(tmp_path: Path) -> None:
    """A list written anew (not appended to) is read whole: a removed number may be called."""
    path = tmp_path / "list.txt"
    path.write_text("13800000001\n13800000002\n")
    suppressed = SuppressionList(path)
    assert await suppressed("13800000001")
    replacement = tmp_path / "new.txt"
    replacement.write_text("13800000003\n")
    replacement.replace(path)
    assert not await suppressed("13800000001")
    assert await suppressed("13800000003")
    path.write_text("13800000004\n")  # the same file, rewritten in place, same size
    assert not await suppressed("13800000003")
    assert await suppressed("13800000004")


async def test_a_last_line_without_its_newline_counts_and_is_read_again_when_completed(
    tmp_path: Path,
) -> None:
    """An editor that leaves no final newline, or a writer caught mid-line, loses nothing."""
    path = tmp_path / "list.txt"
    path.write_text("13800000001\n1380000000")
    suppressed = SuppressionList(path)
    assert await suppressed("13800000001")
    with path.open("a") as handle:
        handle.write("2\nnot a number\n13800000003\n")
    assert await suppressed("13800000002")
    assert await suppressed("13800000003")
    assert suppressed.ignored == 1


def test_a_missing_list_is_refused_up_front(tmp_path: Path) -> None:
    """A list that does not exist stops the job before anything is dialled."""
    with pytest.raises(JobStoppedError, match="cannot be read"):
        SuppressionList(tmp_path / "absent.txt")


# ---- the command line ----------------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """The emulator on loopback, with the CCMESSAGING_* variables pointing at it."""
    with EmulatorServer(Emulator()) as server:
        env = emulator_env(server.url, server.app.app_key, server.app.app_secret)
        for key, value in env.items():
            if key.startswith("CCMESSAGING_"):
                monkeypatch.setenv(key, value)
        yield server


def test_the_command_line_checks_dedups_and_suppresses(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``batch --region CN --suppress FILE``: who is called, and what status says of the rest."""
    source = tmp_path / "calls.csv"
    source.write_text(
        "called,caller_present\n"
        "13800000001,95599\n"
        "+86 138 0000 0001,95599\n"
        "12,95599\n"
        "13800000002,95599\n"
        "13800000003,95599\n"
    )
    opt_outs = tmp_path / "dnc.txt"
    opt_outs.write_text("+8613800000002\n")
    out = tmp_path / "out.jsonl"
    command = ["batch", str(source), "--out", str(out), "--region", "CN"]
    code = main([*command, "--suppress", str(opt_outs)])
    assert code == ExitCode.NOT_CREATED  # the invalid number failed
    err = capsys.readouterr().err
    assert "1 rows have the number of an earlier row: skipped" in err
    assert "suppression list" in err
    assert sorted(call.called for call in served.app.calls) == ["13800000001", "13800000003"]
    status = main(["status", str(out)])
    assert status == ExitCode.OK
    shown = capsys.readouterr().out
    assert "skipped 2" in shown
    assert "1 invalid, 1 duplicates, 1 suppressed" in shown
    assert main(command) == ExitCode.NOT_CREATED  # the same command resumes
    assert main([*command[:-2]]) == ExitCode.USAGE  # without --region: refused
    assert "--region CN" in capsys.readouterr().err


async def test_the_list_is_checked_at_the_last_moment_on_trio_and_asyncio(tmp_path: Path) -> None:
    """The check itself runs on both backends (its re-reading happens in a thread)."""
    path = tmp_path / "list.txt"
    path.write_text("")
    suppressed = SuppressionList(path)
    assert not await suppressed("13800000009")
    path.write_text("13800000009\n")
    with anyio.fail_after(5):
        assert await suppressed("13800000009")


def test_the_command_line_sends_as_asked_and_may_allow_duplicates(
    served: EmulatorServer, tmp_path: Path
) -> None:
    """``--send-as e164 --allow-duplicates``: both rows rung, in E.164."""
    source = tmp_path / "calls.csv"
    source.write_text("called\n138 0000 0001\n+86 138 0000 0001\n")
    out = tmp_path / "out.jsonl"
    command = ["batch", str(source), "--out", str(out), "--region", "CN", "--send-as", "e164"]
    assert main([*command, "--allow-duplicates"]) == ExitCode.OK
    assert [call.called for call in served.app.calls] == ["+8613800000001"] * 2
    # Without a region, a number without a country code cannot be sent as national.
    national = tmp_path / "national.jsonl"
    command = ["batch", str(source), "--out", str(national), "--send-as", "national"]
    assert main([*command, "--allow-duplicates"]) == ExitCode.NOT_CREATED
    rows = by_row(national)
    assert "has no country code: give a region" in str(rows[0]["error"])
    assert served.app.calls[-1].called == "13800000001"
