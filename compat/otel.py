"""OpenTelemetry for compat (the `otel` extra): spans as aiohttp's, and pool-aware metrics.

OpenTelemetry's aiohttp instrumentor adds its trace config to every `aiohttp.ClientSession`
by patching that class, which never reaches ours. `CompatInstrumentor` does the same for
`compat.ClientSession`, with OpenTelemetry's own aiohttp trace config, so spans are exactly
those of an aiohttp session. It is registered under OpenTelemetry's `opentelemetry_instrumentor`
entry point, so `opentelemetry-instrument python app.py` picks it up with no code change:

    from compat.otel import CompatInstrumentor
    CompatInstrumentor().instrument(tracer_provider=provider)   # or by hand
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Collection, Iterable
from time import perf_counter
from typing import Any

from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from ._httpx import TracedTransport
from ._session import ClientSession
from ._tracing import TraceConfig

__all__ = ["CompatInstrumentor", "CompatMetrics"]

_OPTIONS = (
    "url_filter",
    "request_hook",
    "response_hook",
    "tracer_provider",
    "meter_provider",
)


class CompatInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Adds OpenTelemetry's aiohttp-client trace config to every new `compat.ClientSession`,
    and compat's HTTP client metrics (`CompatMetrics`) to every session and `TracedTransport`.

    OpenTelemetry's aiohttp config records `http.client.request.duration` itself when
    `OTEL_SEMCONV_STABILITY_OPT_IN` asks for the stable HTTP conventions; compat's metrics then
    leave that one instrument to it, so no request is counted twice."""

    _originals: dict[type, Any] | None = None
    metrics: CompatMetrics | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("httpx-trace-compat",)

    def _instrument(self, **kwargs: Any) -> None:
        options = {name: kwargs[name] for name in _OPTIONS if kwargs.get(name) is not None}
        opt_in = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
        otel_records_duration = "http" in {part.strip() for part in opt_in.split(",")}
        metrics = CompatMetrics(
            kwargs.get("meter_provider"), request_duration=not otel_records_duration
        )
        cls = type(self)
        cls.metrics = metrics
        session_init = ClientSession.__init__
        transport_init = TracedTransport.__init__
        cls._originals = {ClientSession: session_init, TracedTransport: transport_init}

        def __init__(session: ClientSession, *args: Any, **session_kwargs: Any) -> None:
            configs = list(session_kwargs.get("trace_configs") or ())
            configs.append(create_trace_config(**options))
            configs.append(metrics.trace_config())
            session_kwargs["trace_configs"] = configs
            session_init(session, *args, **session_kwargs)

        def transport__init__(transport: TracedTransport, **transport_kwargs: Any) -> None:
            configs = list(transport_kwargs.get("trace_configs") or ())
            configs.append(metrics.trace_config())
            transport_kwargs["trace_configs"] = configs
            transport_init(transport, **transport_kwargs)
            metrics.watch(transport.connector)

        ClientSession.__init__ = __init__  # type: ignore[method-assign,assignment]
        TracedTransport.__init__ = transport__init__  # type: ignore[method-assign,assignment]

    def _uninstrument(self, **kwargs: Any) -> None:
        cls = type(self)
        originals = cls._originals
        if originals is not None:
            for owner, init in originals.items():
                owner.__init__ = init  # type: ignore[misc]
            cls._originals = None
            cls.metrics = None


# --- metrics: OpenTelemetry's HTTP client instruments, from the pool's own signals ---

_KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
)
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_CONNECTION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _protocol_version(version: Any) -> str | None:
    """'1.1' / '2' from a response's version, a string or an (major, minor) named tuple."""
    if isinstance(version, tuple) and len(version) == 2:
        major, minor = version
        return str(major) if major >= 2 else f"{major}.{minor}"
    text = str(version or "")
    return text[5:] if text.startswith("HTTP/") else None


def _origin(url: Any) -> dict[str, Any]:
    return {
        "server.address": url.host or "",
        "server.port": url.port or _DEFAULT_PORTS.get(url.scheme, 0),
        "url.scheme": url.scheme,
    }


class _Ctx:
    """One request's metric state: its start, its attributes, a DNS lookup under way."""

    __slots__ = ("attributes", "dns_host", "dns_started", "started", "trace_request_ctx")

    def __init__(self, trace_request_ctx: Any = None) -> None:
        self.trace_request_ctx = trace_request_ctx
        self.started = 0.0
        self.attributes: dict[str, Any] = {}
        self.dns_started = 0.0
        self.dns_host = ""


