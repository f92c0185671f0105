"""Calling hours: rows outside them wait, pending, and are dialled when they open.

The hours are the called person's (their number's time zones), and the clock is the
job store's: a job file's is this machine's, shifted here to just before the window
opens; a job in PostgreSQL's is the database's, whatever this machine's says.
"""

from __future__ import annotations

import datetime
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import types
import zoneinfo
from pathlib import Path

import anyio
import pytest

from ccmessaging_async import ConfigurationError, CreateCallRequest
from ccmessaging_async.cli import ExitCode, main
from ccmessaging_async.jobs import (
    CallingHours,
    Run,
    Waiting,
    _postgres,
    _sqlite,
    _status,
    describe_job,
    open_job,
)
from ccmessaging_async.testing import Emulator, EmulatorServer
from tests._helpers import emulator_env, in_process_session

pytestmark = pytest.mark.anyio

UTC = datetime.UTC
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
LONDON = zoneinfo.ZoneInfo("Europe/London")


def requests_for(n: int) -> list[CreateCallRequest]:
    return [CreateCallRequest(called=f"1380000{i:04d}", caller_present="95599") for i in range(n)]


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- the hours themselves -------------------------------------------------------------


def test_a_number_is_inside_its_hours_in_its_own_time() -> None:
    """09:00-20:00 in Shanghai is 01:00-12:00 UTC; outside, the next opening is named."""
    hours = CallingHours("09:00-20:00")
    assert hours.opening((SHANGHAI,), at("2026-12-07T03:00:00")) is None
    opening = hours.opening((SHANGHAI,), at("2026-12-07T13:00:00"))
    assert opening is not None
    assert opening.at == at("2026-12-08T01:00:00")
    assert opening.label == "09:00 Asia/Shanghai"


def test_a_number_in_several_zones_must_be_inside_in_all() -> None:
    """Shanghai and London together: only when both are between 09:00 and 20:00."""
    hours = CallingHours("09:00-20:00")
    zones = (SHANGHAI, LONDON)
    # 10:00 UTC: 18:00 in Shanghai, 10:00 in London.
    assert hours.opening(zones, at("2026-12-07T10:00:00")) is None
    # 13:00 UTC: Shanghai closed at 12:00 UTC; the next time both are open is London's
    # 09:00 (09:00 UTC) the next day, when Shanghai is at 17:00.
    opening = hours.opening(zones, at("2026-12-07T13:00:00"))
    assert opening is not None
    assert opening.at == at("2026-12-08T09:00:00")
    assert opening.label == "09:00 Europe/London"
    with pytest.raises(ValueError, match="never inside the calling hours together"):
        CallingHours("09:00-10:00").opening(zones, at("2026-12-07T13:00:00"))


def test_days_and_windows_past_midnight() -> None:
    """``mon-fri`` skips the weekend; ``22:00-02:00`` runs into the next day."""
    weekdays = CallingHours("09:00-20:00", days="mon-fri", default_zone="UTC")
    utc = (zoneinfo.ZoneInfo("UTC"),)
    saturday = at("2026-12-05T10:00:00")
    opening = weekdays.opening(utc, saturday)
    assert opening is not None
    assert opening.at == at("2026-12-07T09:00:00")  # Monday
    night = CallingHours("22:00-02:00", days="fri")
    assert night.opening(utc, at("2026-12-05T01:00:00")) is None  # Friday's night, Saturday
    assert night.opening(utc, at("2026-12-05T23:00:00")) is not None  # Saturday's: closed


@pytest.mark.parametrize(
    ("window", "days", "zone", "match"),
    [
        ("9-20", None, None, "HH:MM-HH:MM"),
        ("09:00-25:00", None, None, "not times of day"),
        ("09:00-09:00", None, None, "empty"),
        ("09:00-20:00", "weekdays", None, "mon..sun"),
        ("09:00-20:00", None, "Mars/Olympus", "unknown"),
    ],
)
def test_bad_hours_are_refused_before_anything(
    window: str, days: str | None, zone: str | None, match: str
) -> None:
    """A clear configuration error, naming what to write."""
    with pytest.raises(ConfigurationError, match=match):
        CallingHours(window, days=days, default_zone=zone)


