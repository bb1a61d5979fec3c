"""A recording HTTP/1.1 server the test steers: it holds requests until released, records
every byte it receives as it arrives, and counts the requests in flight per Host header.

`WireServer(ports=n)` listens on n ports of 127.0.0.1 and serves them from an asyncio loop in a
background thread, so tests on either anyio backend observe it alike. What it gives a test:

- `received()`: every byte received so far, on every connection, as it arrived;
  `connections`: one `Conn` per accepted connection, with its raw bytes;
- `requests`: every request parsed off the wire (`Seen`: its exact head bytes, headers, body);
- `max_in_flight[host]` / `max_total_in_flight`: the most requests it was serving at once per
  Host header (an origin, from the client's view) and in all: a request is in flight from the
  end of its body to the end of its response;
- `await wait_for(predicate)`: waits (bounded) until `predicate()` holds of the server's state;
  the server wakes waiters on every change, so tests order on events, never on sleeps;
- `release(name)`: lets the requests held under `name` answer (`release_all()` lets all go).

Routes: `/hold/<name>` answers "held" once released; `/part/<name>?size=N&first=M` sends the
head and M bytes of an N-byte body, then the rest once released; `/redirect?to=URL` redirects
(`status=` to pick the code, `cookie=NAME=VALUE` to set one); `/echo` returns the request body; anything else answers "ok".
A request it cannot parse gets a 400, the connection is closed and its bytes are kept in
`malformed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread
import pytest

__all__ = ["Conn", "Seen", "SlowAcceptServer", "WireServer", "fake_dns"]

TIMEOUT = 10.0
"""The bound on every wait the server makes on the test (holds, joins)."""


@dataclass
class Conn:
    """One accepted connection."""

    index: int
    port: int
    raw: bytearray = field(default_factory=bytearray)
    closed: bool = False


@dataclass
class Seen:
    """A request as it arrived."""

    conn: int
    port: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    head: bytes  # the exact bytes of the request line and headers, CRLFCRLF included
    size: int  # bytes it took on the wire: head, body and its framing

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query).items()}

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_names(self) -> list[str]:
        return [key.lower() for key, _ in self.headers]


class _Malformed(Exception):
    pass


def _parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise _Malformed(lines[0])
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name:
            raise _Malformed(line)
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return parts[0].decode("latin-1"), parts[1].decode("latin-1"), headers


def _head(status: int, length: int, headers: list[tuple[str, str]] | None = None) -> bytes:
    reason = {200: "OK", 301: "Moved", 302: "Found", 303: "See Other", 400: "Bad Request"}
    lines = [f"HTTP/1.1 {status} {reason.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    lines += ["Content-Type: text/plain", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _response(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    return _head(status, len(body), headers) + body


class _Reader:
    """Reads a connection, recording every byte as it arrives."""

    def __init__(self, server: WireServer, conn: Conn, reader: asyncio.StreamReader) -> None:
        self._server = server
        self._conn = conn
        self._reader = reader
        self.buffer = bytearray()
        self.consumed = 0

    async def more(self) -> None:
        data = await self._reader.read(65536)
        if not data:
            raise EOFError
        with self._server.changed:
            self._conn.raw += data
            self._server.changed.notify_all()
        self.buffer += data

    async def until(self, marker: bytes, limit: int = 1 << 20) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            if len(self.buffer) > limit:
                raise _Malformed("too long")
            await self.more()
        return self.take(end + len(marker))

    async def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self.more()
        return self.take(n)

    def take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        self.consumed += len(data)
        return data


class WireServer:
    """See the module docstring."""

    __test__ = False

    def __init__(self, ports: int = 1) -> None:
        self.changed = threading.Condition()
        self.connections: list[Conn] = []
        self.requests: list[Seen] = []
        self.malformed: list[bytes] = []  # the raw bytes of each connection it could not parse
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.total_in_flight = 0
        self.max_total_in_flight = 0
        self.ports: list[int] = []
        self._count = ports
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._holds: dict[str, asyncio.Event] = {}
        self._released_all = False

    # --- the test's side ---

    def __enter__(self) -> WireServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(TIMEOUT)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release_all()
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)
        self._loop.close()

    def url(self, path: str = "/ok", port: int = 0, host: str = "127.0.0.1") -> str:
        """The URL of `path` on the port numbered `port` (0, 1, ...)."""
        return f"http://{host}:{self.ports[port]}{path}"

    def host(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """The Host header a request to that origin carries: the key of `max_in_flight`."""
        return f"{host}:{self.ports[port]}"

    def release(self, name: str) -> None:
        """Let the requests held under `name` (now or later) answer."""
        self._loop.call_soon_threadsafe(lambda: self._hold(name).set())

    def release_all(self) -> None:
        def release() -> None:
            self._released_all = True
            for event in self._holds.values():
                event.set()

        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(release)

    def received(self) -> bytes:
        """Every byte received so far, all connections in accept order."""
        with self.changed:
            return b"".join(bytes(c.raw) for c in self.connections)

    def seen(self, path: str) -> list[Seen]:
        with self.changed:
            return [r for r in self.requests if r.path == path]

    def open_connections(self) -> int:
        with self.changed:
            return sum(not c.closed for c in self.connections)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds (it is evaluated under the server's lock)."""

        def wait() -> bool:
            with self.changed:
                return self.changed.wait_for(predicate, timeout)

        if not await anyio.to_thread.run_sync(wait, abandon_on_cancel=True):
            raise TimeoutError(f"the server did not reach the expected state in {timeout}s")

    # --- the server's side ---

    def _hold(self, name: str) -> asyncio.Event:
        event = self._holds.get(name)
        if event is None:
            event = self._holds[name] = asyncio.Event()
            if self._released_all:
                event.set()
        return event

    async def _start(self) -> None:
        for _ in range(self._count):
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
            self._servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        with self.changed:
            conn = Conn(len(self.connections), port)
            self.connections.append(conn)
            self.changed.notify_all()
        self._writers.add(writer)
        stream = _Reader(self, conn, reader)
        try:
            while True:
                start = stream.consumed
                try:
                    head = await stream.until(b"\r\n\r\n")
                    method, target, headers = _parse_head(head)
                    body = await self._read_body(stream, headers)
                except _Malformed:
                    with self.changed:
                        self.malformed.append(bytes(conn.raw))
                        self.changed.notify_all()
                    writer.write(_response(400, b"malformed", [("Connection", "close")]))
                    await writer.drain()
                    return
                size = stream.consumed - start
                seen = Seen(conn.index, port, method, target, headers, body, head, size)
                host = seen.header("host") or ""
                with self.changed:
                    self.requests.append(seen)
                    self.in_flight[host] += 1
                    self.total_in_flight += 1
                    self.max_in_flight[host] = max(self.max_in_flight[host], self.in_flight[host])
                    self.max_total_in_flight = max(self.max_total_in_flight, self.total_in_flight)
                    self.changed.notify_all()
                try:
                    await self._respond(seen, writer)
                finally:
                    with self.changed:
                        self.in_flight[host] -= 1
                        self.total_in_flight -= 1
                        self.changed.notify_all()
                if (seen.header("connection") or "").lower() == "close":
                    return
        except (EOFError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass  # the client went away, or a hold was never released
        finally:
            self._writers.discard(writer)
            writer.close()
            with self.changed:
                conn.closed = True
                self.changed.notify_all()

    async def _read_body(self, stream: _Reader, headers: list[tuple[str, str]]) -> bytes:
        fields = {k.lower(): v for k, v in headers}
        if "content-length" in fields:
            try:
                length = int(fields["content-length"])
            except ValueError as exc:
                raise _Malformed("content-length") from exc
            return await stream.exactly(length)
        if fields.get("transfer-encoding", "").lower() != "chunked":
            return b""
        parts = []
        while True:
            line = await stream.until(b"\r\n", limit=1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise _Malformed("chunk size") from exc
            if size == 0:
                while await stream.until(b"\r\n", limit=8192) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await stream.exactly(size))
            if await stream.exactly(2) != b"\r\n":
                raise _Malformed("chunk end")

    async def _respond(self, seen: Seen, writer: asyncio.StreamWriter) -> None:
        parts = seen.path.strip("/").split("/")
        query = seen.query
        if parts[0] == "hold":
            await asyncio.wait_for(self._hold(parts[1]).wait(), TIMEOUT)
            writer.write(_response(200, b"held"))
        elif parts[0] == "part":
            size, first = int(query["size"]), int(query["first"])
            writer.write(_head(200, size) + b"a" * first)
            await writer.drain()
            await asyncio.wait_for(self._hold(parts[1]).wait(), TIMEOUT)
            writer.write(b"b" * (size - first))
        elif parts[0] == "redirect":
            status = int(query.get("status", "302"))
            headers = [("Location", query["to"])]
            if "cookie" in query:
                headers.append(("Set-Cookie", query["cookie"] + "; Path=/"))
            writer.write(_response(status, b"", headers))
        elif parts[0] == "echo":
            writer.write(_response(200, seen.body))
        else:
            writer.write(_response(200, b"ok"))
        await writer.drain()


class SlowAcceptServer:
    """A listener whose accept queue is full: a client's first SYN is dropped, and the kernel
    sends it again about a second later (TCP's initial retransmission timeout). `open_after`
    empties the queue, so that retry connects: a slow TCP connect on loopback, made by TCP
    itself. Each accepted connection gets one 200 "ok" response, then is closed."""

    __test__ = False

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self._listener.settimeout(TIMEOUT)
        self.port: int = self._listener.getsockname()[1]
        # Queued but never served until open_after: the accept queue (backlog 0) is now full.
        self._filler = socket.create_connection(("127.0.0.1", self.port))
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def open_after(self, delay: float) -> None:
        """In `delay` seconds, start accepting: the filler first, then the clients."""
        self._thread = threading.Thread(target=self._run, args=(delay,), daemon=True)
        self._thread.start()

    def _run(self, delay: float) -> None:
        if self._stopped.wait(delay):
            return
        with contextlib.suppress(OSError):
            filler, _ = self._listener.accept()
            filler.close()
            while not self._stopped.is_set():
                conn, _ = self._listener.accept()
                with conn:
                    conn.settimeout(TIMEOUT)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(_response(200, b"ok", [("Connection", "close")]))

    def close(self) -> None:
        self._stopped.set()
        self._filler.close()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()
        self._listener.close()
        if self._thread is not None:
            self._thread.join(TIMEOUT)

    def __enter__(self) -> SlowAcceptServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def fake_dns(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]], delay: float = 0.0
) -> list[str]:
    """Make `anyio.getaddrinfo` (what compat resolves with) answer the names in `answers` with
    their addresses, in order, after `delay` seconds; other names resolve as usual. Returns
    the list of the faked names looked up, which grows as they are."""
    real = anyio.getaddrinfo
    looked_up: list[str] = []

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return await real(host, port, **kwargs)
        looked_up.append(name)
        await anyio.sleep(delay)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))
            for address in answers[name]
        ]

    monkeypatch.setattr(anyio, "getaddrinfo", getaddrinfo)
    return looked_up
