"""httpcore's `trace` request extension, from the engine's signals.

httpx users trace a request with `extensions={"trace": callback}`: httpcore awaits
`callback(event_name, info)` around each step (`connection.connect_tcp.started`,
`http11.send_request_headers.complete`, ...). The engine is not httpcore, so `HttpcoreEvents`
rebuilds those events from the signals the engine already fires (a trace config of its own,
added to the request's trace) and from the response it hands back, with httpcore's names, order
and info keys. `return_value` of the connection and settings events is None (the engine's
streams are not httpcore's), and the send events are emitted together once the request is
written (the engine signals that moment, not each step).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpcore

from .._tracing import RequestTrace, TraceConfig, Tracer

__all__ = ["HttpcoreEvents", "with_events"]

Callback = Callable[[str, dict[str, Any]], Awaitable[None]]


class HttpcoreEvents:
    """One request's httpcore events; the trace context of the events config."""

    def __init__(
        self,
        callback: Callback,
        request: httpcore.Request,
        address: tuple[str, int],
        server_hostname: str,
        connect_timeout: float | None,
    ) -> None:
        self._callback = callback
        self._request = request
        self._address = address  # where a new connection goes: the origin, or the proxy
        self._server_hostname = server_hostname
        self._timeout = connect_timeout
        self._open: str | None = None  # the event started and not yet complete
        self._new_connection = False
        self._sent = False
        self.prefix = "http11"
        self.stream_id: int | None = None

    async def _emit(self, name: str, info: dict[str, Any]) -> None:
        await self._callback(name, info)

    async def _start(self, name: str, info: dict[str, Any]) -> None:
        self._open = name
        await self._emit(f"{name}.started", info)

    async def _complete(self, return_value: Any = None) -> None:
        name, self._open = self._open, None
        if name is not None:
            await self._emit(f"{name}.complete", {"return_value": return_value})

    def _kwargs(self) -> dict[str, Any]:
        if self.stream_id:
            return {"request": self._request, "stream_id": self.stream_id}
        return {"request": self._request}

    # --- from the engine's signals ---

    async def connection_create_start(self) -> None:
        self._new_connection = True
        await self._start(
            "connection.connect_tcp",
            {
                "host": self._address[0],
                "port": self._address[1],
                "local_address": None,
                "timeout": self._timeout,
                "socket_options": None,
            },
        )

    async def tls_handshake_start(self) -> None:
        await self._complete()
        await self._start(
            "connection.start_tls",
            {
                "ssl_context": None,
                "server_hostname": self._server_hostname,
                "timeout": self._timeout,
            },
        )

    async def connection_create_end(self) -> None:
        await self._complete()

    async def request_sent(self, stream_id: int | None) -> None:
        """The request is written: its send events, then the wait for the response head."""
        if self._sent:
            return
        self._sent = True
        if stream_id:
            self.prefix, self.stream_id = "http2", stream_id
            if self._new_connection:
                await self._start("http2.send_connection_init", {"request": self._request})
                await self._complete()
        for step in ("send_request_headers", "send_request_body"):
            await self._start(f"{self.prefix}.{step}", self._kwargs())
            await self._complete()
        await self._start(f"{self.prefix}.receive_response_headers", self._kwargs())

    # --- from the transport, with the response ---

    async def head_received(
        self, version: bytes, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await self.request_sent(None)
        if self.prefix == "http2":
            if self._new_connection:  # httpcore reads the server's SETTINGS while it waits
                await self._emit("http2.receive_remote_settings.started", {})
                await self._emit("http2.receive_remote_settings.complete", {"return_value": None})
            await self._complete((status, headers))
        else:
            await self._complete((version, status, reason, headers, b""))

    async def body_started(self) -> None:
        await self._start(f"{self.prefix}.receive_response_body", self._kwargs())

    async def body_complete(self) -> None:
        await self._complete()

    async def failed(self, exc: BaseException) -> None:
        """The step in progress failed (httpcore's `.failed` event)."""
        name, self._open = self._open, None
        if name is not None:
            await self._emit(f"{name}.failed", {"exception": exc})

    async def closed(self) -> None:
        await self._start(
            f"{self.prefix}.response_closed",
            {"stream_id": self.stream_id} if self.stream_id else {},
        )
        await self._complete()


def _config() -> TraceConfig:
    """One frozen config for every traced request: its handlers call the request's events."""
    config = TraceConfig()

    async def create_start(_: object, events: HttpcoreEvents, params: Any) -> None:
        await events.connection_create_start()

    async def tls_start(_: object, events: HttpcoreEvents, params: Any) -> None:
        await events.tls_handshake_start()

    async def create_end(_: object, events: HttpcoreEvents, params: Any) -> None:
        await events.connection_create_end()

    async def sent(_: object, events: HttpcoreEvents, params: Any) -> None:
        await events.request_sent(params.stream_id)

    async def head(_: object, events: HttpcoreEvents, params: Any) -> None:
        await events.request_sent(params.stream_id)

    config.on_connection_create_start.append(create_start)
    config.on_tls_handshake_start.append(tls_start)
    config.on_connection_create_end.append(create_end)
    config.on_request_sent.append(sent)
    config.on_response_headers_received.append(head)
    config.freeze()
    return config


_EVENTS = _config()


def with_events(trace: RequestTrace, events: HttpcoreEvents) -> RequestTrace:
    """`trace` with the events config added: the request's own signals fire as before."""
    plan = trace.plan
    merged = Tracer(plan.owner, (*plan.configs, _EVENTS))
    combined = RequestTrace(merged, trace.owner, (*trace.ctxs, events))
    combined.method, combined.url, combined.wire = trace.method, trace.url, trace.wire
    return combined
