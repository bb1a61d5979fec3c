"""The connection pool: limits, queueing, keep-alive reuse, over httpcore's connections.

A request first takes a *slot* (at most `limit` in use in all, `limit_per_host` per host; 0 is
no limit), queueing if none is free (queued start/end), then an idle connection of its host
(reuseconn) or a new, not yet opened one (whose opening fires create start/end in
`_network`). A freed slot is handed straight to a waiter, so the limits are exact and no
waiter is overtaken by a newcomer. Every operation is O(1) in connections and waiters:
cancelled waiters are dropped lazily, and hosts waiting only for a global slot take turns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic

import anyio
import httpcore

from ._params import (
    TraceConnectionQueuedEndParams,
    TraceConnectionQueuedStartParams,
    TraceConnectionReuseconnParams,
)
from ._tracing import RequestTrace

__all__ = ["ConnectionPool", "HostStats", "Key", "PoolStats"]

Key = tuple[bytes, bytes, int]
"""(scheme, host, port) of an origin."""

_QUEUED_START = TraceConnectionQueuedStartParams()
_QUEUED_END = TraceConnectionQueuedEndParams()
_REUSECONN = TraceConnectionReuseconnParams()

Connection = httpcore.AsyncHTTPConnection
NewConnection = Callable[[Key, RequestTrace], Connection]


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
    __slots__ = ("idle", "in_global_queue", "in_use", "key", "waiters")

    def __init__(self, key: Key) -> None:
        self.key = key
        # Reused from the right (freshest first); the oldest, at the left, expire first.
        self.idle: deque[tuple[Connection, float]] = deque()
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
        new_connection: NewConnection,
        *,
        limit: int,
        limit_per_host: int,
        keepalive_timeout: float | None,
        force_close: bool,
    ) -> None:
        self._new_connection = new_connection
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive_timeout = keepalive_timeout
        self._force_close = force_close
        self._hosts: dict[Key, _Host] = {}
        self._global_queue: deque[_Host] = deque()
        self._in_use = 0
        self._max_in_use = 0
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
        if not host.in_use and not host.idle and not host.waiters:
            self._hosts.pop(host.key, None)

    async def _wait(self, host: _Host, trace: RequestTrace) -> None:
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
                await trace.send(plan.on_connection_queued_start, _QUEUED_START)
            await waiter.event.wait()
            if plan.on_connection_queued_end:
                await trace.send(plan.on_connection_queued_end, _QUEUED_END)
        except BaseException:
            if waiter.granted:
                self._free(host)  # pass the turn on
            else:
                waiter.cancelled = True
            raise

    # --- connections ---

    async def acquire(self, key: Key, trace: RequestTrace) -> Connection:
        """A connection for `key`, counted in use until `release` or `discard`."""
        if self._closed:
            raise httpcore.ConnectError("Connector is closed.")
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(key)
        if self._may_take(host):
            self._take(host)
        else:
            await self._wait(host, trace)
        try:
            conn = await self._take_idle(host)
            if conn is None:
                return self._new_connection(key, trace)
            try:
                plan = trace.plan
                if plan.on_connection_reuseconn:
                    await trace.send(plan.on_connection_reuseconn, _REUSECONN)
            except BaseException:
                host.idle.append((conn, monotonic()))
                raise
            return conn
        except BaseException:
            self._free(host)
            raise

    async def _take_idle(self, host: _Host) -> Connection | None:
        idle = host.idle
        while idle:
            conn, since = idle.pop()
            if (
                self._keepalive_timeout is None or monotonic() - since <= self._keepalive_timeout
            ) and not conn.has_expired():
                return conn
            with anyio.CancelScope(shield=True):
                await conn.aclose()
        return None

    async def release(self, key: Key, conn: Connection) -> None:
        """Back to the pool when it can carry another request, else closed."""
        host = self._hosts[key]
        if not self._closed and not self._force_close and conn.is_idle():
            now = monotonic()
            host.idle.append((conn, now))
            self._free(host)
            await self._close_oldest_if_expired(host, now)
            return
        self._free(host)
        with anyio.CancelScope(shield=True):
            await conn.aclose()

    async def _close_oldest_if_expired(self, host: _Host, now: float) -> None:
        """One expired idle connection closed per release: after a burst, the connections it
        opened do not stay open (and half-closed by the server) for the life of the pool."""
        idle = host.idle
        timeout = self._keepalive_timeout
        if timeout is not None and len(idle) > 1 and now - idle[0][1] > timeout:
            conn, _ = idle.popleft()
            with anyio.CancelScope(shield=True):
                await conn.aclose()

    async def discard(self, key: Key, conn: Connection) -> None:
        """Close a connection whose request failed, and free its slot."""
        self._free(self._hosts[key])
        with anyio.CancelScope(shield=True):
            await conn.aclose()

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when released."""
        self._closed = True
        for host in list(self._hosts.values()):
            idle, host.idle = host.idle, deque()
            for conn, _ in idle:
                with anyio.CancelScope(shield=True):
                    await conn.aclose()
            self._forget_if_unused(host)

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> PoolStats:
        hosts = {
            f"{h.key[0].decode()}://{h.key[1].decode()}:{h.key[2]}": HostStats(
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
