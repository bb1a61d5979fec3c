"""The engine: one request hop, from a pool slot to the response head.

Both entry points send through it: `ClientSession` calls `send` directly (no httpx objects on
its hot path), and `EngineTransport` adapts it to httpx for `traced_client`.
"""

from __future__ import annotations

import re
import ssl
from time import monotonic

import anyio

from .._exceptions import ConnectionTimeoutError
from .._tracing import RequestTrace
from ._connection import Body, Exchange, HTTP11Connection
from ._dns import Resolver
from ._opener import Opener, Route
from ._pool import ConnectionPool

__all__ = ["Engine"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class Engine:
    """A connector's pool, resolver and opener, and how a request crosses them."""

    def __init__(
        self,
        *,
        pool: ConnectionPool,
        resolver: Resolver,
        ssl_context: ssl.SSLContext,
        local_host: str | None,
        unix_path: str | None = None,
    ) -> None:
        self.pool = pool
        self.resolver = resolver
        self.opener = Opener(resolver, ssl_context, local_host, unix_path)

    async def send(
        self,
        key: Route,
        method: str,
        head: bytes,
        body: Body,
        trace: RequestTrace,
        *,
        read_timeout: float | None = None,
        connect_timeout: float | None = None,
        connect_budget: float | None = None,
        pool_timeout: float | None = None,
        read_bufsize: int = 2**18,
    ) -> Exchange:
        """Write the request on a pooled or new connection; return once the head is in.

        `connect_budget` bounds queueing and opening together (aiohttp's
        `ClientTimeout.connect`); `connect_timeout` bounds opening alone (`sock_connect`);
        `pool_timeout` bounds waiting in the pool's queue alone (httpx's `pool`)."""
        if not _TOKEN.fullmatch(method):
            raise ValueError(f"Method cannot contain non-token characters: {method!r}")
        pool = self.pool
        if connect_budget is None:
            conn = await pool.acquire(key, trace, pool_timeout)
        else:
            started = monotonic()
            with anyio.move_on_after(connect_budget) as scope:
                conn = await pool.acquire(key, trace)
            if scope.cancelled_caught:
                raise ConnectionTimeoutError(
                    f"Connection timeout to host {key[1]}:{key[2]} (waiting for a connection)"
                )
            left = max(connect_budget - (monotonic() - started), 0.0)
            connect_timeout = left if connect_timeout is None else min(connect_timeout, left)
        if conn is None:
            try:
                stream = await self.opener.open(key, trace, connect_timeout)
            except BaseException:
                pool.discard(key, None)
                raise
            conn = HTTP11Connection(
                stream, key, pool.release, pool.parked if stream.pulls else None
            )
        exchange = Exchange(method, trace, read_timeout, 2 * read_bufsize)
        try:
            await conn.request(exchange, head, body)
        except BaseException:
            conn.abort(exchange)
            raise
        return exchange