def test_hours_need_a_zone_for_every_number() -> None:
    """Without a region (numbers without a country code) or a default zone: refused."""
    with pytest.raises(ConfigurationError, match="--region"):
        CallingHours("09:00-20:00").check(None)
    CallingHours("09:00-20:00").check("CN")
    CallingHours("09:00-20:00", default_zone="Asia/Shanghai").check(None)


def test_a_number_takes_its_zones_from_libphonenumber() -> None:
    """+86 is Shanghai; a number placed nowhere takes the default zone."""
    pytest.importorskip("phonenumbers")
    hours = CallingHours("09:00-20:00", default_zone="Europe/London")
    assert hours.zones("+8613800000001") == (SHANGHAI,)
    assert hours.zones("13800000001") == (LONDON,)  # no country code: the default


# ---- a job waits for its hours --------------------------------------------------------


class ShiftedClock:
    """The machine's clock, moved so that ``moment`` is ``lead`` seconds away; it runs."""

    def __init__(self, moment: datetime.datetime, lead: float) -> None:
        self._shift = moment.timestamp() - lead - time.time()

    def time(self) -> float:
        """Return the moved clock's time now."""
        return time.time() + self._shift


async def test_a_job_file_outside_its_hours_waits_and_dials_when_they_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 08:59:59.5 nothing is dialled; every row waits; at 09:00 every row is dialled."""
    opening = datetime.datetime.combine(
        datetime.date.today() + datetime.timedelta(days=1), datetime.time(9), tzinfo=UTC
    )
    clock = ShiftedClock(opening, lead=0.5)
    shifted = types.SimpleNamespace(time=clock.time)
    monkeypatch.setattr(_sqlite, "time", shifted)
    monkeypatch.setattr(_status, "time", shifted)
    emulator = Emulator()
    seen: list[tuple[Waiting, int]] = []
    hours = CallingHours("09:00-20:00", default_zone="UTC")
    job_file = tmp_path / "calls.job"
    async with (
        in_process_session(emulator) as session,
        open_job(job_file, requests=requests_for(12)) as job,
    ):
        with anyio.fail_after(30):
            run = await job.run(
                session,
                concurrency=4,
                calling_hours=hours,
                on_waiting=lambda waiting: seen.append((waiting, len(emulator.calls))),
            )
        counts = await job.counts()
    assert run.how == "finished"
    assert counts["succeeded"] == 12
    assert seen, "the run never said it waited"
    waiting, calls_then = seen[0]
    assert calls_then == 0
    assert waiting.rows == 12
    assert waiting.waiting_for == "09:00 UTC"
    assert waiting.next_at == pytest.approx(opening.timestamp())
    assert len(emulator.calls) == 12
    assert emulator.duplicates() == {}


def closed_now(hours_ahead: int = 2) -> str:
    """A window of one hour that opens ``hours_ahead`` hours from now, UTC."""
    start = datetime.datetime.now(UTC) + datetime.timedelta(hours=hours_ahead)
    end = start + datetime.timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


def open_now() -> str:
    """A window that holds the next hour, UTC."""
    start = datetime.datetime.now(UTC) - datetime.timedelta(minutes=30)
    end = start + datetime.timedelta(hours=2)
    return f"{start:%H:%M}-{end:%H:%M}"


async def test_a_job_outside_its_hours_waits_and_a_resume_with_other_hours_dials(
    store: tuple[str, str | None],
) -> None:
    """Nothing dialled and the run waits (until stopped); resumed inside other hours: all."""
    location, name = store
    emulator = Emulator()
    stop = anyio.Event()
    seen: list[Waiting] = []

    def waiting(now: Waiting) -> None:
        seen.append(now)
        stop.set()

    closed = CallingHours(closed_now(), default_zone="UTC")
    async with in_process_session(emulator) as session:
        async with open_job(location, name=name, requests=requests_for(10)) as job:
            with anyio.fail_after(30):
                run = await job.run(
                    session, concurrency=3, calling_hours=closed, stop=stop, on_waiting=waiting
                )
            counts = await job.counts()
        assert run.how == "interrupted"
        assert counts["pending"] == 10
        assert emulator.calls == []
        assert seen[0].rows == 10
        assert "10 waiting for calling hours, next at" in await describe_job(location, name=name)
        async with open_job(location, name=name) as resumed:
            opened = CallingHours(open_now(), default_zone="UTC")
            with anyio.fail_after(30):
                again = await resumed.run(session, concurrency=3, calling_hours=opened)
            counts = await resumed.counts()
    assert again.how == "finished"
    assert counts["succeeded"] == 10
    assert len(emulator.calls) == 10


async def test_every_worker_honours_the_moment_another_one_deferred_a_row_to(
    postgres_url: str,
) -> None:
    """A worker joining without hours of its own takes nothing before a row's moment."""
    emulator = Emulator()
    name = f"join-{secrets.token_hex(4)}"
    first_waits, second_waits, stop = anyio.Event(), anyio.Event(), anyio.Event()
    closed = CallingHours(closed_now(), default_zone="UTC")
    runs: dict[str, Run] = {}

    def second_waiting(_waiting: Waiting) -> None:
        second_waits.set()
        stop.set()

    async with (
        in_process_session(emulator) as session,
        open_job(postgres_url, name=name, requests=requests_for(8)) as first,
    ):

        async def run_first() -> None:
            runs["first"] = await first.run(
                session,
                concurrency=2,
                calling_hours=closed,
                stop=stop,
                on_waiting=lambda _waiting: first_waits.set(),
            )

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_first)
            with anyio.fail_after(30):
                await first_waits.wait()
                async with open_job(postgres_url, name=name) as second:
                    runs["second"] = await second.run(
                        session,
                        concurrency=2,
                        stop=stop,
                        on_waiting=second_waiting,
                    )
    assert second_waits.is_set()
    assert runs["second"].how == runs["first"].how == "interrupted"
    assert emulator.calls == []


