"""The benchmark suite: writes benchmarks/RESULTS.md and benchmarks/results.png.

    python benchmarks/run.py            # the full suite (about 15 minutes on 2 cores)
    python benchmarks/run.py --smoke    # a few hundred calls per part, to keep it working

Throughput runs use nginx returning the documented JSON, pinned to CPU 1; every client
runs in its own process pinned to CPU 0, so the figures measure the clients. Clients
alternate within each round (rotated order) and the medians over rounds are reported.
Primary metric: client CPU µs per call (user+sys of the client process / calls).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import anyio
from servers import CALL_JSON, ensure_tools, nginx

CLIENT_CPU, SERVER_CPU = 0, 1
CLIENTS = ["raw httpx", "sdk", "raw aiohttp", "sdk + aiohttp transport"]
CONCURRENCIES = [1, 10, 100]
PARTS = ["throughput", "ceiling", "batch", "stampede", "overhead"]


def run_client(name: str, url: str, calls: int, concurrency: int) -> dict[str, float]:
    """One client process pinned to the client CPU; its JSON result."""
    command = ["taskset", "-c", str(CLIENT_CPU), sys.executable, str(HERE / "clients.py"), name]
    command += ["--url", url, "--calls", str(calls), "--concurrency", str(concurrency)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{name}: {result['errors']} failed calls")
    return result


def throughput(url: str, calls: int, rounds: int) -> dict[str, dict[int, dict[str, Any]]]:
    """Median CPU µs/call and calls/s per client and concurrency, alternating clients."""
    samples: dict[str, dict[int, list[dict[str, float]]]] = {
        name: {c: [] for c in CONCURRENCIES} for name in CLIENTS
    }
    for index in range(rounds):
        for concurrency in CONCURRENCIES:
            order = CLIENTS[index % len(CLIENTS) :] + CLIENTS[: index % len(CLIENTS)]
            for name in order:
                result = run_client(name, url, calls, concurrency)
                samples[name][concurrency].append(result)
                print(
                    f"  round {index + 1} c={concurrency:<3} {name:24s} "
                    f"{result['cpu'] / calls * 1e6:7.0f} µs/call "
                    f"{calls / result['wall']:7.0f} calls/s",
                    flush=True,
                )
    return {
        name: {
            c: {
                "cpu_us": statistics.median(r["cpu"] / r["calls"] * 1e6 for r in runs),
                "calls_s": statistics.median(r["calls"] / r["wall"] for r in runs),
                "cpu_us_rounds": [round(r["cpu"] / r["calls"] * 1e6) for r in runs],
            }
            for c, runs in by_c.items()
        }
        for name, by_c in samples.items()
    }


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"called":"13800000001","callerPresent":"95599"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-APP-Key"] = "bench-app-key"
wrk.headers["Authorization"] = "Bearer bench-access-token-0123456789"
"""


