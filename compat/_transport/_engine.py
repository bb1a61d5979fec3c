"""The engine: one request hop, from a pool slot to the response head.

Both entry points send through it: `ClientSession` calls `send` directly (no httpx objects on
its hot path), and `EngineTransport` adapts it to httpx for `traced_client`.
"""

from __future__ import annotations

import ssl
from time import monotonic
from typing import TYPE_CHECKING

import anyio

from .._exceptions import ConnectionTimeoutError
from .._tracing import RequestTrace
from ._backends import WATCHED, NetworkStream
from ._connection import (
    DEFAULT_LIMITS,
    Body,
    Exchange,
    HTTP11Connection,
    Limits,
    is_token,
    request_head,
    request_head_bytes,
)
from ._dns import Resolver
from ._opener import Opener, Route
from ._pool import ConnectionPool

if TYPE_CHECKING:  # h2 is an optional extra: imported only when HTTP/2 is used
    from ._http2 import HTTP2Connection

__all__ = ["Engine"]


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
        http2: bool = False,
        http1: bool = True,
        proxy_ssl_context: ssl.SSLContext | None = None,
        happy_eyeballs_delay: float | None = 0.25,
        interleave: int | None = None,
    ) -> None:
        self.http2 = http2
        self.http1 = http1
        self.pool = pool
        self.resolver = resolver
        self.opener = Opener(
            resolver,
            ssl_context,
            local_host,
            unix_path,
            proxy_ssl_context=proxy_ssl_context,
            happy_eyeballs_delay=happy_eyeballs_delay,
            interleave=interleave,
        )
        self.opener.h2_prior_knowledge = http2 and not http1

    async def send(
        self,
        key: Route,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | list[tuple[bytes, bytes]],
        body: Body,
        trace: RequestTrace,
        *,
        read_timeout: float | None = None,
        connect_timeout: float | None = None,
        connect_budget: float | None = None,
        pool_timeout: float | None = None,
        write_timeout: float | None = None,
        read_bufsize: int = 2**18,
        hold: bool = False,
        limits: Limits = DEFAULT_LIMITS,
    ) -> Exchange:
        """Write the request on a pooled or new connection; return once the head is in.

        `connect_budget` bounds queueing and opening together (aiohttp's
        `ClientTimeout.connect`); `connect_timeout` bounds opening alone (`sock_connect`);
        `pool_timeout` bounds waiting in the pool's queue alone (httpx's `pool`)."""
        if not is_token(method):
            raise ValueError(f"Method cannot contain non-token characters: {method!r}")
        if headers and isinstance(headers[0][0], bytes):
            head = request_head_bytes(method, target, headers)
        else:
            head = request_head(method, target, headers)  # type: ignore[arg-type]
        pool = self.pool
        watched = WATCHED.get()
        if watched is not None:
            # A request whose deadline is watched (trio, no code but ours and guarded handlers;
            # see `Deadline`): on an idle plain-TCP connection, with a bytes body, its only
            # waits are the socket's, which watch the deadline themselves. Any other way (a new
            # connection, queueing, TLS, HTTP/2, a connect budget, which bounds the reuse
            # signal's handlers as aiohttp's) runs as an ordinary request, inside a cancel
            # scope of its own.
            idle = (
                pool.take_watched(key)
                if connect_budget is None and (body is None or isinstance(body, bytes))
                else None
            )
            if idle is not None and trace.plan.on_connection_reuseconn:
                await pool.reused(idle, trace)
            if idle is None:
                with watched.covering():
                    return await self.send(
                        key,
                        method,
                        target,
                        headers,
                        body,
                        trace,
                        read_timeout=read_timeout,
                        connect_timeout=connect_timeout,
                        connect_budget=connect_budget,
                        pool_timeout=pool_timeout,
                        write_timeout=write_timeout,
                        read_bufsize=read_bufsize,
                        hold=hold,
                        limits=limits,
                    )
            conn: HTTP11Connection | HTTP2Connection | None = idle
        elif connect_budget is None:
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
            conn = await self._open(key, trace, connect_timeout)
        exchange = Exchange(method, trace, read_timeout, 2 * read_bufsize, limits)
        exchange.hold = hold
        exchange.write_timeout = write_timeout
        try:
            if isinstance(conn, HTTP11Connection):
                await conn.request(exchange, head, body)
            else:
                await conn.request(exchange, *_h2_fields(key, method, target, headers), body)
        except BaseException:
            conn.abort(exchange)
            if exchange.release_pending:  # a held (or upgraded) connection: its slot back
                exchange.close()
            if conn.needs_flush:  # HTTP/2 on trio: the stream's reset goes out now
                await exchange.aclose()
            raise
        return exchange

    async def _open(
        self, key: Route, trace: RequestTrace, timeout: float | None
    ) -> HTTP11Connection | HTTP2Connection:
        """A new connection for the slot just taken: HTTP/2 if the server agreed (ALPN) or
        if asked for by prior knowledge, else HTTP/1.1."""
        pool = self.pool
        try:
            stream = await self.opener.open(key, trace, timeout)
            if self.http2 and _speaks_h2(stream, key, self.http1):
                from ._http2 import HTTP2Connection

                h2 = HTTP2Connection(stream, key, pool.h2_stream_done)
                try:
                    with anyio.fail_after(timeout):
                        await h2.start()
                except TimeoutError as exc:
                    stream.close()
                    raise ConnectionTimeoutError(
                        f"Connection timeout to host {key[1]}:{key[2]} (HTTP/2 settings)"
                    ) from exc
                except BaseException:
                    stream.close()
                    raise
                pool.opened(key, h2)
                return h2
        except BaseException:
            pool.discard(key, None)
            raise
        conn = HTTP11Connection(stream, key, pool.release, pool.parked if stream.pulls else None)
        pool.opened(key, conn)
        return conn


def _speaks_h2(stream: NetworkStream, key: Route, http1: bool) -> bool:
    ssl_object = stream.get_extra_info("ssl_object")
    if ssl_object is not None:
        return bool(ssl_object.selected_alpn_protocol() == "h2")
    return not http1 and key[0] == "http"  # prior knowledge, as httpx's http1=False


def _h2_fields(
    key: Route,
    method: str,
    target: str,
    headers: list[tuple[str, str]] | list[tuple[bytes, bytes]],
) -> tuple[bytes, bytes, bytes, bytes, list[tuple[bytes, bytes]]]:
    """HTTP/2's pseudo-header values and the other headers, as bytes."""
    fields: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if isinstance(name, bytes) and isinstance(value, bytes):
            fields.append((name, value))
        elif isinstance(name, str) and isinstance(value, str):
            fields.append((name.encode(), value.encode()))
    authority = next((v for k, v in fields if k.lower() == b"host"), None)
    if authority is None:
        scheme, host, port = key[0], key[1], key[2]
        default = port == (443 if scheme == "https" else 80)
        authority = (host if default else f"{host}:{port}").encode()
    return method.encode(), authority, key[0].encode(), target.encode(), fields