async def test_a_worker_whose_clock_is_an_hour_ahead_waits_by_the_databases(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its machine says the window opened; the database's clock says not yet: no call."""
    ahead = types.SimpleNamespace(time=lambda: time.time() + 3600)
    monkeypatch.setattr(_postgres, "time", ahead)
    emulator = Emulator()
    stop = anyio.Event()
    # Opens in 30 minutes by the database's clock; open already by this machine's.
    start = datetime.datetime.now(UTC) + datetime.timedelta(minutes=30)
    window = f"{start:%H:%M}-{start + datetime.timedelta(hours=2):%H:%M}"
    hours = CallingHours(window, default_zone="UTC")
    name = f"ahead-{secrets.token_hex(4)}"
    async with (
        in_process_session(emulator) as session,
        open_job(postgres_url, name=name, requests=requests_for(5)) as job,
    ):
        with anyio.fail_after(30):
            run = await job.run(
                session,
                concurrency=2,
                calling_hours=hours,
                stop=stop,
                on_waiting=lambda _waiting: stop.set(),
            )
    assert run.how == "interrupted"
    assert emulator.calls == []


# ---- the command line -----------------------------------------------------------------


def test_the_command_line_waits_says_so_and_stops_on_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--window`` outside its hours: nothing dialled, a line says what waits, Ctrl-C ends it."""
    with EmulatorServer(Emulator()) as served:
        env = emulator_env(served.url, served.app.app_key, served.app.app_secret)
        for key, value in env.items():
            if key.startswith("CCMESSAGING_"):
                monkeypatch.setenv(key, value)
        source = tmp_path / "calls.csv"
        source.write_text("called\n" + "".join(f"1380000{i:04d}\n" for i in range(4)))
        out = tmp_path / "out.jsonl"
        assert main(["batch", str(source), "--out", str(out), "--days", "mon"]) == ExitCode.USAGE
        assert "--days and --tz go with --window" in capsys.readouterr().err
        command = ["batch", str(source), "--out", str(out), "--window", closed_now()]
        assert main(command) == ExitCode.USAGE  # no region, no zone: refused
        assert "calling hours need each number's time zone" in capsys.readouterr().err
        process = subprocess.Popen(
            [sys.executable, "-m", "ccmessaging_async", *command, "--tz", "UTC"],
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
            text=True,
        )
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        try:
            assert process.stderr is not None
            said = next((line for line in iter(process.stderr.readline, "") if "waits" in line), "")
            process.send_signal(signal.SIGINT)
            rest = process.communicate()[1]
        finally:
            watchdog.cancel()
        assert said, rest
        assert "every row left waits: 4 waiting for calling hours, next at" in said
        assert process.returncode == ExitCode.INTERRUPTED, rest
        assert served.app.calls == []
        assert main(["status", str(out)]) == ExitCode.OK
        assert "4 waiting for calling hours, next at" in capsys.readouterr().out
