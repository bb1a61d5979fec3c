"""A small HTTP/1.1 test server on 127.0.0.1, with keep-alive, TLS and injected faults.

It runs its own asyncio loop in a background thread, so tests on either anyio backend use it
alike. It is written on raw streams so that it can misbehave on purpose (resets, truncated
bodies, invalid HTTP, idle closes), which a framework would not let it do.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

Headers = list[tuple[str, str]]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Stats:
    connections: int = 0
    requests: int = 0
    open_connections: int = 0
    replies: int = 0  # responses written and drained, for tests that wait for them
    seen: list[Request] = field(default_factory=list)


class _Close(Exception):
    """Stop serving this connection (after an injected fault)."""


def _response(
    status: int,
    body: bytes = b"",
    headers: Headers | None = None,
    reason: str | None = None,
) -> bytes:
    reasons = {
        200: "OK",
        204: "No Content",
        301: "Moved Permanently",
        302: "Found",
        303: "See Other",
        307: "Temporary Redirect",
        308: "Permanent Redirect",
        400: "Bad Request",
        404: "Not Found",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    lines = [f"HTTP/1.1 {status} {reason or reasons.get(status, 'Status')}"]
    headers = list(headers or [])
    if not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        headers.append(("Content-Length", str(len(body))))
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: Headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    request = Request(method, "", {}, headers, b"")
    split = urlsplit(target)
    request.path, request.query = split.path, parse_qs(split.query)
    length = request.header("content-length")
    if length is not None:
        request.body = await reader.readexactly(int(length))
    elif (request.header("transfer-encoding") or "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        request.body = b"".join(parts)
    return request


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[bytes | None]]


class TestServer:
    __test__ = False
    """Serves on 127.0.0.1 from a background thread; `url` is http(s)://127.0.0.1:PORT."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.stats = Stats()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url_for(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def start(self) -> TestServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self.ssl_context, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def _stop() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def close_idle_connections(self) -> None:
        """Close every open connection from the server side, as an idle timeout would."""

        async def _close() -> None:
            for writer in list(self._writers):
                writer.close()

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)

    def reset_stats(self) -> None:
        self.stats.connections = self.stats.requests = 0
        self.stats.seen.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        self.stats.open_connections += 1
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.stats.requests += 1
                self.stats.seen.append(request)
                try:
                    reply = await self._route(request, writer)
                except _Close:
                    return
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
                    self.stats.replies += 1
                if request.header("connection") == "close" or (
                    reply is not None
                    and b"\r\nConnection: close\r\n" in reply.split(b"\r\n\r\n")[0] + b"\r\n"
                ):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.stats.open_connections -= 1
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _route(self, request: Request, writer: asyncio.StreamWriter) -> bytes | None:
        parts = request.path.strip("/").split("/")
        name, args = parts[0], parts[1:]
        q = {k: v[0] for k, v in request.query.items()}
        if name in ("", "ok"):
            return _response(200, b"ok", [("Content-Type", "text/plain")])
        if name == "echo":
            return _response(
                200,
                request.body,
                [("Content-Type", "application/octet-stream"), ("X-Method", request.method)],
            )
        if name == "headers":
            body = json.dumps(request.headers).encode()
            return _response(200, body, [("Content-Type", "application/json")])
        if name == "gzip":
            body = gzip.compress(b"compressed " * 1000)
            return _response(
                200,
                body,
                [("Content-Encoding", "gzip"), ("Content-Type", "text/plain; charset=latin-1")],
            )
        if name == "json":
            return _response(200, b'{"answer": 42}', [("Content-Type", "application/json")])
        if name == "status":
            return _response(int(args[0]), b"status body")
        if name == "redirect":
            left = int(args[0])
            status = int(q.get("status", "302"))
            target = f"/redirect/{left - 1}" if left > 1 else "/ok"
            return _response(status, b"", [("Location", target)])
        if name == "redirect-to":
            return _response(int(q.get("status", "302")), b"", [("Location", q["url"])])
        if name == "bytes":
            return _response(
                200, b"x" * int(args[0]), [("Content-Type", "application/octet-stream")]
            )
        if name == "chunked":
            count, size = int(args[0]), int(args[1])
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(count):
                writer.write(f"{size:x}\r\n".encode() + b"y" * size + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.005)
            writer.write(b"0\r\n\r\n")
            return None
        if name == "slow":
            await asyncio.sleep(float(q.get("delay", "0.5")))
            return _response(200, b"slow")
        if name == "slow-body":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsl")
            await writer.drain()
            await asyncio.sleep(float(q.get("delay", "0.5")))
            return b"ow"
        if name == "close":
            return _response(200, b"bye", [("Connection", "close")])
        if name == "cookie":
            return _response(200, b"", [("Set-Cookie", "flavour=ginger; Path=/")])
        if name == "fault":
            return await self._fault(args[0], writer)
        return _response(404, b"not found")

    async def _fault(self, kind: str, writer: asyncio.StreamWriter) -> bytes | None:
        if kind == "reset-before":
            _reset(writer)
        elif kind == "reset-after":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
            await writer.drain()
            _reset(writer)
        elif kind == "truncate":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
            await writer.drain()
            writer.close()
        elif kind == "disconnect":
            writer.close()
        elif kind == "invalid":
            writer.write(b"this is not HTTP at all\r\n\r\n")
            await writer.drain()
            writer.close()
        elif kind == "hang":
            await asyncio.sleep(3600)
        elif kind == "huge-headers":
            big = "v" * 200_000
            writer.write(f"HTTP/1.1 200 OK\r\nX-Big: {big}\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return None
        raise _Close
