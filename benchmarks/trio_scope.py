"""What one trio cancel scope per request costs, against the least a trio client can do.

    python -m benchmarks.trio_scope --rounds 5

Three clients on the benchmark server, each keeping `--inflight` requests in flight on trio
(one keep-alive connection each), interleaved in every round, by client CPU per request:

- `raw`: the floor on trio's own primitives, as compat's trio stream drives a socket: a
  non-blocking `send`, `trio.lowlevel.wait_readable`, `recv_into` a shared buffer, httptools;
- `raw+scope`: the same inside one `trio.CancelScope` per request, with no deadline;
- `raw+deadline`: the same inside one `trio.CancelScope` with a deadline (`ClientTimeout.total`'s
  shape: what compat's `Deadline` enters on trio for every request).

The difference is what trio charges for a cancel scope around a request that waits once. compat
enters one only for a request that cannot do without (middlewares, a body iterator, a new
connection's waits): a request on an idle connection has a watched deadline, its trace
handlers run guarded (see the README, Speed).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from collections.abc import Awaitable, Callable

import httptools
import trio

from .harness import HOST, local_server

_RECEIVE_SIZE = 256 * 1024


class _Connection:
    """One keep-alive connection: the head and body of each response, parsed by httptools."""

    def __init__(self, sock: socket.socket, buffer: memoryview) -> None:
        self.sock = sock
        self.buffer = buffer
        self.parser = httptools.HttpResponseParser(self)
        self.complete = False
        self.body: list[bytes] = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    async def request(self, data: bytes) -> bytes:
        self.complete = False
        self.body = []
        self.sock.send(data)  # a small request on an idle connection: sent at once
        while not self.complete:
            await trio.lowlevel.wait_readable(self.sock)
            size = self.sock.recv_into(self.buffer)
            if not size:
                raise ConnectionResetError("the server closed the connection")
            self.parser.feed_data(self.buffer[:size])
        return b"".join(self.body)


Mode = Callable[[_Connection, bytes], Awaitable[bytes]]


async def _raw(conn: _Connection, data: bytes) -> bytes:
    return await conn.request(data)


async def _scoped(conn: _Connection, data: bytes) -> bytes:
    with trio.CancelScope():
        body = await conn.request(data)
    return body


async def _deadline(conn: _Connection, data: bytes) -> bytes:
    with trio.CancelScope(deadline=trio.current_time() + 300):
        body = await conn.request(data)
    return body


MODES: dict[str, Mode] = {"raw": _raw, "raw+scope": _scoped, "raw+deadline": _deadline}


async def _measure(port: int, mode: Mode, requests: int, inflight: int) -> float:
    """Client CPU microseconds per request over `requests` (after a warm-up)."""
    data = f"GET /small HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    buffer = memoryview(bytearray(_RECEIVE_SIZE))
    conns = []
    for _ in range(inflight):
        sock = socket.create_connection((HOST, port))
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(_Connection(sock, buffer))

    async def worker(conn: _Connection, count: int) -> None:
        for _ in range(count):
            if await mode(conn, data) != b"Hello, world!":
                raise RuntimeError("unexpected body")

    async def batch(total: int) -> None:
        async with trio.open_nursery() as nursery:
            for conn in conns:
                nursery.start_soon(worker, conn, total // inflight)

    try:
        await batch(min(requests, 1000))
        started = time.process_time()
        await batch(requests)
        return (time.process_time() - started) / (requests // inflight * inflight) * 1e6
    finally:
        for conn in conns:
            conn.sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=5000, help="per measurement")
    parser.add_argument("--inflight", type=int, default=50)
    args = parser.parse_args(argv)
    results: dict[str, list[float]] = {name: [] for name in MODES}
    with local_server() as server:
        for round_ in range(args.rounds):
            names = list(MODES)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]  # rotated
            for name in names:
                cpu = trio.run(_measure, server.port, MODES[name], args.requests, args.inflight)
                results[name].append(cpu)
    print(
        f"trio, {args.inflight} in flight, 13 B: client CPU per request, median of "
        f"{args.rounds} rounds of {args.requests} requests"
    )
    floor = statistics.median(results["raw"])
    for name, samples in results.items():
        median = statistics.median(samples)
        print(
            f"  {name:<13} {median:6.1f} us  (+{median - floor:5.1f} us over raw)  "
            f"rounds: {', '.join(f'{x:.0f}' for x in samples)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
