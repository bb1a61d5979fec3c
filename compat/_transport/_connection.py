"""One HTTP/1.1 connection on httptools (llhttp, the parser aiohttp uses).

The connection writes a request, then is fed bytes by its stream (`feed_data`, pushed by the
asyncio protocol or pulled by `pump` on trio) and parses them into the current `Exchange`:
status, headers, body pieces. It trusts nothing the server sends:

- bytes after a complete response (another response, garbage, a body on HEAD/204/304) mark
  the connection unusable: it is closed, never handed to another request;
- ambiguous framing (Transfer-Encoding with Content-Length, duplicate Content-Length) is a
  parse error of llhttp's, and the request fails with it; otherwise a response is read as
  aiohttp's llhttp-based parser reads it: the framing llhttp picks (a Transfer-Encoding whose
  last coding is not `chunked` reads to the close, RFC 9112 6.3), header values without
  trailing whitespace, aiohttp's header count and size limits (`Limits`);
- once the response is complete and the request fully written, the connection goes back to
  the pool at once, read or not (aiohttp does the same): the body stays with the `Exchange`.
  The unread body buffered per response is bounded: past `_HIGH_WATER` reading pauses, so a
  large unread body holds its connection, as in aiohttp.
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, Protocol

import anyio
import httptools
from multidict import istr

from .._exceptions import (
    BadHttpMessage,
    ClientConnectionError,
    ClientOSError,
    ClientPayloadError,
    ServerDisconnectedError,
    SocketTimeoutError,
    WriteTimeoutError,
)
from .._models import HttpVersion, HttpVersion10, HttpVersion11
from .._params import (
    chunk_sent_params,
    headers_received_params,
    headers_sent_params,
    request_sent_params,
)
from .._tracing import RequestTrace
from ._backends import NetworkStream, take
from ._upgrade import UpgradedStream

__all__ = [
    "DEFAULT_LIMITS",
    "Body",
    "Exchange",
    "HTTP11Connection",
    "Limits",
    "request_head",
    "request_head_bytes",
]

_HIGH_WATER = 2 * 2**18
"""Unread body bytes buffered before reading pauses: aiohttp's, 2 x its 256 KiB read_bufsize
(a response whose whole body fits frees its connection unread; a larger one holds it)."""
Limits = tuple[int, int, int]
"""aiohttp's response head limits: (max_line_size, max_field_size, max_headers)."""
DEFAULT_LIMITS: Limits = (8190, 8190, 128)
_VERSIONS = {"1.1": HttpVersion11, "1.0": HttpVersion10}
_COALESCE = 16 * 1024
"""A bytes body up to this size goes out in the same write as the head: one send, not two."""

Body = bytes | AsyncIterable[bytes] | None


class Carrier(Protocol):
    """What an `Exchange` needs of the connection it came on (HTTP/1.1 or HTTP/2)."""

    stream: NetworkStream

    @property
    def needs_flush(self) -> bool: ...

    async def wait(self, exchange: Exchange) -> None: ...
    async def flush(self) -> None: ...
    def abort(self, exchange: Exchange) -> None: ...
    def consumed(self, exchange: Exchange, size: int) -> None: ...
    def close(self) -> None: ...


_CHUNKED, _LENGTH, _TO_CLOSE, _NONE = 1, 2, 3, 4  # how the response body is delimited