def ceiling(url: str, seconds: int) -> float:
    """Requests/s that wrk (C, one thread, 100 connections) gets from the same server."""
    ensure_tools("wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        done = subprocess.run(
            [
                "taskset",
                "-c",
                str(CLIENT_CPU),
                "wrk",
                "-t1",
                "-c100",
                f"-d{seconds}s",
                "-s",
                script.name,
                url + "/apiaccess/ccmessaging/v1/mobileagent/createcall",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if match is None:
        raise RuntimeError(done.stdout)
    return float(match.group(1))


def stampede(calls: int) -> dict[str, Any]:
    """Concurrent create_call()s across a forced token expiry, against the emulator."""
    from ccmessaging_async import AsyncSession, CCMessagingError, CreateCallRequest
    from ccmessaging_async.testing import Emulator, EmulatorServer

    emulator = Emulator()
    failures: list[str] = []
    done = 0

    async def main(url: str) -> None:
        nonlocal done
        async with AsyncSession(url, emulator.app_key, emulator.app_secret) as session:

            async def one(number: str) -> None:
                nonlocal done
                try:
                    await session.create_call(CreateCallRequest(called=number))
                except CCMessagingError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                done += 1
                if done == calls // 2:
                    emulator.expire_all_tokens()

            async with anyio.create_task_group() as tg:
                for i in range(calls):
                    tg.start_soon(one, f"1380{i:07d}")

    started = time.perf_counter()
    with EmulatorServer(emulator) as server:
        anyio.run(main, server.url)
    return {
        "calls": calls,
        "seconds": time.perf_counter() - started,
        "token_requests": emulator.token_requests,
        "expiries": 1,
        "failures": len(failures),
        "pool_timeouts": sum("PoolTimeout" in f for f in failures),
        "created": len(emulator.calls),
        "duplicates": len(emulator.duplicates()),
    }


def _rss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) if match else 0


def _sampled(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, str]:
    """Run ``command``; return its seconds, peak RSS in MB (sampled from /proc) and stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.2):
            peak = max(peak, _rss_kib(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate(timeout=7200)
    stop.set()
    sampler.join()
    return time.perf_counter() - started, peak / 1024, output


def _job_stats(job: Path) -> dict[str, Any]:
    import sqlite3

    db = sqlite3.connect(job)
    try:
        states = dict(db.execute("SELECT state, count(*) FROM rows GROUP BY state").fetchall())
        commits = db.execute("SELECT count(DISTINCT finished_at) FROM outcomes").fetchone()[0]
    finally:
        db.close()
    return {"states": states, "commits_with_outcomes": commits}


def _reopen_rows(job: Path, share: float) -> None:
    """Make the last ``share`` of a finished job pending again (a job stopped part way)."""
    import sqlite3

    db = sqlite3.connect(job)
    with db:
        rows = db.execute("SELECT count(*) FROM rows").fetchone()[0]
        first = int(rows * (1 - share))
        db.execute("DELETE FROM outcomes WHERE row >= ?", (first,))
        db.execute("UPDATE rows SET state = 'pending' WHERE row >= ?", (first,))
    db.close()


def big_batch(
    url: str, rows: int, transport: str, *, before: str | None = None, fsync_cost: bool = False
) -> dict[str, Any]:
    """A `ccmessaging-async batch` job of ``rows`` generated rows: time, memory, resumes.

    ``before``: also run an older checkout on the same input (its figures beside ours);
    ``fsync_cost``: also resume it 30 % done, and run it with the job file's fsyncs off
    (``job_nosync.py``).
    """
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "calls.csv"
        with source.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["called", "caller_present", "call_data"])
            for i in range(rows):
                writer.writerow([f"1{i:010d}", "95599", ""])
        env = {
            **os.environ,
            "CCMESSAGING_BASE_URL": url,
            "CCMESSAGING_APP_KEY": "bench-app-key",
            "CCMESSAGING_APP_SECRET": "bench-app-secret",
            "PYTHONPATH": str(HERE.parent),
        }
        pinned = ["taskset", "-c", str(CLIENT_CPU), sys.executable]
        args = ["--concurrency", "100", "--transport", transport]

        def job(tag: str, script: list[str], extra_env: dict[str, str] | None = None) -> Any:
            out = Path(folder) / f"{tag}.jsonl"
            command = [*pinned, *script, "batch", str(source), "--out", str(out), *args]
            seconds, peak, output = _sampled(command, {**env, **(extra_env or {})}, folder)
            return out, {
                "seconds": seconds,
                "calls_s": rows / seconds,
                "peak_rss_mb": peak,
                "summary": output.strip().splitlines()[0] if output.strip() else "",
            }

        cli = ["-m", "ccmessaging_async.cli"]
        result: dict[str, Any] = {"rows": rows}
        out, result["fresh"] = job("fresh", cli)
        result["fresh"].update(_job_stats(Path(f"{out}.job")))
        result["fresh"]["report_lines"] = sum(1 for _ in out.open())
        command = [*pinned, *cli, "batch", "--out", str(out), *args]
        seconds, peak, _ = _sampled(command, env, folder)
        result["resume_finished"] = {"seconds": seconds, "peak_rss_mb": peak}
        if fsync_cost:
            _reopen_rows(Path(f"{out}.job"), 0.7)
            seconds, peak, _ = _sampled(command, env, folder)
            result["resume_30_percent_done"] = {"seconds": seconds, "peak_rss_mb": peak}
            _, result["no_fsync"] = job("nosync", [str(HERE / "job_nosync.py")])
        if before is not None:
            _, result["before"] = job("before", cli, {"PYTHONPATH": before})
    return result


def overhead(calls: int, rounds: int) -> dict[str, Any]:
    """In-process SDK cost per call (see overhead.py) plus its parts, timed with timeit."""
    import timeit

    import overhead as oh

    from ccmessaging_async import CreateCallRequest
    from ccmessaging_async._classify import decode_success
    from ccmessaging_async._converter import unstructure
    from ccmessaging_async._endpoints import CREATE_CALL

    medians = oh.measure(calls, rounds)

    def best(stmt: Callable[[], object]) -> float:
        number = 20000
        return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6

    request = CreateCallRequest(called="88884432", caller_present="95599")
    body = CALL_JSON.encode()
    parts = {
        "validate (CreateCallRequest)": best(
            lambda: CreateCallRequest(called="88884432", caller_present="95599")
        ),
        "convert + JSON-encode request": best(
            lambda: json.dumps(unstructure(request), ensure_ascii=False).encode()
        ),
        "JSON-decode + convert answer": best(lambda: decode_success(CREATE_CALL, body)),
    }
    return {"medians": medians, "parts": parts}


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    ensure_tools("nginx")  # its version is part of the machine (a new one may lack it)
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "httpx": version("httpx"),
        "httpcore": version("httpcore"),
        "aiohttp": version("aiohttp"),
        "nginx": subprocess.run(
            ["nginx", "-v"], capture_output=True, text=True, check=False
        ).stderr.strip(),
        "date": time.strftime("%Y-%m-%d"),
    }


def chart(results: dict[str, dict[int, dict[str, float]]], path: Path) -> None:
    """calls/s and CPU µs/call against concurrency, one line per client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, by_c in results.items():
        xs = sorted(by_c)
        left.plot(xs, [by_c[c]["calls_s"] for c in xs], marker="o", label=name)
        right.plot(xs, [by_c[c]["cpu_us"] for c in xs], marker="o", label=name)
    for axis, title in (
        (left, "calls/s (higher is better)"),
        (right, "client CPU µs/call (lower is better)"),
    ):
        axis.set_xscale("log")
        axis.set_xticks(CONCURRENCIES, [str(c) for c in CONCURRENCIES])
        axis.set_xlabel("concurrency")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    right.set_yscale("log")
    left.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few hundred calls per part")
    parser.add_argument("--calls", type=int, default=3000, help="calls per client run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--stampede", type=int, default=10_000)
    parser.add_argument("--batch-rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument(
        "--batch-before",
        metavar="CHECKOUT",
        help="also run this older checkout's batch job on the first --batch-rows size",
    )
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=PARTS, help="measure only these parts"
    )
    parser.add_argument("--json", type=Path, default=HERE / "results.json")
    parser.add_argument(
        "--only-throughput",
        nargs="*",
        metavar="CLIENT",
        help="run only the throughput part, for these clients (e.g. to measure an older "
        "SDK checkout put first on PYTHONPATH)",
    )
    args = parser.parse_args()
    if args.only_throughput is not None:
        CLIENTS[:] = args.only_throughput or CLIENTS
        with nginx(SERVER_CPU) as url:
            found = throughput(url, args.calls, args.rounds)
        args.json.write_text(json.dumps({"machine": machine(), "throughput": found}, indent=2))
        return
    if args.smoke:
        args.calls, args.rounds, args.stampede, args.batch_rows = 200, 1, 500, [2000]
        if args.json == HERE / "results.json":  # smoke figures mean nothing: keep them out
            args.json = Path(tempfile.gettempdir()) / "ccmessaging-benchmark-smoke.json"
    parts = set(args.parts)
    results: dict[str, Any] = {}
    if parts != set(PARTS) and args.json.exists():  # re-measure some parts, keep the rest
        results = json.loads(args.json.read_text())
    results.update({"machine": machine(), "smoke": args.smoke})
    results["command"] = "python benchmarks/run.py" + (" --smoke" if args.smoke else "")
    with nginx(SERVER_CPU) as url:
        if "throughput" in parts:
            print("throughput (nginx pinned to CPU 1, clients to CPU 0)", flush=True)
            results["throughput"] = throughput(url, args.calls, args.rounds)
        if "ceiling" in parts:
            print("ceiling (wrk)", flush=True)
            results["wrk_calls_s"] = ceiling(url, 2 if args.smoke else 10)
        if "batch" in parts:
            print("big batch memory", flush=True)
            results["big_batch"] = [
                big_batch(
                    url,
                    rows,
                    "aiohttp",
                    before=args.batch_before if i == 0 else None,
                    fsync_cost=i == 0,
                )
                for i, rows in enumerate(args.batch_rows)
            ]
    if "stampede" in parts:
        print("token stampede (emulator under uvicorn)", flush=True)
        results["stampede"] = stampede(args.stampede)
    if "overhead" in parts:
        print("in-process overhead", flush=True)
        results["overhead"] = overhead(2000 if args.smoke else 20000, 3 if args.smoke else 9)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    if not args.smoke and "throughput" in parts:
        chart(results["throughput"], HERE / "results.png")
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
