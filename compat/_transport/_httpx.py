"""The engine as an httpx transport.

`EngineTransport` is an `httpx.AsyncHTTPTransport` subclass that owns no httpx or httpcore
pool: its `handle_async_request` turns the httpx request into an httpcore one (httpcore's
public request/response types are the interface), hands it to a pool-shaped object over the
engine (`EnginePool`), and wraps the answer as an httpx response. Only httpx's and httpcore's
public API is used, so one code base runs on httpx 0.28 and 0.29.

Code that wraps a transport per client (OpenTelemetry's `instrument_client`, Sentry, which
wraps `AsyncClient.send`) sees it as any transport. Code that patches the class method
`httpx.AsyncHTTPTransport.handle_async_request` globally (OpenTelemetry's and logfire's global
instrumentation, pytest-httpx) is honoured too: while the class method is patched, a request is
handed to the patch with a stand-in transport (`_Relay`) whose every private attribute is the
engine's pool, so whatever httpx's own method asks its transport for, it reaches the engine.

The trace of a request comes in its extensions (`TRACE_EXTENSION`), never through shared
state, so clients sharing one connector never mix signals.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from typing import Any, Protocol

import anyio
import httpcore
import httpx

from .._exceptions import to_httpx_error
from .._models import HttpVersion
from .._tracing import NO_TRACE, RequestTrace
from ._connection import Body, Exchange
from ._engine import Engine
from ._mocked import httpcore_mocked, httpx_class_patch, via_httpcore
from ._opener import Proxy, ServerName
from ._trace_events import HttpcoreEvents, with_events
from ._upgrade import UpgradedStream

__all__ = [
    "EXCHANGE_EXTENSION",
    "PROXY_EXTENSION",
    "TRACE_EXTENSION",
    "EnginePool",
    "EngineTransport",
]

TRACE_EXTENSION = "compat.trace"
"""Request extension carrying the request's `RequestTrace` to the engine."""

PROXY_EXTENSION = "compat.proxy"
"""Request extension: the `Proxy` the request goes through (absent: none)."""

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
        tls: Any = True
        sni = extensions.get("sni_hostname")
        if sni:
            tls = ServerName(sni.decode("ascii") if isinstance(sni, bytes) else str(sni))
        target = url.target.decode("ascii")
        headers = list(request.headers)
        proxy: Proxy | None = extensions.get(PROXY_EXTENSION)
        if proxy is not None and scheme == b"http":
            target = _absolute(url, target)  # to a forwarding proxy, with its headers
            headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in proxy.headers)
            if proxy.authorization is not None:
                headers.append((b"Proxy-Authorization", proxy.authorization.encode("latin-1")))
        host = url.host.decode("ascii")
        events: HttpcoreEvents | None = None
        callback = extensions.get("trace")
        if callback is not None:  # httpx's own tracing: httpcore's events, from our signals
            address = (host, port) if proxy is None else _address(proxy)
            name = tls.name if isinstance(tls, ServerName) else host
            events = HttpcoreEvents(callback, request, address, name, timeouts.get("connect"))
            trace = with_events(trace, events)
        try:
            exchange = await self.engine.send(
                (scheme.decode("ascii"), host, port, tls, proxy),
                request.method.decode("ascii", "replace"),
                target,
                headers,
                body,
                trace,
                read_timeout=timeouts.get("read"),
                connect_timeout=timeouts.get("connect"),
                pool_timeout=timeouts.get("pool"),
                write_timeout=timeouts.get("write"),
                hold=True,  # httpx's pool counts a response as using its connection until closed
            )
        except Exception as exc:
            mapped = to_httpx_error(exc)
            if events is not None:
                await events.failed(mapped)
            if mapped is exc:
                raise
            raise mapped from exc
        if events is not None:
            try:
                await events.head_received(
                    _http_version(exchange.version),
                    exchange.status,
                    exchange.reason,
                    exchange.raw_headers,
                )
            except BaseException:
                exchange.close()
                raise
        return httpcore.Response(
            status=exchange.status,
            headers=exchange.raw_headers,
            content=_ExchangeStream(exchange, events),
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


def _address(proxy: Proxy) -> tuple[str, int]:
    return (proxy.url.raw_host or "", proxy.url.port or 80)


def _absolute(url: httpcore.URL, target: str) -> str:
    host = url.host.decode("ascii")
    authority = f"[{host}]" if ":" in host else host
    if url.port is not None:
        authority = f"{authority}:{url.port}"
    return f"{url.scheme.decode('ascii')}://{authority}{target}"


class CorePool(Protocol):
    """httpcore's pool interface, which `EngineTransport` sends through."""

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response: ...


class EngineTransport(httpx.AsyncHTTPTransport):
    """An httpx transport over an httpcore-shaped pool; closing it leaves the pool open."""

    def __init__(self, pool: CorePool) -> None:
        # httpx's __init__ would build an httpcore pool of its own: not called, on purpose.
        self._compat_pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if httpx_class_patch() is not None:  # the patch, bound to the stand-in as a method
            return await _Relay(self._compat_pool).handle_async_request(request)
        return await send_through(self._compat_pool, request)

    async def aclose(self) -> None:
        """The connector's owner closes it."""

    async def __aenter__(self) -> EngineTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def send_through(pool: CorePool, request: httpx.Request) -> httpx.Response:
    """httpx's request through an httpcore-shaped pool, and its answer as httpx's response."""
    url = request.url
    core = httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )
    try:
        response = await pool.handle_async_request(core)
    except Exception as exc:
        mapped = to_httpx_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc
    return httpx.Response(
        status_code=response.status,
        headers=response.headers,
        stream=_CoreBody(response.stream),
        extensions=response.extensions,
    )