class Exchange:
    """One request's response as it arrives; it outlives its connection's use by it."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_source",
        "buffered",
        "chunk_ends",
        "complete",
        "error",
        "events",
        "framing",
        "head_done",
        "head_taken",
        "high_water",
        "hold",
        "informational",
        "keep_alive",
        "limits",
        "method",
        "raw_headers",
        "read_timeout",
        "reason",
        "received",
        "release_pending",
        "status",
        "stream_id",
        "trace",
        "upgraded",
        "version",
        "wakeup",
        "wants_no_body",
        "write_timeout",
    )

    def __init__(
        self,
        method: str,
        trace: RequestTrace,
        read_timeout: float | None,
        high_water: int = _HIGH_WATER,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.method = method
        self.high_water = high_water
        self.limits = limits
        self.hold = False  # keep the connection until `close`, not just until the body is in
        self.release_pending = False
        self.trace = trace
        self.read_timeout = read_timeout
        self.write_timeout: float | None = None  # httpx's `write`: bounds each write
        self.wants_no_body = method == "HEAD"
        self.status = 0
        self.reason = b""
        self.version: HttpVersion = HttpVersion11
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.head_taken = False
        self.informational = False
        self.keep_alive = False
        self.framing = _NONE
        self.complete = False
        self.error: BaseException | None = None
        self.stream_id = 0  # HTTP/2: the stream; -1 once it has left its connection
        self.events = 0  # HTTP/2: bumped whenever a frame for this stream arrives
        self.wakeup: Any = None
        self._chunks: deque[bytes] = deque()
        self.chunk_ends: deque[int] | None = None  # body offsets where an HTTP chunk ended
        self.buffered = 0
        self.received = 0
        self._conn: Carrier | None = None
        self._source: AsyncIterator[bytes] | None = None
        self.upgraded: UpgradedStream | None = None  # a 101's connection, taken over

    @classmethod
    def from_source(
        cls,
        method: str,
        trace: RequestTrace,
        *,
        status: int,
        reason: bytes,
        raw_headers: list[tuple[bytes, bytes]],
        source: AsyncIterator[bytes],
    ) -> Exchange:
        """A response that came from elsewhere than a connection (a mock), body from `source`."""
        exchange = cls(method, trace, None)
        exchange.status = status
        exchange.reason = reason
        exchange.raw_headers = raw_headers
        exchange.head_done = exchange.head_taken = True
        exchange._source = source
        return exchange

    def header(self, name: bytes) -> bytes | None:
        """The first value of a response header (`name` lower-case)."""
        for key, value in self.raw_headers:
            if key.lower() == name:
                return value
        return None

    @property
    def stream(self) -> NetworkStream | None:
        conn = self._conn
        return None if conn is None else conn.stream

    @property
    def watched(self) -> bool:
        """Its body's waits are a watched socket's (HTTP/1.1 on plain TCP on trio): a read of
        it can run under a watched `Deadline`."""
        conn = self._conn
        return isinstance(conn, HTTP11Connection) and conn.stream.watched

    async def read(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` of the body as it came (still encoded); b"" at its end."""
        chunks = self._chunks
        while not chunks:
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            conn = self._conn
            if conn is not None:
                await conn.wait(self)
            elif self._source is not None:
                data = await anext(self._source, b"")
                if data:
                    chunks.append(data)
                    self.buffered += len(data)
                    self.received += len(data)
                else:
                    self.complete = True
            else:
                self.complete = True
        chunk = self.read_nowait(max_bytes)
        conn = self._conn
        if conn is not None and conn.needs_flush:
            await conn.flush()  # HTTP/2 on trio: the flow-control window update goes out now
        return chunk

    def read_rest(self) -> bytes | None:
        """The whole rest of the body if all of it is here (and nothing waits to be flushed),
        else None: a small response is usually complete before it is read."""
        conn = self._conn
        if not self.complete or self.error is not None or (conn is not None and conn.needs_flush):
            return None
        chunks = self._chunks
        rest = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if conn is not None:
            conn.consumed(self, len(rest))
        return rest

    def read_nowait(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` of what is buffered, without waiting; b"" if nothing is."""
        chunk = take(self._chunks, max_bytes)
        if not chunk:
            return b""
        self.buffered -= len(chunk)
        conn = self._conn
        if conn is not None:
            conn.consumed(self, len(chunk))
        return chunk

    async def aclose(self) -> None:
        """`close`, and on HTTP/2 over trio send the stream reset it queued at once."""
        self.close()
        conn = self._conn
        if conn is not None and conn.needs_flush:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await conn.flush()

    def distrust(self) -> None:
        """The body was bad though framed well (corrupt compression): as aiohttp, do not reuse
        the connection it came on, unless another request already has it."""
        conn = self._conn
        if isinstance(conn, HTTP11Connection) and conn._current is None:
            conn.close()  # (if still current, the caller's `close` aborts it)

    def close(self) -> None:
        """The caller is done with the response: an unfinished one closes its connection."""
        self._chunks.clear()
        self.buffered = 0
        conn = self._conn
        if self.release_pending and isinstance(conn, HTTP11Connection):
            self.release_pending = False
            conn.free_held()
            return
        if conn is not None and not self.complete:
            conn.abort(self)


class HTTP11Connection:
    """Writes requests and parses responses; `on_free` gets it back when an exchange ends."""

    http2 = False
    needs_flush = False  # (HTTP/2's acknowledgements; nothing to send here)

    __slots__ = (
        "_current",
        "_finished",
        "_fresh",
        "_head_bytes",
        "_head_size",
        "_heads",
        "_leftover",
        "_on_free",
        "_parser",
        "_writing",
        "broken",
        "eof",
        "idle_since",
        "key",
        "parked",
        "reading_paused",
        "requests",
        "stream",
    )

    def __init__(
        self,
        stream: NetworkStream,
        key: Any,
        on_free: Callable[[HTTP11Connection], None],
        parked: set[HTTP11Connection] | None = None,
    ) -> None:
        self.stream = stream
        self.parked = parked
        self.key = key
        self._on_free = on_free
        self._parser: httptools.HttpResponseParser | None = None
        self._current: Exchange | None = None
        self._finished: Exchange | None = None
        self._writing = False
        self._leftover = False
        self._head_size = 0
        self._fresh = False  # the head is completing in the bytes being fed right now
        self._head_bytes = b""  # HEAD only: the bytes of its head, to find what follows it
        self._heads = 0  # heads in them: the 1xx skipped, then the response's
        self.broken = False
        self.eof = False
        self.reading_paused = False
        self.requests = 0
        self.idle_since = 0.0
        stream.receiver = self

    # --- the pool's view ---

    @property
    def reusable(self) -> bool:
        return not (self.broken or self.eof or self.stream.closed)

    def idle_ok(self) -> bool:
        return not (self.broken or self.eof) and self.stream.idle_ok() and not self.broken

    def close(self) -> None:
        self.broken = True
        exchange = self._current
        if exchange is not None and not exchange.complete and exchange.error is None:
            exchange.error = ClientConnectionError("Connection closed: the connector was closed")
            exchange.error.__cause__ = ConnectionAbortedError("the connector was closed")
        self.stream.close()
        # No reference cycle left (connection <-> stream, connection <-> parser): a closed
        # connection is freed without waiting for the garbage collector.
        self.stream.receiver = None
        self._parser = None

    # --- a request ---

    async def request(self, exchange: Exchange, head: bytes, body: Body) -> None:
        """Write the request and wait for the response head (`exchange` is then readable)."""
        assert self._current is None, "one request at a time on an HTTP/1.1 connection"
        self.requests += 1
        self._current = exchange
        exchange._conn = self
        self._head_size = 0
        self._head_bytes = b""
        self._heads = 1
        if self._parser is None:
            self._parser = _new_parser(self)
        await self._write(exchange, head, body)
        while not exchange.head_done:
            if exchange.error is not None:
                raise exchange.error
            await self.wait(exchange)
        if isinstance(exchange.error, BadHttpMessage):
            raise exchange.error  # the head came with bytes no response may carry
        exchange.head_taken = True
        if not exchange.complete:
            self.stream.read_nowait()  # a body right behind its head frees the connection now
            parked = self.parked
            if parked is not None and not exchange.complete and self._current is exchange:
                parked.add(self)  # the pool looks again if a request has to queue
        trace = exchange.trace
        plan = trace.plan
        if plan.on_response_headers_received:
            await trace.send(
                plan.on_response_headers_received,
                headers_received_params(trace.method, trace.url, exchange.status, None),
            )

    async def _write(self, exchange: Exchange, head: bytes, body: Body) -> None:
        trace = exchange.trace
        plan = trace.plan
        timeout = exchange.write_timeout
        send = self.stream.send if timeout is None else _sender(self.stream, timeout)
        self._writing = True
        try:
            if body is None or isinstance(body, bytes):
                if body and len(body) <= _COALESCE:
                    await send(head + body)
                else:
                    await send(head)
                    if body:
                        await send(body)
                if plan.on_request_headers_sent:
                    await trace.send(
                        plan.on_request_headers_sent,
                        headers_sent_params(trace.method, trace.url, trace.headers),
                    )
                if body and plan.on_request_chunk_sent:
                    await trace.send(
                        plan.on_request_chunk_sent,
                        chunk_sent_params(trace.method, trace.url, body),
                    )
            else:
                await send(head)
                if plan.on_request_headers_sent:
                    await trace.send(
                        plan.on_request_headers_sent,
                        headers_sent_params(trace.method, trace.url, trace.headers),
                    )
                await self._write_stream(exchange, body, send, chunked=b"chunked" in head.lower())
        except WriteTimeoutError:
            self.broken = True  # part of a request went out: the connection cannot be reused
            raise
        except OSError as exc:
            self.broken = True
            if not exchange.head_done:
                if exchange.error is not None:
                    raise exchange.error from exc
                raise ClientOSError(exc.errno, exc.strerror or str(exc)) from exc
            # The server answered before reading all of the body: keep its answer.
        finally:
            self._writing = False
            if exchange.complete and self._current is exchange:
                self._finish(exchange)
        if plan.on_request_sent and not self.broken:
            await trace.send(
                plan.on_request_sent, request_sent_params(trace.method, trace.url, None)
            )

    async def _write_stream(
        self,
        exchange: Exchange,
        body: AsyncIterable[bytes],
        send: Callable[[bytes], Any],
        *,
        chunked: bool,
    ) -> None:
        trace = exchange.trace
        plan = trace.plan
        iterator = body.__aiter__()
        try:
            async for chunk in iterator:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise TypeError(f"A request body yielded {type(chunk).__name__}, not bytes")
                chunk = bytes(chunk)
                if not chunk:
                    pass  # nothing to write (an empty chunk would end a chunked body), but
                    # signalled with 0 bytes, as aiohttp does
                elif chunked:
                    await send(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                else:
                    await send(chunk)
                if plan.on_request_chunk_sent:
                    await trace.send(
                        plan.on_request_chunk_sent,
                        chunk_sent_params(trace.method, trace.url, chunk),
                    )
            if chunked:
                await send(b"0\r\n\r\n")
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:  # a body left unfinished by a failure: close it now
                with anyio.CancelScope(shield=True):
                    await close()

    async def wait(self, exchange: Exchange) -> None:
        """Wait for more of `exchange`'s response (`ClientTimeout.sock_read` bounds the wait)."""
        if self.parked is not None:
            self.parked.discard(self)  # a reader now waits on the socket: the pool keeps off
        if self.eof:
            if exchange.error is None and not exchange.complete:
                exchange.error = ServerDisconnectedError()
            return
        timeout = exchange.read_timeout
        if timeout is None:
            await self.stream.pump()
            return
        with anyio.move_on_after(timeout) as scope:
            await self.stream.pump()
        if scope.cancelled_caught:
            self.abort(exchange)
            raise SocketTimeoutError(f"Timeout on reading data from socket ({timeout}s)")

    def abort(self, exchange: Exchange) -> None:
        """Give up on `exchange` (failure, cancellation, unread body released): close."""
        if self._current is exchange:
            self._current = None
            self.close()
            self._on_free(self)

    def resume_reading(self) -> None:
        self.reading_paused = False
        self.stream.resume_reading()

    def consumed(self, exchange: Exchange, size: int) -> None:
        """The caller read `size` bytes: resume reading once most of the buffer is gone."""
        if self.reading_paused and exchange.buffered < exchange.high_water // 4:
            self.resume_reading()

    # --- fed by the stream ---

    def feed_data(self, data: bytes | memoryview) -> None:
        """`data` may be a view of the stream's buffer (see `Receiver`): only copies are kept."""
        exchange = self._current
        if exchange is None:
            self.close()  # the server spoke unasked: never trust this connection again
            return
        self._fresh = not exchange.head_done
        if self._fresh:
            self._head_size += len(data)
            if exchange.wants_no_body:
                self._head_bytes += data
        parser = self._parser
        assert parser is not None
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._parser = None  # a 101: what follows is another protocol, for its owner
            if exchange.status == 101:
                tail = bytes(data[exc.args[0] :])  # a copy: `data` may be a view (`Receiver`)
                exchange.upgraded = UpgradedStream(self.stream, exchange, tail)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadEnd):
                self._after_head(exchange)
            else:
                self._parse_error(exchange, exc)
        else:
            if not exchange.head_done and self._head_size > _head_bound(exchange.limits):
                self._parse_error(exchange, ValueError("the response head is too long"))
        finished = self._finished
        if finished is not None:
            self._finished = None
            if not self._writing and self._current is finished:
                self._finish(finished)
        elif exchange.buffered > exchange.high_water and not self.reading_paused:
            self.reading_paused = True
            self.stream.pause_reading()

    def feed_eof(self, error: BaseException | None) -> None:
        self.eof = True
        exchange = self._current
        if exchange is None or exchange.complete:
            return
        if exchange.head_done and exchange.framing == _TO_CLOSE:
            exchange.complete = True  # the body ran to the end of the connection
            self._finish(exchange)
            return
        if exchange.head_done:
            exchange.error = ClientPayloadError(
                f"Response payload is not completed: connection closed after "
                f"{exchange.received} bytes of the body"
                + (f" ({error})" if error is not None else "")
            )
        else:
            exchange.error = ServerDisconnectedError()
        exchange.error.__cause__ = error
        self._current = None
        self.close()
        self._on_free(self)

    def _after_head(self, exchange: Exchange) -> None:
        """A HEAD response's head is in, and llhttp (which cannot know the request was HEAD)
        was stopped there: what followed it in the same bytes is parsed as aiohttp's parser
        does, as the next response, one nobody asked for (a valid one is skipped, anything
        else fails the request); either way the connection is not reused."""
        rest = _after_heads(self._head_bytes, self._heads)
        self._head_bytes = b""
        if not rest:
            return
        self._leftover = True
        parser = self._parser = _new_parser(self)
        try:
            parser.feed_data(rest)
        except httptools.HttpParserUpgrade:
            self._parser = None
        except httptools.HttpParserError as exc:
            self._parse_error(exchange, exc)

    def _parse_error(self, exchange: Exchange, exc: Exception) -> None:
        if exchange.status == 101 and exchange.complete:
            self._parser = None  # llhttp stops at a 101; whatever followed it is dropped
            return
        self.broken = True
        if isinstance(exc, httptools.HttpParserCallbackError) and exc.__context__ is not None:
            exc = exc.__context__  # type: ignore[assignment]  # our callback's own error
        message = str(exc) or type(exc).__name__
        if self._finished is exchange or exchange.complete:
            if not exchange.head_taken and exchange.status != 101:
                # bytes right behind a complete response that are no response (aiohttp too
                # fails the request: its parser reads the segment whole)
                exchange.error = BadHttpMessage(f"Invalid data after the response: {message}")
            return
        if exchange.head_done and not self._fresh:
            exchange.error = ClientPayloadError(f"Response payload is not completed: {message}")
        else:
            # (a body error in the bytes that brought its head fails the request, as in
            # aiohttp, whose parser reads the segment whole before handing out the head)
            exchange.error = BadHttpMessage(message)
        exchange.complete = True
        self._current = None
        self.close()
        self._on_free(self)

    def _finish(self, exchange: Exchange) -> None:
        """The exchange is over on the wire: back to the pool (which closes a broken one),
        or, for an exchange that holds its connection until closed (httpx's way), then."""
        self._current = None
        if not exchange.keep_alive or self._leftover:
            self.broken = True
        if self.reading_paused:
            self.resume_reading()
        if exchange.hold or exchange.upgraded is not None:  # (upgraded: held by its owner)
            exchange.hold = False
            exchange.release_pending = True
            return
        self._on_free(self)

    def free_held(self) -> None:
        self._on_free(self)

    async def flush(self) -> None:
        """Nothing is ever left unsent on an HTTP/1.1 connection."""

    # --- httptools callbacks (the connection is the parser's protocol) ---

    def on_message_begin(self) -> None:
        exchange = self._current
        if exchange is None or exchange.complete or self._finished is not None:
            self._leftover = True  # a second response to one request

    def on_status(self, status: bytes) -> None:
        exchange = self._current
        if exchange is not None and not exchange.complete and not self._leftover:
            exchange.reason += status
            if len(exchange.reason) > exchange.limits[0]:
                raise ValueError(
                    f"Got more than {exchange.limits[0]} bytes when reading the status line"
                )

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self._current
        if exchange is None or exchange.head_done or self._leftover:
            return  # trailers, or a response nobody asked for
        _, max_field, max_headers = exchange.limits
        if len(name) + len(value) > max_field:
            raise ValueError(f"Got more than {max_field} bytes when reading a header field")
        # llhttp's lenient header mode lets NUL through; aiohttp does not. (`0 in`, not
        # `b"\x00" in`: bytes.__contains__ tries an int first, ~12x faster than a bytes needle.)
        if 0 in value:
            raise ValueError("Invalid header value char: NUL")
        headers = exchange.raw_headers
        if len(headers) >= max_headers:
            raise ValueError("Too many headers received")
        # llhttp strips the whitespace before a value, not after it; aiohttp strips that too
        headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        exchange = self._current
        if exchange is None or exchange.head_done or self._leftover:
            return
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            exchange.informational = True  # 100, 102, 103: skipped, as aiohttp
            self._heads += 1
            exchange.raw_headers = []
            exchange.reason = b""
            return
        exchange.status = status
        version = parser.get_http_version()
        exchange.version = _VERSIONS.get(version) or HttpVersion(*map(int, version.split(".")))
        exchange.keep_alive = parser.should_keep_alive()
        exchange.head_done = True
        if (
            exchange.wants_no_body
            or status in (101, 204, 304)
            or (exchange.method == "CONNECT" and 200 <= status < 300)  # a tunnel now
        ):
            exchange.framing = _NONE
            if status == 101 and exchange.header(b"upgrade") is not None:
                exchange.keep_alive = False  # an upgraded connection is not HTTP any more
            exchange.complete = True
            self._finished = exchange
            if exchange.wants_no_body or status == 101 or exchange.method == "CONNECT":
                self._parser = None  # its state expects a body that will not come
            if exchange.wants_no_body:
                raise _HeadEnd  # stop llhttp here: what follows is no body (`_after_head`)
            return
        framing = _framing(exchange.raw_headers)
        exchange.framing = framing
        if framing == _TO_CLOSE:
            exchange.keep_alive = False
            if status < 199:
                # aiohttp gives such a response (099, say) an empty body, and llhttp reads
                # what follows to the close: dropped, and the connection with it
                exchange.complete = True
                self._finished = exchange
                self._leftover = True

    def on_body(self, body: bytes) -> None:
        exchange = self._current
        if self._leftover:
            return  # the body of a response nobody asked for
        if exchange is None or exchange.complete:
            self._leftover = True
            if exchange is not None and not exchange.head_taken:
                raise ValueError("a body on a response that cannot have one")
            return
        exchange._chunks.append(body)
        size = len(body)
        exchange.buffered += size
        exchange.received += size

    def on_chunk_complete(self) -> None:
        exchange = self._current
        if exchange is None or exchange.complete or self._leftover:
            return
        ends = exchange.chunk_ends
        if ends is None:
            ends = exchange.chunk_ends = deque()
        if not ends or ends[-1] != exchange.received:
            ends.append(exchange.received)

    def on_message_complete(self) -> None:
        exchange = self._current
        if exchange is None or self._leftover:
            return
        if exchange.informational:
            exchange.informational = False
            return
        if exchange.complete:
            return
        exchange.complete = True
        self._finished = exchange


class _HeadEnd(Exception):
    """Raised from the parser's callback to stop it at the end of a HEAD response's head."""


def _after_heads(data: bytes, heads: int) -> bytes:
    """What follows the first `heads` heads in `data` (each ends at an empty line)."""
    pos = 0
    for _ in range(heads):
        lf, crlf = data.find(b"\n\n", pos), data.find(b"\n\r\n", pos)
        if lf < 0 and crlf < 0:
            return b""
        pos = lf + 2 if crlf < 0 or 0 <= lf < crlf else crlf + 3
    return data[pos:]


def _sender(stream: NetworkStream, timeout: float) -> Callable[[bytes], Any]:
    """The stream's `send`, each call bounded by `timeout` (httpx's `write`)."""

    async def send(data: bytes) -> None:
        with anyio.move_on_after(timeout) as scope:
            await stream.send(data)
        if scope.cancelled_caught:
            raise WriteTimeoutError(f"Timeout on writing data to socket ({timeout}s)")

    return send


def _new_parser(conn: HTTP11Connection) -> httptools.HttpResponseParser:
    parser = httptools.HttpResponseParser(conn)
    # As aiohttp's response parser: bare LF line ends, obs-folded header values and spaces
    # after a chunk size are read; framing stays strict (TE with CL, duplicate CL, bad chunk
    # sizes are errors).
    parser.set_dangerous_leniencies(
        lenient_headers=True,
        lenient_optional_cr_before_lf=True,
        lenient_spaces_after_chunk_size=True,
    )
    return parser


def _framing(raw_headers: list[tuple[bytes, bytes]]) -> int:
    """How llhttp delimits a response body with these headers: chunked only if the last
    Transfer-Encoding coding is `chunked`; any other Transfer-Encoding reads to the close
    (RFC 9112 6.3); else Content-Length; else the close. A name may end in spaces (llhttp's
    lenient mode reads `Content-Length : 5` as the header)."""
    framing = _TO_CLOSE
    for key, value in raw_headers:
        if len(key) < 14:
            continue
        lowered = key.lower().rstrip(b" ")
        if lowered == b"transfer-encoding":
            last = value.rsplit(b",", 1)[-1].strip(b" \t").lower()
            framing = _CHUNKED if last == b"chunked" else _TO_CLOSE
        elif lowered == b"content-length" and framing == _TO_CLOSE:
            framing = _LENGTH
    return framing


def _head_bound(limits: Limits) -> int:
    """The most bytes a response head may take under `limits` (a status line and every
    header at its limit, with their line ends): past it, the head is refused early."""
    max_line, max_field, max_headers = limits
    return max_line + 64 + max_headers * (max_field + 4)


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_tokens: set[str] = set()  # methods and header names found valid (the first 4,096)


def is_token(value: str) -> bool:
    """Whether `value` may be a method or a header name (an HTTP token): the same few are
    asked on every request, so the answers are remembered."""
    if value in _tokens:
        return True
    if not _TOKEN.fullmatch(value):
        return False
    if len(_tokens) < 4096:
        _tokens.add(value)
    return True


_SECRET_FIELDS = frozenset({"authorization", "proxy-authorization", "cookie"})
_PLAIN = (str, istr)  # (a multidict's names are istr)
_fields_of: dict[tuple[tuple[str, str], ...], str] = {}
"""Header fields already checked and joined, by header list: most requests send one of a few
(the session's default headers and a Host). Lists with a secret in them are not kept."""


def request_head(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    """The request line and headers, UTF-8 encoded as aiohttp does.

    CR, LF and NUL never reach the wire: a header that holds one is refused, as a header name
    that is not a token is. A header list is checked once while it is remembered."""
    try:
        key = tuple(headers)
        fields = _fields_of.get(key)
    except TypeError:  # an unhashable value: refused below, in aiohttp's words
        key, fields = (), None
    if fields is None:
        fields = _header_fields(headers)
        if key and all(
            type(name) in _PLAIN and type(value) is str and name.lower() not in _SECRET_FIELDS
            for name, value in headers
        ):
            if len(_fields_of) >= 256:
                _fields_of.clear()
            _fields_of[key] = fields
    return f"{method} {target} HTTP/1.1\r\n{fields}\r\n".encode()


def _header_fields(headers: list[tuple[str, str]]) -> str:
    for name, value in headers:
        if not isinstance(value, str) or not isinstance(name, str):
            bad = value if not isinstance(value, str) else name
            raise TypeError(f"Cannot serialize non-str key {bad!r}")  # aiohttp's words
    lines = "".join([f"{name}: {value}\r\n" for name, value in headers])
    count = len(headers)
    if lines.count("\r") != count or lines.count("\n") != count or "\x00" in lines:
        for name, value in headers:
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                raise ValueError(
                    "Newline or carriage return character detected in HTTP status message or "
                    f"header. This is a potential security issue. ({name!r})"
                )
        raise ValueError("A NUL character in an HTTP header is refused")
    for name, _ in headers:
        if name not in _tokens and not is_token(name):
            raise ValueError(f"Invalid HTTP header name: {name!r}")
    return lines


_BYTES_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def request_head_bytes(method: str, target: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """`request_head` for headers already bytes (httpx's), refused if one would break framing."""
    fields = b"".join([b"%s: %s\r\n" % (name, value) for name, value in headers])
    if (
        fields.count(b"\r") != len(headers)
        or fields.count(b"\n") != len(headers)
        or 0 in fields
        or not all(_BYTES_TOKEN.fullmatch(name) for name, _ in headers)
    ):
        raise ValueError(
            "Illegal header: a name that is not a token, or a CR, LF or NUL in a header"
        )
    return b"%s %s HTTP/1.1\r\n%s\r\n" % (method.encode(), target.encode(), fields)
