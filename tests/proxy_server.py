"""A real HTTP proxy on 127.0.0.1 for tests: forwarding (absolute-form requests) and CONNECT
tunnels, recording every request head it receives, and able to answer 407 when asked.

It runs its own asyncio loop in a background thread (as tests/server.py does), so clients on
either anyio backend, and aiohttp in a thread of its own, use it alike.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

Headers = list[tuple[str, str]]
_HOP_BY_HOP = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}


@dataclass
class Head:
    """One request head as the proxy received it, and which client connection carried it."""

    connection: int
    method: str
    target: str
    headers: Headers

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def names(self) -> list[str]:
        return [key.lower() for key, _ in self.headers]


def _parse_head(raw: bytes) -> tuple[str, str, Headers]:
    lines = raw.decode("latin-1").split("\r\n")
    method, target, *_ = lines[0].split(" ", 2)
    headers: Headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return method, target, headers


def _get(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def _read_body(reader: asyncio.StreamReader, headers: Headers, *, to_eof: bool) -> bytes:
    """The body's raw bytes, framing included (Content-Length, chunked, or to EOF)."""
    if (_get(headers, "transfer-encoding") or "").lower() == "chunked":
        parts = []
        while True:
            line = await reader.readuntil(b"\r\n")
            parts.append(line)
            size = int(line.strip().split(b";")[0], 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    line = await reader.readuntil(b"\r\n")
                    parts.append(line)
                    if line == b"\r\n":
                        return b"".join(parts)
            parts.append(await reader.readexactly(size + 2))
    length = _get(headers, "content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    return await reader.read() if to_eof else b""


class ProxyServer:
    """`url` is http://127.0.0.1:PORT. `heads` lists every head received (CONNECT included),
    `connections` counts client connections. Set `answer_407` to refuse every request (CONNECT
    or forwarded) with `407 Proxy Authentication Required`. With `ssl_context` it is an https
    proxy: clients speak TLS to it first, and `url` is https://127.0.0.1:PORT."""

    __test__ = False

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self.heads: list[Head] = []
        self.connections = 0
        self.answer_407 = False
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> ProxyServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
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

    def reset(self) -> None:
        """Forget what was recorded; close every connection, so that no test finds another's
        connection to the proxy idle in its pool (clients' pools are per session anyway)."""

        async def _reset() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(_reset(), self._loop).result(10)
        self.heads.clear()
        self.connections = 0
        self.answer_407 = False

    # --- serving ---

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._writers.add(writer)
        upstreams: dict[tuple[str, int], tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, target, headers = _parse_head(raw)
                self.heads.append(Head(number, method, target, headers))
                if method == "CONNECT":
                    if self.answer_407:
                        writer.write(_refusal())
                        await writer.drain()
                        continue
                    await self._tunnel(target, reader, writer)
                    return
                body = await _read_body(reader, headers, to_eof=False)
                if self.answer_407:
                    writer.write(_refusal())
                    await writer.drain()
                    continue
                if not await self._forward(method, target, headers, body, writer, upstreams):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            for _, upstream in upstreams.values():
                upstream.close()
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        self._writers.add(up_writer)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._writers.discard(up_writer)

    async def _forward(
        self,
        method: str,
        target: str,
        headers: Headers,
        body: bytes,
        writer: asyncio.StreamWriter,
        upstreams: dict[tuple[str, int], tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    ) -> bool:
        """Send one absolute-form request on to its origin, relay the answer; False when the
        client connection must close after it."""
        split = urlsplit(target)
        host, port = split.hostname or "", split.port or 80
        path = (split.path or "/") + (f"?{split.query}" if split.query else "")
        head = [f"{method} {path} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP]
        wire = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        if (host, port) not in upstreams:
            upstreams[host, port] = await asyncio.open_connection(host, port)
        up_reader, up_writer = upstreams[host, port]
        up_writer.write(wire)
        await up_writer.drain()
        raw = await up_reader.readuntil(b"\r\n\r\n")
        _, status_code, response_headers = _parse_head(raw)
        status = int(status_code)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            response_body = b""
        else:
            response_body = await _read_body(up_reader, response_headers, to_eof=True)
        framed = (
            _get(response_headers, "content-length") is not None
            or (_get(response_headers, "transfer-encoding") or "").lower() == "chunked"
            or not response_body
        )
        closing = not framed or (_get(response_headers, "connection") or "").lower() == "close"
        if closing:
            up_writer.close()
            del upstreams[host, port]
        writer.write(raw + response_body)
        await writer.drain()
        return not closing


def _refusal() -> bytes:
    return (
        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Basic realm="test proxy"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
