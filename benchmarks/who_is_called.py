"""What checking numbers, finding duplicates and a suppression list cost a job.

    python benchmarks/who_is_called.py                  # 1,000,000 rows and numbers
    python benchmarks/who_is_called.py --rows 50000     # a quick look

1. Taking in ``--rows`` generated rows (one in twenty the number of an earlier row, half
   of those written in another spelling) into a job file, each in a fresh process:
   as written (no region, duplicates allowed: what a job did before), with duplicates
   found, and with ``--region CN`` (libphonenumber checks every number) and duplicates
   found. Wall time and the process's peak RSS (``ru_maxrss``).
2. A suppression list of ``--rows`` numbers: the time to read it, the memory it takes,
   the cost of one check while the file is unchanged (the check before every call),
   and the time to read 1,000 appended numbers.

Writes ``benchmarks/who_is_called.json`` and prints Markdown tables for RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_IMPORT = """
import resource, sys, time
from pathlib import Path
from ccmessaging_async.jobs._job import open_stored_job
from ccmessaging_async.jobs._numbers import NumberPlan
source, job, region, duplicates = sys.argv[1], sys.argv[2], sys.argv[3] or None, sys.argv[4]
started = time.perf_counter()
opened = open_stored_job(
    Path(source), None, Path(job), resend_unknown=False,
    numbers=NumberPlan(region), allow_duplicates=duplicates == "allow",
)
took = time.perf_counter() - started
print(took, opened.imported, opened.invalid, opened.duplicates,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
opened.close("finished")
"""

_SUPPRESSION = """
import resource, sys, time
import anyio
from ccmessaging_async.jobs import SuppressionList
path, probes = sys.argv[1], int(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
suppressed = SuppressionList(path, default_region="CN")
loaded = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

async def checks() -> tuple[float, float]:
    started = time.perf_counter()
    for i in range(probes):
        await suppressed(f"+86139{i:08d}")
    per_check = (time.perf_counter() - started) / probes
    with open(path, "a") as handle:
        handle.writelines(f"+86137{i:08d}\\n" for i in range(1000))
    started = time.perf_counter()
    assert await suppressed("+8613700000999")
    return per_check, time.perf_counter() - started

per_check, appended = anyio.run(checks)
print(loaded, len(suppressed), before, after, per_check, appended)
"""


def _write_input(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["called", "caller_present", "call_data"])
        for i in range(rows):
            if i % 20 == 19:  # the number of an earlier row
                earlier = i - 19
                number = f"138{earlier:08d}"
                called = f"+86 {number[:3]} {number[3:7]} {number[7:]}" if i % 40 == 39 else number
            else:
                called = f"138{i:08d}"
            writer.writerow([called, "95599", ""])


def _import(source: Path, folder: Path, tag: str, region: str, duplicates: str) -> dict[str, Any]:
    job = folder / f"{tag}.job"
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT, str(source), str(job), region, duplicates],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    ).stdout.split()
    took, imported, invalid, skipped, rss = out
    job.unlink()
    return {
        "seconds": float(took),
        "rows": int(imported),
        "invalid": int(invalid),
        "duplicates": int(skipped),
        "peak_rss_mb": int(rss) / 1024,
    }


def main() -> None:
    """Run both measurements and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=HERE / "who_is_called.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "rows": args.rows,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
        },
    }
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        source = folder / "calls.csv"
        _write_input(source, args.rows)
        runs = {
            "as written, duplicates allowed": ("", "allow"),
            "as written, duplicates found": ("", "find"),
            "--region CN, duplicates found": ("CN", "find"),
        }
        results["import"] = {}
        for tag, (region, duplicates) in runs.items():
            print(tag, flush=True)
            results["import"][tag] = _import(
                source, folder, tag.replace(" ", "_"), region, duplicates
            )
        listing = folder / "dnc.txt"
        listing.write_text("".join(f"+86 138{i:08d}\n" for i in range(args.rows)))
        print("suppression list", flush=True)
        loaded, numbers, before, after, per_check, appended = subprocess.run(
            [sys.executable, "-c", _SUPPRESSION, str(listing), "100000"],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        ).stdout.split()
        results["suppression"] = {
            "numbers": int(numbers),
            "load_seconds": float(loaded),
            "memory_mb": (int(after) - int(before)) / 1024,
            "check_us": float(per_check) * 1e6,
            "append_1000_ms": float(appended) * 1000,
        }
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| import | time | rows/s | duplicates | peak RSS |\n|---|---|---|---|---|")
    for tag, found in results["import"].items():
        print(
            f"| {tag} | {found['seconds']:.1f} s | {found['rows'] / found['seconds']:,.0f} | "
            f"{found['duplicates']:,} | {found['peak_rss_mb']:.1f} MB |"
        )
    s = results["suppression"]
    print(
        f"\nsuppression list of {s['numbers']:,} numbers: read in {s['load_seconds']:.1f} s, "
        f"{s['memory_mb']:.0f} MB; a check {s['check_us']:.2f} us; 1,000 appended numbers "
        f"read in {s['append_1000_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
