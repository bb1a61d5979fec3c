"""Signal dispatch: `TraceConfig`, and the per-session and per-request fan-out of each signal.

Every request crosses this module, so the cost of a signal nobody listens to is one truthiness
check at the call site: `Tracer` resolves, once per session, which trace configs have handlers
for which signal, and callers build a params object only when that tuple is non-empty.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from multidict import CIMultiDict
from yarl import URL

from ._params import request_end_params, request_exception_params, request_start_params
from ._signals import Signal

if TYPE_CHECKING:
    from ._transport._backends import Deadline

__all__ = ["NO_TRACE", "SIGNAL_NAMES", "RequestTrace", "TraceConfig", "Tracer"]

#: aiohttp's 16 signals, in the order its documentation lists them.
AIOHTTP_SIGNALS = (
    "on_request_start",
    "on_request_chunk_sent",
    "on_response_chunk_received",
    "on_request_end",
    "on_request_exception",
    "on_request_redirect",
    "on_connection_queued_start",
    "on_connection_queued_end",
    "on_connection_create_start",
    "on_connection_create_end",
    "on_connection_reuseconn",
    "on_dns_resolvehost_start",
    "on_dns_resolvehost_end",
    "on_dns_cache_hit",
    "on_dns_cache_miss",
    "on_request_headers_sent",
)

#: compat's own signals; a foreign (aiohttp) TraceConfig simply has none of them.
EXTENSION_SIGNALS = (
    "on_tls_handshake_start",
    "on_tls_handshake_end",
    "on_connection_established",
    "on_request_sent",
    "on_response_headers_received",
    "on_response_body_complete",
)

SIGNAL_NAMES = AIOHTTP_SIGNALS + EXTENSION_SIGNALS


class _TraceConfigLike(Protocol):
    """What a session needs of a trace config: aiohttp's own `TraceConfig` qualifies."""

    def freeze(self) -> None: ...
    def trace_config_ctx(self, trace_request_ctx: Any = None) -> Any: ...


class TraceConfig:
    """A set of signals plus the factory of the per-request context handlers share."""

    def __init__(self, trace_config_ctx_factory: Callable[..., Any] = SimpleNamespace) -> None:
        self._trace_config_ctx_factory = trace_config_ctx_factory
        for name in SIGNAL_NAMES:
            setattr(self, name, Signal(self))

    # Declared for type checkers; assigned in __init__ from SIGNAL_NAMES.
    on_request_start: Signal
    on_request_chunk_sent: Signal
    on_response_chunk_received: Signal
    on_request_end: Signal
    on_request_exception: Signal
    on_request_redirect: Signal
    on_connection_queued_start: Signal
    on_connection_queued_end: Signal
    on_connection_create_start: Signal
    on_connection_create_end: Signal
    on_connection_reuseconn: Signal
    on_dns_resolvehost_start: Signal
    on_dns_resolvehost_end: Signal
    on_dns_cache_hit: Signal
    on_dns_cache_miss: Signal
    on_request_headers_sent: Signal
    on_tls_handshake_start: Signal
    on_tls_handshake_end: Signal
    on_connection_established: Signal
    on_request_sent: Signal
    on_response_headers_received: Signal
    on_response_body_complete: Signal

    def trace_config_ctx(self, trace_request_ctx: Any = None) -> Any:
        return self._trace_config_ctx_factory(trace_request_ctx=trace_request_ctx)

    # aiohttp's own `Trace` reads these two signals by their private names; with them a
    # compat TraceConfig also works when handed to `aiohttp.ClientSession`.
    @property
    def _on_request_redirect(self) -> Signal:
        return self.on_request_redirect

    @property
    def _on_request_headers_sent(self) -> Signal:
        return self.on_request_headers_sent

    def freeze(self) -> None:
        for name in SIGNAL_NAMES:
            getattr(self, name).freeze()


Targets = tuple[tuple[int, Callable[..., Any]], ...]
"""(index of a trace config, a callable to await) for each handler listening to a signal.

Handlers of our own (frozen) signals are listed one by one, saving a coroutine per send; a
foreign signal (aiohttp's) is listed once, by its own `send`."""


