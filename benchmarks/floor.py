"""The floor: the least a Python client on httptools can do per request against our server.

No tracing, no timeouts, no URL or header objects, no decoding: a prebuilt request is written on
a keep-alive connection, `httptools.HttpResponseParser` parses the response, the raw headers are
kept as a list of `(name, value)` byte pairs and the body is joined into one `bytes`.

Connections: a LIFO list of idle ones; a request takes an idle connection or opens a new one and
puts it back when the response is complete (if the server keeps it alive). With N requests in
flight the pool therefore holds at most N connections: 1 one at a time, 50 at 50 in flight.

- `AsyncioFloor`: an `asyncio.Protocol`; data arrives by callback and is fed to the parser there.
- `TrioFloor`: a `trio.SocketStream` (no anyio layer); each `receive_some` is fed to the parser.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httptools

if TYPE_CHECKING:
    import trio


class FloorError(Exception):
    pass


class _Response:
    """Parser callbacks shared by both backends: status, raw headers, body, completion."""

    __slots__ = ("_body", "_header", "complete", "headers", "keep_alive", "parser", "status")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._header = b""
        self._body: list[bytes] = []
        self.keep_alive = True
        self.complete = False

    def reset(self) -> None:
        self.status = 0
        self.headers = []
        self._body = []
        self.complete = False

    def body(self) -> bytes:
        return b"".join(self._body)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Reset once the message completes: read it here.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class _AsyncioConnection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._response = _Response()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        response = self._response
        try:
            response.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(FloorError(f"bad response: {exc}"))
            return
        if response.complete and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(FloorError("connection closed before the response completed"))

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    async def request(self, data: bytes) -> _Response:
        if self._transport is None or self._transport.is_closing():
            raise FloorError("connection closed")
        self._response.reset()
        self._waiter = self._loop.create_future()
        self._transport.write(data)
        await self._waiter
        return self._response

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _request_bytes(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii")


class AsyncioFloor:
    """`await floor.get(path)` -> (status, raw headers, body)."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._idle: list[_AsyncioConnection] = []
        self._all: list[_AsyncioConnection] = []
        self._requests: dict[str, bytes] = {}

    async def get(self, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        data = self._requests.get(path)
        if data is None:
            data = self._requests[path] = _request_bytes(self._host, self._port, path)
        connection = self._idle.pop() if self._idle else await self._connect()
        try:
            response = await connection.request(data)
        except BaseException:
            connection.close()
            raise
        result = (response.status, response.headers, response.body())
        if response.keep_alive:
            self._idle.append(connection)
        else:
            connection.close()
        return result

    async def _connect(self) -> _AsyncioConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            lambda: _AsyncioConnection(loop), self._host, self._port
        )
        self._all.append(connection)
        return connection

    @property
    def connections_opened(self) -> int:
        return len(self._all)

    async def aclose(self) -> None:
        for connection in self._all:
            connection.close()
        self._idle.clear()
        self._all.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks


# asyncio's selector transports read up to 256 KiB at a time; trio's default is 64 KiB, which
# splits every 64 KiB response in two reads.
_RECEIVE_SIZE = 256 * 1024


class _TrioConnection:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._response = _Response()

    async def request(self, data: bytes) -> _Response:
        response = self._response
        response.reset()
        await self.stream.send_all(data)
        while not response.complete:
            chunk = await self.stream.receive_some(_RECEIVE_SIZE)
            if not chunk:
                raise FloorError("connection closed before the response completed")
            try:
                response.parser.feed_data(chunk)
            except httptools.HttpParserError as exc:
                raise FloorError(f"bad response: {exc}") from exc
        return response


class TrioFloor:
    """The same client on `trio.SocketStream`."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._idle: list[_TrioConnection] = []
        self._all: list[_TrioConnection] = []
        self._requests: dict[str, bytes] = {}

    async def get(self, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        data = self._requests.get(path)
        if data is None:
            data = self._requests[path] = _request_bytes(self._host, self._port, path)
        connection = self._idle.pop() if self._idle else await self._connect()
        try:
            response = await connection.request(data)
        except BaseException:
            await self._discard(connection)
            raise
        result = (response.status, response.headers, response.body())
        if response.keep_alive:
            self._idle.append(connection)
        else:
            await self._discard(connection)
        return result

    async def _connect(self) -> _TrioConnection:
        import trio

        connection = _TrioConnection(await trio.open_tcp_stream(self._host, self._port))
        self._all.append(connection)
        return connection

    async def _discard(self, connection: _TrioConnection) -> None:
        import trio

        with trio.CancelScope(shield=True):
            await connection.stream.aclose()

    @property
    def connections_opened(self) -> int:
        return len(self._all)

    async def aclose(self) -> None:
        for connection in self._all:
            await self._discard(connection)
        self._idle.clear()
        self._all.clear()
