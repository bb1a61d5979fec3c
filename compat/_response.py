"""`ClientResponse`: aiohttp's response API over the engine's `Exchange`.

Every way of reading the body (`read`, `text`, `json`, `content.read`, `iter_chunked`,
`iter_any`, ...) goes through `_BodyStream.next_chunk`, the one place
`on_response_chunk_received` fires: once per piece handed out, as the body arrives, so the
pieces add up to the body on every read path. A piece is at most what the caller asked for
(64 KiB when it did not say), decoded incrementally: a compression bomb never inflates in
one go.
"""

from __future__ import annotations

import json as json_module
import math
import warnings
from collections.abc import Awaitable, Callable, Generator
from functools import cached_property
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any, TypeVar

from multidict import CIMultiDict, CIMultiDictProxy, MultiDictProxy, istr
from yarl import URL

from ._cookies import response_cookies
from ._exceptions import (
    ClientConnectionError,
    ClientPayloadError,
    ClientResponseError,
    ConnectionKey,
    ContentTypeError,
    TotalTimeoutError,
    connection_key,
    to_client_error,
)
from ._headervalues import ContentDisposition, content_disposition, parse_links
from ._models import HttpVersion, PendingRequestInfo, RequestInfo
from ._params import body_complete_params, chunk_received_params
from ._tracing import RequestTrace
from ._transport._backends import Deadline
from ._transport._connection import Exchange
from ._transport._decoders import ContentDecoder, DecodeError, make_decoder

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ClientResponse", "StreamReader"]

_T = TypeVar("_T")
_PIECE = 65536
"""The largest piece of body handed out (and signalled) when the caller names no size."""

# Names aiohttp gives in their canonical spelling whatever the wire's case; others keep it.
_CANONICAL = {
    name.lower(): istr(name)
    for name in (
        "Accept-Ranges", "Age", "Allow", "Cache-Control", "Connection", "Content-Disposition",
        "Content-Encoding", "Content-Language", "Content-Length", "Content-Location",
        "Content-Range", "Content-Type", "Date", "ETag", "Expires", "Keep-Alive",
        "Last-Modified", "Link", "Location", "Pragma", "Proxy-Authenticate", "Retry-After",
        "Server", "Set-Cookie", "Strict-Transport-Security", "Trailer", "Transfer-Encoding",
        "Upgrade", "Vary", "Via", "WWW-Authenticate", "X-Content-Type-Options",
        "X-Frame-Options",
    )
}  # fmt: skip


