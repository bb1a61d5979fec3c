"""`TracingTransport`: an httpx transport over our pool, firing the wire-level signals.

It speaks httpx both ways (httpx requests in, httpx responses and exceptions out), so it also
serves a plain `httpx.AsyncClient`. The session hands each request's trace over in the
request's extensions, never through shared state, so requests of different sessions sharing
one connector never mix signals.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from time import monotonic
from typing import Any

import anyio
import httpcore
import httpx

from ._exceptions import to_httpx_error
from ._params import (
    RequestSentParams,
    ResponseHeadersReceivedParams,
    TraceRequestChunkSentParams,
    TraceRequestHeadersSentParams,
)
from ._pool import Connection, ConnectionPool, Key
from ._tracing import NO_TRACE, RequestTrace

__all__ = ["TRACE_EXTENSION", "TracingTransport"]

TRACE_EXTENSION = "compat.trace"
"""Request extension carrying the request's `RequestTrace` from the session to the transport."""

RESPONSE_EXTENSION = "compat.response"
"""Set by the transport on the request: its response, for the session to find when httpx
rejects a response it returned (a Location header httpx cannot parse)."""

CONNECT_BUDGET_EXTENSION = "compat.connect_budget"
"""Seconds for queueing *and* opening together: aiohttp's `ClientTimeout.connect`."""

_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class TracingTransport(httpx.AsyncBaseTransport):
    def __init__(self, pool: ConnectionPool, *, owns_pool: bool = True) -> None:
        self._pool = pool
        self._owns_pool = owns_pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        trace: RequestTrace = request.extensions.get(TRACE_EXTENSION, NO_TRACE)
        url = request.url
        scheme = url.raw_scheme
        port = url.port or _DEFAULT_PORTS.get(scheme)
        if port is None:
            raise httpx.UnsupportedProtocol(f"Unsupported URL scheme {url.scheme!r}")
        key: Key = (scheme, url.raw_host, port)
        extensions = request.extensions
        timeouts: dict[str, float | None] = extensions.get("timeout", {})
        conn = await self._acquire(key, trace, timeouts, extensions)

        plan = trace.plan
        content: Any = request.stream
        if plan.on_request_headers_sent or plan.on_request_chunk_sent or plan.on_request_sent:
            content = _traced_body(content, trace)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=scheme, host=url.raw_host, port=port, target=url.raw_path),
            headers=request.headers.raw,
            content=content,
            extensions=extensions,
        )
        try:
            core_response = await conn.handle_async_request(core_request)
            if plan.on_response_headers_received:
                await trace.send(
                    plan.on_response_headers_received,
                    ResponseHeadersReceivedParams(trace.method, trace.url, core_response.status),
                )
        except BaseException as exc:
            if content is not request.stream:
                with anyio.CancelScope(shield=True):
                    await content.aclose()
            await self._pool.discard(key, conn)
            mapped = to_httpx_error(exc, request) if isinstance(exc, Exception) else exc
            if mapped is exc:
                raise
            raise mapped from exc
        response = httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_PooledResponseStream(core_response, self._pool, key, conn),
            extensions=core_response.extensions,
            request=request,
        )
        extensions[RESPONSE_EXTENSION] = response
        return response

    async def _acquire(
        self,
        key: Key,
        trace: RequestTrace,
        timeouts: dict[str, float | None],
        extensions: dict[str, Any],
    ) -> Connection:
        budget: float | None = extensions.get(CONNECT_BUDGET_EXTENSION)
        pool_timeout = timeouts.get("pool")
        if budget is None and pool_timeout is None:
            return await self._pool.acquire(key, trace)
        wait = pool_timeout if budget is None else budget
        started = monotonic()
        try:
            with anyio.fail_after(wait):
                conn = await self._pool.acquire(key, trace)
        except TimeoutError as exc:
            raise httpx.PoolTimeout(f"Timed out waiting for a connection to {key!r}") from exc
        if budget is not None:  # what is left of the budget bounds the opening too
            left = max(budget - (monotonic() - started), 0.0)
            connect = timeouts.get("connect")
            extensions["timeout"] = {
                **timeouts,
                "connect": left if connect is None else min(connect, left),
            }
        return conn

    async def aclose(self) -> None:
        if self._owns_pool:
            await self._pool.aclose()


async def _traced_body(stream: AsyncIterable[bytes], trace: RequestTrace) -> AsyncIterator[bytes]:
    """The request body as httpcore writes it: httpcore asks for the first chunk right after
    the head is written, and for each next chunk once the previous one is written."""
    plan = trace.plan
    chunks = stream.__aiter__()
    try:
        if plan.on_request_headers_sent:
            await trace.send(
                plan.on_request_headers_sent,
                TraceRequestHeadersSentParams(trace.method, trace.url, trace.headers),
            )
        async for chunk in chunks:
            if not chunk:
                continue
            yield chunk
            if plan.on_request_chunk_sent:
                await trace.send(
                    plan.on_request_chunk_sent,
                    TraceRequestChunkSentParams(trace.method, trace.url, bytes(chunk)),
                )
        if plan.on_request_sent:
            await trace.send(plan.on_request_sent, RequestSentParams(trace.method, trace.url))
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:  # a body left unfinished by a failure: close it now, not at GC
            await close()


class _PooledResponseStream(httpx.AsyncByteStream):
    """The response body; closing it gives the connection back to the pool, exactly once."""

    def __init__(
        self, response: httpcore.Response, pool: ConnectionPool, key: Key, conn: Connection
    ) -> None:
        self._response = response
        self._pool = pool
        self._key = key
        self._conn: Connection | None = conn

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream = self._response.stream
        assert isinstance(stream, AsyncIterable)
        try:
            async for part in stream:
                yield part
        except Exception as exc:
            mapped = to_httpx_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            with anyio.CancelScope(shield=True):
                await self._response.aclose()
        finally:
            await self._pool.release(self._key, conn)