class CompatMetrics:
    """OpenTelemetry's HTTP client metrics for compat sessions and clients.

    `http.client.request.duration` and `dns.lookup.duration` come from the signals (its
    `trace_config()`); `http.client.open_connections` (by `http.connection.state`, `active`
    or `idle`) is read from the pools of the connectors it `watch`es, so it is exact and falls
    back to zero when a pool empties (`active` counts the pool's slots in use: a request about
    to take an idle connection counts as active for the instant before it does);
    `http.client.connection.duration` is recorded by the watched pools when a connection
    closes. The instrument names and attributes are those of
    OpenTelemetry's HTTP and DNS semantic conventions.
    """

    def __init__(self, meter_provider: Any = None, *, request_duration: bool = True) -> None:
        from opentelemetry.metrics import Observation, get_meter

        self._observation = Observation
        meter = get_meter("compat", _version(), meter_provider)
        self._request_duration = (
            meter.create_histogram(
                "http.client.request.duration",
                unit="s",
                description="Duration of HTTP client requests.",
                explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
            )
            if request_duration
            else None
        )
        self._dns_duration = meter.create_histogram(
            "dns.lookup.duration",
            unit="s",
            description="Measures the time taken to perform a DNS lookup.",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._connection_duration = meter.create_histogram(
            "http.client.connection.duration",
            unit="s",
            description="The duration of the successfully established outbound HTTP connections.",
            explicit_bucket_boundaries_advisory=list(_CONNECTION_BUCKETS),
        )
        meter.create_observable_up_down_counter(
            "http.client.open_connections",
            callbacks=[self._observe_connections],
            unit="{connection}",
            description="Number of outbound HTTP connections that are currently active or idle "
            "on the client.",
        )
        self._connectors: weakref.WeakSet[Any] = weakref.WeakSet()
        # attribute sets reported last time, per connector: reported once more as zero
        self._reported: weakref.WeakKeyDictionary[Any, set[tuple[str, str, int]]] = (
            weakref.WeakKeyDictionary()
        )

    def watch(self, connector: Any) -> None:
        """Count `connector`'s connections and time them (a `compat.TCPConnector`)."""
        if connector in self._connectors:
            return
        self._connectors.add(connector)
        listen = getattr(connector, "_add_connection_listener", None)
        if listen is not None:
            listen(self._connection_closed)

    # --- request and DNS durations, from the signals ---

    def trace_config(self) -> TraceConfig:
        config = TraceConfig(_Ctx)
        if self._request_duration is not None:
            config.on_request_start.append(self._on_request_start)
            config.on_request_end.append(self._on_request_end)
        config.on_request_exception.append(self._on_request_exception)
        config.on_dns_resolvehost_start.append(self._on_dns_start)
        config.on_dns_resolvehost_end.append(self._on_dns_end)
        return config

    async def _on_request_start(self, session: Any, ctx: _Ctx, params: Any) -> None:
        ctx.started = perf_counter()
        method = params.method.upper()
        ctx.attributes = {
            "http.request.method": method if method in _KNOWN_METHODS else "_OTHER",
            **_origin(params.url),
        }
        connector = getattr(session, "connector", None)
        if connector is not None and hasattr(connector, "stats"):
            self.watch(connector)

    async def _on_request_end(self, session: Any, ctx: _Ctx, params: Any) -> None:
        response = params.response
        attributes = dict(ctx.attributes, **_origin(params.url))
        attributes["http.response.status_code"] = response.status
        version = _protocol_version(getattr(response, "version", None))
        if version is not None:
            attributes["network.protocol.version"] = version
        if response.status >= 400:
            attributes["error.type"] = str(response.status)
        self._record_request(ctx, attributes)

    async def _on_request_exception(self, session: Any, ctx: _Ctx, params: Any) -> None:
        error = type(params.exception).__qualname__
        if ctx.dns_host:
            self._dns_duration.record(
                perf_counter() - ctx.dns_started,
                {"dns.question.name": ctx.dns_host, "error.type": error},
            )
            ctx.dns_host = ""
        if self._request_duration is not None and ctx.started:
            self._record_request(ctx, dict(ctx.attributes, **{"error.type": error}))

    def _record_request(self, ctx: _Ctx, attributes: dict[str, Any]) -> None:
        assert self._request_duration is not None
        self._request_duration.record(perf_counter() - ctx.started, attributes)
        ctx.started = 0.0

    async def _on_dns_start(self, session: Any, ctx: _Ctx, params: Any) -> None:
        ctx.dns_started, ctx.dns_host = perf_counter(), params.host

    async def _on_dns_end(self, session: Any, ctx: _Ctx, params: Any) -> None:
        if ctx.dns_host:
            self._dns_duration.record(
                perf_counter() - ctx.dns_started, {"dns.question.name": ctx.dns_host}
            )
            ctx.dns_host = ""

    # --- connections, from the pools ---

    def _connection_closed(
        self, origin: tuple[str, str, int], protocol: str, peer: str | None, seconds: float
    ) -> None:
        scheme, host, port = origin
        attributes: dict[str, Any] = {
            "server.address": host,
            "server.port": port,
            "url.scheme": scheme,
            "network.protocol.version": "2" if protocol == "HTTP/2" else "1.1",
        }
        if peer:
            attributes["network.peer.address"] = peer
        self._connection_duration.record(seconds, attributes)

    def _observe_connections(self, options: Any) -> Iterable[Any]:
        observation = self._observation
        for connector in list(self._connectors):
            seen: set[tuple[str, str, int]] = set()
            if not connector.closed:
                for origin, stats in connector.stats().hosts.items():
                    scheme, _, authority = origin.partition("://")
                    host, _, port = authority.rpartition(":")
                    key = (scheme, host, int(port))
                    seen.add(key)
                    yield observation(stats.in_use, _state_attributes(key, "active"))
                    yield observation(stats.idle, _state_attributes(key, "idle"))
            for key in self._reported.get(connector, set()) - seen:  # gone: now zero
                yield observation(0, _state_attributes(key, "active"))
                yield observation(0, _state_attributes(key, "idle"))
            self._reported[connector] = seen
            if connector.closed:
                self._connectors.discard(connector)


def _state_attributes(key: tuple[str, str, int], state: str) -> dict[str, Any]:
    scheme, host, port = key
    return {
        "http.connection.state": state,
        "server.address": host,
        "server.port": port,
        "url.scheme": scheme,
    }


def _version() -> str:
    from . import __version__

    return __version__
