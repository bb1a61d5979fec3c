"""HTTP/2: 50 requests in flight on one connection, compat against bare httpx `http2=True`.

    python -m benchmarks.http2 [--rounds N] [--seconds S] [--max-requests N]
                               [--backends asyncio trio] [--json FILE]

Starts hypercorn in its own process on 127.0.0.1 (HTTP/2 over TLS, ALPN `h2`, a trustme
certificate; a bare ASGI app answering 13 bytes), then, in each round, runs every variant once,
the order rotated each round so machine drift hits all alike:

| variant            | what                                                               |
|--------------------|--------------------------------------------------------------------|
| `compat`           | `compat.ClientSession(connector=TCPConnector(http2=True))`         |
| `compat+16`        | the same, 16 no-op handlers on a `compat.TraceConfig`              |
| `traced_client+16` | `compat.traced_client(http2=True)`, 16 no-op handlers              |
| `httpx`            | bare `httpx.AsyncClient(http2=True)` (the reference, 1.00x)        |

each on asyncio and trio. A measurement is `benchmarks.harness.measure`: a fresh loop and
client, a warm-up of 50 requests at once (which opens the connection), then a timed section of
50 workers that stops starting requests after `--seconds` or `--max-requests`, whichever
first; client CPU is this process's `time.process_time()` over it (the server's is not in it).
Every response is checked (status, body, HTTP/2), and the server counts the connections each
measurement used (`conns`: 1 means all 50 streams were multiplexed on one connection).

Reported per backend and variant: median req/s and CPU us/request over the rounds, and ratios
of those medians against bare httpx on the same backend: `req/s / httpx` (above 1: faster) and
`by CPU` (httpx's CPU us/request over this one's: above 1, this one costs less), plus
traced/untraced for compat. hypercorn's single process serves a few thousand requests a
second: req/s may be the server's ceiling, CPU us/request is the client's own cost.

Bounds: each measurement stops after `--seconds` (default 1.0) or `--max-requests`, and fails
after `--seconds` + 10 s; a variant that fails is reported and not retried; no measurement
starts after `--max-seconds` (default 100). Default: 5 rounds, about 70 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from .clients import SIGNALS, BadResponse, OneRequest, Target, Variant, noop_handler
from .harness import HOST, Limits, Sample, compat_origin, describe_error, machine, measure

BODY = b"Hello, world!"
CONCURRENCY = 50
REFERENCE = "httpx"


# --- the server (its own process: `python -m benchmarks.http2 --serve CERT KEY`) ---


def _serve(certfile: str, keyfile: str, lifetime: float) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    clients: set[Any] = set()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/_reset":
            clients.clear()
            answer = b"0"
        elif path == "/_connections":
            answer = str(len(clients)).encode()
        else:
            clients.add(tuple(scope["client"]))
            answer = BODY
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(answer))],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def main() -> None:
        import socket

        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"{HOST}:{port}"]
        config.certfile = certfile
        config.keyfile = keyfile
        config.alpn_protocols = ["h2"]
        config.accesslog = None
        config.errorlog = None
        config.loglevel = "ERROR"
        config.keep_alive_timeout = 60
        # hypercorn's default closes a connection after 1000 requests with a GOAWAY, then
        # cannot finish the streams in flight (its h2 state is closed): no measurement survives
        # that, whatever the client. One connection for the whole run, as this benchmark means.
        config.keep_alive_max_requests = 2**62
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        parent = os.getppid()
        deadline = loop.time() + lifetime

        def watch() -> None:
            if loop.time() >= deadline or os.getppid() != parent:
                stop.set()
            else:
                loop.call_later(1, watch)

        watch()
        task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        for _ in range(200):  # tell the parent once it listens
            try:
                _, writer = await asyncio.open_connection(HOST, port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.025)
        print(port, flush=True)
        await task

    asyncio.run(main())


@dataclass(frozen=True)
class Server:
    port: int
    ca_file: str

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"


@contextmanager
def h2_server(lifetime: float = 600) -> Iterator[Server]:
    """hypercorn with a fresh trustme certificate in a child process; yields its port and CA."""
    import trustme

    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        certfile, keyfile, ca_file = (os.path.join(tmp, n) for n in ("c.pem", "k.pem", "ca.pem"))
        cert.private_key_pem.write_to_path(keyfile)
        cert.cert_chain_pems[0].write_to_path(certfile)
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(certfile, append=True)
        ca.cert_pem.write_to_path(ca_file)
        command = [sys.executable, "-m", "benchmarks.http2", "--serve", certfile, keyfile]
        server = subprocess.Popen(
            [*command, "--lifetime", str(lifetime)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        try:
            assert server.stdout is not None
            ready, _, _ = select.select([server.stdout], [], [], 20)
            line = server.stdout.readline() if ready else ""
            if not line.strip().isdigit():
                raise RuntimeError(f"hypercorn did not start (said {line!r})")
            yield Server(int(line), ca_file)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)


def _connections(server: Server, path: str) -> int:
    """Ask the server (over a connection of its own, not counted) how many it saw."""
    import httpx

    with httpx.Client(http2=False, verify=_context(server)) as client:
        return int(client.get(server.url(path), timeout=10).text)


# --- the clients ---


def _context(server: Server) -> Any:
    import ssl

    return ssl.create_default_context(cafile=server.ca_file)


def _fill(config: Any) -> Any:
    for name in SIGNALS:
        getattr(config, name).append(noop_handler)
    return config


def _check(status: int, version: object, body: bytes) -> None:
    # compat's version is aiohttp's HttpVersion(2, 0); httpx's is the string "HTTP/2"
    if status != 200 or body != BODY or version not in ("HTTP/2", (2, 0)):
        raise BadResponse(f"status {status}, {version}, {len(body)} body bytes")


def _compat_opener(server: Server, traced: bool) -> Callable[[Target], Any]:
    @asynccontextmanager
    async def open_(target: Target) -> AsyncIterator[OneRequest]:
        import compat

        configs = [_fill(compat.TraceConfig())] if traced else []
        connector = compat.TCPConnector(http2=True, ssl=_context(server))
        async with compat.ClientSession(connector=connector, trace_configs=configs) as session:
            url = server.url("/")

            async def one() -> None:
                async with session.get(url) as response:
                    _check(response.status, response.version, await response.read())

            yield one

    return open_


def _traced_client_opener(server: Server) -> Callable[[Target], Any]:
    @asynccontextmanager
    async def open_(target: Target) -> AsyncIterator[OneRequest]:
        import compat

        configs = [_fill(compat.TraceConfig())]
        async with compat.traced_client(
            http2=True, verify=_context(server), trace_configs=configs
        ) as client:
            url = server.url("/")

            async def one() -> None:
                response = await client.get(url)
                _check(response.status_code, response.http_version, response.content)

            yield one

    return open_


def _httpx_opener(server: Server) -> Callable[[Target], Any]:
    @asynccontextmanager
    async def open_(target: Target) -> AsyncIterator[OneRequest]:
        import httpx

        async with httpx.AsyncClient(http2=True, verify=_context(server)) as client:
            url = server.url("/")

            async def one() -> None:
                response = await client.get(url)
                _check(response.status_code, response.http_version, response.content)

            yield one

    return open_


def variants(server: Server, backends: list[str]) -> list[Variant]:
    found = []
    for backend in backends:
        for name, client, traced, opener in (
            ("compat", "compat", False, _compat_opener(server, False)),
            ("compat+16", "compat", True, _compat_opener(server, True)),
            ("traced_client+16", "traced_client", True, _traced_client_opener(server)),
            ("httpx", "httpx", False, _httpx_opener(server)),
        ):
            open_: Callable[[Target], AbstractAsyncContextManager[OneRequest]] = opener
            found.append(Variant(name, backend, client, traced, open_))
    return found


# --- the rounds ---


@dataclass
class Cell:
    samples: list[Sample | None] = field(default_factory=list)
    connections: list[int] = field(default_factory=list)
    error: str | None = None

    def rates(self) -> list[float]:
        return [s.rate for s in self.samples if s is not None]

    def cpu(self) -> list[float]:
        return [s.cpu_us for s in self.samples if s is not None]


def run_rounds(
    server: Server,
    all_variants: list[Variant],
    rounds: int,
    limits: Limits,
    deadline: float,
    log: Callable[[str], None],
) -> tuple[dict[str, Cell], int, str | None]:
    cells = {v.key: Cell() for v in all_variants}
    target = Target(HOST, server.port, "/", len(BODY))  # the variants use server.url
    priming = Limits(0.05, limits.max_requests, limits.hard_timeout)
    for variant in all_variants:  # discarded: imports, first connections, server warm-up
        try:
            measure(variant, target, CONCURRENCY, priming)
        except Exception as exc:
            cells[variant.key].error = describe_error(exc)
            log(f"  {variant.key}: failed: {cells[variant.key].error}")
    log("priming done")
    completed, stopped = 0, None
    for number in range(rounds):
        shift = number % len(all_variants)
        for variant in all_variants[shift:] + all_variants[:shift]:
            cell = cells[variant.key]
            if cell.error is not None:
                continue
            if time.monotonic() > deadline:
                stopped = f"--max-seconds reached in round {number + 1}"
                break
            try:
                _connections(server, "/_reset")
                cell.samples.append(measure(variant, target, CONCURRENCY, limits))
                cell.connections.append(_connections(server, "/_connections"))
            except Exception as exc:
                cell.error = describe_error(exc)
                log(f"  {variant.key}: failed: {cell.error}")
        if stopped:
            break
        completed += 1
        log(f"round {number + 1}/{rounds} done")
    return cells, completed, stopped


def _median_ratio(mine: list[float], theirs: list[float]) -> float | None:
    if not mine or not theirs:
        return None
    return statistics.median(mine) / statistics.median(theirs)


def table(cells: dict[str, Cell], all_variants: list[Variant]) -> list[dict[str, Any]]:
    rows = []
    for variant in all_variants:
        cell = cells[variant.key]
        reference = cells.get(f"{REFERENCE} ({variant.backend})")
        untraced = cells.get(f"{variant.client} ({variant.backend})") if variant.traced else None
        by_cpu = None
        if reference is not None and cell.cpu():
            by_cpu = _median_ratio(reference.cpu(), cell.cpu())
        rows.append(
            {
                "variant": variant.key,
                "req_per_s": statistics.median(cell.rates()) if cell.rates() else None,
                "cpu_us_per_req": statistics.median(cell.cpu()) if cell.cpu() else None,
                "vs_httpx": _median_ratio(cell.rates(), reference.rates()) if reference else None,
                "cpu_vs_httpx": by_cpu,
                "traced_vs_untraced": _median_ratio(cell.rates(), untraced.rates())
                if untraced is not None and variant.client == "compat"
                else None,
                "connections": max(cell.connections) if cell.connections else None,
                "rounds": len(cell.rates()),
                "error": cell.error,
            }
        )
    return rows


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "" if value is None else f"{value:{spec}}{suffix}"


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "\n50 in flight over one HTTP/2 connection, 13 B bodies. Medians over rounds;"
        "\nreq/s / httpx: against bare httpx (http2=True) on the same backend, above 1 faster;"
        "\nby CPU: httpx's CPU us/request over this one's, above 1 cheaper;"
        "\nconns: connections the server saw in a measurement (most over the rounds)."
    )
    header = (
        f"  {'variant':<28}{'req/s':>8}{'CPU us/req':>12}{'req/s / httpx':>15}{'by CPU':>8}"
        f"{'traced/untraced':>17}{'conns':>7}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for row in rows:
        if row["req_per_s"] is None:
            print(f"  {row['variant']:<28}  {row['error'] or 'not measured'}")
            continue
        print(
            f"  {row['variant']:<28}{row['req_per_s']:8.0f}{row['cpu_us_per_req']:12.1f}"
            f"{_fmt(row['vs_httpx'], '.2f', 'x'):>15}{_fmt(row['cpu_vs_httpx'], '.2f', 'x'):>8}"
            f"{_fmt(row['traced_vs_untraced'], '.2f', 'x'):>17}{row['connections']:>7}"
            + (f"   (failed later: {row['error']})" if row["error"] else "")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--max-requests", type=int, default=20_000, help="per measurement")
    parser.add_argument("--max-seconds", type=float, default=100, help="no measurement after")
    parser.add_argument("--backends", nargs="+", choices=["asyncio", "trio"])
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--serve", nargs=2, metavar=("CERT", "KEY"), help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=600, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve[0], args.serve[1], args.lifetime)
        return 0
    if args.rounds < 1 or args.seconds <= 0 or args.max_requests < 1:
        parser.error("--rounds, --seconds and --max-requests must be positive")
    backends = args.backends or ["asyncio", "trio"]
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {message}", file=sys.stderr, flush=True)

    origin = compat_origin()
    log(f"compat: {origin}")
    limits = Limits(
        seconds=args.seconds, max_requests=args.max_requests, hard_timeout=args.seconds + 10
    )
    with h2_server() as server:
        all_variants = variants(server, backends)
        cells, completed, stopped = run_rounds(
            server, all_variants, args.rounds, limits, started + args.max_seconds, log
        )
    rows = table(cells, all_variants)
    print(f"\ncompat: {origin}")
    print(
        f"{machine()}; {completed} of {args.rounds} rounds of {args.seconds:g} s (or"
        f" {args.max_requests} requests) per measurement; server: hypercorn (HTTP/2, TLS) in its"
        " own process"
    )
    if stopped:
        print(f"stopped early: {stopped}")
    print_table(rows)
    log("done")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "compat": origin,
                    "machine": machine(),
                    "rounds_completed": completed,
                    "stopped_early": stopped,
                    "seconds_per_measurement": args.seconds,
                    "max_requests_per_measurement": args.max_requests,
                    "concurrency": CONCURRENCY,
                    "rows": rows,
                },
                handle,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
