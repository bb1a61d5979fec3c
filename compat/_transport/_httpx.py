"""The engine behind httpx's own transport class.

`httpx.AsyncHTTPTransport.handle_async_request` turns an httpx request into an httpcore one
and hands it to `self._pool`; `EnginePool` is such a pool, over the engine. Keeping httpx's
transport class (and its method) is what lets code that patches or wraps it (OpenTelemetry's
and logfire's httpx instrumentation, pytest-httpx) see requests made through compat.

The trace of a request comes in its extensions (`TRACE_EXTENSION`), never through shared
state, so clients sharing one connector never mix signals.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx

from .._exceptions import to_httpx_error
from .._models import HttpVersion
from .._tracing import NO_TRACE, RequestTrace
from ._connection import Body, Exchange
from ._engine import Engine
from ._mocked import httpcore_mocked, via_httpcore

__all__ = ["EXCHANGE_EXTENSION", "TRACE_EXTENSION", "EnginePool", "engine_transport"]

TRACE_EXTENSION = "compat.trace"
"""Request extension carrying the request's `RequestTrace` to the engine."""

EXCHANGE_EXTENSION = "compat.exchange"
"""Response extension: the engine's `Exchange` behind a response."""

_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class EnginePool:
    """httpcore's pool interface (what httpx's transport calls) over the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        extensions = request.extensions
        trace: RequestTrace = extensions.get(TRACE_EXTENSION, NO_TRACE)
        url = request.url
        scheme = url.scheme
        port = url.port or _DEFAULT_PORTS.get(scheme)
        if port is None:
            raise httpx.UnsupportedProtocol(f"Unsupported URL scheme {scheme.decode()!r}")
        if httpcore_mocked():
            return await via_httpcore(request, port)
        timeouts: dict[str, float | None] = extensions.get("timeout", {})
        stream: Any = request.stream
        body: Body = b"".join(stream) if isinstance(stream, httpx.ByteStream) else stream
        try:
            exchange = await self.engine.send(
                (scheme.decode("ascii"), url.host.decode("ascii"), port, True, None),
                request.method.decode("ascii", "replace"),
                url.target.decode("ascii"),
                list(request.headers),
                body,
                trace,
                read_timeout=timeouts.get("read"),
                connect_timeout=timeouts.get("connect"),
                pool_timeout=timeouts.get("pool"),
                hold=True,  # httpx's pool counts a response as using its connection until closed
            )
        except Exception as exc:
            mapped = to_httpx_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        return httpcore.Response(
            status=exchange.status,
            headers=exchange.raw_headers,
            content=_ExchangeStream(exchange),
            extensions={
                "http_version": _http_version(exchange.version),
                "reason_phrase": exchange.reason,
                "network_stream": NetworkStreamInfo(exchange),
                EXCHANGE_EXTENSION: exchange,
            },
        )

    async def aclose(self) -> None:
        """The connector's owner closes it; a transport over a shared one leaves it open."""

    async def __aenter__(self) -> EnginePool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def engine_transport(engine: Engine) -> httpx.AsyncHTTPTransport:
    """An `httpx.AsyncHTTPTransport` whose pool is the engine (no request-level signals)."""
    transport = httpx.AsyncHTTPTransport.__new__(httpx.AsyncHTTPTransport)
    transport._pool = EnginePool(engine)  # type: ignore[assignment]
    return transport


class _ExchangeStream:
    """The response body as it came off the wire (httpx decodes it above the transport)."""

    __slots__ = ("_exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self._exchange.read
        try:
            while chunk := await read(65536):
                yield chunk
        except Exception as exc:
            mapped = to_httpx_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        self._exchange.close()


class NetworkStreamInfo:
    """httpcore's `network_stream` extension, for code that asks it for socket details."""

    __slots__ = ("_exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def get_extra_info(self, info: str) -> Any:
        stream = self._exchange.stream
        if stream is None:
            return None
        return stream.get_extra_info(_EXTRA_NAMES.get(info, info))


_EXTRA_NAMES = {"server_addr": "peername", "client_addr": "sockname"}


def _http_version(version: HttpVersion) -> bytes:
    """httpcore's spelling of a version: b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2"."""
    major, minor = version
    return b"HTTP/%d" % major if major >= 2 else b"HTTP/%d.%d" % (major, minor)
