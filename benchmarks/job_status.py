"""What `ccmessaging-async status` costs as a job grows, and what its index costs a run.

Builds job files of finished jobs (10 % of rows failed with a result code) through the
job store's own methods, then times, in one run on one machine:

- `status` (the whole text, as the command prints it) at each size;
- the query `status` used before job schema version 2 (the latest result code of each row
  through a correlated subquery), at the sizes where it ends in reasonable time;
- committing claims and outcomes in groups of 100, the way a run does, with the index on
  `rows (state, result_code)` and with it dropped: what the index costs each group.

    python benchmarks/job_status.py                # 10,000, 40,000 and 1,000,000 rows
    python benchmarks/job_status.py --smoke        # small sizes, seconds
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ccmessaging_async.jobs._input import InputRow
from ccmessaging_async.jobs._records import Final, InputIdentity, InputRules
from ccmessaging_async.jobs._sqlite import SQLiteStore
from ccmessaging_async.jobs._status import status_text

OLD_QUERY = (
    "SELECT o.result_code, count(*) FROM rows r JOIN outcomes o ON o.row = r.row "
    "WHERE o.seq = (SELECT max(seq) FROM outcomes WHERE row = r.row) "
    "AND o.result_code IS NOT NULL GROUP BY o.result_code ORDER BY count(*) DESC"
)
GROUP = 100


def _rows(count: int) -> list[InputRow]:
    return [
        InputRow(i, i + 2, hashlib.blake2b(str(i).encode(), digest_size=8).digest(), f"1390{i:07d}")
        for i in range(count)
    ]


def _final(row: int) -> Final:
    failed = row % 10 == 0
    return Final(
        row=row,
        line=row + 2,
        called=f"1390{row:07d}",
        status="failed" if failed else "succeeded",
        result=None,
        result_code="30010010002" if failed else "0",
        error=None,
        attempts=1,
        latency_ms=12.5,
    )


def _finished_job(folder: Path, count: int, *, index: bool = True) -> tuple[Path, float]:
    """A finished job of ``count`` rows; return it and the seconds per group commit."""
    path = folder / f"job-{count}-{index}.job"
    store = SQLiteStore(path, synchronous="OFF")
    try:
        identity = InputIdentity(0, "0" * 64)
        store.import_rows(_rows(count), str(path), "csv", lambda: identity, InputRules())
        if not index:
            store._db.execute("DROP INDEX rows_state")  # noqa: SLF001 - the comparison
        started = time.perf_counter()
        for first in range(0, count, GROUP):
            group = range(first, min(first + GROUP, count))
            store.commit(list(group), [])
            store.commit([], [_final(row) for row in group])
        per_group = (time.perf_counter() - started) / (2 * -(-count // GROUP))
        store.end_run("finished")
    finally:
        store.close()
    return path, per_group


def _timed(action: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument("--out", type=Path, help="append the results (Markdown) to this file")
    args = parser.parse_args()
    sizes = [1_000, 4_000] if args.smoke else [10_000, 40_000, 1_000_000]
    old_up_to = sizes[1]
    lines = [
        f"`python benchmarks/job_status.py`, {time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {__import__('sqlite3').sqlite_version}. Medians of 5.",
        "",
        "| rows | `status` now | the query `status` used before | commit of 100 claims "
        "or outcomes: with the index, without |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for count in sizes:
            job, with_index = _finished_job(Path(folder), count)
            _, without_index = _finished_job(Path(folder), count, index=False)
            now = _timed(lambda job=job: status_text(job))
            old = "(not run: hours)"
            if count <= old_up_to:
                db = __import__("sqlite3").connect(job)
                try:
                    old = f"{_timed(lambda db=db: db.execute(OLD_QUERY).fetchall(), 1):.2f} s"
                finally:
                    db.close()
            lines.append(
                f"| {count:,} | {now * 1000:.0f} ms | {old} | "
                f"{with_index * 1e6:,.0f} µs, {without_index * 1e6:,.0f} µs |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
