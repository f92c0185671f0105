"""Per-call CPU of two checkouts of the SDK against nginx, alternating them round by round.

For a refactoring that must not cost CPU: check the old commit out beside this one
(``git worktree add /tmp/before <commit>``), then

    python benchmarks/ab_trees.py /tmp/before . [--rounds 5] [--calls 5000]

Each client run is ``clients.py`` in its own process pinned to CPU 0, with the tree on
``PYTHONPATH``; nginx serves on CPU 1; the trees swap places every other round (the one
run second in every round measured a few per cent slower). Prints the median CPU µs per
call of each tree, client ("sdk": httpx's transport; "sdk + aiohttp transport") and
concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from servers import nginx

CLIENTS = ["sdk", "sdk + aiohttp transport"]
CONCURRENCIES = [10, 100]


def _cpu_per_call(tree: Path, client: str, url: str, calls: int, concurrency: int) -> float:
    command = ["taskset", "-c", "0", sys.executable, str(HERE / "clients.py"), client]
    command += ["--url", url, "--calls", str(calls), "--concurrency", str(concurrency)]
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{tree} {client}: {result['errors']} failed calls")
    return float(result["cpu"]) / float(result["calls"]) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    samples: dict[tuple[str, int, str], list[float]] = {}
    with nginx(1) as url:
        for round_ in range(args.rounds):
            order = list(trees.items())
            if round_ % 2:
                order.reverse()  # neither tree always runs first
            for concurrency in CONCURRENCIES:
                for client in CLIENTS:
                    for name, tree in order:
                        cpu = _cpu_per_call(tree, client, url, args.calls, concurrency)
                        samples.setdefault((client, concurrency, name), []).append(cpu)
    print("| client | concurrency | before µs/call | after µs/call | after / before |")
    print("|---|---|---|---|---|")
    for client in CLIENTS:
        for concurrency in CONCURRENCIES:
            before = statistics.median(samples[(client, concurrency, "before")])
            after = statistics.median(samples[(client, concurrency, "after")])
            print(
                f"| {client} | {concurrency} | {before:.1f} | {after:.1f} | {after / before:.2f} |"
            )


if __name__ == "__main__":
    main()
