"""Byte streams for the HTTP/1.1 connection, one implementation per event loop.

The connection is a parser fed with bytes; a stream's job is to get bytes to it. On asyncio
the stream is a `Protocol`: the loop hands data to `data_received`, which feeds the
connection at once, so a response body that has fully arrived is complete (and its connection
free) before anyone reads it, as in aiohttp. On trio the stream reads the socket itself when
the connection asks (`pump`), and feeds what it got. Either way the connection only waits when
it has nothing buffered: no cancel scope or checkpoint per read of data already here, and a
request's deadline is one timer (asyncio) or, on trio, a watched deadline with no cancel scope
(see `Deadline`) or else one cancel scope around all of it.
"""

from __future__ import annotations

import math
import socket
import ssl
import sys
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from contextvars import ContextVar
from types import CoroutineType, TracebackType, coroutine
from typing import TYPE_CHECKING, Any, Protocol

import anyio

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "WATCHED",
    "Deadline",
    "DeadlineExpired",
    "NetworkStream",
    "Receiver",
    "Timer",
    "call_later",
    "current_time",
    "open_tcp",
    "open_unix",
    "running_loop",
    "take",
]

_HAS_ASYNCIO_TIMEOUT = sys.version_info >= (3, 11)


class Receiver(Protocol):
    """What a stream feeds: the HTTP/1.1 connection (or HTTP/2's, or an upgraded stream).

    `feed_data` may be given a view of the stream's receive buffer, valid during the call
    only (the next read overwrites it): a receiver copies what it keeps."""

    def feed_data(self, data: bytes | memoryview) -> None: ...
    def feed_eof(self, error: BaseException | None) -> None: ...


class NetworkStream(Protocol):
    """A connected TCP (or TLS) stream, as the HTTP/1.1 connection drives it."""

    receiver: Receiver | None
    on_close: Callable[[], None] | None
    """Called once, at the first `close` (the pool times connections for metrics with it)."""
    pulls: bool
    """True if bytes are only read when asked for (`pump`, `read_nowait`): trio."""
    watched: bool
    """True if its waits end at a watched `Deadline` (`WATCHED`): plain TCP on trio."""

    async def pump(self) -> None:
        """Wait until at least one `feed_data` or `feed_eof` has reached the receiver."""

    async def send(self, data: bytes) -> None:
        """Write `data`; return when the stream can take more."""

    def write_nowait(self, data: bytes) -> bool:
        """Write `data` without waiting if this stream can (asyncio); False if it cannot."""

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


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop; None on trio. asyncio is not imported for this: with no
    asyncio loaded, no asyncio loop can be running (`import compat` leaves it to the app)."""
    asyncio = sys.modules.get("asyncio")
    # _get_running_loop (in asyncio.__all__): None on trio, where get_running_loop would raise
    return None if asyncio is None else asyncio._get_running_loop()


async def open_tcp(address: str, port: int, *, local_host: str | None = None) -> NetworkStream:
    """A TCP connection to one resolved address, on the running event loop's stream type."""
    if running_loop() is None:
        from ._trio import open_tcp as open_trio

        return await open_trio(address, port, local_host)
    from ._asyncio import open_tcp as open_asyncio

    return await open_asyncio(address, port, local_host)


class Timer(Protocol):
    def cancel(self) -> None: ...


def call_later(delay: float, callback: Callable[[], None]) -> Timer | None:
    """Call `callback` (synchronous; it must not raise) in `delay` seconds, owned by no user
    task: a loop timer on asyncio, a trio system task on trio; None outside an event loop."""
    loop = running_loop()
    if loop is not None:
        return loop.call_later(delay, callback)
    try:
        from ._trio import call_later as trio_call_later

        return trio_call_later(delay, callback)
    except (ImportError, RuntimeError):  # no trio, or not inside trio.run
        return None


def take(chunks: deque[bytes], max_bytes: int) -> bytes:
    """Up to `max_bytes` from the front of a queue of received chunks (b"" if it is empty)."""
    if not chunks:
        return b""
    chunk = chunks[0]
    if len(chunk) > max_bytes:
        chunks[0] = chunk[max_bytes:]
        return chunk[:max_bytes]
    return chunks.popleft()


