"""The connection pool: limits, queueing, keep-alive reuse and idle expiry.

A request first takes a *slot* (at most `limit` in use in all, `limit_per_host` per host; 0 is
no limit), queueing if none is free (queued start/end), then an idle connection of its host
(reuseconn), or none, and the engine opens one (create start/end, in `_opener`). A freed slot
is handed straight to a waiter, so the limits are exact and no waiter is overtaken by a
newcomer. Every operation is O(1) in connections and waiters: cancelled waiters are dropped
lazily, and hosts waiting only for a global slot take turns.

Giving a connection back is synchronous: the asyncio stream does it from `data_received`, the
moment a response has fully arrived. Idle connections past `keepalive_timeout` are closed on
any pool activity, whichever host it is for, oldest first, and by one timer while any
connection is idle (aiohttp's cleanup timer): a loop callback on asyncio, a trio system task on
trio (`_backends.call_later`), so they go on time with no request and no user nursery.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

from .. import _params
from .._exceptions import ClientConnectionError, PoolTimeoutError
from .._tracing import RequestTrace
from ._backends import Timer, call_later
from ._connection import HTTP11Connection as Connection

if TYPE_CHECKING:  # h2 is an optional extra: imported only when HTTP/2 is used
    from ._http2 import HTTP2Connection

__all__ = ["ConnectionPool", "HostStats", "Key", "PoolStats"]

Key = tuple[Any, ...]
ConnectionListener = Callable[[tuple[str, str, int], str, str | None, float], None]
"""A route: (scheme, host, port, ssl, proxy), see `_opener.Route`."""


@dataclass(frozen=True, slots=True)
class HostStats:
    in_use: int
    idle: int
    waiting: int


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of the pool: `in_use` never exceeds the limit, `max_in_use` says it never did."""

    in_use: int
    idle: int
    waiting: int
    max_in_use: int
    hosts: dict[str, HostStats]

    @property
    def open(self) -> int:
        return self.in_use + self.idle