def _decode_headers(raw: list[tuple[bytes, bytes]]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    add = headers.add
    for name, value in raw:
        text = name.decode("utf-8", "surrogateescape")
        add(_CANONICAL.get(text.lower(), text), value.decode("utf-8", "surrogateescape"))
    return headers


def _parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    if not value:
        return "application/octet-stream", {}
    mimetype, *parameters = value.split(";")
    params = {}
    for parameter in parameters:
        name, _, param_value = parameter.partition("=")
        params[name.strip().lower()] = param_value.strip().strip('"')
    return mimetype.strip().lower(), params


class ClientResponse:
    """A response whose head has arrived; the body is read on demand.

    Tracing libraries set their own attributes on it, so it has a `__dict__`.
    """

    def __init__(
        self,
        method: str,
        url: URL,
        exchange: Exchange,
        request_info: RequestInfo | PendingRequestInfo,
        trace: RequestTrace,
        key: ConnectionKey | None,
        deadline: float,
        on_release: Callable[[Exchange], None],
        *,
        decompress: bool = True,
    ) -> None:
        self.method = method
        self.url = url
        self.real_url = url
        self.status = exchange.status
        self.reason: str = exchange.reason.decode("utf-8", "surrogateescape")
        self.version: HttpVersion = exchange.version
        self._request_info = request_info
        self.history: tuple[ClientResponse, ...] = ()
        self._exchange = exchange
        decoder = None
        if decompress:
            encoding = exchange.header(b"content-encoding")
            if encoding is not None:
                decoder = make_decoder(encoding.decode("latin-1"))
        self._stream = _BodyStream(self, exchange, decoder, trace, key, deadline)
        self.content = StreamReader(self._stream)
        self._on_release = on_release
        self._body: bytes | None = None

    # --- head ---

    @property
    def request_info(self) -> RequestInfo:
        info = self._request_info
        if isinstance(info, PendingRequestInfo):
            info = self._request_info = info.get()
        return info

    @cached_property
    def headers(self) -> CIMultiDictProxy[str]:
        return CIMultiDictProxy(_decode_headers(self._exchange.raw_headers))

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(self._exchange.raw_headers)

    @cached_property
    def cookies(self) -> SimpleCookie:
        """The cookies this response set (its Set-Cookie headers), as aiohttp's."""
        return response_cookies(
            [
                value.decode("latin-1")
                for name, value in self._exchange.raw_headers
                if name.lower() == b"set-cookie"
            ]
        )

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def host(self) -> str:
        return self.url.host or ""

    @property
    def url_obj(self) -> URL:
        warnings.warn("Deprecated, use .url #1654", DeprecationWarning, stacklevel=2)
        return self.url

    @cached_property
    def links(self) -> MultiDictProxy[MultiDictProxy[str | URL]]:
        """The Link headers' links by `rel`, each with its parameters and resolved `url`."""
        return parse_links(self.headers.getall("Link", ()), self.url)

    @cached_property
    def content_disposition(self) -> ContentDisposition | None:
        return content_disposition(self.headers.get("Content-Disposition"))

    @cached_property
    def _content_type(self) -> tuple[str, dict[str, str]]:
        value = self._exchange.header(b"content-type")
        return _parse_content_type(None if value is None else value.decode("latin-1"))

    @property
    def content_type(self) -> str:
        return self._content_type[0]

    @property
    def charset(self) -> str | None:
        return self._content_type[1].get("charset")

    @property
    def content_length(self) -> int | None:
        value = self._exchange.header(b"content-length")
        return int(value) if value and value.isdigit() else None

    @property
    def connection(self) -> _ConnectionInfo | None:
        """The connection's socket details, aiohttp-style: `.transport.get_extra_info(...)`."""
        stream = self._exchange.stream
        return None if stream is None else _ConnectionInfo(stream)

    @property
    def closed(self) -> bool:
        return self._stream.released

    def get_encoding(self) -> str:
        charset = self.charset
        if charset:
            return charset
        return "utf-8"

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise ClientResponseError(
                self.request_info,
                self.history,
                status=self.status,
                message=self.reason,
                headers=self.headers,
            )

    # --- body ---

    async def read(self) -> bytes:
        if self._body is None:
            self._body = await self.content.read()
        return self._body

    async def text(self, encoding: str | None = None, errors: str = "strict") -> str:
        body = await self.read()
        return body.decode(encoding or self.get_encoding(), errors)

    async def json(
        self,
        *,
        encoding: str | None = None,
        loads: Callable[[str], Any] = json_module.loads,
        content_type: str | None = "application/json",
    ) -> Any:
        body = await self.read()
        if content_type is not None:
            actual = self.content_type
            if actual != content_type and not (
                content_type == "application/json" and actual.endswith("+json")
            ):
                raise ContentTypeError(
                    self.request_info,
                    self.history,
                    status=self.status,
                    message=f"Attempt to decode JSON with unexpected mimetype: {actual}",
                    headers=self.headers,
                )
        if not body.strip():
            return None
        return loads(body.decode(encoding or self.get_encoding()))

    # --- release ---

    def release(self) -> _Release:
        """Give the connection back. Await it to do so now; called bare (aiohttp style), the
        session does it before its next request, or at its close."""
        self._stream.close()
        return _Release()

    def __del__(self) -> None:
        # Dropped unreleased: the session closes what is left before its next request (not
        # here: a garbage collection may run in the middle of the pool's own bookkeeping).
        stream = self.__dict__.get("_stream")
        if stream is not None and not stream.released:
            stream.released = True
            self._on_release(self._exchange)

    def close(self) -> None:
        """aiohttp's synchronous close; the connection is closed or reused as `release` does."""
        self.release()

    async def _aclose(self) -> None:
        self._stream.close()

    async def wait_for_close(self) -> None:
        self._stream.close()

    async def __aenter__(self) -> ClientResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

    def __repr__(self) -> str:
        return f"<ClientResponse({self.url}) [{self.status} {self.reason}]>"


def body_progress(
    trace: RequestTrace, method: str, url: URL, chunk: bytes, received: int
) -> Awaitable[None] | None:
    """The one place `on_response_chunk_received` fires (a chunk), and `on_response_body_complete`
    (b"": the end, after `received` bytes): await what it returns, if anything (None when
    nobody listens, so that an untraced body costs no coroutine)."""
    plan = trace.plan
    if chunk:
        if plan.on_response_chunk_received:
            return trace.send(
                plan.on_response_chunk_received, chunk_received_params(method, url, chunk)
            )
    elif plan.on_response_body_complete:
        return trace.send(
            plan.on_response_body_complete, body_complete_params(method, url, received)
        )
    return None


class _BodyStream:
    """The body as it arrives, for the response and its `content`; it holds no reference to
    the response, so a response dropped unread is freed at once."""

    __slots__ = (
        "_deadline",
        "_decoder",
        "_exchange",
        "_finished_input",
        "_key",
        "_request_info",
        "_trace",
        "completed",
        "compressed",
        "delivered",
        "eof",
        "method",
        "received",
        "released",
        "url",
    )

    def __init__(
        self,
        response: ClientResponse,
        exchange: Exchange,
        decoder: ContentDecoder | None,
        trace: RequestTrace,
        key: ConnectionKey | None,
        deadline: float,
    ) -> None:
        self.method = response.method
        self.url = response.url
        self._request_info = response._request_info
        self._exchange = exchange
        self._decoder = decoder
        self._finished_input = False
        self._trace = trace
        self._key = key
        self._deadline = deadline
        self.received = 0
        self.compressed: int | None = None if decoder is None else 0
        self.delivered = 0
        self.completed = False
        self.eof = False
        self.released = False

    def _info(self) -> RequestInfo:
        info = self._request_info
        return info.get() if isinstance(info, PendingRequestInfo) else info

    @property
    def high_water(self) -> int:
        return self._exchange.high_water

    @high_water.setter
    def high_water(self, value: int) -> None:
        self._exchange.high_water = value

    async def pull(self, max_bytes: int = _PIECE) -> bytes:
        """At most `max_bytes` of the decoded body, as it arrives; b"" at its end."""
        if self.eof:
            return b""
        if self.released:
            raise ClientConnectionError("Connection closed: the response was released")
        try:
            if self._decoder is None:
                chunk = await self._exchange.read(max_bytes)
            else:
                chunk = await self._decoded(self._decoder, max_bytes)
        except BaseException as exc:
            self.released = True
            await self._exchange.aclose()
            error = to_client_error(
                exc, self._key or connection_key(self.url), self._info(), reading_body=True
            )
            if error is exc:
                raise
            raise error from exc
        if chunk:
            self.received += len(chunk)
        else:
            self.eof = True
            self.released = True
        return chunk

    def pull_rest(self) -> bytes | None:
        """The whole rest of the body, if it has all arrived and needs no decoding; else None."""
        if self.eof or self.released or self._decoder is not None:
            return None
        rest = self._exchange.read_rest()
        if rest is not None:
            self.received += len(rest)
            self.eof = True
            self.released = True
        return rest

    def pull_nowait(self, max_bytes: int) -> bytes:
        """What can be had without waiting (at most `max_bytes`), b"" if nothing."""
        if self.eof or self.released:
            return b""
        exchange = self._exchange
        decoder = self._decoder
        try:
            if decoder is None:
                chunk = exchange.read_nowait(max_bytes)
            else:
                while not (chunk := decoder.read(max_bytes)):
                    data = exchange.read_nowait(_PIECE)
                    if not data:
                        break
                    self.compressed = (self.compressed or 0) + len(data)
                    decoder.feed(data)
        except DecodeError as exc:
            self._exchange.distrust()
            self.close()
            raise ClientPayloadError(f"Cannot decode the response body: {exc}") from exc
        self.received += len(chunk)
        return chunk

    def at_chunk_end(self) -> bool:
        """Whether the bytes pulled so far end an HTTP chunk (undecoded chunked bodies)."""
        ends = self._exchange.chunk_ends
        if ends is None or self._decoder is not None:
            return False
        received = self.received
        while ends and ends[0] < received:
            ends.popleft()
        if ends and ends[0] == received:
            ends.popleft()
            return True
        return False

    async def deliver(self, data: bytes, buffered: int) -> bytes:
        """`data` goes to the caller: the chunk signal carries exactly it, and once the body is
        all handed out (`buffered` bytes left unread), the body-complete signal."""
        try:
            if data:
                self.delivered += len(data)
                signal = body_progress(self._trace, self.method, self.url, data, self.delivered)
                if signal is not None:
                    await signal
            if self.eof and not buffered and not self.completed:
                self.completed = True
                signal = body_progress(self._trace, self.method, self.url, b"", self.delivered)
                if signal is not None:
                    await signal
        except BaseException:
            self.close()  # a raising handler: the connection goes back all the same
            raise
        return data

    def deliver_unsignalled(self, rest: bytes) -> bool:
        """`deliver(rest, 0)` of the body's last piece, done now if neither body signal has a
        listener (no coroutine); False, with nothing done, if one has."""
        plan = self._trace.plan
        if plan.on_response_chunk_received or plan.on_response_body_complete:
            return False
        self.delivered += len(rest)
        self.completed = True  # (`pull_rest` gave the rest: at its end)
        return True

    async def _decoded(self, decoder: ContentDecoder, max_bytes: int) -> bytes:
        read = self._exchange.read
        while True:
            try:
                chunk = decoder.read(max_bytes)
                if chunk or self._finished_input:
                    return chunk
                data = await read(_PIECE)
                if data:
                    self.compressed = (self.compressed or 0) + len(data)
                    decoder.feed(data)
                else:
                    self._finished_input = True
                    decoder.finish()
            except DecodeError as exc:
                self._exchange.distrust()
                raise ClientPayloadError(f"Cannot decode the response body: {exc}") from exc

    async def within_deadline(self, read: Callable[[], Awaitable[_T]]) -> _T:
        """Run a read under `ClientTimeout.total`: one cancel scope per read call, none on
        trio when its waits are a watched socket's (body signals run guarded; see `Deadline`)."""
        if self._deadline == math.inf or self._exchange.complete:
            return await read()  # nothing left to wait for: no timer needed
        trace = self._trace
        with Deadline(self._deadline, None, self._exchange.watched) as deadline:
            if not deadline.watching or not trace.plan.configs:
                return await read()
            trace.guard = deadline  # its body signals' handlers run guarded
            try:
                return await read()
            finally:
                trace.guard = None
        self.close()
        raise TotalTimeoutError("Timeout reading the response body (ClientTimeout.total)")

    def close(self) -> None:
        """Done with the body: an unfinished one closes its connection (none is left open)."""
        if self.eof:
            if self._exchange.release_pending:  # a 101's connection, held until now
                self._exchange.close()
            return
        self.released = True
        self._exchange.close()


class _Release:
    """What `release()` returns: it has already released; awaiting it is allowed (aiohttp)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class _Transport:
    __slots__ = ("_stream",)

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._stream.get_extra_info(name, default)


class _ConnectionInfo:
    """Enough of aiohttp's `Connection` for libraries that read socket addresses from it."""

    __slots__ = ("transport",)

    def __init__(self, stream: Any) -> None:
        self.transport = _Transport(stream)


class StreamReader:
    """The body as a stream (`response.content`), with aiohttp's reading methods.

    Each read fires `on_response_chunk_received` with exactly the bytes it returns (aiohttp's
    development branch does the same; 3.14 fires it from `ClientResponse.read()` only), except
    `read()` of the whole body, which fires once per piece as the body arrives, so handlers see
    its progress (once, with all of it, for a body that had all arrived, as aiohttp 3.14).
    `read_nowait` is synchronous and fires nothing."""

    def __init__(self, stream: _BodyStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    def at_eof(self) -> bool:
        return self._stream.eof and not self._buffer

    def is_eof(self) -> bool:
        return self.at_eof()

    def exception(self) -> BaseException | None:
        return None

    @property
    def total_bytes(self) -> int:
        return self._stream.received

    @property
    def total_compressed_bytes(self) -> int | None:
        """Body bytes as they came off the wire when they are being decompressed, else None."""
        return self._stream.compressed

    @property
    def total_raw_bytes(self) -> int:
        compressed = self._stream.compressed
        return self._stream.received if compressed is None else compressed

    def get_read_buffer_limits(self) -> tuple[int, int]:
        """(`read_bufsize`, the unread bytes buffered before reading pauses), as aiohttp."""
        high = self._stream.high_water
        return high // 2, high

    def set_read_chunk_size(self, n: int) -> None:
        """Raise the buffer limits to a reader's chunk size `n` (never lowers them)."""
        if n > self._stream.high_water // 2:
            self._stream.high_water = 2 * n

    def unread_data(self, data: bytes) -> None:
        """Put `data` back in front of what is left to read (deprecated in aiohttp too)."""
        warnings.warn(
            "unread_data() is deprecated and will be removed in future releases (#3260)",
            DeprecationWarning,
            stacklevel=2,
        )
        self._buffer[:0] = data
        self._stream.delivered -= len(data)

    async def wait_eof(self) -> None:
        """Wait until the whole body has arrived (buffered here, still to be read)."""

        async def fill_to_eof() -> None:
            while await self._fill():
                pass

        await self._stream.within_deadline(fill_to_eof)

    async def _fill(self, max_bytes: int = _PIECE) -> bool:
        chunk = await self._stream.pull(max_bytes)
        self._buffer += chunk
        return bool(chunk)

    async def _give(self, n: int) -> bytes:
        """Hand out the first `n` buffered bytes (all when n < 0), signalled."""
        buffer = self._buffer
        if n < 0 or n >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:n])
            del buffer[:n]
        return await self._stream.deliver(data, len(buffer))

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (all that is left when n < 0); b"" at the end."""
        stream = self._stream
        if n < 0 and not self._buffer and (rest := stream.pull_rest()) is not None:
            # all here: one piece, no timer; untraced, no coroutine either
            return rest if stream.deliver_unsignalled(rest) else await stream.deliver(rest, 0)
        if stream._deadline == math.inf or stream._exchange.complete:
            return await self._read(n)  # no timer needed (`within_deadline`), no closure
        return await stream.within_deadline(lambda: self._read(n))

    async def readany(self) -> bytes:
        return await self._stream.within_deadline(self._readany)

    async def readexactly(self, n: int) -> bytes:
        return await self._stream.within_deadline(lambda: self._readexactly(n))

    async def readline(self) -> bytes:
        return await self.readuntil(b"\n")

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Up to and including `separator`; what is left, at the end of the body."""
        if not separator:
            raise ValueError("Separator should be at least one-byte string")
        return await self._stream.within_deadline(lambda: self._readuntil(separator))

    async def readchunk(self) -> tuple[bytes, bool]:
        """The next piece and whether it ends an HTTP chunk; `(b"", False)` at the end."""
        return await self._stream.within_deadline(self._readchunk)

    def read_nowait(self, n: int = -1) -> bytes:
        """What is already here (at most `n` bytes), without waiting; fires no signal."""
        buffer = self._buffer
        limit = _PIECE if n < 0 else n
        while len(buffer) < limit:
            chunk = self._stream.pull_nowait(limit - len(buffer))
            if not chunk:
                break
            buffer += chunk
        if n < 0 or n >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:n])
            del buffer[:n]
        self._stream.delivered += len(data)
        return data

    async def _read(self, n: int) -> bytes:
        if n < 0:
            pieces = [await self._give(-1)] if self._buffer else []
            while chunk := await self._stream.pull():
                pieces.append(await self._stream.deliver(chunk, 0))
            await self._stream.deliver(b"", 0)
            return b"".join(pieces)
        if not self._buffer and not await self._fill(n):
            return await self._stream.deliver(b"", 0)
        return await self._give(n)

    async def _readany(self) -> bytes:
        if not self._buffer:
            await self._fill()
        return await self._give(-1)

    async def _readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n and await self._fill(n - len(self._buffer)):
            pass
        if len(self._buffer) < n:
            partial = await self._give(-1)
            import asyncio  # aiohttp's exception for it, also on trio

            raise asyncio.IncompleteReadError(partial, n)
        return await self._give(n)

    async def _readuntil(self, separator: bytes) -> bytes:
        start = 0
        while (end := self._buffer.find(separator, start)) < 0:
            start = max(len(self._buffer) - len(separator) + 1, 0)
            if not await self._fill():
                return await self._give(-1)
        return await self._give(end + len(separator))

    async def _readchunk(self) -> tuple[bytes, bool]:
        if self._buffer:
            return await self._give(-1), False
        chunk = await self._stream.pull()
        if not chunk:
            await self._stream.deliver(b"", 0)
            return b"", False
        end = self._stream.at_chunk_end()
        return await self._stream.deliver(chunk, 0), end

    def iter_chunked(self, n: int) -> _Chunks:
        """Chunks of `n` bytes (the last may be shorter)."""
        if n <= 0:
            raise ValueError("iter_chunked needs a positive chunk size")
        return _Chunks(self._read_up_to(n))

    def iter_any(self) -> _Chunks:
        """Chunks as they arrive."""
        return _Chunks(self.readany)

    def iter_chunks(self) -> _HttpChunks:
        """`(data, end_of_http_chunk)` pairs, as `readchunk` gives them, to the end."""
        return _HttpChunks(self.readchunk)

    def _read_up_to(self, n: int) -> Callable[[], Awaitable[bytes]]:
        async def read_up_to() -> bytes:
            while len(self._buffer) < n and await self._fill(n - len(self._buffer)):
                pass
            return await self._give(n)

        return lambda: self._stream.within_deadline(read_up_to)

    def __aiter__(self) -> _Chunks:
        return _Chunks(self.readline)


class _HttpChunks:
    __slots__ = ("_read",)

    def __init__(self, read: Callable[[], Awaitable[tuple[bytes, bool]]]) -> None:
        self._read = read

    def __aiter__(self) -> _HttpChunks:
        return self

    async def __anext__(self) -> tuple[bytes, bool]:
        data, end = await self._read()
        if not data and not end:
            raise StopAsyncIteration
        return data, end


class _Chunks:
    """An async iterator over a read function, ending at its first b""."""

    __slots__ = ("_read",)

    def __init__(self, read: Callable[[], Awaitable[bytes]]) -> None:
        self._read = read

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        data = await self._read()
        if not data:
            raise StopAsyncIteration
        return data
