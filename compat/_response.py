"""`ClientResponse`: aiohttp's response API over an httpx response.

Every way of reading the body (`read`, `text`, `json`, `content.read`, `iter_chunked`,
`iter_any`, ...) goes through `_next_chunk`, the one place `on_response_chunk_received` fires:
once per chunk as it arrives, so the chunks add up to the body on every read path.
"""

from __future__ import annotations

import json as json_module
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from functools import cached_property
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._exceptions import (
    ClientResponseError,
    ConnectionKey,
    ContentTypeError,
    TotalTimeoutError,
    to_client_error,
)
from ._models import RequestInfo
from ._params import ResponseBodyCompleteParams, TraceResponseChunkReceivedParams
from ._tracing import RequestTrace

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ClientResponse", "StreamReader"]


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
        raw: httpx.Response,
        request_info: RequestInfo,
        trace: RequestTrace,
        key: ConnectionKey,
        deadline: float,
        on_release: Callable[[httpx.Response], None],
    ) -> None:
        self.method = method
        self.url = url
        self.real_url = url
        self.status = raw.status_code
        self.reason: str = raw.reason_phrase
        self.version = raw.http_version
        self.request_info = request_info
        self.history: tuple[ClientResponse, ...] = ()
        self._raw = raw
        self._stream = _BodyStream(self, raw, trace, key, deadline)
        self.content = StreamReader(self._stream)
        self._on_release = on_release
        self._body: bytes | None = None

    # --- head ---

    @cached_property
    def headers(self) -> CIMultiDictProxy[str]:
        return CIMultiDictProxy(CIMultiDict(self._raw.headers.multi_items()))

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(self._raw.headers.raw)

    @property
    def ok(self) -> bool:
        return self.status < 400

    @cached_property
    def _content_type(self) -> tuple[str, dict[str, str]]:
        return _parse_content_type(self._raw.headers.get("content-type"))

    @property
    def content_type(self) -> str:
        return self._content_type[0]

    @property
    def charset(self) -> str | None:
        return self._content_type[1].get("charset")

    @property
    def content_length(self) -> int | None:
        value = self._raw.headers.get("content-length")
        return int(value) if value and value.isdigit() else None

    @property
    def connection(self) -> _ConnectionInfo | None:
        """The connection's socket details, aiohttp-style: `.transport.get_extra_info(...)`."""
        stream = self._raw.extensions.get("network_stream")
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
        stream = self._stream
        if not stream.released:
            stream.released = True
            self._on_release(self._raw)
        return _Release(stream)

    def __del__(self) -> None:
        # Dropped unreleased: the session gives its connection back before its next request.
        stream = self.__dict__.get("_stream")
        if stream is not None and not stream.released:
            self._on_release(self._raw)

    def close(self) -> None:
        """aiohttp's synchronous close; the connection is closed or reused as `release` does."""
        self.release()

    async def _aclose(self) -> None:
        await self._stream.aclose()

    async def wait_for_close(self) -> None:
        await self._stream.aclose()

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
    the response, so a response dropped unread is freed at once and its connection returned."""

    __slots__ = (
        "_chunks",
        "_deadline",
        "_key",
        "_raw",
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
        raw: httpx.Response,
        trace: RequestTrace,
        key: ConnectionKey,
        deadline: float,
    ) -> None:
        self.method = response.method
        self.url = response.url
        self.request_info = response.request_info
        self._raw = raw
        self._trace = trace
        self._key = key
        self._deadline = deadline
        self._chunks: AsyncIterator[bytes] | None = None
        self.received = 0
        self.eof = False
        self.released = False

    async def next_chunk(self) -> bytes:
        """The next piece of the body, b"" at its end; fires the chunk and body signals."""
        if self.eof:
            return b""
        if self.released:
            raise to_client_error(httpx.StreamClosed(), self._key)
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = self._raw.aiter_bytes()
        try:
            chunk = await anext(chunks, b"")
        except BaseException as exc:
            await self.aclose()
            error = to_client_error(exc, self._key, self.request_info, reading_body=True)
            if error is exc:
                raise
            raise error from exc
        if chunk:
            self.received += len(chunk)
        else:
            self.eof = True
            self.released = True  # httpx closed the stream: the connection is back in the pool
        try:
            await body_progress(self._trace, self.method, self.url, chunk, self.received)
        except BaseException:
            await self.aclose()  # a raising handler: the connection goes back all the same
            raise
        return chunk

    async def within_deadline(self, read: Callable[[], Awaitable[bytes]]) -> bytes:
        """Run a read under `ClientTimeout.total`: one cancel scope per read call."""
        if self._deadline == math.inf:
            return await read()
        with anyio.CancelScope(deadline=self._deadline):
            return await read()
        await self.aclose()
        raise TotalTimeoutError("Timeout reading the response body (ClientTimeout.total)")

    async def aclose(self) -> None:
        if self.eof:
            return
        self.released = True
        with anyio.CancelScope(shield=True):
            chunks = self._chunks
            if chunks is not None and hasattr(chunks, "aclose"):
                await chunks.aclose()
            await self._raw.aclose()


class _Release:
    """What `release()` returns: awaiting it releases now; not awaiting it warns nothing."""

    __slots__ = ("_stream",)

    def __init__(self, stream: _BodyStream) -> None:
        self._stream = stream

    def __await__(self) -> Generator[Any, None, None]:
        return self._stream.aclose().__await__()


_EXTRA_INFO_NAMES = {"peername": "server_addr", "sockname": "client_addr"}
"""asyncio transport names -> httpcore stream names."""


class _Transport:
    __slots__ = ("_stream",)

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        value = self._stream.get_extra_info(_EXTRA_INFO_NAMES.get(name, name))
        return default if value is None else value


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

    async def _fill(self) -> bool:
        chunk = await self._stream.next_chunk()
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
            await self._fill()
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
            while len(self._buffer) < n and await self._fill():
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
