"""The trio stream: an anyio byte stream read when the HTTP/1.1 connection asks for more.

trio has no protocol callbacks, so reading is pulled: `pump` reads once and feeds what came.
On plain TCP `read_nowait` also takes what the socket already holds without waiting, so a
response body that arrived right behind its head frees the connection unread.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import anyio.streams.tls
import trio

from . import NetworkStream, Receiver, socket_address

__all__ = ["TrioStream", "call_later", "cancel_scope", "open_tcp", "open_unix"]

_READ_SIZE = 65536
_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, ssl.SSLError)


class TrioStream:
    __slots__ = ("_closed", "_eof", "_raw", "_stream", "_tls", "receiver")
    pulls = True

    def __init__(self, stream: anyio.abc.ByteStream, raw: socket.socket, tls: bool) -> None:
        self._stream = stream
        self._raw = raw
        self._tls = tls
        self._eof = False
        self._closed = False
        self.receiver: Receiver | None = None

    def _end(self, exc: BaseException | None) -> None:
        if exc is not None and not isinstance(exc, OSError):
            # anyio's BrokenResourceError: the socket's own error is what callers report
            exc = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        self._eof = True
        if self.receiver is not None:
            self.receiver.feed_eof(exc)

    async def pump(self) -> None:
        if self._eof:
            return
        try:
            data = await self._stream.receive(_READ_SIZE)
        except anyio.EndOfStream:
            self._end(None)
            return
        except _BROKEN as exc:
            self._end(exc)
            return
        if self.receiver is not None:
            self.receiver.feed_data(data)

    def read_nowait(self) -> bool:
        if self._tls or self._eof or self._closed:
            return False
        try:
            data = self._raw.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._end(exc)
            return True
        if not data:
            self._end(None)
        elif self.receiver is not None:
            self.receiver.feed_data(data)
        return True

    def idle_ok(self) -> bool:
        if self.closed:
            return False
        if self._tls:  # anything readable on an idle TLS connection: a close or garbage
            return not select.select([self._raw], [], [], 0)[0]
        return not self.read_nowait()

    async def send(self, data: bytes) -> None:
        try:
            await self._stream.send(data)
        except (*_BROKEN, anyio.EndOfStream) as exc:  # TLS: the peer closed
            raise ConnectionResetError(str(exc) or type(exc).__name__) from exc

    def write_nowait(self, data: bytes) -> bool:
        return False  # trio writes only from a task: the caller sends it at its next await

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> NetworkStream:
        with anyio.fail_after(timeout):
            tls = await anyio.streams.tls.TLSStream.wrap(
                self._stream,
                ssl_context=context,
                hostname=server_hostname,
                standard_compatible=False,
                server_side=False,
            )
        return TrioStream(tls, self._raw, tls=True)

    def pause_reading(self) -> None:
        """Nothing to do: a pulled stream is not read until the connection asks."""

    def resume_reading(self) -> None:
        """Nothing to do: see `pause_reading`."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._raw.fileno() >= 0:
            trio.lowlevel.notify_closing(self._raw)
            self._raw.close()

    @property
    def closed(self) -> bool:
        return self._closed or self._eof

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return socket_address(self._raw, True)
        if name == "sockname":
            return socket_address(self._raw, False)
        if name == "socket":
            return self._raw
        if name == "ssl_object" and self._tls:
            return self._stream.extra(anyio.streams.tls.TLSAttribute.ssl_object, default)
        return default


async def open_tcp(address: str, port: int, local_host: str | None) -> NetworkStream:
    try:
        stream = await anyio.connect_tcp(address, port, local_host=local_host)
    except OSError as exc:
        # anyio reports "All connection attempts failed"; the one attempt's error says why
        cause = exc.__cause__
        if isinstance(cause, OSError):
            raise cause from None
        raise
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    return TrioStream(stream, raw, tls=False)


class _SystemTimer:
    """A timer on trio: a system task (`trio.lowlevel.spawn_system_task`) that sleeps until the
    deadline, then calls back. It belongs to no user nursery, so it needs none and never keeps
    one open; trio cancels it when its run ends. `cancel` ends it without the call."""

    __slots__ = ("_callback", "_scope")

    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self._callback: Callable[[], None] | None = callback
        self._scope = trio.CancelScope(deadline=trio.current_time() + delay)
        trio.lowlevel.spawn_system_task(self._run, name="compat idle connection expiry")

    async def _run(self) -> None:
        with self._scope:
            await trio.sleep_forever()
        callback, self._callback = self._callback, None
        if callback is None:
            return
        try:
            callback()
        except Exception:  # a system task must not raise: that would crash trio.run
            logging.getLogger("compat").exception("idle connection expiry failed")

    def cancel(self) -> None:
        self._callback = None
        self._scope.cancel()


def call_later(delay: float, callback: Callable[[], None]) -> _SystemTimer:
    """Raises RuntimeError outside `trio.run`."""
    return _SystemTimer(delay, callback)


def cancel_scope(deadline: float) -> trio.CancelScope:
    return trio.CancelScope(deadline=deadline)


async def open_unix(path: str) -> NetworkStream:
    stream = await anyio.connect_unix(path)
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    return TrioStream(stream, raw, tls=False)
