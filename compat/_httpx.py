"""The httpx-native entry point: aiohttp-style tracing for a plain `httpx.AsyncClient`.

    client = compat.traced_client(trace_configs=[config])          # or, by hand:
    client = httpx.AsyncClient(transport=compat.TracedTransport(trace_configs=[config]))

httpx follows redirects itself and calls its transport once per hop, so here each hop is a
request of its own: `on_request_start` / `_end` / `_exception` fire per hop, and there is no
`on_request_redirect`. httpx decodes the body above its transport, so
`on_response_chunk_received` carries the body as it came off the wire (still compressed, if it
was). Every connection, DNS, headers-sent and request-chunk signal fires exactly as under
`ClientSession`. Errors stay httpx's own exceptions, as httpx users expect.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._connector import TCPConnector
from ._exceptions import ConnectionKey
from ._models import RequestInfo
from ._response import ClientResponse, body_progress
from ._tracing import RequestTrace, Tracer
from ._transport._connection import Exchange
from ._transport._httpx import EXCHANGE_EXTENSION, TRACE_EXTENSION

__all__ = ["TracedTransport", "traced_client"]

TRACE_REQUEST_CTX_EXTENSION = "trace_request_ctx"
"""Request extension whose value reaches each trace config's context factory."""


def _ignore(_: Exchange) -> None:
    """The response views given to handlers never own their response."""


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield


def _exchange_of(response: httpx.Response, method: str, trace: RequestTrace) -> Exchange:
    """The engine's exchange behind `response`, or a head-only stand-in (a mocked response)."""
    exchange = response.extensions.get(EXCHANGE_EXTENSION)
    if isinstance(exchange, Exchange):
        return exchange
    return Exchange.from_source(
        method,
        trace,
        status=response.status_code,
        reason=response.extensions.get("reason_phrase", b""),
        raw_headers=list(response.headers.raw),
        source=_no_body(),
    )


class TracedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over a compat connector that fires the trace configs' signals."""

    def __init__(
        self,
        *,
        trace_configs: tuple[Any, ...] | list[Any] = (),
        connector: TCPConnector | None = None,
    ) -> None:
        self._owns_connector = connector is None
        self.connector = connector if connector is not None else TCPConnector()
        self._transport = self.connector.transport()
        self._tracer = Tracer(self, tuple(trace_configs))

    def bind(self, owner: object) -> None:
        """Make `owner` (the httpx client) the `session` argument handlers receive."""
        self._tracer.owner = owner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        tracer = self._tracer
        trace = tracer.start(request.extensions.get(TRACE_REQUEST_CTX_EXTENSION))
        method = request.method
        url = URL(str(request.url), encoded=True)
        if url.user is not None or url.password is not None:
            url = url.with_user(None)  # credentials go in a header, never into params
        headers = CIMultiDict(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
        )
        if tracer.on_request_start:
            await trace.request_start(method, url, headers)
            request.headers = httpx.Headers(list(headers.items()))
        trace.method, trace.url, trace.headers = method, url, headers
        request.extensions[TRACE_EXTENSION] = trace
        response: httpx.Response | None = None
        try:
            response = await self._transport.handle_async_request(request)
            if tracer.on_response_chunk_received or tracer.on_response_body_complete:
                response.stream = _ObservedBody(response.stream, trace, method, url)
            if tracer.on_request_end:
                view = ClientResponse(
                    method,
                    url,
                    _exchange_of(response, method, trace),
                    RequestInfo(url, method, CIMultiDictProxy(headers), url),
                    trace,
                    ConnectionKey(url.host or "", url.port, url.scheme == "https"),
                    math.inf,
                    _ignore,
                )
                await trace.request_end(method, url, headers, view)
            return response
        except BaseException as exc:
            if response is not None:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
            if tracer.on_request_exception:
                await trace.request_exception(method, url, headers, exc)
            raise

    async def aclose(self) -> None:
        if self._owns_connector:
            await self.connector.close()


class _ObservedBody(httpx.AsyncByteStream):
    """The response body as httpx reads it, reported chunk by chunk."""

    def __init__(self, stream: Any, trace: RequestTrace, method: str, url: URL) -> None:
        self._stream = stream
        self._trace = trace
        self._method = method
        self._url = url

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._stream:
            if chunk:
                received += len(chunk)
                await body_progress(self._trace, self._method, self._url, chunk, received)
            yield chunk
        await body_progress(self._trace, self._method, self._url, b"", received)

    async def aclose(self) -> None:
        await self._stream.aclose()


def traced_client(
    *,
    trace_configs: tuple[Any, ...] | list[Any] = (),
    connector: TCPConnector | None = None,
    **client_kwargs: Any,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` over a `TracedTransport`; handlers receive the client."""
    transport = TracedTransport(trace_configs=trace_configs, connector=connector)
    client = httpx.AsyncClient(transport=transport, **client_kwargs)
    transport.bind(client)
    return client