class _Waiter:
    __slots__ = ("cancelled", "event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False
        self.cancelled = False


class _Host:
    __slots__ = (
        "h1_only",
        "h2",
        "h2_changed",
        "h2_opening",
        "idle",
        "in_global_queue",
        "in_use",
        "key",
        "waiters",
    )

    def __init__(self, key: Key) -> None:
        self.key = key
        # HTTP/2: the origin's one multiplexed connection, the opening that may become it,
        # and an event set whenever one of its streams ends (or it goes away).
        self.h2: HTTP2Connection | None = None
        self.h2_opening: anyio.Event | None = None
        self.h2_changed: anyio.Event | None = None
        self.h1_only = False  # the origin answered with HTTP/1.1: no more waiting for h2
        # Reused from the right (freshest first); the oldest, at the left, expire first.
        self.idle: deque[Connection] = deque()
        self.in_use = 0
        self.waiters: deque[_Waiter] = deque()
        self.in_global_queue = False

    def pop_waiter(self) -> _Waiter | None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.cancelled:
                return waiter
        return None


class ConnectionPool:
    def __init__(
        self,
        *,
        limit: int,
        limit_per_host: int,
        keepalive_timeout: float | None,
        force_close: bool,
        max_idle: int | None = None,
        http2: bool = False,
    ) -> None:
        self.max_idle = max_idle  # httpx's max_keepalive_connections; None: no cap
        self.http2 = http2
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive_timeout = keepalive_timeout
        self._force_close = force_close
        self._hosts: dict[Key, _Host] = {}
        self._global_queue: deque[_Host] = deque()
        # Every connection made idle, in order, with the time it was: expiry reads the left.
        self._idle_order: deque[tuple[Connection | HTTP2Connection, float]] = deque()
        self._timer: Timer | None = None
        self._idle_count = 0
        # In use, response head handed out, body not yet all in, on a pulled stream: `_wait`
        # looks at them when a request queues.
        self.parked: set[Connection] = set()
        self._busy: set[Connection] = set()  # HTTP/1.1 connections in use, closed by aclose
        self._in_use = 0
        self._max_in_use = 0
        # told (origin, protocol, peer address, seconds) as each connection closes
        self.listeners: list[ConnectionListener] = []
        self._closed = False

    # --- slots ---

    def _may_take(self, host: _Host) -> bool:
        return (not self._limit or self._in_use < self._limit) and (
            not self._limit_per_host or host.in_use < self._limit_per_host
        )

    def _take(self, host: _Host) -> None:
        host.in_use += 1
        self._in_use += 1
        if self._in_use > self._max_in_use:
            self._max_in_use = self._in_use

    def _free(self, host: _Host) -> None:
        """Give a slot of `host` back: to its own next waiter, else to a host waiting globally."""
        waiter = host.pop_waiter()
        if waiter is not None:  # the slot changes hands; the counts stay
            waiter.granted = True
            waiter.event.set()
            return
        host.in_use -= 1
        self._in_use -= 1
        queue = self._global_queue
        while queue:
            other = queue.popleft()
            if self._limit_per_host and other.in_use >= self._limit_per_host:
                other.in_global_queue = False  # its own releases will serve it
                continue
            waiter = other.pop_waiter()
            if waiter is None:
                other.in_global_queue = False
                continue
            if other.waiters:
                queue.append(other)  # round robin between hosts
            else:
                other.in_global_queue = False
            self._take(other)
            waiter.granted = True
            waiter.event.set()
            return
        self._forget_if_unused(host)

    def _forget_if_unused(self, host: _Host) -> None:
        if not host.in_use and not host.idle and not host.waiters and host.h2 is None:
            self._hosts.pop(host.key, None)

    async def _wait(self, host: _Host, trace: RequestTrace, timeout: float | None) -> None:
        waiter = _Waiter()
        host.waiters.append(waiter)
        if not host.in_global_queue and (
            not self._limit_per_host or host.in_use < self._limit_per_host
        ):
            host.in_global_queue = True
            self._global_queue.append(host)
        plan = trace.plan
        try:
            if plan.on_connection_queued_start:
                await trace.send(plan.on_connection_queued_start, _params.QUEUED_START)
            if self.parked:
                await self._wait_polling(waiter, timeout)
            elif timeout is None:
                await waiter.event.wait()
            else:
                with anyio.move_on_after(timeout):
                    await waiter.event.wait()
            if not waiter.granted:
                raise PoolTimeoutError(f"Timed out waiting {timeout}s for a connection slot")
            if plan.on_connection_queued_end:
                await trace.send(plan.on_connection_queued_end, _params.QUEUED_END)
        except BaseException:
            if waiter.granted:
                self._free(host)  # pass the turn on
            else:
                waiter.cancelled = True
            raise

    async def _wait_polling(self, waiter: _Waiter, timeout: float | None) -> None:
        """Wait for a slot while in-use connections may hold a body that has arrived unread.

        A pulled (trio) stream learns of arrived bytes only when read; so while queued, look
        now and then without waiting (`read_nowait`): a response that turns out complete
        frees its connection, as on asyncio, where the protocol sees it at once."""
        give_up = math.inf if timeout is None else monotonic() + timeout
        pause = 0.005
        while not waiter.granted:
            for conn in list(self.parked):
                conn.stream.read_nowait()
            if waiter.granted:
                return
            left = give_up - monotonic()
            if left <= 0:
                return
            with anyio.move_on_after(min(pause, left)):
                await waiter.event.wait()
            pause = min(pause * 2, 0.1)

    # --- connections ---

    async def acquire(
        self, key: Key, trace: RequestTrace, wait_timeout: float | None = None
    ) -> Connection | HTTP2Connection | None:
        """A slot for `key` and an idle connection, or None: the caller opens one.

        The slot counts as in use until `release` (or `discard`) gives it back. `wait_timeout`
        bounds the wait in the queue only (httpx's pool timeout), not the handlers' time.
        With HTTP/2 on, a request may instead get a stream of the origin's HTTP/2
        connection (reuse), which takes no slot: the connection holds one for its life."""
        if self._closed:
            raise ClientConnectionError("Connector is closed.")
        order = self._idle_order
        if order and order[0][1] < monotonic() - (self._keepalive_timeout or 0.0):
            self._expire(monotonic())  # (listed only with a keepalive_timeout)
        if self.http2:
            h2 = await self._h2_stream(key, trace, wait_timeout)
            if h2 is not None:
                return h2
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(key)
        limit, per_host = self._limit, self._limit_per_host
        if (not limit or self._in_use < limit) and (not per_host or host.in_use < per_host):
            self._take(host)  # `_may_take`, inline: asked on every request
        else:
            await self._wait(host, trace, wait_timeout)
        if self.http2 and host.h2 is not None:
            h2 = self._give_slot(host)
            if h2 is not None:
                if trace.plan.on_connection_reuseconn:
                    await self.reused(h2, trace)
                return h2
        conn = self._take_idle(host)
        if conn is not None:
            self._busy.add(conn)
            if trace.plan.on_connection_reuseconn:
                await self.reused(conn, trace)
        elif self.http2 and not host.h1_only:
            host.h2_opening = anyio.Event()  # others for this origin wait to see if it is h2
        return conn

    async def reused(self, conn: Connection | HTTP2Connection, trace: RequestTrace) -> None:
        """The one place `on_connection_reuseconn` fires: an idle HTTP/1.1 connection just
        taken (`acquire`, `take_watched`), or a stream of an HTTP/2 one. If a handler fails,
        the connection (or the stream) goes back."""
        try:
            await trace.send(trace.plan.on_connection_reuseconn, _params.REUSECONN)
        except BaseException:
            if isinstance(conn, Connection):
                self.release(conn)
            else:
                self.h2_stream_done(conn, 1)
            raise

    def take_watched(self, key: Key) -> Connection | None:
        """`acquire` for a request whose waits must watch its deadline: an idle connection of
        `key` whose stream watches it (plain TCP on trio), with its slot, if one can be had
        now (the caller then sends `reused`); else None, nothing taken (`acquire` it is, in a
        cancel scope)."""
        if self._closed or self.http2:
            return None
        host = self._hosts.get(key)
        if host is None or not host.idle or not host.idle[-1].stream.watched:
            return None  # (a key's connections are all alike: TLS or not)
        if not self._may_take(host):
            return None
        order = self._idle_order
        if order and order[0][1] < monotonic() - (self._keepalive_timeout or 0.0):
            self._expire(monotonic())  # (listed only with a keepalive_timeout)
        self._take(host)
        conn = self._take_idle(host)
        if conn is None:  # all of them were closed while idle: the slot goes back
            self._free(host)
            return None
        self._busy.add(conn)
        return conn

    # --- HTTP/2 ---

    async def _h2_stream(
        self, key: Key, trace: RequestTrace, timeout: float | None
    ) -> HTTP2Connection | None:
        """A stream on the origin's HTTP/2 connection: waiting for one being opened, or
        (queued signals, once) for a stream to end at the server's limit. None if there is no
        usable HTTP/2 connection, or it is idle and no slot is free: then the caller takes the
        ordinary way (a slot, queueing for one) and `_give_slot` hands the slot to it."""
        queued = False
        plan = trace.plan
        while True:
            host = self._hosts.get(key)
            if host is None:
                return None
            h2 = host.h2
            if h2 is not None and not h2.usable:
                h2 = None
            if queued and (h2 is None or h2.has_capacity()):
                queued = False  # the queue is over, however it ended: its end signal first
                if plan.on_connection_queued_end:
                    await trace.send(plan.on_connection_queued_end, _params.QUEUED_END)
                continue
            if h2 is not None and h2.has_capacity():
                if not h2.holds_slot:  # idle: it needs a slot again
                    if not self._may_take(host):
                        return None
                    self._take(host)
                    h2.holds_slot = True
                h2.reserved += 1
                h2.idle_since = 0.0
                if plan.on_connection_reuseconn:
                    await self.reused(h2, trace)
                return h2
            if h2 is not None:  # at the server's stream limit: wait for a stream to end
                changed = host.h2_changed = host.h2_changed or anyio.Event()
                if not queued:
                    queued = True
                    if plan.on_connection_queued_start:
                        await trace.send(plan.on_connection_queued_start, _params.QUEUED_START)
                with anyio.move_on_after(timeout) as scope:
                    await changed.wait()
                if scope.cancelled_caught:
                    raise PoolTimeoutError(f"Timed out waiting {timeout}s for an HTTP/2 stream")
                continue
            opening = host.h2_opening
            if opening is None:
                return None
            await opening.wait()

    def _give_slot(self, host: _Host) -> HTTP2Connection | None:
        """A slot just taken for `host` goes to its idle HTTP/2 connection, if it has one."""
        h2 = host.h2
        if h2 is None or h2.holds_slot or not h2.usable or not h2.has_capacity():
            return None
        h2.holds_slot = True
        h2.reserved += 1
        h2.idle_since = 0.0
        return h2

    def opened(self, key: Key, conn: Connection | HTTP2Connection | None) -> None:
        """The connection a request opened for `key` is up (or failed: None); an HTTP/2 one
        becomes the origin's, shared from now on."""
        if conn is not None and self.listeners:
            self._time(key, conn)
        host = self._hosts.get(key)
        if host is None:
            return
        if isinstance(conn, Connection):
            self._busy.add(conn)
            host.h1_only = True
        elif conn is not None:
            host.h2 = conn
            conn.reserved += 1
            conn.holds_slot = True
        opening, host.h2_opening = host.h2_opening, None
        if opening is not None:
            opening.set()

    def _time(self, key: Key, conn: Connection | HTTP2Connection) -> None:
        """Tell the listeners how long `conn` lived when it closes (connection metrics)."""
        opened = monotonic()
        stream = conn.stream
        protocol = "HTTP/2" if conn.http2 else "HTTP/1.1"
        peer = stream.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else None
        origin = (str(key[0]), str(key[1]), key[2] if isinstance(key[2], int) else 0)
        listeners = self.listeners

        def closed() -> None:
            lived = monotonic() - opened
            for listener in listeners:
                listener(origin, protocol, address, lived)

        stream.on_close = closed

    def h2_stream_done(self, conn: HTTP2Connection, streams: int) -> None:
        """`streams` of `conn` ended (0: it changed otherwise, e.g. GOAWAY). An HTTP/2
        connection with no stream gives its slot back (as an idle HTTP/1.1 one holds none);
        one that cannot carry more is closed once its last stream ends."""
        conn.reserved -= streams
        host = self._hosts.get(conn.key)
        if host is None:
            return
        changed, host.h2_changed = host.h2_changed, None
        if changed is not None:
            changed.set()
        if conn.reserved > 0:
            return
        if not conn.usable:
            if host.h2 is conn:
                host.h2 = None
            conn.stream.close()
        elif self._keepalive_timeout is not None and not self._closed:
            now = monotonic()  # idle: expires like an idle HTTP/1.1 connection
            conn.idle_since = now
            self._idle_order.append((conn, now))
            if self._timer is None:
                self._arm_timer(self._keepalive_timeout)
        if conn.holds_slot:
            conn.holds_slot = False
            self._free(host)

    def _take_idle(self, host: _Host) -> Connection | None:
        idle = host.idle
        timeout = self._keepalive_timeout
        now = monotonic() if idle and timeout is not None else 0.0
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            since, conn.idle_since = conn.idle_since, 0.0
            if (timeout is None or now - since <= timeout) and conn.idle_ok():
                return conn
            conn.close()
        return None

    def release(self, conn: Connection) -> None:
        """A connection is done with a request: idle if it can carry another, else closed."""
        self.parked.discard(conn)
        self._busy.discard(conn)
        host = self._hosts[conn.key]
        if (
            not self._closed
            and not self._force_close
            and conn.reusable
            and (self.max_idle is None or self._idle_count < self.max_idle)
        ):
            now = monotonic()
            conn.idle_since = now
            host.idle.append(conn)
            self._idle_count += 1
            if self._keepalive_timeout is not None:
                order = self._idle_order
                order.append((conn, now))
                if len(order) > 64 and len(order) > 4 * self._idle_count:
                    # entries of connections taken since: dropped in one pass, amortised O(1)
                    self._idle_order = deque(e for e in order if e[0].idle_since == e[1])
                if self._timer is None:
                    self._arm_timer(self._keepalive_timeout)
            if host.waiters or self._global_queue:
                self._free(host)
            else:  # `_free` when nobody waits; the host has an idle connection: kept
                host.in_use -= 1
                self._in_use -= 1
            order = self._idle_order
            if order and order[0][1] < now - (self._keepalive_timeout or 0.0):
                self._expire(now)
            return
        conn.close()
        self._free(host)

    def discard(self, key: Key, conn: Connection | None) -> None:
        """Free the slot of a request whose connection failed (or was never opened)."""
        if conn is not None:
            self._busy.discard(conn)
            conn.close()
        self.opened(key, None)
        self._free(self._hosts[key])

    def _expire(self, now: float) -> None:
        """Close idle connections past `keepalive_timeout`, whatever their host: O(expired)."""
        timeout = self._keepalive_timeout
        if timeout is None:
            return  # idle connections never expire
        order = self._idle_order
        deadline = now - timeout
        while order and order[0][1] < deadline:
            conn, since = order.popleft()
            if conn.idle_since != since:
                continue  # taken since, and maybe idle again (listed again then)
            if conn.http2:  # an HTTP/2 connection with no stream since `since`
                assert not isinstance(conn, Connection)
                h2_host = self._hosts.get(conn.key)
                conn.idle_since = 0.0
                conn.goaway = True
                conn.stream.close()
                if h2_host is not None and h2_host.h2 is conn:
                    h2_host.h2 = None
                    self._forget_if_unused(h2_host)
                continue
            assert isinstance(conn, Connection)
            host = self._hosts.get(conn.key)
            if host is not None:
                host.idle.remove(conn)
                self._idle_count -= 1
                conn.idle_since = 0.0
                conn.close()
                self._forget_if_unused(host)

    def _arm_timer(self, delay: float) -> None:
        self._timer = call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = monotonic()
        self._expire(now)
        order = self._idle_order
        if order and self._keepalive_timeout is not None and not self._closed:
            self._arm_timer(max(order[0][1] + self._keepalive_timeout - now, 0.01))

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when released."""
        self._closed = True
        for conn in list(self._busy):  # as aiohttp: in-use connections are closed too
            conn.close()
        self._idle_order.clear()
        self._idle_count = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for host in list(self._hosts.values()):
            if host.h2 is not None:
                h2, host.h2 = host.h2, None
                h2.goaway = True
                h2.close()
            idle, host.idle = host.idle, deque()
            for conn in idle:
                conn.close()
            self._forget_if_unused(host)

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> PoolStats:
        hosts = {
            f"{h.key[0]}://{h.key[1]}:{h.key[2]}": HostStats(
                in_use=h.in_use,
                idle=len(h.idle),
                waiting=sum(not w.cancelled for w in h.waiters),
            )
            for h in self._hosts.values()
        }
        return PoolStats(
            in_use=self._in_use,
            idle=sum(s.idle for s in hosts.values()),
            waiting=sum(s.waiting for s in hosts.values()),
            max_in_use=self._max_in_use,
            hosts=hosts,
        )
