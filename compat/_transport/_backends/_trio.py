"""The trio stream: the socket itself, read when the HTTP/1.1 connection asks for more.

trio has no protocol callbacks, so reading is pulled: `pump` reads once and feeds what came.
Plain TCP is driven on the stdlib socket with trio's readiness waits (`wait_readable`,
`wait_writable`): a read or write that can be done now is one syscall, with no stream wrapper,
lock or cancel scope around it, and the task only parks when the socket makes it wait. A
request's deadline is the caller's one cancel scope. `read_nowait` takes what the socket already
holds, so a response body that arrived right behind its head frees the connection unread.
A read that finds nothing costs a BlockingIOError raised and caught (~2.3 us here, a sixth of
it the syscall; a poll is ~0.7 us): where nothing is likely to be there (the response to a
request just sent, an idle connection's check) the socket is waited on or polled first.
TLS is trio's own `SSLStream` over the same socket.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

import trio

from . import (
    WATCHED,
    DeadlineExpired,
    NetworkStream,
    Receiver,
    _Watchdog,
    socket_address,
)

__all__ = ["TrioStream", "TrioTLSStream", "call_later", "open_tcp", "open_unix", "watchdog"]

# As asyncio's selector transports: a 64 KiB body is one read, not two.
_READ_SIZE = 256 * 1024
# The run's one receive buffer, which every stream reads into and feeds a view of at once (as
# the asyncio streams share their loop's; the receiver copies what it keeps). `recv(256 KiB)`
# allocated 256 KiB per read, which glibc served by growing and trimming its heap: page faults
# on every read in some runs.
_RECEIVE_BUFFER: trio.lowlevel.RunVar[memoryview] = trio.lowlevel.RunVar("compat_receive_buffer")
# Reads and writes that never had to wait still let other tasks run this often.
_YIELD_EVERY = 16


class TrioStream:
    """Plain TCP (or a Unix socket). Its socket waits honour a watched `Deadline`: woken at
    it (see `Deadline`), they raise `DeadlineExpired`."""

    __slots__ = (
        "_buffer",
        "_closed",
        "_eof",
        "_raw",
        "_sent",
        "_streak",
        "on_close",
        "receiver",
    )
    pulls = True
    watched = True

    def __init__(self, raw: socket.socket) -> None:
        self._raw = raw
        self._buffer = _receive_buffer()
        self._eof = False
        self._closed = False
        self._streak = 0
        self._sent = False  # a request went out and nothing was read since
        self.receiver: Receiver | None = None
        self.on_close: Callable[[], None] | None = None

    def _end(self, exc: BaseException | None) -> None:
        self._eof = True
        if self.receiver is not None:
            self.receiver.feed_eof(exc)

    async def _ran(self) -> None:
        """A checkpoint after work that did not wait: cancellation is seen, others get turns."""
        self._streak += 1
        if self._streak >= _YIELD_EVERY:
            self._streak = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()

    async def pump(self) -> None:
        if self._eof:
            return
        raw = self._raw
        # Just sent: the answer is almost never here yet (counted in the benchmarks: the first
        # read after a send found nothing every time), so wait first; if it is, no harm.
        waited = self._sent
        self._sent = False
        while True:
            if waited:
                watched = WATCHED.get()
                if watched is not None:
                    if watched.fired:
                        raise DeadlineExpired
                    watched.waiting_on = raw
                try:
                    await trio.lowlevel.wait_readable(raw)
                except trio.ClosedResourceError as exc:  # closed by another task, or expired
                    if watched is not None and watched.fired:
                        raise DeadlineExpired from None
                    self._end(exc)
                    return
                finally:
                    if watched is not None:
                        watched.waiting_on = None
            try:
                size = raw.recv_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                waited = True
                continue
            except OSError as exc:
                self._end(exc)
                return
            break
        if not size:
            self._end(None)
        elif self.receiver is not None:
            self.receiver.feed_data(self._buffer[:size])
        if waited:  # the wait was the checkpoint
            self._streak = 0
        else:
            await self._ran()

    def read_nowait(self) -> bool:
        if self._eof or self._closed or not _readable(self._raw):
            return False
        try:
            size = self._raw.recv_into(self._buffer)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._end(exc)
            return True
        if not size:
            self._end(None)
        elif self.receiver is not None:
            self.receiver.feed_data(self._buffer[:size])
        return True

    def idle_ok(self) -> bool:
        return not self.closed and not self.read_nowait()

    async def send(self, data: bytes) -> None:
        raw = self._raw
        rest: bytes | memoryview = data
        try:
            while True:
                try:
                    sent = raw.send(rest)
                except (BlockingIOError, InterruptedError):
                    await _wait_writable(raw)
                    continue
                if sent == len(rest):
                    self._sent = True
                    return
                rest = memoryview(rest)[sent:]
        except (OSError, trio.ClosedResourceError) as exc:
            raise ConnectionResetError(str(exc) or type(exc).__name__) from exc

    def write_nowait(self, data: bytes) -> bool:
        return False  # trio writes only from a task: the caller sends it at its next await

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> NetworkStream:
        transport = trio.SocketStream(trio.socket.from_stdlib_socket(self._raw))
        return await _handshake(transport, self._raw, context, server_hostname, timeout)

    def pause_reading(self) -> None:
        """Nothing to do: a pulled stream is not read until the connection asks."""

    def resume_reading(self) -> None:
        """Nothing to do: see `pause_reading`."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.on_close is not None:
            callback, self.on_close = self.on_close, None
            callback()
        _close(self._raw)

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
        return default


