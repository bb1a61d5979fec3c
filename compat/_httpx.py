"""The httpx-native entry point: aiohttp-style tracing for a plain `httpx.AsyncClient`.

    client = compat.traced_client(trace_configs=[config])          # or, by hand:
    client = httpx.AsyncClient(transport=compat.TracedTransport(trace_configs=[config]))

`TracedTransport` is an `httpx.AsyncHTTPTransport` over compat's engine (no httpx pool inside;
see `_transport/_httpx.py`), so code that instruments httpx's transport class or a client's
transport (OpenTelemetry, logfire, pytest-httpx) sees its requests.
httpx follows redirects itself and calls its transport once per hop, so here each hop is a
request of its own: `on_request_start` / `_end` / `_exception` fire per hop, and there is no
`on_request_redirect`. httpx decodes the body above its transport, so
`on_response_chunk_received` carries the body as it came off the wire (still compressed, if it
was). Every connection, DNS, headers-sent and request-chunk signal fires exactly as under
`ClientSession`. Errors stay httpx's own exceptions, as httpx users expect.

Every argument of `httpx.AsyncHTTPTransport` is honoured through the connector or refused with
an error naming it: nothing is dropped silently.
"""

from __future__ import annotations

import math
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterable
from functools import cache
from typing import Any

import anyio
import httpcore
import httpx
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._connector import BaseConnector, TCPConnector
from ._exceptions import ConnectionKey
from ._models import BasicAuth, RequestInfo
from ._response import ClientResponse, body_progress
from ._tracing import RequestTrace, Tracer
from ._transport._connection import Exchange
from ._transport._httpx import (
    EXCHANGE_EXTENSION,
    PROXY_EXTENSION,
    TRACE_EXTENSION,
    EnginePool,
    EngineTransport,
)
from ._transport._opener import Proxy

__all__ = ["TracedTransport", "traced_client"]

TRACE_REQUEST_CTX_EXTENSION = "trace_request_ctx"
"""Request extension whose value reaches each trace config's context factory."""

_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


@cache
def _httpx_default_context(verify: bool, http2: bool) -> ssl.SSLContext:
    """httpx's default context (certifi's CAs), built once per process."""
    context = httpx.create_ssl_context(verify=verify, trust_env=False)
    context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    return context


_ASYNC_ONLY = "compat.TracedTransport is asynchronous: use it with httpx.AsyncClient"


class _AsyncOnly(AttributeError, TypeError):
    """A sync client used the transport: a TypeError to the caller, an AttributeError to
    `hasattr` (so instrumentation sees no sync method)."""


def _refuse(name: str, why: str) -> ValueError:
    return ValueError(f"compat's TracedTransport does not support {name}: {why}")


class TracedTransport(EngineTransport):
    """An httpx transport over a compat connector that fires the trace configs' signals.

    Takes `httpx.AsyncHTTPTransport`'s arguments, or a ready `connector` (whose own settings
    then apply: passing both is refused). The transport closes a connector it made, and one
    passed in unless `connector_owner=False`, as `ClientSession` does. `env_proxies=True`
    (set by `traced_client` from `trust_env`) routes through the environment's proxies when
    `proxy` is not given, as `httpx.AsyncClient` does; httpx's own transport never reads them."""

    def __init__(
        self,
        *,
        trace_configs: Iterable[Any] = (),
        connector: BaseConnector | None = None,
        connector_owner: bool = True,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Any = None,
        env_proxies: bool = False,
    ) -> None:
        if uds is not None:
            raise _refuse("Unix sockets", "uds= is not built yet")
        if retries:
            raise _refuse("retries", "retry in your code, or use ClientSession, which retries")
        if socket_options is not None:
            raise _refuse("socket_options", "the engine sets its own socket options")
        custom = (
            http2
            or not http1
            or verify is not True
            or cert is not None
            or limits != _DEFAULT_LIMITS
            or local_address is not None
        )
        if connector is not None and custom:
            raise ValueError(
                "Pass verify, cert, limits, local_address, http1 and http2 to TracedTransport "
                "or configure the connector, not both"
            )
        if connector is None:
            if verify in (True, False) and cert is None:
                context = _httpx_default_context(bool(verify), http2)
            else:
                context = httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
            connector = TCPConnector(
                limit=limits.max_connections or 0,
                keepalive_timeout=limits.keepalive_expiry,
                ssl=context,
                local_addr=(local_address, 0) if local_address else None,
                http2=http2,
                http1=http1,
            )
            connector._pool.max_idle = limits.max_keepalive_connections
            connector_owner = True
        self.connector = connector
        self._connector_owner = connector_owner
        self._traced = _TracedPool(
            EnginePool(connector._engine),
            Tracer(self, tuple(trace_configs)),
            _proxy(proxy),
            _EnvProxies() if env_proxies and proxy is None else None,
        )
        super().__init__(self._traced)

    def bind(self, owner: object) -> None:
        """Make `owner` (the httpx client) the `session` argument handlers receive."""
        self._traced.tracer.owner = owner

    def __getattr__(self, name: str) -> Any:
        # No `handle_request`: instrumentation that looks for it (OpenTelemetry's) treats us
        # as the async transport we are; a sync client asking for it gets a clear error.
        if name == "handle_request":
            raise _AsyncOnly(_ASYNC_ONLY)
        raise AttributeError(name)

    def __enter__(self) -> TracedTransport:
        raise _AsyncOnly(_ASYNC_ONLY)

    async def __aenter__(self) -> TracedTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._connector_owner:
            await self.connector.close()


