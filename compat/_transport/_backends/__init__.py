"""Byte streams for the HTTP/1.1 connection, one implementation per event loop.

The connection is a parser fed with bytes; a stream's job is to get bytes to it. On asyncio
the stream is a `Protocol`: the loop hands data to `data_received`, which feeds the
connection at once, so a response body that has fully arrived is complete (and its connection
free) before anyone reads it, as in aiohttp. On trio the stream reads from an anyio stream when
the connection asks (`pump`), and feeds what it got. Either way the connection only waits when
it has nothing buffered: no cancel scope or checkpoint per read of data already here.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any, Protocol

__all__ = ["NetworkStream", "Receiver", "open_tcp"]


class Receiver(Protocol):
    """What a stream feeds: the HTTP/1.1 connection."""

    def feed_data(self, data: bytes) -> None: ...
    def feed_eof(self, error: BaseException | None) -> None: ...


class NetworkStream(Protocol):
    """A connected TCP (or TLS) stream, as the HTTP/1.1 connection drives it."""

    receiver: Receiver | None

    async def pump(self) -> None:
        """Wait until at least one `feed_data` or `feed_eof` has reached the receiver."""

    async def send(self, data: bytes) -> None:
        """Write `data`; return when the stream can take more."""

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> NetworkStream:
        """The same connection with TLS on top (this stream must not be used after)."""

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def read_nowait(self) -> bool:
        """Feed what the socket already holds without waiting; False if nothing could be read."""

    def idle_ok(self) -> bool:
        """An idle connection is still usable: not closed, nothing arrived since its response."""

    def close(self) -> None:
        """Close now, without waiting (no TLS close_notify round trip)."""

    @property
    def closed(self) -> bool: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


async def open_tcp(address: str, port: int, *, local_host: str | None = None) -> NetworkStream:
    """A TCP connection to one resolved address, on the running event loop's stream type."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no asyncio loop: trio
        from ._trio import open_tcp as open_trio

        return await open_trio(address, port, local_host)
    else:
        from ._asyncio import open_tcp as open_asyncio

        return await open_asyncio(address, port, local_host)


def socket_address(sock: socket.socket | None, peer: bool) -> Any:
    """peername / sockname of a socket, None once it is closed."""
    if sock is None:
        return None
    try:
        return sock.getpeername() if peer else sock.getsockname()
    except OSError:
        return None
