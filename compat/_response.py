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
from collections.abc import Awaitable, Callable, Generator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict, CIMultiDictProxy, istr
from yarl import URL

from ._exceptions import (
    ClientConnectionError,
    ClientPayloadError,
    ClientResponseError,
    ConnectionKey,
    ContentTypeError,
    TotalTimeoutError,
    to_client_error,
)
from ._models import RequestInfo
from ._params import ResponseBodyCompleteParams, TraceResponseChunkReceivedParams
from ._tracing import RequestTrace
from ._transport._backends import Deadline
from ._transport._connection import Exchange
from ._transport._decoders import ContentDecoder, DecodeError, make_decoder

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ClientResponse", "StreamReader"]

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
        request_info: RequestInfo,
        trace: RequestTrace,
        key: ConnectionKey,
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
        self.version = f"HTTP/{exchange.version}"
        self.request_info = request_info
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

    @cached_property
    def headers(self) -> CIMultiDictProxy[str]:
        return CIMultiDictProxy(_decode_headers(self._exchange.raw_headers))

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(self._exchange.raw_headers)

    @property
    def ok(self) -> bool:
        return self.status < 400

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


async def body_progress(
    trace: RequestTrace, method: str, url: URL, chunk: bytes, received: int
) -> None:
    """The one place `on_response_chunk_received` fires (a chunk), and `on_response_body_complete`
    (b"": the end, after `received` bytes)."""
    plan = trace.plan
    if chunk:
        if plan.on_response_chunk_received:
            await trace.send(
                plan.on_response_chunk_received,
                TraceResponseChunkReceivedParams(method, url, chunk),
            )
    elif plan.on_response_body_complete:
        await trace.send(
            plan.on_response_body_complete, ResponseBodyCompleteParams(method, url, received)
        )


class _BodyStream:
    """The body as it arrives, for the response and its `content`; it holds no reference to
    the response, so a response dropped unread is freed at once."""

    __slots__ = (
        "_deadline",
        "_decoder",
        "_exchange",
        "_finished_input",
        "_key",
        "_trace",
        "eof",
        "method",
        "received",
        "released",
        "request_info",
        "url",
    )

    def __init__(
        self,
        response: ClientResponse,
        exchange: Exchange,
        decoder: ContentDecoder | None,
        trace: RequestTrace,
        key: ConnectionKey,
        deadline: float,
    ) -> None:
        self.method = response.method
        self.url = response.url
        self.request_info = response.request_info
        self._exchange = exchange
        self._decoder = decoder
        self._finished_input = False
        self._trace = trace
        self._key = key
        self._deadline = deadline
        self.received = 0
        self.eof = False
        self.released = False

    async def next_chunk(self, max_bytes: int = _PIECE) -> bytes:
        """At most `max_bytes` of the body, b"" at its end; fires the chunk and body signals."""
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
            self.close()
            error = to_client_error(exc, self._key, self.request_info, reading_body=True)
            if error is exc:
                raise
            raise error from exc
        if chunk:
            self.received += len(chunk)
        else:
            self.eof = True
            self.released = True
        try:
            await body_progress(self._trace, self.method, self.url, chunk, self.received)
        except BaseException:
            self.close()  # a raising handler: the connection goes back all the same
            raise
        return chunk

    async def _decoded(self, decoder: ContentDecoder, max_bytes: int) -> bytes:
        read = self._exchange.read
        while True:
            try:
                chunk = decoder.read(max_bytes)
                if chunk or self._finished_input:
                    return chunk
                data = await read(_PIECE)
                if data:
                    decoder.feed(data)
                else:
                    self._finished_input = True
                    decoder.finish()
            except DecodeError as exc:
                self._exchange.distrust()
                raise ClientPayloadError(f"Cannot decode the response body: {exc}") from exc

    async def within_deadline(self, read: Callable[[], Awaitable[bytes]]) -> bytes:
        """Run a read under `ClientTimeout.total`: one cancel scope per read call."""
        if self._deadline == math.inf or self._exchange.complete:
            return await read()  # nothing left to wait for: no timer needed
        async with Deadline(self._deadline):
            return await read()
        self.close()
        raise TotalTimeoutError("Timeout reading the response body (ClientTimeout.total)")

    def close(self) -> None:
        """Done with the body: an unfinished one closes its connection (none is left open)."""
        if self.eof:
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
    """The body as a stream (`response.content`), for bodies too large to read at once."""

    def __init__(self, stream: _BodyStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    def at_eof(self) -> bool:
        return self._stream.eof and not self._buffer

    async def _fill(self, max_bytes: int = _PIECE) -> bool:
        chunk = await self._stream.next_chunk(max_bytes)
        self._buffer += chunk
        return bool(chunk)

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (all that is left when n < 0); b"" at the end."""
        return await self._stream.within_deadline(lambda: self._read(n))

    async def readany(self) -> bytes:
        return await self._stream.within_deadline(self._readany)

    async def readexactly(self, n: int) -> bytes:
        return await self._stream.within_deadline(lambda: self._readexactly(n))

    async def readline(self) -> bytes:
        return await self._stream.within_deadline(self._readline)

    async def _read(self, n: int) -> bytes:
        if n < 0:
            while await self._fill():
                pass
            return self._take(len(self._buffer))
        if not self._buffer:
            return await self._stream.next_chunk(n)
        return self._take(n)

    async def _readany(self) -> bytes:
        if not self._buffer:
            await self._fill()
        return self._take(len(self._buffer))

    async def _readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n and await self._fill():
            pass
        if len(self._buffer) < n:
            partial = self._take(len(self._buffer))
            raise EOFError(f"Expected {n} bytes, got {len(partial)} before the end of the body")
        return self._take(n)

    async def _readline(self) -> bytes:
        while b"\n" not in self._buffer and await self._fill():
            pass
        end = self._buffer.find(b"\n")
        return self._take(len(self._buffer) if end < 0 else end + 1)

    def iter_chunked(self, n: int) -> _Chunks:
        """Chunks of `n` bytes (the last may be shorter)."""
        if n <= 0:
            raise ValueError("iter_chunked needs a positive chunk size")
        return _Chunks(self._read_up_to(n))

    def iter_any(self) -> _Chunks:
        """Chunks as they arrive."""
        return _Chunks(self.readany)

    def _read_up_to(self, n: int) -> Callable[[], Awaitable[bytes]]:
        async def read_up_to() -> bytes:
            while len(self._buffer) < n and await self._fill(n - len(self._buffer)):
                pass
            return self._take(n)

        return lambda: self._stream.within_deadline(read_up_to)

    def __aiter__(self) -> _Chunks:
        return _Chunks(self.readline)


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
