"""User-space instructions per request under valgrind (callgrind): a load-independent cost.

    python -m benchmarks.instructions [--requests 1000] [--only compat+16 ...]

req/s and even CPU time per request move with whatever else the machine runs; the number of
instructions a client executes per request does not. For each variant and scenario the client
runs in a fresh interpreter under `valgrind --tool=callgrind` twice, with N and 2N requests
(same warm-up as `benchmarks.run`); (instructions(2N) - instructions(N)) / N is the cost of one
request, start-up and warm-up cancelled out. The server (`benchmarks/server.py`) runs in its own
process, outside valgrind. Kernel time (socket syscalls) is not counted: this is the client's
own work, which is what differs between clients. Slow: valgrind runs the client ~50x slower.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from .clients import VARIANTS, Target
from .harness import HOST, Limits, local_server, measure
from .run import REFERENCE, SCENARIOS

DEFAULT = [
    "aiohttp (asyncio)",
    "compat (asyncio)",
    "compat+16 (asyncio)",
    "compat (trio)",
    "compat+16 (trio)",
]


def _instructions(key: str, port: int, scenario: int, requests: int) -> int:
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--child",
            key,
            "--port",
            str(port),
            "--scenario",
            str(scenario),
            "--requests",
            str(requests),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or found is None:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="N (the runs do N and 2N)")
    parser.add_argument("--only", nargs="+", metavar="KEY", help="variant keys (see run.py)")
    parser.add_argument("--scenarios", nargs="+", type=int, help="indexes into run.SCENARIOS")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--scenario", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        variant = next(v for v in VARIANTS if v.key == args.child)
        scenario = SCENARIOS[args.scenario]
        target = Target(HOST, args.port, scenario.path, scenario.body_size)
        measure(variant, target, scenario.concurrency, Limits(1e9, args.requests, 1700))
        return 0

    keys = args.only or DEFAULT
    if REFERENCE not in keys:
        keys = [REFERENCE, *keys]
    indexes = args.scenarios if args.scenarios is not None else range(len(SCENARIOS))
    n = args.requests
    print(f"User-space instructions per request (callgrind; (I(2N) - I(N)) / N, N = {n})")
    with local_server() as server:
        for index in indexes:
            scenario = SCENARIOS[index]
            print(f"\n{scenario.title}")
            print(f"  {'variant':<24}{'instructions/req':>18}{'aiohttp / this':>16}")
            reference: float | None = None
            for key in keys:
                try:
                    once = _instructions(key, server.port, index, n)
                    twice = _instructions(key, server.port, index, 2 * n)
                except Exception as exc:
                    print(f"  {key:<24}failed: {exc}")
                    continue
                per = (twice - once) / n
                if key == REFERENCE:
                    reference = per
                ratio = f"{reference / per:15.2f}x" if reference else ""
                print(f"  {key:<24}{per:18,.0f}{ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
