"""HTTP/2 servers on 127.0.0.1 for the HTTP/2 tests, each in a background thread with its own loop.

- `HypercornServer`: a real, well-kept HTTP/2 server (hypercorn, ASGI) with a trustme
  certificate; ALPN offers `h2, http/1.1` (or only `http/1.1`, a server refusing h2), or no TLS
  at all (h2c by prior knowledge). Its app counts connections (distinct client addresses) and
  requests in flight.
- `RawH2Server`: a small server of our own on the `h2` library (server side) that misbehaves
  when told to: GOAWAY with a chosen last stream id while streams are open, RST_STREAM of a
  chosen stream, the connection dropped mid-response, a SETTINGS_MAX_CONCURRENT_STREAMS. It
  records connections, streams open at once, client resets and protocol errors.

Both run their own asyncio loop in a thread, so clients on either anyio backend use them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame
import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config

T = TypeVar("T")

PATTERN = bytes(range(256)) * 4096  # 1 MiB of a known pattern, sliced for /bytes


def pattern(size: int) -> bytes:
    """`size` bytes of the known pattern (repeated past 1 MiB)."""
    whole, rest = divmod(size, len(PATTERN))
    return PATTERN * whole + PATTERN[:rest]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quiet_cancellation(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Connection tasks cancelled at shutdown are expected; anything else is reported."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


class _LoopThread:
    """An asyncio loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_quiet_cancellation)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10) -> T:
        """Run `fn` on the loop's thread and return its result."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper(), timeout)  # type: ignore[no-any-return]

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


# --- hypercorn ---


@dataclass
class AppStats:
    clients: list[tuple[str, int]] = field(default_factory=list)  # in order of first request
    http_versions: list[str] = field(default_factory=list)
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def connections(self) -> int:
        return len(self.clients)


class HypercornServer:
    """hypercorn serving a small ASGI app, TLS by default (trustme), ALPN `alpn`.

    Paths: `/slow?ms=N` answers after N ms; `/echo` answers the request body, with its length and
    sha256 in headers; `/bytes?n=N` answers N bytes of `pattern`; anything else answers
    `hello <path> over HTTP/<version>`."""

    def __init__(
        self,
        ca: trustme.CA | None,
        *,
        alpn: tuple[str, ...] = ("h2", "http/1.1"),
    ) -> None:
        self.tls = ca is not None
        self.port = _free_port()
        self.stats = AppStats()
        self._thread = _LoopThread()
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Future[Any] | None = None
        self._tmp = tempfile.TemporaryDirectory()
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.loglevel = "WARNING"
        config.accesslog = None
        config.errorlog = None
        config.keep_alive_timeout = 30
        config.keep_alive_max_requests = 2**62  # its GOAWAY after 1000 strands open streams
        config.alpn_protocols = list(alpn)
        if ca is not None:
            cert = ca.issue_cert("localhost", "127.0.0.1")
            certfile = os.path.join(self._tmp.name, "cert.pem")
            keyfile = os.path.join(self._tmp.name, "key.pem")
            cert.private_key_pem.write_to_path(keyfile)
            cert.cert_chain_pems[0].write_to_path(certfile)
            for extra in cert.cert_chain_pems[1:]:
                extra.write_to_path(certfile, append=True)
            config.certfile = certfile
            config.keyfile = keyfile
        self.config = config

    def url(self, path: str = "/", host: str = "localhost") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        stats = self.stats
        host, port = scope["client"]
        if (host, port) not in stats.clients:
            stats.clients.append((host, port))
        stats.http_versions.append(scope["http_version"])
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            body = b""
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            path = scope["path"]
            query = parse_qs(scope["query_string"].decode())
            headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/octet-stream")]
            if path == "/slow":
                await asyncio.sleep(int(query.get("ms", ["100"])[0]) / 1000)
                answer = b"slow"
            elif path == "/echo":
                answer = body
                headers.append((b"x-length", str(len(body)).encode()))
                headers.append((b"x-sha256", hashlib.sha256(body).hexdigest().encode()))
            elif path == "/bytes":
                answer = pattern(int(query.get("n", ["0"])[0]))
            else:
                answer = f"hello {path} over HTTP/{scope['http_version']}".encode()
            headers.append((b"content-length", str(len(answer)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
        finally:
            stats.in_flight -= 1

    def start(self) -> HypercornServer:
        self._thread.start()

        async def go() -> None:
            self._stop = asyncio.Event()
            self._task = asyncio.ensure_future(
                serve(self.app, self.config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]
            )

        self._thread.run(go())
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self._task is not None and self._task.done():
                    self._task.result()  # raises what serve raised
                if time.monotonic() > deadline:
                    raise RuntimeError("hypercorn did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        async def go() -> None:
            assert self._stop is not None and self._task is not None
            self._stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)

        with contextlib.suppress(Exception):
            self._thread.run(go(), 10)
        self._thread.stop()
        self._tmp.cleanup()

    def __enter__(self) -> HypercornServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- the raw h2 server ---


@dataclass
class RawStream:
    conn: int  # which connection (0, 1, ...)
    stream_id: int
    method: str
    path: str
    body: bytes = b""
    ended: bool = False  # the request is complete
    answered: bool = False  # we ended it (or reset it)


@dataclass
class RawStats:
    connections: int = 0
    closed_connections: int = 0
    open_streams: int = 0  # now, all connections together
    max_open_streams: int = 0  # the most at once on one connection
    streams: list[RawStream] = field(default_factory=list)
    client_resets: list[tuple[int, int, int]] = field(default_factory=list)  # conn, sid, code
    protocol_errors: list[str] = field(default_factory=list)
    refused: list[tuple[int, int]] = field(default_factory=list)  # past the stream limit


class _Conn(asyncio.Protocol):
    def __init__(self, server: RawH2Server) -> None:
        self.server = server
        self.index = -1
        self.transport: asyncio.Transport | None = None
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config)
        self.open: dict[int, RawStream] = {}
        self.held: list[RawStream] = []

    # asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server = self.server
        self.index = server.stats.connections
        server.stats.connections += 1
        server.conns.append(self)
        limit = server.max_concurrent_streams
        if limit is not None:
            code = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
            self.h2.local_settings = h2.settings.Settings(
                client=False, initial_values={code: limit}
            )
        self.h2.initiate_connection()
        if limit is not None:
            # Advertised (in the preface just made), but enforced here, as RFC 9113 5.1.2 asks:
            # a stream past the limit is refused (RST_STREAM REFUSED_STREAM), a stream error;
            # h2 would make it a connection error.
            self.h2.local_settings = h2.settings.Settings(client=False)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        stats = self.server.stats
        stats.closed_connections += 1
        stats.open_streams -= len(self.open)
        self.open.clear()
        self.held.clear()
        if self in self.server.conns:
            self.server.conns.remove(self)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.server.stats.protocol_errors.append(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self.flush()
            assert self.transport is not None
            self.transport.close()
            return
        for event in events:
            self.on_event(event)
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # h2

    def on_event(self, event: h2.events.Event) -> None:
        stats = self.server.stats
        if isinstance(event, h2.events.RequestReceived):
            fields: dict[str, str] = dict(event.headers)  # type: ignore[arg-type]
            limit = self.server.max_concurrent_streams
            if limit is not None and len(self.open) >= limit:
                stats.refused.append((self.index, event.stream_id))
                self.h2.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                return
            stream = RawStream(self.index, event.stream_id, fields[":method"], fields[":path"])
            self.open[event.stream_id] = stream
            stats.streams.append(stream)
            stats.open_streams += 1
            stats.max_open_streams = max(stats.max_open_streams, len(self.open))
        elif isinstance(event, h2.events.DataReceived):
            stream = self.open.get(event.stream_id)  # type: ignore[assignment]
            if stream is not None:
                stream.body += event.data or b""
            if event.flow_controlled_length:
                try:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                except h2.exceptions.StreamClosedError:  # reset meanwhile: the connection's
                    self.h2.increment_flow_control_window(event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.open.get(event.stream_id)  # type: ignore[assignment]
            if stream is not None:
                self.on_request(stream)
        elif isinstance(event, h2.events.StreamReset):
            stats.client_resets.append((self.index, event.stream_id, int(event.error_code or 0)))
            self.forget(event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            assert self.transport is not None
            self.transport.close()

    def forget(self, stream_id: int) -> None:
        stream = self.open.pop(stream_id, None)
        if stream is not None:
            stream.answered = True
            self.server.stats.open_streams -= 1
            if stream in self.held:
                self.held.remove(stream)

    def on_request(self, stream: RawStream) -> None:
        stream.ended = True
        url = urlsplit(stream.path)
        query = parse_qs(url.query)
        if url.path == "/hold":
            self.held.append(stream)
        elif url.path == "/partial":  # head and a first piece now, the rest when released
            self.send_head(stream, 2000)
            self.send_body(stream, b"a" * 1000, end=False)
            self.held.append(stream)
        elif url.path == "/slow":
            delay = int(query.get("ms", ["100"])[0]) / 1000
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self.answer, stream)
        else:
            self.answer(stream)

    def answer(self, stream: RawStream) -> None:
        """The whole response (the rest of it, for /partial)."""
        if stream.stream_id not in self.open:
            return  # reset or connection gone meanwhile
        if urlsplit(stream.path).path == "/partial":
            self.send_body(stream, b"b" * 1000, end=True)
        else:
            if stream.method == "POST":
                body = stream.body
            else:
                body = f"{stream.path} on stream {stream.stream_id}".encode()
            self.send_head(stream, len(body))
            self.send_body(stream, body, end=True)
        self.forget(stream.stream_id)
        self.flush()

    def send_head(self, stream: RawStream, length: int) -> None:
        self.h2.send_headers(
            stream.stream_id,
            [
                (":status", "200"),
                ("content-length", str(length)),
                ("x-stream-id", str(stream.stream_id)),
            ],
        )
        self.flush()

    def send_body(self, stream: RawStream, body: bytes, *, end: bool) -> None:
        # Small bodies only: within the client's initial windows, no flow control needed here.
        self.h2.send_data(stream.stream_id, body, end_stream=end)
        self.flush()

    # misbehaviour, on the loop's thread

    def release(self) -> None:
        for stream in list(self.held):
            self.answer(stream)

    def goaway(self, last_stream_id: int, error_code: int) -> None:
        """A GOAWAY written past h2's state machine, so the server can still finish the streams
        up to `last_stream_id` (as a server shutting down gracefully does); the others are
        dropped unanswered."""
        frame = hyperframe.frame.GoAwayFrame(0)
        frame.last_stream_id = last_stream_id
        frame.error_code = error_code
        self.flush()
        assert self.transport is not None
        self.transport.write(frame.serialize())
        for sid in [sid for sid in self.open if sid > last_stream_id]:
            self.forget(sid)

    def reset(self, stream_id: int, error_code: int) -> None:
        self.h2.reset_stream(stream_id, error_code)
        self.forget(stream_id)
        self.flush()

    def drop(self) -> None:
        assert self.transport is not None
        self.transport.abort()


class RawH2Server:
    """A TLS (ALPN h2) HTTP/2 server on h2 whose faults the test triggers.

    Paths: `/hold` waits for `release()` (or a fault); `/partial` sends its head and 1000 of its
    2000 body bytes at once, the rest on `release()`; `/slow?ms=N` answers after N ms; anything
    else answers at once: a POST its body, others `<path> on stream <id>`."""

    def __init__(self, ca: trustme.CA, *, max_concurrent_streams: int | None = None) -> None:
        self.max_concurrent_streams = max_concurrent_streams
        self.stats = RawStats()
        self.conns: list[_Conn] = []
        self.port = 0
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        context.set_alpn_protocols(["h2"])
        self._context = context
        self._thread = _LoopThread()
        self._server: asyncio.Server | None = None

    def url(self, path: str = "/") -> str:
        return f"https://localhost:{self.port}{path}"

    def start(self) -> RawH2Server:
        self._thread.start()

        async def go() -> None:
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(
                lambda: _Conn(self), "127.0.0.1", 0, ssl=self._context
            )
            self.port = self._server.sockets[0].getsockname()[1]

        self._thread.run(go())
        return self

    def stop(self) -> None:
        async def go() -> None:
            assert self._server is not None
            self._server.close()
            for conn in list(self.conns):
                conn.drop()
            await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            self._thread.run(go())
        self._thread.stop()

    def __enter__(self) -> RawH2Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # what the tests call (from their own thread)

    def held(self) -> list[int]:
        """Stream ids waiting in /hold or /partial, all connections."""
        return self._thread.call(lambda: [s.stream_id for c in self.conns for s in c.held])

    def release(self) -> None:
        def go() -> None:
            for conn in list(self.conns):
                conn.release()

        self._thread.call(go)

    def goaway(self, last_stream_id: int, error_code: int = 0) -> None:
        """GOAWAY on every connection, then the held streams up to `last_stream_id` answered."""

        def go() -> None:
            for conn in list(self.conns):
                conn.goaway(last_stream_id, error_code)
                conn.release()

        self._thread.call(go)

    def reset(self, stream_id: int, error_code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        def go() -> None:
            for conn in list(self.conns):
                if stream_id in conn.open:
                    conn.reset(stream_id, error_code)

        self._thread.call(go)

    def drop(self) -> None:
        """Abort every connection (TCP RST), whatever is in flight."""

        def go() -> None:
            for conn in list(self.conns):
                conn.drop()

        self._thread.call(go)