class _CoreBody(httpx.AsyncByteStream):
    """An httpcore response body as httpx's, with httpcore's errors named as httpx's."""

    __slots__ = ("_stream",)

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            mapped = to_httpx_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class _Relay(httpx.AsyncHTTPTransport):
    """The transport a class-level patch receives: httpx's own method, if the patch calls it,
    finds the engine's pool under whichever private name it looks for."""

    def __init__(self, pool: CorePool) -> None:
        self.__dict__["compat_pool"] = pool

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") and not name.startswith("__"):
            return self.__dict__["compat_pool"]
        raise AttributeError(name)


class _ExchangeStream:
    """The response body as it came off the wire (httpx decodes it above the transport)."""

    __slots__ = ("_events", "_exchange")

    def __init__(self, exchange: Exchange, events: HttpcoreEvents | None = None) -> None:
        self._exchange = exchange
        self._events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self._exchange.read
        events = self._events
        try:
            if events is not None:
                await events.body_started()
            while chunk := await read(65536):
                yield chunk
            if events is not None:
                await events.body_complete()
        except Exception as exc:
            mapped = to_httpx_error(exc)
            if events is not None:
                await events.failed(mapped)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        self._exchange.close()
        events, self._events = self._events, None
        if events is not None:
            await events.closed()


class NetworkStreamInfo(httpcore.AsyncNetworkStream):
    """httpcore's `network_stream` extension: socket details (`get_extra_info`), and for a
    `101 Switching Protocols` response the upgraded connection itself, read, written and
    closed as httpcore's (httpx-ws and other upgrade libraries use it so)."""

    __slots__ = ("_exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def _upgraded(self) -> UpgradedStream:
        upgraded = self._exchange.upgraded
        if upgraded is None:
            raise RuntimeError(
                "Only the network_stream of a 101 Switching Protocols response can be used "
                "for I/O; this response's connection belongs to HTTP"
            )
        return upgraded

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        upgraded = self._upgraded()
        try:
            with anyio.fail_after(timeout):
                return await upgraded.receive(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc) or "Timed out reading") from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        upgraded = self._upgraded()
        try:
            with anyio.fail_after(timeout):
                await upgraded.send(buffer)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "Timed out writing") from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        """Close the connection (an upgraded one gives its pool slot back)."""
        self._exchange.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError("start_tls on an upgraded compat connection is not supported")

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