def socket_address(sock: socket.socket | None, peer: bool) -> Any:
    """peername / sockname of a socket, None once it is closed."""
    if sock is None:
        return None
    try:
        return sock.getpeername() if peer else sock.getsockname()
    except OSError:
        return None


def current_time() -> float:
    """The event loop's clock, which `Deadline` counts in."""
    return _clock(running_loop())


def _clock(loop: asyncio.AbstractEventLoop | None) -> float:
    if loop is not None:
        return loop.time()
    trio = sys.modules.get("trio")  # not on asyncio: trio, which anyio would ask through sniffio
    return anyio.current_time() if trio is None else float(trio.current_time())


_trio_watchdog: Callable[[], _Watchdog] | None = None
"""`_trio.watchdog`, kept at its first use: an import statement per request costs ~1.5 us."""


def _load_trio_watchdog() -> Callable[[], _Watchdog]:
    global _trio_watchdog
    from ._trio import watchdog  # (only where trio runs: importing it loads trio)

    _trio_watchdog = watchdog
    return watchdog


class DeadlineExpired(BaseException):
    """Raised inside a watched `Deadline`'s block once it has passed; the `Deadline` takes it
    back (`expired`). A BaseException, as a cancellation: no `except Exception` stops it."""


WATCHED: ContextVar[Deadline | None] = ContextVar("compat_watched_deadline", default=None)
"""The watched `Deadline` the current task is in, if any (trio only; see `Deadline`)."""


