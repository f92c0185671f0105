"""A batch job in PostgreSQL against the same job in a job file, and two workers against one.

    python benchmarks/job_postgres.py                 # 1,000,000 rows (about 40 minutes)
    python benchmarks/job_postgres.py --rows 20000    # a quick look

Each job dials ``--rows`` generated numbers against nginx (the documented answers, pinned
to CPU 1) with ``--concurrency 100`` and the aiohttp transport; every worker runs pinned
to CPU 0, so one worker and two workers get the same CPU. PostgreSQL is the machine's
(``CCMESSAGING_BENCH_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432/test``;
fsync on, as installed); the script creates a database of its own and drops it. Writes
``benchmarks/job_postgres.json`` and prints a Markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import psycopg
from servers import nginx

CLIENT_CPU, SERVER_CPU = 0, 1
SERVER = os.environ.get("CCMESSAGING_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_workers(commands: list[list[str]], env: dict[str, str], cwd: str) -> dict[str, Any]:
    """Start every command at once; return the wall time and each one's peak RSS."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(c, env=env, cwd=cwd, stdout=subprocess.PIPE, text=True) for c in commands
    ]
    peaks = [0] * len(processes)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            for i, process in enumerate(processes):
                peaks[i] = max(peaks[i], _rss_kib(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    summaries = []
    for process in processes:
        output, _ = process.communicate(timeout=7200)
        if process.returncode != 0:
            raise RuntimeError(f"{process.args!r} exited {process.returncode}: {output!r}")
        summaries.append(output.strip().splitlines()[0] if output.strip() else "")
    stop.set()
    sampler.join()
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": [round(p / 1024, 1) for p in peaks],
        "summaries": summaries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=HERE / "job_postgres.json")
    args = parser.parse_args()
    rows = args.rows
    database = f"ccma_bench_{secrets.token_hex(3)}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        fsync = admin.execute("SHOW fsync").fetchone()
        synchronous_commit = admin.execute("SHOW synchronous_commit").fetchone()
        version = admin.execute("SHOW server_version").fetchone()
        admin.execute(f'CREATE DATABASE "{database}"')
    url = SERVER.rsplit("/", 1)[0] + f"/{database}"
    results: dict[str, Any] = {
        "rows": rows,
        "postgres": {
            "version": version[0] if version else "",
            "fsync": fsync[0] if fsync else "",
            "synchronous_commit": synchronous_commit[0] if synchronous_commit else "",
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
        },
    }
    try:
        with tempfile.TemporaryDirectory() as folder, nginx(SERVER_CPU) as server:
            source = Path(folder) / "calls.csv"
            with source.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["called", "caller_present", "call_data"])
                for i in range(rows):
                    writer.writerow([f"1{i:010d}", "95599", ""])
            env = {
                **os.environ,
                "CCMESSAGING_BASE_URL": server,
                "CCMESSAGING_APP_KEY": "bench-app-key",
                "CCMESSAGING_APP_SECRET": "bench-app-secret",
                "PYTHONPATH": str(HERE.parent),
            }
            cli = ["taskset", "-c", str(CLIENT_CPU), sys.executable, "-m", "ccmessaging_async.cli"]
            options = ["--concurrency", "100", "--transport", "aiohttp"]

            def batch(out: str, *job: str) -> list[str]:
                return [
                    *cli,
                    "batch",
                    str(source),
                    "--out",
                    str(Path(folder) / out),
                    *job,
                    *options,
                ]

            print("job file, one run", flush=True)
            results["sqlite"] = run_workers([batch("sqlite.jsonl")], env, folder)
            print("PostgreSQL, one worker", flush=True)
            results["postgres_1"] = run_workers(
                [batch("pg1.jsonl", "--job", url, "--name", "one")], env, folder
            )
            print("PostgreSQL, two workers", flush=True)
            # The second worker joins once the first has taken the input in.
            first = batch("pg2.jsonl", "--job", url, "--name", "two")
            joiner = [
                *cli[:4],
                "-c",
                "import sys, time, psycopg\n"
                "url, name = sys.argv[1], sys.argv[2]\n"
                "taken = 'SELECT 1 FROM ccmessaging.jobs WHERE name = %s AND rows > 0'\n"
                "while True:\n"
                "    with psycopg.connect(url) as db:\n"
                "        made = db.execute('SELECT to_regclass(%s)', ('ccmessaging.jobs',))\n"
                "        if made.fetchone()[0] and db.execute(taken, (name,)).fetchone():\n"
                "            break\n"
                "    time.sleep(0.2)\n"
                "from ccmessaging_async.cli import main\n"
                "sys.exit(main(['work', '--job', url, '--name', name, *sys.argv[3:]]))\n",
                url,
                "two",
                *options,
            ]
            results["postgres_2"] = run_workers([first, joiner], env, folder)
            with psycopg.connect(url) as db:
                results["postgres_2"]["rows_per_worker"] = [
                    n
                    for (n,) in db.execute(
                        "SELECT count(*) FROM ccmessaging.rows r JOIN ccmessaging.jobs j "
                        "ON j.id = r.job WHERE j.name = 'two' GROUP BY r.worker ORDER BY 1 DESC"
                    ).fetchall()
                ]
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    for key in ("sqlite", "postgres_1", "postgres_2"):
        results[key]["calls_s"] = round(rows / results[key]["seconds"], 1)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    one, two, file = results["postgres_1"], results["postgres_2"], results["sqlite"]
    print(
        f"\n| job | workers | time | calls/s | peak RSS per worker |\n|---|---|---|---|---|\n"
        f"| job file (SQLite) | 1 | {file['seconds']:.1f} s | {file['calls_s']:,.0f} | "
        f"{file['peak_rss_mb'][0]} MB |\n"
        f"| PostgreSQL | 1 | {one['seconds']:.1f} s | {one['calls_s']:,.0f} | "
        f"{one['peak_rss_mb'][0]} MB |\n"
        f"| PostgreSQL | 2 | {two['seconds']:.1f} s | {two['calls_s']:,.0f} | "
        f"{', '.join(f'{p} MB' for p in two['peak_rss_mb'])} |\n\n"
        f"PostgreSQL one worker / job file: {one['calls_s'] / file['calls_s']:.2f}x; "
        f"two workers / one: {two['calls_s'] / one['calls_s']:.2f}x; rows per worker "
        f"{two['rows_per_worker']}"
    )


if __name__ == "__main__":
    main()
