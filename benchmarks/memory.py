"""Memory per idle keep-alive connection, and the cost of importing each client.

    python -m benchmarks.memory [--connections 1500] [--rounds 3] [--imports 7]

Connections: for each client (aiohttp, compat's `ClientSession` on asyncio and on trio, bare
httpx), a fresh interpreter opens a session with no connection limit (`limit=0`), makes one
request (imports, TLS context, caches), then sends `--connections` requests at once to
`benchmarks/server.py` (its own process), reads every response, and measures its RSS
(/proc/self/statm) before and after with the connections left open and idle in the pool:
(RSS after - RSS before) / sockets open. Median of `--rounds` fresh processes.

Imports: `import X` in a fresh interpreter, `--imports` times each, interleaved; the median of
the process CPU time around the import statement (less sensitive to a busy machine than wall
time), and the number of modules loaded. Bytecode is cached for all three alike, in a
directory of its own (PYTHONPYCACHEPREFIX, written by one warm-up import each even where
PYTHONDONTWRITEBYTECODE is set), as it is for any installed package: compiling the sources is
not what an import costs a user.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from .harness import HOST, local_server

CLIENTS = ("aiohttp (asyncio)", "compat (asyncio)", "compat (trio)")


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


async def _child(client: str, port: int, connections: int) -> dict[str, Any]:
    import gc

    import anyio

    url = f"http://{HOST}:{port}/small"
    result: dict[str, Any] = {}

    async def measure(get: Any) -> None:
        await get()  # warm-up: imports, first connection
        gc.collect()
        before, sockets_before = _rss(), _sockets()
        async with anyio.create_task_group() as group:
            for _ in range(connections):
                group.start_soon(get)
        gc.collect()
        after, sockets_after = _rss(), _sockets()
        opened = sockets_after - sockets_before
        result.update(
            rss_before=before,
            rss_after=after,
            connections=opened,
            per_connection=(after - before) / max(opened, 1),
        )

    if client.startswith("aiohttp"):
        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def get_aiohttp() -> None:
                async with session.get(url) as response:
                    await response.read()

            await measure(get_aiohttp)
    elif client.startswith("compat"):
        import compat

        async with compat.ClientSession(connector=compat.TCPConnector(limit=0)) as csession:

            async def get_compat() -> None:
                async with csession.get(url) as response:
                    await response.read()

            await measure(get_compat)
    else:
        import httpx

        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(limits=limits) as hclient:

            async def get_httpx() -> None:
                (await hclient.get(url)).raise_for_status()

            await measure(get_httpx)
    return result


def measure_connections(client: str, port: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.memory",
            "--child",
            client,
            "--port",
            str(port),
            "--connections",
            str(connections),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def measure_imports(modules: list[str], runs: int) -> dict[str, dict[str, float]]:
    code = (
        "import sys, time\nt = time.process_time()\nimport {m}\n"
        "print((time.process_time() - t) * 1000, len(sys.modules))"
    )
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "compat-bench-pycache")
    for module in modules:  # warm-up: bytecode caches
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60, env=env)
    times: dict[str, list[float]] = {m: [] for m in modules}
    counts: dict[str, int] = {}
    for _ in range(runs):
        for module in modules:
            out = subprocess.run(
                [sys.executable, "-c", code.format(m=module)],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
                env=env,
            ).stdout.split()
            times[module].append(float(out[0]))
            counts[module] = int(out[1])
    return {m: {"cpu_ms": statistics.median(times[m]), "modules": counts[m]} for m in modules}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per client")
    parser.add_argument("--imports", type=int, default=7, help="fresh imports per module")
    parser.add_argument("--only", choices=("connections", "imports"), help="one half only")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import anyio

        backend = "trio" if "trio" in args.child else "asyncio"
        result = anyio.run(_child, args.child, args.port, args.connections, backend=backend)
        print(json.dumps(result))
        return 0

    report: dict[str, Any] = {}
    if args.only != "imports":
        print(f"Idle keep-alive connections: {args.connections} opened at once, limit=0")
        print(f"  {'client':<20}{'KiB/connection':>16}{'connections':>13}   (median of rounds)")
        with local_server() as server:
            for client in CLIENTS:
                samples = []
                for _ in range(args.rounds):
                    try:
                        samples.append(measure_connections(client, server.port, args.connections))
                    except Exception as exc:  # reported, not retried
                        print(f"  {client:<20}failed: {exc}")
                        break
                if not samples:
                    continue
                per = statistics.median(s["per_connection"] for s in samples) / 1024
                opened = statistics.median(s["connections"] for s in samples)
                report[client] = {"kib_per_connection": per, "connections": opened}
                print(f"  {client:<20}{per:16.1f}{opened:13.0f}")
    if args.only != "connections":
        modules = ["httpx", "aiohttp", "compat"]
        imports = measure_imports(modules, args.imports)
        report["imports"] = imports
        print(f"\nImport in a fresh process, median of {args.imports} (process CPU time):")
        for module, row in imports.items():
            print(f"  import {module:<10}{row['cpu_ms']:8.1f} ms {row['modules']:6d} modules")
        extra = imports["compat"]["cpu_ms"] - imports["httpx"]["cpu_ms"]
        print(f"  compat - httpx: {extra:+.1f} ms (target: at most +50 ms)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
