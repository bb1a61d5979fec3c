"""Per-request phase timings (curl `-w` / HAR style), recorded by a ready-made TraceConfig.

Every signal of a request marks a point on its timeline; the time between two marks is charged
to the phase the first one opened, so the phases always add up to the total exactly:

    blocked  waiting for a connection: pool queue, and the client's own work before it
    dns      name resolution (zero on a cache hit or a reused connection)
    connect  TCP connect (zero on a reused connection)
    tls      TLS handshake
    send     writing the request head and body
    wait     from the request written to the response head: time to first byte
    receive  reading the response body, up to its end

Redirect hops add to the same phases. Read the result from `ctx.timings` in a handler, or from
`response.timings` (set at `on_request_end`; complete once the body has been read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from types import SimpleNamespace
from typing import Any

from ._tracing import SIGNAL_NAMES, TraceConfig

__all__ = ["PHASES", "Timings", "timing_trace_config"]

PHASES = ("blocked", "dns", "connect", "tls", "send", "wait", "receive")

# The phase each signal opens; the signals not listed keep the current phase.
_OPENS = {
    "on_request_start": "blocked",
    "on_connection_queued_start": "blocked",
    "on_connection_create_start": "connect",
    "on_dns_cache_miss": "dns",
    "on_dns_resolvehost_start": "dns",
    "on_dns_resolvehost_end": "connect",
    "on_dns_cache_hit": "connect",
    "on_tls_handshake_start": "tls",
    "on_tls_handshake_end": "connect",
    "on_connection_create_end": "send",
    "on_connection_reuseconn": "send",
    "on_request_headers_sent": "send",
    "on_request_sent": "wait",
    "on_response_headers_received": "receive",
    "on_request_redirect": "blocked",
}
_ENDS = ("on_response_body_complete", "on_request_exception")


@dataclass
class Timings:
    """One request's timeline: (seconds since start, signal name, params), and its phases."""

    events: list[tuple[float, str, Any]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    total: float = 0.0
    complete: bool = False
    _start: float = 0.0
    _last: float = 0.0
    _phase: str = "blocked"

    def mark(self, name: str, params: Any) -> None:
        now = perf_counter()
        if not self.events:
            self._start = self._last = now
        elif not self.complete:
            self.phases[self._phase] += now - self._last
            self._last = now
        self.events.append((now - self._start, name, params))
        if self.complete:
            return
        if name in _ENDS:
            self.complete = True
        self._phase = _OPENS.get(name, self._phase)
        self.total = self._last - self._start

    def as_dict(self) -> dict[str, float]:
        """Phases and total in milliseconds."""
        result = {phase: round(seconds * 1000, 3) for phase, seconds in self.phases.items()}
        result["total"] = round(self.total * 1000, 3)
        return result


def _ctx_factory(trace_request_ctx: Any = None) -> SimpleNamespace:
    return SimpleNamespace(trace_request_ctx=trace_request_ctx, timings=Timings())


def timing_trace_config() -> TraceConfig:
    """A TraceConfig that keeps a `Timings` per request in its context (`ctx.timings`)."""
    config = TraceConfig(_ctx_factory)
    for name in SIGNAL_NAMES:
        getattr(config, name).append(_recorder(name))
    return config


def _recorder(name: str) -> Any:
    async def record(session: Any, ctx: Any, params: Any) -> None:
        ctx.timings.mark(name, params)
        if name == "on_request_end":
            params.response.timings = ctx.timings

    return record
