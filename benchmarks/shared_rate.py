"""One rate for a job in PostgreSQL, whatever the number of its workers.

    python benchmarks/shared_rate.py                  # 2 workers, --rate 40, 600 rows
    python benchmarks/shared_rate.py --workers 3

Workers run the console script against the emulator on loopback, all with ``--rate``;
the emulator stamps every call it creates. Reports the most calls in any one second and
in any five seconds (summed over the workers), beside what each worker alone would allow,
and the same with the emulator metering the tenant below the rate (the job's pace must
come down for every worker). PostgreSQL is ``CCMESSAGING_BENCH_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the script makes a database of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import psycopg

from ccmessaging_async.testing import Emulator, EmulatorServer

SERVER = os.environ.get("CCMESSAGING_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def busiest(moments: list[float], span: float) -> int:
    """The most moments within any ``span`` seconds."""
    moments = sorted(moments)
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moment - moments[first] >= span:
            first += 1
        most = max(most, last - first + 1)
    return most


def run(url: str, rows: int, workers: int, rate: float, capacity: float | None) -> dict[str, Any]:
    emulator = Emulator()
    emulator.latency = 0.02
    if capacity is not None:
        emulator.set_capacity(capacity, burst=5)
    name = f"bench-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory() as folder, EmulatorServer(emulator) as server:
        source = Path(folder) / "in.csv"
        source.write_text(
            "called,caller_present\n" + "".join(f"1{i:010d},95599\n" for i in range(rows))
        )
        env = {
            **os.environ,
            "CCMESSAGING_BASE_URL": server.url,
            "CCMESSAGING_APP_KEY": emulator.app_key,
            "CCMESSAGING_APP_SECRET": emulator.app_secret,
            "PYTHONPATH": str(HERE.parent),
        }
        common = ["--job", url, "--name", name, "--rate", f"{rate:g}", "--concurrency", "20"]
        cli = [sys.executable, "-m", "ccmessaging_async.cli"]
        first = subprocess.Popen(
            [*cli, "batch", str(source), "--out", str(Path(folder) / "out.jsonl"), *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        emulator.wait_for_calls(1, timeout=60)
        others = [
            subprocess.Popen(
                [*cli, "work", *common],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(workers - 1)
        ]
        codes = [p.wait(timeout=600) for p in (first, *others)]
    moments = [call.at for call in emulator.calls]
    with psycopg.connect(url) as db:
        failed = db.execute(
            "SELECT count(*) FROM ccmessaging.rows r JOIN ccmessaging.jobs j ON j.id = r.job "
            "WHERE j.name = %s AND r.state <> 'succeeded'",
            (name,),
        ).fetchone()
        pace = db.execute("SELECT pace FROM ccmessaging.jobs WHERE name = %s", (name,)).fetchone()
    return {
        "workers": workers,
        "rate": rate,
        "capacity": capacity,
        "exit_codes": codes,
        "created": len(emulator.calls),
        "twice": len(emulator.duplicates()),
        "not_succeeded": failed[0] if failed else None,
        "throttled_requests": emulator.throttled_requests,
        "busiest_1s": busiest(moments, 1.0),
        "busiest_5s": busiest(moments, 5.0),
        "seconds": max(moments) - min(moments),
        "pace_at_end": pace[0] if pace else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--json", type=Path, default=HERE / "shared_rate.json")
    args = parser.parse_args()
    database = f"ccma_bench_{secrets.token_hex(3)}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    url = SERVER.rsplit("/", 1)[0] + f"/{database}"
    try:
        results = [
            run(url, args.rows, args.workers, args.rate, None),
            run(url, args.rows, args.workers, args.rate, args.rate / 2),
        ]
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(
        "| tenant capacity | workers | --rate | busiest 1 s | busiest 5 s | seconds | 429s "
        "| not succeeded | twice | pace at end |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for r in results:
        capacity = "unmetered" if r["capacity"] is None else f"{r['capacity']:g}/s"
        print(
            f"| {capacity} | {r['workers']} | {r['rate']:g} | {r['busiest_1s']} | "
            f"{r['busiest_5s']} | {r['seconds']:.1f} | {r['throttled_requests']} | "
            f"{r['not_succeeded']} | {r['twice']} | {r['pace_at_end']:.1f} |"
        )


if __name__ == "__main__":
    main()