class Tracer:
    """A session's frozen trace configs, indexed per signal."""

    __slots__ = ("_factories", "_owner", "configs", *SIGNAL_NAMES)

    def __init__(self, owner: object, configs: tuple[_TraceConfigLike, ...]) -> None:
        self.owner = owner
        self.configs = configs
        # What makes each config's per-request context: our TraceConfig's factory itself
        # (its `trace_config_ctx` only forwards to it), else the config's own method.
        self._factories: tuple[Callable[..., Any], ...] = tuple(
            config._trace_config_ctx_factory
            if type(config).trace_config_ctx is TraceConfig.trace_config_ctx
            and isinstance(config, TraceConfig)
            else config.trace_config_ctx
            for config in configs
        )
        for config in configs:
            config.freeze()
        for name in SIGNAL_NAMES:
            targets: list[tuple[int, Callable[..., Any]]] = []
            for index, config in enumerate(configs):
                signal = getattr(config, name, None)
                if signal is None or not len(signal):
                    continue
                if type(signal) is Signal:
                    targets.extend((index, handler) for handler in signal)
                else:
                    targets.append((index, signal.send))
            setattr(self, name, tuple(targets))

    @property
    def owner(self) -> object:
        """The `session` handlers receive; held weakly, so a session and its tracer form
        no reference cycle and a dropped session is freed at once."""
        return None if self._owner is None else self._owner()

    @owner.setter
    def owner(self, owner: object) -> None:
        self._owner = None if owner is None else weakref.ref(owner)

    def start(self, trace_request_ctx: Any = None) -> RequestTrace:
        """One context per trace config, shared by every signal of this request."""
        factories = self._factories
        if len(factories) == 1:  # the usual case, without a list comprehension's call
            ctxs: tuple[Any, ...] = (factories[0](trace_request_ctx=trace_request_ctx),)
        else:
            ctxs = tuple([factory(trace_request_ctx=trace_request_ctx) for factory in factories])
        owner = self._owner
        return RequestTrace(self, None if owner is None else owner(), ctxs)

    on_request_start: Targets
    on_request_chunk_sent: Targets
    on_response_chunk_received: Targets
    on_request_end: Targets
    on_request_exception: Targets
    on_request_redirect: Targets
    on_connection_queued_start: Targets
    on_connection_queued_end: Targets
    on_connection_create_start: Targets
    on_connection_create_end: Targets
    on_connection_reuseconn: Targets
    on_dns_resolvehost_start: Targets
    on_dns_resolvehost_end: Targets
    on_dns_cache_hit: Targets
    on_dns_cache_miss: Targets
    on_request_headers_sent: Targets
    on_tls_handshake_start: Targets
    on_tls_handshake_end: Targets
    on_connection_established: Targets
    on_request_sent: Targets
    on_response_headers_received: Targets
    on_response_body_complete: Targets


_NO_URL = URL()
_NO_HEADERS: CIMultiDict[str] = CIMultiDict()


class RequestTrace:
    """One request's trace contexts, and the hop (method, url, wire headers) now on the wire.

    The session updates the hop before each request it sends, so the transport's
    headers-sent and chunk-sent signals carry the same values aiohttp's do.
    """

    __slots__ = ("ctxs", "guard", "method", "owner", "plan", "url", "wire")

    def __init__(self, plan: Tracer, owner: object, ctxs: tuple[Any, ...]) -> None:
        self.plan = plan
        self.owner = owner
        self.ctxs = ctxs
        self.method = ""
        self.url = _NO_URL
        self.wire: CIMultiDict[str] | list[tuple[str, str]] = _NO_HEADERS
        """The hop's wire headers as the session built them, a multidict once `headers` ran."""
        self.guard: Deadline | None = None
        """The watched `Deadline` the request is in (trio, no cancel scope; set by who enters
        it): its handlers run `guarded` by it."""

    @property
    def headers(self) -> CIMultiDict[str]:
        """The hop's wire headers, made a multidict when a signal first asks (untraced, never)."""
        wire = self.wire
        if not isinstance(wire, CIMultiDict):
            wire = self.wire = CIMultiDict(wire)
        return wire

    def send(self, targets: Targets, params: object) -> Awaitable[None]:
        """Await the result: the handlers run in order. A lone handler's own coroutine is
        handed back as it is, one coroutine less per signal (the usual case). Inside a
        watched deadline (`guard`; trio, see `Deadline`) they run guarded, bounded by it."""
        if len(targets) == 1:
            index, handler = targets[0]
            sending: Awaitable[None] = handler(self.owner, self.ctxs[index], params)
        else:
            sending = self._send_all(targets, params)
        guard = self.guard
        return sending if guard is None else guard.guarded(sending)

    async def _send_all(self, targets: Targets, params: object) -> None:
        owner = self.owner
        ctxs = self.ctxs
        for index, handler in targets:
            await handler(owner, ctxs[index], params)

    # The request-level signals, shared by the session and the httpx-native transport; callers
    # check `plan.on_request_*` first, so nothing is built for a signal nobody listens to.

    # (These two return `send`'s awaitable rather than awaiting it in one of their own.)

    def request_start(self, method: str, url: URL, headers: CIMultiDict[str]) -> Awaitable[None]:
        return self.send(self.plan.on_request_start, request_start_params(method, url, headers))

    def request_end(
        self, method: str, url: URL, headers: CIMultiDict[str], response: Any
    ) -> Awaitable[None]:
        return self.send(
            self.plan.on_request_end, request_end_params(method, url, headers, response)
        )

    async def request_exception(
        self, method: str, url: URL, headers: CIMultiDict[str], exception: BaseException
    ) -> None:
        """Shielded, so that it is delivered under cancellation too (trio's included)."""
        with anyio.CancelScope(shield=True):
            await self.send(
                self.plan.on_request_exception,
                request_exception_params(method, url, headers, exception),
            )


NO_TRACE = Tracer(None, ()).start()
"""The trace of a request nobody traces: every signal's targets are empty."""