class TrioTLSStream(TrioStream):
    """TLS: trio's `SSLStream` on the socket; the socket is still closed directly."""

    __slots__ = ("_ssl_object", "_tls")
    watched = False  # its waits are `SSLStream`'s: a watched request covers them (`covering`)

    def __init__(self, tls: trio.SSLStream[Any], raw: socket.socket, obj: ssl.SSLObject) -> None:
        super().__init__(raw)
        self._tls = tls
        self._ssl_object = obj

    async def pump(self) -> None:
        if self._eof:
            return
        try:
            data = cast(bytes, await self._tls.receive_some(_READ_SIZE))  # SSLObject.read: bytes
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._end(_cause(exc))
            return
        if not data:
            self._end(None)
        elif self.receiver is not None:
            self.receiver.feed_data(data)

    def read_nowait(self) -> bool:
        return False  # bytes on the socket are records, not data: only `pump` decrypts

    def idle_ok(self) -> bool:
        # anything readable on an idle TLS connection: a close or garbage
        return not self.closed and not select.select([self._raw], [], [], 0)[0]

    async def send(self, data: bytes) -> None:
        try:
            await self._tls.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            cause = _cause(exc)
            raise ConnectionResetError(str(cause) or type(cause).__name__) from cause

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> NetworkStream:
        # TLS inside TLS: a tunnel through an HTTPS proxy
        return await _handshake(self._tls, self._raw, context, server_hostname, timeout)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._ssl_object
        return super().get_extra_info(name, default)


class _CaptureSSLObject:
    """Stands in for the context while `SSLStream` wraps its BIOs, to keep the `SSLObject`
    (which `get_extra_info("ssl_object")` hands out, as asyncio's transports do)."""

    __slots__ = ("context", "ssl_object")

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.ssl_object: ssl.SSLObject | None = None

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.ssl_object = self.context.wrap_bio(*args, **kwargs)
        return self.ssl_object


async def _handshake(
    transport: Any,
    raw: socket.socket,
    context: ssl.SSLContext,
    server_hostname: str | None,
    timeout: float | None,
) -> TrioTLSStream:
    capture = _CaptureSSLObject(context)
    tls = trio.SSLStream(
        transport,
        cast(ssl.SSLContext, capture),
        server_hostname=server_hostname,
        https_compatible=True,  # no close_notify needed at EOF, as every HTTPS client
    )
    with trio.move_on_after(timeout if timeout else float("inf")) as scope:
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            raise _cause(exc) from None
    if scope.cancelled_caught:
        raise TimeoutError("TLS handshake timed out")
    assert capture.ssl_object is not None
    return TrioTLSStream(tls, raw, capture.ssl_object)


def _cause(exc: BaseException) -> BaseException:
    """trio reports a broken stream as BrokenResourceError; the SSL or socket error says why."""
    cause = exc.__cause__
    if isinstance(cause, (ssl.SSLError, OSError)):
        return cause
    if isinstance(exc, trio.BrokenResourceError):
        return ConnectionResetError(str(exc) or "the connection broke")
    return exc


def _receive_buffer() -> memoryview:
    try:
        return _RECEIVE_BUFFER.get()
    except LookupError:
        buffer = memoryview(bytearray(_READ_SIZE))
        _RECEIVE_BUFFER.set(buffer)
        return buffer


async def _wait_writable(raw: socket.socket) -> None:
    """`wait_writable`, ended by a watched `Deadline` as `pump`'s read wait is."""
    watched = WATCHED.get()
    if watched is None:
        await trio.lowlevel.wait_writable(raw)
        return
    if watched.fired:
        raise DeadlineExpired
    watched.waiting_on = raw
    try:
        await trio.lowlevel.wait_writable(raw)
    except trio.ClosedResourceError:
        if watched.fired:
            raise DeadlineExpired from None
        raise
    finally:
        watched.waiting_on = None


class TrioWatchdog(_Watchdog):
    """The run's watchdog of watched `Deadline`s: the asyncio one's logic, on a trio timer."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(None)

    def _now(self) -> float:
        return trio.current_time()

    def _schedule(self, when: float) -> _SystemTimer:
        return _SystemTimer(when - trio.current_time(), self._fire)

    def _armed(self) -> _SystemTimer | None:
        timer: _SystemTimer | None = self._timer
        return timer


_WATCHDOG: trio.lowlevel.RunVar[TrioWatchdog] = trio.lowlevel.RunVar("compat_watchdog")


def watchdog() -> TrioWatchdog:
    """The current trio run's watchdog (made at its first watched `Deadline`)."""
    try:
        return _WATCHDOG.get()
    except LookupError:
        found = TrioWatchdog()
        _WATCHDOG.set(found)
        return found


def _readable(raw: socket.socket) -> bool:
    """Data or EOF waits on the socket: a poll, cheaper than a read that finds nothing."""
    fd = raw.fileno()
    if fd < 0:
        return True  # closed under us: the read says so
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


def _close(raw: socket.socket) -> None:
    if raw.fileno() >= 0:
        trio.lowlevel.notify_closing(raw)  # a task waiting on it wakes with ClosedResourceError
        raw.close()


async def _connect(raw: socket.socket, address: Any) -> TrioStream:
    raw.setblocking(False)
    try:
        await trio.socket.from_stdlib_socket(raw).connect(address)
    except BaseException:
        _close(raw)
        raise
    return TrioStream(raw)


async def open_tcp(address: str, port: int, local_host: str | None) -> NetworkStream:
    raw = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if local_host:
            raw.bind((local_host, 0))
    except BaseException:
        raw.close()
        raise
    return await _connect(raw, (address, port))


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


async def open_unix(path: str) -> NetworkStream:
    return await _connect(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), path)
