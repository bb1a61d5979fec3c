"""A small, fast recording HTTP/1.1 server for `test_hostile_client.py`.

It runs an asyncio loop in a background thread (so tests on asyncio and trio observe it alike)
and is written on `asyncio.Protocol`, so that it answers tens of thousands of keep-alive
requests quickly. It can listen on many ports at once (`listen(n)`), which makes n distinct
origins for a client's pool. What a test reads from it:

- `heads`: the exact head bytes of every request received (request line and headers), with the
  port it arrived on; `Head.values(name)` reads one header off those raw bytes;
- `open_connections()`: how many client connections are open right now (the server notices a
  client's close as EOF), in all or on some ports;
- `requests`: how many requests it answered;
- `accepted`: how many connections it accepted; `max_open`: the most open at once.

Run as a script (`python -m tests.hostile_client_server N`) it listens on N ports, prints them
on one line and serves until its stdin closes: a server in another process, so that the test
process's memory, objects and file descriptors are the client's alone. `GET /stats` answers
`{"accepted", "open", "max_open", "requests"}` as JSON (`/stats?reset` also restarts
`max_open` from the connections open now).

Routes: `/redirect/NAME` answers 302 to `redirects[NAME]` (a Location set by the test, so that
the target never appears in the first request's own URL); anything else answers 200 "ok".
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from dataclasses import dataclass

__all__ = ["Head", "RecordingServer"]


@dataclass(frozen=True)
class Head:
    """One request head as it arrived on the wire."""

    port: int
    raw: bytes

    @property
    def target(self) -> str:
        return self.raw.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")

    def values(self, name: str) -> list[bytes]:
        """The raw value of every `name` header line (case-insensitive), bytes as sent."""
        wanted = name.lower().encode()
        out = []
        for line in self.raw.split(b"\r\n")[1:]:
            key, sep, value = line.partition(b":")
            if sep and key.strip().lower() == wanted:
                out.append(value.strip(b" \t"))
        return out


_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _Protocol(asyncio.Protocol):
    def __init__(self, server: RecordingServer, port: int) -> None:
        self.server = server
        self.port = port
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._opened(self.port)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None  # no cycle left for the garbage collector
        self.server._closed(self.port)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            raw = self.buffer[:end]
            length = 0
            for line in raw.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            if self.transport is not None:
                self.transport.write(self.server._answer(Head(self.port, raw)))


class RecordingServer:
    """Serves on 127.0.0.1 (or other loopback addresses) from a background thread."""

    def __init__(self, record: bool = True) -> None:
        self.record = record
        self.heads: list[Head] = []
        self.requests = 0
        self.accepted = 0
        self.max_open = 0
        self.redirects: dict[str, str] = {}
        self.ports: list[int] = []
        self._open: dict[int, int] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.AbstractServer] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    # --- control, from the test's thread ---

    def listen(self, count: int = 1, host: str = "127.0.0.1") -> list[int]:
        """Listen on `count` new ports of `host`; returns them."""
        future = asyncio.run_coroutine_threadsafe(self._listen(count, host), self._loop)
        ports = future.result(30)
        self.ports.extend(ports)
        return ports

    def url(self, path: str = "/ok", port: int | None = None, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{port or self.ports[0]}{path}"

    def open_connections(self, ports: list[int] | None = None) -> int:
        with self._lock:
            if ports is None:
                return sum(self._open.values())
            return sum(self._open.get(p, 0) for p in ports)

    def clear(self) -> None:
        with self._lock:
            self.heads.clear()

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for server in self._servers:
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> RecordingServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the loop's side ---

    async def _listen(self, count: int, host: str) -> list[int]:
        ports = []
        for _ in range(count):
            holder: dict[str, int] = {}

            def factory(holder: dict[str, int] = holder) -> _Protocol:
                return _Protocol(self, holder["port"])

            server = await self._loop.create_server(factory, host, 0, backlog=1024)
            holder["port"] = server.sockets[0].getsockname()[1]
            self._servers.append(server)
            ports.append(holder["port"])
        return ports

    def _opened(self, port: int) -> None:
        with self._lock:
            self.accepted += 1
            self._open[port] = self._open.get(port, 0) + 1
            self.max_open = max(self.max_open, sum(self._open.values()))

    def _closed(self, port: int) -> None:
        with self._lock:
            self._open[port] -= 1

    def _answer(self, head: Head) -> bytes:
        self.requests += 1
        if self.record:
            with self._lock:
                self.heads.append(head)
        target = head.target
        if target.startswith("/stats"):
            with self._lock:
                now_open = sum(self._open.values())
                if target.endswith("?reset"):
                    self.max_open = now_open
                stats = {
                    "accepted": self.accepted,
                    "open": now_open,
                    "max_open": self.max_open,
                    "requests": self.requests,
                }
            body = json.dumps(stats).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        if target.startswith("/redirect/"):
            location = self.redirects[target[len("/redirect/") :]].encode()
            return b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
        return _OK


def main() -> None:
    server = RecordingServer(record=False)
    ports = server.listen(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    print(" ".join(map(str, ports)), flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
    server.close()


if __name__ == "__main__":
    main()
