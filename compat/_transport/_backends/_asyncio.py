"""The asyncio stream: a `BufferedProtocol` that feeds the HTTP/1.1 connection as data arrives.

Data reaches the parser in `data_received`, with no task switch, as in aiohttp; `pump` only
waits for the next callback. The transport reads into the loop's one receive buffer, not into
a fresh 256 KiB bytes object per read as a plain `Protocol`'s transport does (an mmap, a page
fault per page the data touches, then mremap and munmap: kernel time on every response).
Flow control is the transport's own: the connection pauses reading while its unread body
buffer is full.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import weakref
from collections.abc import Callable
from typing import Any, cast

from . import NetworkStream, Receiver

__all__ = ["AsyncioStream", "open_tcp", "open_unix"]


_RECEIVE_SIZE = 256 * 1024  # asyncio's own `max_size` for a read
_receive_buffers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, memoryview] = (
    weakref.WeakKeyDictionary()
)


def _receive_buffer(loop: asyncio.AbstractEventLoop) -> memoryview:
    """The loop's one receive buffer, which every stream on it reads into: each read is fed
    (and what is kept, copied) before the loop does anything else, so one buffer serves all."""
    buffer = _receive_buffers.get(loop)
    if buffer is None:
        buffer = _receive_buffers[loop] = memoryview(bytearray(_RECEIVE_SIZE))
    return buffer


class AsyncioStream(asyncio.BufferedProtocol):
    __slots__ = (
        "_buffer",
        "_drain",
        "_eof",
        "_loop",
        "_paused_writing",
        "_tls",
        "_transport",
        "_waiter",
        "on_close",
        "receiver",
    )

    pulls = False
    watched = False  # (asyncio deadlines cancel the task: nothing to watch)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buffer = _receive_buffer(loop)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._eof = False
        self._tls = False
        self.receiver: Receiver | None = None
        self.on_close: Callable[[], None] | None = None

    # --- asyncio.Protocol callbacks ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not subclasses of asyncio.Transport, only alike)
        self._transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        # A view, not a copy: the receiver copies what it keeps (see `Receiver`); the parser
        # keeps nothing, and the body pieces it hands out are bytes of their own.
        self.data_received(self._buffer[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        receiver = self.receiver
        if receiver is not None:
            receiver.feed_data(data)
        self._wake()

    def eof_received(self) -> bool:
        self._end(None)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_exception(ConnectionResetError("Connection lost while writing"))

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _end(self, exc: BaseException | None) -> None:
        if self._eof:
            return
        self._eof = True
        receiver = self.receiver
        if receiver is not None:
            receiver.feed_eof(exc)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # --- NetworkStream ---

    async def pump(self) -> None:
        if self._eof:
            return
        waiter = self._waiter = self._loop.create_future()
        await waiter

    async def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write: the connection is closed")
        transport.write(data)
        if self._paused_writing:
            drain = self._drain = self._loop.create_future()
            await drain

    def write_nowait(self, data: bytes) -> bool:
        transport = self._transport
        if transport is None or transport.is_closing():
            return True  # nowhere to write: dropped, as the connection is gone
        transport.write(data)
        return True

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> NetworkStream:
        assert self._transport is not None
        if self._tls and sys.version_info < (3, 11):
            raise RuntimeError(
                "https through an https proxy needs TLS inside TLS, which asyncio supports "
                "from Python 3.11 on (bpo-44011); use Python 3.11+, or trio"
            )
        transport = await self._loop.start_tls(
            self._transport,
            self,
            context,
            server_hostname=server_hostname,
            ssl_handshake_timeout=timeout if timeout else None,
        )
        self._transport = cast(asyncio.Transport, transport)
        self._tls = True
        return self

    def pause_reading(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_reading(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def read_nowait(self) -> bool:
        return False  # data is fed as it arrives: there is never anything left to fetch

    def idle_ok(self) -> bool:
        return not self.closed  # anything that arrived while idle was fed, and broke it

    def close(self) -> None:
        callback, self.on_close = self.on_close, None
        if callback is not None:
            callback()
        transport = self._transport
        if transport is not None:
            transport.abort()

    @property
    def closed(self) -> bool:
        transport = self._transport
        return self._eof or transport is None or transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self._transport
        if transport is None:
            return default
        return transport.get_extra_info(name, default)


async def open_tcp(address: str, port: int, local_host: str | None) -> NetworkStream:
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(
        lambda: AsyncioStream(loop),
        address,
        port,
        local_addr=(local_host, 0) if local_host else None,
    )
    return stream


async def open_unix(path: str) -> NetworkStream:
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_unix_connection(lambda: AsyncioStream(loop), path)
    return stream