class Deadline:
    """Cancel the `with` block at `when` (`current_time()` clock); `expired` says if it did.

    On asyncio (3.11+) the loop's `_Watchdog` cancels the task, undone with `Task.uncancel`
    as `asyncio.timeout_at` does, without its object and coroutines: every request opens one.
    On trio, trio's own cancel scope (anyio's wraps it; trio is loaded whenever it runs);
    elsewhere an anyio cancel scope. A plain context manager: entering awaits nothing.

    `watched=True` (trio): the caller promises that no code but ours runs in the block, except
    through `guarded()`, so no cancel scope (trio's costs a quarter of a request): the run's
    `_Watchdog` marks the deadline `fired` and wakes the one socket wait it is in
    (`waiting_on`, through `notify_closing`; that connection is dropped anyway). Our waits on
    such a socket check it (`WATCHED`) and raise `DeadlineExpired`; any other wait in the block
    must be inside `covering()`, a cancel scope of its own."""

    __slots__ = (
        "_cancelling",
        "_delay",
        "_scope",
        "_task",
        "_token",
        "_watch",
        "_watchdog",
        "expired",
        "fired",
        "waiting_on",
        "when",
    )

    def __init__(self, when: float, delay: float | None = None, watched: bool = False) -> None:
        """With `delay`, the deadline is that many seconds after entering (0: none)."""
        self.when = when
        self._delay = delay
        self._watch = watched
        self._watchdog: _Watchdog | None = None
        self._scope: Any = None
        self.expired = False

    def __enter__(self) -> Deadline:
        delay = self._delay
        if delay is None:
            if self.when == math.inf:
                return self
        elif not delay:
            self.when = math.inf
            return self
        asyncio = sys.modules.get("asyncio")  # (`running_loop()` and `_clock()`, inline: hot)
        loop = None if asyncio is None else asyncio._get_running_loop()
        if delay is not None:  # the clock read with the loop already in hand
            self.when = (_clock(None) if loop is None else loop.time()) + delay
        if loop is None and self._watch:  # trio, no code but ours inside: no scope
            self._task: Any = None
            self.fired = False
            self.waiting_on: socket.socket | None = None
            self._watchdog = (_trio_watchdog or _load_trio_watchdog())()
            self._watchdog.add(self)
            self._token = WATCHED.set(self)
            return self
        if loop is None:  # trio: the request's one cancel scope
            self._scope = sys.modules["trio"].CancelScope(deadline=self.when)
        elif _HAS_ASYNCIO_TIMEOUT:
            task = asyncio.current_task(loop)  # type: ignore[union-attr]
            if task is None:
                raise RuntimeError("Timeout should be used inside a task")
            self._task = task
            self._cancelling = task.cancelling()
            self.fired = False
            watchdog = _last_watchdog
            if watchdog is None or watchdog.loop is None or watchdog.loop() is not loop:
                watchdog = _watchdog(loop)
            watchdog.add(self)
            self._watchdog = watchdog
            return self
        else:
            self._scope = anyio.CancelScope(deadline=self.when)
        self._scope.__enter__()
        return self

    @property
    def watching(self) -> bool:
        """Entered watched (trio, no cancel scope): user code in the block must run `guarded`."""
        return self._watchdog is not None and self._task is None

    def expire(self) -> None:
        """The deadline has come (the watchdog calls it once)."""
        self.fired = True
        if self._task is not None:
            self._task.cancel()
        elif self.waiting_on is not None:  # (watched) its wait ends with ClosedResourceError
            sys.modules["trio"].lowlevel.notify_closing(self.waiting_on)

    @coroutine
    def guarded(self, awaitable: Awaitable[object]) -> Generator[Any, Any, None]:
        """Run user code (a trace handler) in a watched block, to its first wait. If it ends
        without waiting (a handler that records, the usual kind), that is all: no cancel
        scope. If it waits, each of its waits runs in a cancel scope at the deadline, entered
        once it has yielded and left before it resumes (so the scopes and task groups it opens
        itself still nest), and a wait cut by the deadline raises `Cancelled` in it."""
        steps: Any = awaitable if type(awaitable) is CoroutineType else awaitable.__await__()
        try:
            trap = steps.send(None)
        except StopIteration:
            return
        yield from _waits(steps, trap, self.when)

    def covering(self) -> _Covered:
        """For waits in a watched block that are not a watched socket's (a new connection,
        the pool's queue, TLS, HTTP/2, httpx): a cancel scope at the deadline whose expiry
        raises `DeadlineExpired`, with `WATCHED` cleared inside (its waits are the scope's)."""
        return _Covered(self.when)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        watchdog = self._watchdog
        if watchdog is not None:
            watchdog.discard(self)
            if self._task is None:  # watched (trio)
                WATCHED.reset(self._token)
                if exc_type is not None and issubclass(exc_type, DeadlineExpired):
                    self.expired = True
                    return True
                return False
            # Fired: our cancel is taken back (uncancel, always); if no other cancel is
            # pending and the block ended cancelled, it timed out (asyncio.Timeout's rule).
            if (
                self.fired
                and self._task.uncancel() <= self._cancelling
                and exc_type is sys.modules["asyncio"].CancelledError
            ):
                self.expired = True
                return True
            return False
        if self._scope is not None:
            suppressed = bool(self._scope.__exit__(exc_type, exc, tb))
            self.expired = self._scope.cancelled_caught
            return suppressed
        return False


@coroutine
def _waits(steps: Any, trap: object, when: float) -> Generator[Any, Any, None]:
    """`Deadline.guarded`'s slow path: hand each of the handler's waits (`trap`) to trio inside a
    cancel scope at `when`. trio answers a wait cut by that scope with a `Cancelled` outcome,
    which the handler sees (and may clean up on); if it comes back out, the deadline ended the
    handler: `DeadlineExpired` (no scope of the caller's owns that `Cancelled`). A wait that
    trio does not cancel (a bare checkpoint) completes: such a handler is cut at its next
    cancellable wait."""
    trio = sys.modules["trio"]
    expired = False
    while True:
        scope = trio.CancelScope(deadline=when)
        thrown: BaseException | None = None
        sent: Any = None
        try:
            with scope:
                try:
                    sent = yield trap
                except BaseException as exc:
                    thrown = exc
                    raise
        except GeneratorExit:
            steps.close()
            raise
        except BaseException:  # (kept in `thrown`: it goes into the handler)
            pass
        expired = expired or scope.cancel_called  # (trio delivers its Cancelled to the trap)
        try:
            trap = steps.send(sent) if thrown is None else steps.throw(thrown)
        except StopIteration:
            return
        except trio.Cancelled as exc:
            if expired:
                raise DeadlineExpired from exc
            raise


