"""The connection-layer benchmarks: a server that answers late, and one that forgets.

    python benchmarks/connections.py [--smoke] && python benchmarks/report.py

Writes ``connections.json`` and ``connections.png``; ``report.py`` puts them in
``RESULTS.md``. ``slow_server.py`` runs pinned to CPU 1 and each client run
(``latency_clients.py``) in its own process pinned to CPU 0.

- Latency: calls/s, client CPU µs per call, p50/p99 and failures at concurrency 10 and
  100 against a 0.25 s answer, 200 and 500 against 1 s, and 1/10/100 against an instant
  one, for raw httpx, the SDK over httpx's own pool (before), the SDK (after), raw
  aiohttp and the SDK with the aiohttp transport. The server's CPU share is recorded to
  show it is not the bottleneck.
- Stale connections: the server closes connections idle for T (0.5 s, 1 s); calls come in
  bursts of 20 about T apart. Unknown outcomes are counted, and how many of them the
  server really received.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import machine
from servers import free_port

CLIENT_CPU, SERVER_CPU = 0, 1
CLIENTS = ["raw httpx", "sdk, httpx's pool", "sdk", "raw aiohttp", "sdk + aiohttp transport"]
#: (concurrency, server latency in seconds)
POINTS = [(1, 0.0), (10, 0.0), (100, 0.0), (10, 0.25), (100, 0.25), (200, 1.0), (500, 1.0)]
STALE_CLIENTS = [
    "sdk, httpx's pool",
    "sdk",
    "sdk + aiohttp, aiohttp's connector",
    "sdk + aiohttp transport",
]
#: Against h2_server.py (hypercorn, TLS): HTTP/2 before and after.
H2_CLIENTS = ["sdk, http2, httpx's pool", "sdk, http2"]
IDLE_TIMEOUTS = [0.5, 1.0]
STALE_LATENCY = 0.05


@contextmanager
def slow_server(
    delay: float, idle_close: float | None = None, *, h2: bool = False
) -> Iterator[str]:
    """``slow_server.py`` (or, with ``h2``, ``h2_server.py`` over TLS) pinned to CPU 1."""
    port = free_port()
    script = "h2_server.py" if h2 else "slow_server.py"
    command = ["taskset", "-c", str(SERVER_CPU), sys.executable, str(HERE / script)]
    command += ["--port", str(port), "--delay", str(delay)]
    if idle_close is not None:
        command += ["--idle-close", str(idle_close)]
    with tempfile.TemporaryDirectory() as certs:
        if h2:
            command += ["--cert", certs]
        # hypercorn logs every TLS close a client cuts short: noise here.
        noise = subprocess.DEVNULL if h2 else None
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=noise, text=True)
        try:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{script} did not start")
            if h2:
                os.environ["BENCH_CA"] = str(Path(certs) / "ca.pem")
            yield f"{'https' if h2 else 'http'}://127.0.0.1:{port}"
        finally:
            os.environ.pop("BENCH_CA", None)
            process.terminate()
            process.wait(10)


def _open(request: urllib.request.Request) -> bytes:
    context = ssl.create_default_context(cafile=os.environ.get("BENCH_CA"))
    with urllib.request.urlopen(request, timeout=30, context=context) as answer:  # noqa: S310
        data: bytes = answer.read()
    return data


def server_stats(url: str) -> dict[str, Any]:
    stats: dict[str, Any] = json.loads(_open(urllib.request.Request(url + "/stats")))  # noqa: S310
    return stats


def reset(url: str) -> None:
    _open(urllib.request.Request(url + "/reset", data=b"", method="POST"))  # noqa: S310


def run_client(name: str, url: str, *options: str) -> dict[str, Any]:
    command = ["taskset", "-c", str(CLIENT_CPU), sys.executable, str(HERE / "latency_clients.py")]
    command += [name, "--url", url, *options]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def calls_for(concurrency: int, delay: float, smoke: bool) -> int:
    wanted = 2000 if delay == 0 else int(concurrency / delay * 6)
    return max(concurrency, wanted // 10 if smoke else wanted)


def latency(smoke: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for delay in sorted({d for _, d in POINTS}):
        points = [p for p in POINTS if p[1] == delay]
        if smoke:  # every client against every server latency keeps the script working
            points = points[:1]
        with slow_server(delay) as url:
            for index, (concurrency, _) in enumerate(points):
                calls = calls_for(concurrency, delay, smoke)
                order = CLIENTS[index % len(CLIENTS) :] + CLIENTS[: index % len(CLIENTS)]
                for name in order:
                    before, started = server_stats(url)["cpu"], time.perf_counter()
                    result = run_client(
                        name, url, "--calls", str(calls), "--concurrency", str(concurrency)
                    )
                    server_share = (server_stats(url)["cpu"] - before) / (
                        time.perf_counter() - started
                    )
                    row = {"client": name, "concurrency": concurrency, "delay": delay, **result}
                    row["server_cpu_share"] = server_share
                    rows.append(row)
                    print(
                        f"  c={concurrency:<3} {delay:4.2f}s {name:24s} "
                        f"{result['calls_s']:7.0f} calls/s "
                        f"{result['cpu_us']:7.0f} µs/call p50 {result['p50_ms']:6.0f} ms "
                        f"p99 {result['p99_ms']:6.0f} ms failures {result['failures']} "
                        f"(server CPU {server_share:.0%})",
                        flush=True,
                    )
    return rows


def stale(smoke: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    calls = 200 if smoke else 2000
    idles = IDLE_TIMEOUTS[:1] if smoke else IDLE_TIMEOUTS
    runs = [(idle, False, STALE_CLIENTS) for idle in idles]
    runs += [(idle, True, H2_CLIENTS) for idle in idles]
    for idle, h2, clients in runs:
        with slow_server(STALE_LATENCY, idle_close=idle, h2=h2) as url:
            for name in clients:
                reset(url)
                result = run_client(name, url, "--calls", str(calls), "--bursts", str(idle))
                received = Counter(server_stats(url)["received"])
                unknown = result["unknown"]
                row = {
                    "client": name,
                    "idle_timeout": idle,
                    "calls": calls,
                    "succeeded": len(result["ok"]),
                    "failed": len(result["failed"]),
                    "unknown": len(unknown),
                    "unknown_received": sum(received[n] > 0 for n in unknown),
                    "created_twice": sum(count > 1 for count in received.values()),
                    "outcomes": len(result["ok"]) + len(result["failed"]) + len(unknown),
                }
                rows.append(row)
                print(
                    f"  T={idle:.1f}s {name:24s} unknown {row['unknown']:4d} (server received "
                    f"{row['unknown_received']}), failed {row['failed']}, created twice "
                    f"{row['created_twice']}",
                    flush=True,
                )
    return rows


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in POINTS if p[1] > 0]
    labels = [f"{c} in flight\n{d:g} s" for c, d in points]
    figure, (speed, cpu) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(CLIENTS)
    for offset, name in enumerate(CLIENTS):
        mine = {(r["concurrency"], r["delay"]): r for r in rows if r["client"] == name}
        xs = [i + offset * width for i in range(len(points))]
        speed.bar(xs, [mine[p]["calls_s"] for p in points], width, label=name)
        cpu.bar(xs, [mine[p]["cpu_us"] for p in points], width, label=name)
    ideal = [c / d for c, d in points]
    speed.scatter(
        [i + 0.4 - width / 2 for i in range(len(points))],
        ideal,
        marker="_",
        s=400,
        color="black",
        label="ideal",
    )
    for axis, title in (
        (speed, "calls/s (higher is better)"),
        (cpu, "client CPU µs per call (log)"),
    ):
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(points))], labels)
        axis.set_title(title)
    cpu.set_yscale("log")
    speed.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="few calls: keeps the scripts working")
    parser.add_argument(
        "--parts", nargs="+", choices=["latency", "stale"], default=["latency", "stale"]
    )
    parser.add_argument("--json", type=Path, default=HERE / "connections.json")
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(args.json.read_text()) if args.json.exists() else {}
    results.update(machine=machine(), smoke=args.smoke)
    if "latency" in args.parts:
        print("latency:", flush=True)
        results["latency"] = latency(args.smoke)
        if not args.smoke:
            chart(results["latency"], HERE / "connections.png")
    if "stale" in args.parts:
        print("stale connections:", flush=True)
        results["stale"] = stale(args.smoke)
    args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
