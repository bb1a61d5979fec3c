"""`EngineTransport`: the engine as an httpx transport, for a plain `httpx.AsyncClient`.

It speaks httpx both ways: httpx requests in, httpx responses and exceptions out. The trace of
a request comes in its extensions (`TRACE_EXTENSION`), never through shared state, so
clients sharing one connector never mix signals.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .._exceptions import to_httpx_error
from .._tracing import NO_TRACE, RequestTrace
from ._connection import Body, Exchange
from ._engine import Engine
from ._mocked import httpcore_mocked, via_httpcore

__all__ = ["EXCHANGE_EXTENSION", "TRACE_EXTENSION", "EngineTransport"]

TRACE_EXTENSION = "compat.trace"
"""Request extension carrying the request's `RequestTrace` to the transport."""

EXCHANGE_EXTENSION = "compat.exchange"
"""Response extension: the engine's `Exchange` behind an httpx response."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class EngineTransport(httpx.AsyncBaseTransport):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        trace: RequestTrace = extensions.get(TRACE_EXTENSION, NO_TRACE)
        url = request.url
        scheme = url.scheme
        port = url.port or _DEFAULT_PORTS.get(scheme)
        if port is None:
            raise httpx.UnsupportedProtocol(f"Unsupported URL scheme {scheme!r}", request=request)
        if httpcore_mocked():
            return await via_httpcore(request, port)
        timeouts: dict[str, float | None] = extensions.get("timeout", {})
        try:
            head = _head(request)
            stream: Any = request.stream
            body: Body = b"".join(stream) if isinstance(stream, httpx.ByteStream) else stream
            exchange = await self._engine.send(
                (scheme, url.raw_host.decode("ascii"), port),
                request.method,
                head,
                body,
                trace,
                read_timeout=timeouts.get("read"),
                connect_timeout=timeouts.get("connect"),
                pool_timeout=timeouts.get("pool"),
            )
        except Exception as exc:
            mapped = to_httpx_error(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        return httpx.Response(
            status_code=exchange.status,
            headers=exchange.raw_headers,
            stream=_ExchangeStream(exchange),
            extensions={
                "http_version": b"HTTP/" + exchange.version.encode(),
                "reason_phrase": exchange.reason,
                "network_stream": NetworkStreamInfo(exchange),
                EXCHANGE_EXTENSION: exchange,
            },
            request=request,
        )


def _head(request: httpx.Request) -> bytes:
    """The request head from httpx's raw headers, refused if one would break the framing."""
    raw = request.headers.raw
    fields = b"".join([b"%s: %s\r\n" % (name, value) for name, value in raw])
    if (
        fields.count(b"\r") != len(raw)
        or fields.count(b"\n") != len(raw)
        or b"\x00" in fields
        or not all(_TOKEN.fullmatch(name) for name, _ in raw)
    ):
        raise httpx.LocalProtocolError(
            "Illegal header: a name that is not a token, or a CR, LF or NUL in a header"
        )
    method = request.method.encode("ascii", "replace")
    return b"%s %s HTTP/1.1\r\n%s\r\n" % (method, request.url.raw_path, fields)


class _ExchangeStream(httpx.AsyncByteStream):
    """The response body as it came off the wire (httpx decodes it above the transport)."""

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


_EXTRA_NAMES = {"server_addr": "peername", "client_addr": "sockname"}


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