class _TracedPool:
    """The request-level signals around the engine, at httpcore's pool interface; and the
    proxy each request goes through."""

    def __init__(
        self, engine: EnginePool, tracer: Tracer, proxy: Proxy | None, env: _EnvProxies | None
    ) -> None:
        self._engine = engine
        self.tracer = tracer
        self._proxy = proxy
        self._env = env if env else None

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        proxy = self._proxy
        if self._env is not None:
            proxy = self._env.for_url(request.url)
        if proxy is not None:
            request.extensions[PROXY_EXTENSION] = proxy
        tracer = self.tracer
        if not tracer.configs:
            return await self._engine.handle_async_request(request)
        extensions = request.extensions
        trace = tracer.start(extensions.get(TRACE_REQUEST_CTX_EXTENSION))
        method = request.method.decode("ascii", "replace")
        url = _yarl_url(request.url)
        headers = CIMultiDict(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers
        )
        if tracer.on_request_start:
            await trace.request_start(method, url, headers)
            request.headers = [
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            ]
        trace.method, trace.url, trace.wire = method, url, headers
        extensions[TRACE_EXTENSION] = trace
        response: httpcore.Response | None = None
        try:
            response = await self._engine.handle_async_request(request)
            exchange = _exchange_of(response, method, trace)
            if tracer.on_response_chunk_received or tracer.on_response_body_complete:
                response.stream = _ObservedBody(response.stream, trace, method, url)
            if tracer.on_request_end:
                view = ClientResponse(
                    method,
                    url,
                    exchange,
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
        """The transport closes the connector it owns."""

    async def __aenter__(self) -> _TracedPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """See `aclose`."""


def _proxy(proxy: str | httpx.URL | httpx.Proxy | None) -> Proxy | None:
    """httpx's `proxy=` as the engine's `Proxy`: http:// and https:// proxies (forwarding for
    http:// targets, CONNECT tunnels for https://), as ClientSession takes them; SOCKS refused."""
    if proxy is None:
        return None
    if not isinstance(proxy, httpx.Proxy):
        proxy = httpx.Proxy(proxy)
    if proxy.url.scheme not in ("http", "https"):
        raise _refuse(f"{proxy.url.scheme} proxies", "use an http:// or https:// proxy")
    if proxy.ssl_context is not None:
        raise _refuse(
            "httpx.Proxy(ssl_context=…)",
            "TLS to an https proxy is verified with the transport's verify= settings",
        )
    auth = proxy.auth
    return Proxy(
        URL(str(proxy.url)),
        None if auth is None else BasicAuth(auth[0], auth[1]).encode(),
        tuple(proxy.headers.items()),
    )


class _EnvProxies:
    """The environment's proxies as `httpx.AsyncClient(trust_env=True)` reads them, once, at
    construction: HTTP_PROXY / HTTPS_PROXY, else ALL_PROXY, unless NO_PROXY names the host."""

    def __init__(self) -> None:
        self._env = urllib.request.getproxies()
        self._by_scheme: dict[bytes, Proxy | None] = {}
        for scheme in ("http", "https"):
            value = self._env.get(scheme) or self._env.get("all")
            self._by_scheme[scheme.encode()] = (
                _proxy(value if "://" in value else f"http://{value}") if value else None
            )

    def __bool__(self) -> bool:
        return any(self._by_scheme.values())

    def for_url(self, url: httpcore.URL) -> Proxy | None:
        proxy = self._by_scheme.get(url.scheme)
        if proxy is None or self._bypassed(url.host.decode("ascii").lower()):
            return None
        return proxy

    def _bypassed(self, host: str) -> bool:
        """NO_PROXY as httpx reads it: `*`, exact IPs and `localhost`, else a domain and its
        subdomains (a scheme in an entry is ignored here)."""
        for entry in self._env.get("no", "").split(","):
            name = entry.strip().lower().split("://")[-1].strip("[]")
            if name == "*":
                return True
            if name and (host == name or host.endswith("." + name.lstrip("."))):
                return True
        return False


def _yarl_url(url: httpcore.URL) -> URL:
    """The request's URL for params; no credentials (httpx keeps them out of the target)."""
    port = url.port
    authority = url.host.decode("ascii")
    if ":" in authority:
        authority = f"[{authority}]"
    if port is not None:
        authority = f"{authority}:{port}"
    return URL(
        f"{url.scheme.decode('ascii')}://{authority}{url.target.decode('ascii')}", encoded=True
    )


def _ignore(_: Exchange) -> None:
    """The response views given to handlers never own their response."""


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield


def _exchange_of(response: httpcore.Response, method: str, trace: RequestTrace) -> Exchange:
    """The engine's exchange behind `response`, or a head-only stand-in (a mocked response)."""
    exchange = response.extensions.get(EXCHANGE_EXTENSION)
    if isinstance(exchange, Exchange):
        return exchange
    return Exchange.from_source(
        method,
        trace,
        status=response.status,
        reason=response.extensions.get("reason_phrase", b""),
        raw_headers=list(response.headers),
        source=_no_body(),
    )


class _ObservedBody:
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
                signal = body_progress(self._trace, self._method, self._url, chunk, received)
                if signal is not None:
                    await signal
            yield chunk
        signal = body_progress(self._trace, self._method, self._url, b"", received)
        if signal is not None:
            await signal

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


def traced_client(
    *,
    trace_configs: Iterable[Any] = (),
    connector: BaseConnector | None = None,
    connector_owner: bool = True,
    **client_kwargs: Any,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` over a `TracedTransport`; handlers receive the client.

    httpx's transport arguments (`verify`, `cert`, `limits`, `http2`, `proxy`, ...) go to the
    transport, which honours or refuses each. With `trust_env` (httpx's default) and no
    `proxy=`, requests go through the environment's proxies (HTTP(S)_PROXY, NO_PROXY) as
    `ClientSession(trust_env=True)` routes them. `mounts=` takes `compat.TracedTransport`s (a
    proxy per pattern) and None; another transport, like `transport=`, is refused: it would
    route requests around the tracing."""
    if "transport" in client_kwargs:
        raise _refuse("transport=", "it would route requests around the tracing")
    mounts: dict[str, Any] = client_kwargs.get("mounts") or {}
    for pattern, mounted in mounts.items():
        if mounted is not None and not isinstance(mounted, TracedTransport):
            raise _refuse(
                f"mounts={{{pattern!r}: {type(mounted).__name__}(…)}}",
                "it would route requests around the tracing; mount "
                "compat.TracedTransport(proxy=…, trace_configs=…) there instead",
            )
    trust_env = client_kwargs.get("trust_env", True)
    transport_kwargs = {
        name: client_kwargs.pop(name)
        for name in ("verify", "cert", "http1", "http2", "limits", "proxy")
        if name in client_kwargs
    }
    transport = TracedTransport(
        trace_configs=trace_configs,
        connector=connector,
        connector_owner=connector_owner,
        trust_env=trust_env,
        env_proxies=trust_env,
        **transport_kwargs,
    )
    client = httpx.AsyncClient(transport=transport, **client_kwargs)
    for traced in (transport, *mounts.values()):
        if isinstance(traced, TracedTransport):
            traced.bind(client)
    return client
