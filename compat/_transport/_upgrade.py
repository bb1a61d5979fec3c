"""An HTTP/1.1 connection taken over after `101 Switching Protocols`.

The connection hands its stream over the moment the 101's head is parsed: the bytes that came
right behind the head, and every byte after, feed this object instead of the HTTP parser. The
connection never goes back to the pool; it holds its pool slot until the owner (a websocket,
or httpx's `network_stream` user) calls `close`, which closes the socket and frees the slot.
This is the one way both `ClientSession.ws_connect` and `traced_client` upgrades get a socket.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

from ._backends import NetworkStream, take

if TYPE_CHECKING:
    from ._connection import Exchange

__all__ = ["UpgradedStream"]

_HIGH_WATER = 2**18
"""Unread bytes buffered before the socket stops being read (asyncio; trio reads on demand)."""


class UpgradedStream:
    """The raw byte stream of an upgraded connection, owned by one user until `close`."""

    __slots__ = ("_chunks", "_closed", "_exchange", "_lock", "_paused", "_size", "eof", "stream")

    def __init__(self, stream: NetworkStream, exchange: Exchange, tail: bytes) -> None:
        self.stream = stream
        self._exchange = exchange
        self._chunks: deque[bytes] = deque([tail] if tail else ())
        self._size = len(tail)
        self._paused = False
        self._closed = False
        self._lock: anyio.Lock | None = None
        self.eof = False
        stream.receiver = self  # from now on the stream's bytes come here, not to the parser

    # --- fed by the stream ---

    def feed_data(self, data: bytes | memoryview) -> None:
        data = bytes(data)  # (a view of the stream's buffer is the next read's)
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _HIGH_WATER and not self._paused:
            self._paused = True
            self.stream.pause_reading()

    def feed_eof(self, error: BaseException | None) -> None:
        self.eof = True

    # --- the owner's side ---

    @property
    def closed(self) -> bool:
        """Closed by us, or by the peer (nothing more can be sent)."""
        return self._closed or self.eof or self.stream.closed

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Up to `max_bytes` bytes, waiting for some; b"" once the connection has ended."""
        while not self._chunks:
            if self.eof or self.stream.closed:
                return b""
            await self.stream.pump()
        return self.receive_nowait(max_bytes)

    def receive_nowait(self, max_bytes: int = 65536) -> bytes:
        """Up to `max_bytes` of what has arrived, without waiting; b"" if nothing has."""
        chunk = take(self._chunks, max_bytes)
        self._size -= len(chunk)
        if self._paused and self._size < _HIGH_WATER // 4:
            self._paused = False
            self.stream.resume_reading()
        return chunk

    async def send(self, data: bytes) -> None:
        """Write `data`; senders in several tasks take turns (a stream has one writer)."""
        if self.closed:
            raise ConnectionResetError("Cannot write to closing transport")
        lock = self._lock
        if lock is None:
            lock = self._lock = anyio.Lock()
        async with lock:
            await self.stream.send(data)

    def close(self) -> None:
        """Close the socket and give the pool slot back (once; later calls do nothing)."""
        if not self._closed:
            self._closed = True
            self._chunks.clear()
            self._exchange.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.stream.get_extra_info(name, default)