class _Covered:
    """`Deadline.covering()`: a trio cancel scope at the deadline; `DeadlineExpired` if it
    fired (so the wait does not just end: the watched `Deadline` takes it back)."""

    __slots__ = ("_scope", "_token")

    def __init__(self, when: float) -> None:
        self._scope = sys.modules["trio"].CancelScope(deadline=when)

    def __enter__(self) -> None:
        self._token = WATCHED.set(None)
        self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._scope.__exit__(exc_type, exc, tb)  # (it swallows only its own cancellation)
        WATCHED.reset(self._token)
        if self._scope.cancelled_caught:
            raise DeadlineExpired


class _Watchdog:
    """One asyncio loop timer for all of the loop's pending `Deadline`s, armed at the earliest.

    A timer per request (a handle made, pushed on the loop's heap, cancelled, later popped) is
    about 6% of an untraced request's instructions; here a request whose deadline is not the
    earliest (the usual case: one `ClientTimeout.total` for all) costs a dict entry. When the
    timer fires it expires what is due and re-arms for the earliest left. (trio's, for watched
    deadlines, is `_trio.TrioWatchdog`: the same with a trio timer.)"""

    __slots__ = ("_at", "_pending", "_timer", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        # The loop and its timer (which refers to the loop) are held weakly: `_watchdogs` is
        # keyed by the loop, and an armed timer is kept alive by the loop's own schedule.
        self.loop = None if loop is None else weakref.ref(loop)
        self._pending: dict[Deadline, None] = {}
        self._timer: Any = None
        self._at = math.inf

    def add(self, deadline: Deadline) -> None:
        self._pending[deadline] = None
        if deadline.when < self._at:
            self._arm(deadline.when)

    def discard(self, deadline: Deadline) -> None:
        """A block ended: forgotten (an armed timer stays; it re-arms for what is left)."""
        self._pending.pop(deadline, None)

    def _now(self) -> float | None:
        loop = None if self.loop is None else self.loop()
        return None if loop is None else loop.time()

    def _schedule(self, when: float) -> Any:
        """A timer that calls `_fire` at `when` (something with `cancel()`), None if it cannot."""
        loop = None if self.loop is None else self.loop()
        return None if loop is None else weakref.ref(loop.call_at(when, self._fire))

    def _armed(self) -> Any:
        return None if self._timer is None else self._timer()

    def _arm(self, when: float) -> None:
        timer = self._armed()
        if timer is not None:
            timer.cancel()
        self._at = when
        self._timer = self._schedule(when)

    def _fire(self) -> None:
        now = self._now()  # (the loop is alive: it is running this callback)
        due = self._at if now is None else max(self._at, now)
        self._timer = None
        self._at = math.inf
        pending = self._pending
        for deadline in [d for d in pending if d.when <= due]:
            del pending[deadline]
            deadline.expire()
        if pending:
            self._arm(min(d.when for d in pending))


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = (
    weakref.WeakKeyDictionary()
)
_last_watchdog: _Watchdog | None = None


def _watchdog(loop: asyncio.AbstractEventLoop) -> _Watchdog:
    """The loop's watchdog, found (or made) and kept as `_last_watchdog`: `Deadline` takes
    the last one used without this call while it is still the running loop's."""
    global _last_watchdog
    watchdog = _watchdogs.get(loop)
    if watchdog is None:
        watchdog = _watchdogs[loop] = _Watchdog(loop)
    _last_watchdog = watchdog
    return watchdog


async def open_unix(path: str) -> NetworkStream:
    """A connection to a Unix socket, on the running event loop's stream type."""
    if running_loop() is None:
        from ._trio import open_unix as open_trio

        return await open_trio(path)
    from ._asyncio import open_unix as open_asyncio

    return await open_asyncio(path)
