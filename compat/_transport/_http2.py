"""One HTTP/2 connection on h2: many requests at once, each an `Exchange` on a stream.

The pool hands one such connection to every concurrent request of its origin, up to the
server's `SETTINGS_MAX_CONCURRENT_STREAMS`. Reading: on asyncio the protocol feeds frames as
they arrive and each waiting request is woken by its own event; on trio nobody reads unless
asked, so waiting requests take turns reading (one at a time, under a lock) and every frame
goes to the stream it belongs to. GOAWAY fails exactly the streams the server did not take;
a stream reset fails its own request only; a lost connection fails all that are open.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Callable
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .._exceptions import (
    BadHttpMessage,
    ClientOSError,
    ClientPayloadError,
    ServerDisconnectedError,
    SocketTimeoutError,
)
from .._models import HttpVersion20
from .._params import (
    chunk_sent_params,
    headers_received_params,
    headers_sent_params,
    request_sent_params,
)
from ._backends import NetworkStream
from ._connection import Body, Exchange

__all__ = ["HTTP2Connection"]

# Connection-specific headers HTTP/2 forbids (RFC 9113 8.2.2); Host becomes :authority.
_DROPPED = frozenset(
    {b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_WINDOW = 2**24  # our receive window, per stream and for the connection
_WRITE_TIMEOUT = 30.0  # bound of one (shielded) write of frames


class HTTP2Connection:
    """Streams, flow control and the events of one HTTP/2 connection."""

    http2 = True

    def __init__(
        self,
        stream: NetworkStream,
        key: Any,
        on_stream_done: Callable[[HTTP2Connection, int], None],
    ) -> None:
        self.stream = stream
        self.key = key
        self._on_stream_done = on_stream_done
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self._h2 = _H2Connection(config)
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(_WINDOW - 65535)
        self._streams: dict[int, Exchange] = {}
        self._unsent: list[bytes] = []
        self._read_lock = anyio.Lock()
        self._write_lock = anyio.Lock()
        self.reserved = 0  # streams promised by the pool, opened or about to be
        self.holds_slot = False  # the pool's: this connection holds a slot while it has streams
        self._settings_seen = False
        self._settings_event: anyio.Event | None = None
        self.goaway = False
        self.broken = False
        self.eof = False
        self.reading_paused = False
        self.idle_since = 0.0
        self.requests = 0
        stream.receiver = self

    # --- the pool's view ---

    @property
    def usable(self) -> bool:
        return not (self.broken or self.eof or self.goaway or self.stream.closed)

    def has_capacity(self) -> bool:
        return self.reserved < self._h2.remote_settings.max_concurrent_streams

    def close(self) -> None:
        self.broken = True
        self.stream.close()
        self.stream.receiver = None
        self._fail_all(ServerDisconnectedError("The HTTP/2 connection was closed"))

    async def start(self) -> None:
        """Send the connection preface and our settings; wait for the server's, so that no
        stream is opened past its SETTINGS_MAX_CONCURRENT_STREAMS."""
        await self._flush()
        while not self._settings_seen and not self.eof and not self.broken:
            if self.stream.pulls:
                await self.stream.pump()
                await self._flush()
            else:
                event = self._settings_event = anyio.Event()
                await event.wait()
        if not self._settings_seen:
            raise ServerDisconnectedError("The server closed the connection before its SETTINGS")

    # --- a request ---

    async def request(
        self,
        exchange: Exchange,
        method: bytes,
        authority: bytes,
        scheme: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body,
    ) -> None:
        """Open a stream, send the request, wait for the response head."""
        self.requests += 1
        trace = exchange.trace
        plan = trace.plan
        exchange._conn = self
        exchange.version = HttpVersion20
        fields = [
            (b":method", method),
            (b":authority", authority),
            (b":scheme", scheme),
            (b":path", target),
        ]
        fields.extend((k.lower(), v) for k, v in headers if k.lower() not in _DROPPED)
        try:
            stream_id = self._h2.get_next_available_stream_id()
            exchange.stream_id = stream_id
            self._streams[stream_id] = exchange
            self._h2.send_headers(stream_id, fields, end_stream=not body)
            await self._flush()
        except (h2.exceptions.ProtocolError, OSError) as exc:
            self.broken = True
            raise ServerDisconnectedError(f"HTTP/2 connection unusable: {exc}") from exc
        if plan.on_request_headers_sent:
            await trace.send(
                plan.on_request_headers_sent,
                headers_sent_params(trace.method, trace.url, trace.headers),
            )
        if body:
            await self._send_body(exchange, stream_id, body)
        if plan.on_request_sent:
            await trace.send(
                plan.on_request_sent, request_sent_params(trace.method, trace.url, stream_id)
            )
        while not exchange.head_done:
            if exchange.error is not None:
                raise exchange.error
            await self.wait(exchange)
        exchange.head_taken = True
        if plan.on_response_headers_received:
            await trace.send(
                plan.on_response_headers_received,
                headers_received_params(trace.method, trace.url, exchange.status, stream_id),
            )

    async def _send_body(self, exchange: Exchange, stream_id: int, body: Body) -> None:
        trace = exchange.trace
        plan = trace.plan
        chunks: Any = [body] if isinstance(body, bytes) else body
        iterator = chunks.__aiter__() if isinstance(chunks, AsyncIterable) else None
        try:
            if iterator is None:
                for chunk in chunks:
                    await self._send_data(exchange, stream_id, chunk)
                    if plan.on_request_chunk_sent:
                        await trace.send(
                            plan.on_request_chunk_sent,
                            chunk_sent_params(trace.method, trace.url, chunk),
                        )
            else:
                async for chunk in iterator:
                    if not chunk:
                        continue
                    chunk = bytes(chunk)
                    await self._send_data(exchange, stream_id, chunk)
                    if plan.on_request_chunk_sent:
                        await trace.send(
                            plan.on_request_chunk_sent,
                            chunk_sent_params(trace.method, trace.url, chunk),
                        )
            self._h2.end_stream(stream_id)
            await self._flush()
        except (h2.exceptions.ProtocolError, OSError) as exc:
            if exchange.error is not None:
                raise exchange.error from exc
            raise ClientOSError(None, f"HTTP/2 stream {stream_id}: {exc}") from exc
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await close()

    async def _send_data(self, exchange: Exchange, stream_id: int, data: bytes) -> None:
        """Write `data` as DATA frames, within the flow control windows."""
        h2c = self._h2
        while data:
            window = min(h2c.local_flow_control_window(stream_id), h2c.max_outbound_frame_size)
            if window <= 0:
                await self.wait(exchange)  # a WINDOW_UPDATE will come
                if exchange.error is not None:
                    raise exchange.error
                continue
            h2c.send_data(stream_id, data[:window])
            await self._flush()
            data = data[window:]

    async def wait(self, exchange: Exchange) -> None:
        """Wait until something happened to `exchange` (or the connection)."""
        seen = exchange.events  # before any await: what arrives meanwhile counts as news
        if self._unsent:
            await self.flush()
        timeout = exchange.read_timeout
        with anyio.move_on_after(timeout) as scope:
            if self.stream.pulls:
                async with self._read_lock:
                    if exchange.events == seen and not self.eof:
                        await self.stream.pump()
                        await self.flush()
            else:
                event = exchange.wakeup = anyio.Event()
                if exchange.events == seen and not self.eof:
                    await event.wait()
                exchange.wakeup = None
        if scope.cancelled_caught:
            self.abort(exchange)
            raise SocketTimeoutError(f"Timeout on reading data from socket ({timeout}s)")
        if self.eof and not exchange.complete and exchange.error is None:
            exchange.error = ServerDisconnectedError()

    def consumed(self, exchange: Exchange, size: int) -> None:
        """The caller read `size` bytes of body: let the server send as much again."""
        stream_id = exchange.stream_id
        try:
            if stream_id in self._streams:
                self._h2.acknowledge_received_data(size, stream_id)
            else:
                self._h2.increment_flow_control_window(size)
        except (h2.exceptions.ProtocolError, ValueError):
            return
        self._send_soon()

    def abort(self, exchange: Exchange) -> None:
        """Give up on `exchange`: reset its stream if open; the connection carries on."""
        stream_id = exchange.stream_id
        if stream_id == -1:
            return  # already accounted for
        if stream_id in self._streams:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            self._send_soon()
        if not exchange.complete and exchange.error is None:
            exchange.complete = True
        self._release(exchange)

    def _release(self, exchange: Exchange) -> None:
        """Exactly once per exchange: its stream leaves, the pool gets the slot back."""
        stream_id = exchange.stream_id
        if stream_id == -1:
            return
        exchange.stream_id = -1
        self._streams.pop(stream_id, None)
        self._on_stream_done(self, 1)

    # --- fed by the stream ---

    def feed_data(self, data: bytes | memoryview) -> None:
        try:
            events = self._h2.receive_data(bytes(data))  # (a view is the next read's buffer)
        except h2.exceptions.ProtocolError as exc:
            self.broken = True
            self._fail_all(BadHttpMessage(f"HTTP/2 protocol error: {exc}"))
            self.stream.close()
            return
        for event in events:
            self._dispatch(event)
        self._send_soon()

    def feed_eof(self, error: BaseException | None) -> None:
        self.eof = True
        lost = ServerDisconnectedError("The server closed the HTTP/2 connection")
        lost.__cause__ = error
        self._fail_all(lost)

    def _dispatch(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", None)
        exchange = self._streams.get(stream_id) if stream_id else None
        if isinstance(event, h2.events.ResponseReceived) and exchange is not None:
            status = b"0"
            for name, value in event.headers or ():
                if name == b":status":
                    status = value
                elif not name.startswith(b":"):
                    exchange.raw_headers.append((name, value))
            exchange.status = int(status)
            exchange.reason = b""
            exchange.head_done = True
        elif isinstance(event, h2.events.DataReceived) and exchange is not None:
            if event.data:
                exchange._chunks.append(event.data)
                exchange.buffered += len(event.data)
                exchange.received += len(event.data)
            padding = (event.flow_controlled_length or 0) - len(event.data or b"")
            if padding > 0:
                self._h2.acknowledge_received_data(padding, event.stream_id)
        elif isinstance(event, h2.events.DataReceived):  # for a stream given up: free window
            if event.flow_controlled_length:
                self._h2.increment_flow_control_window(event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded) and exchange is not None:
            exchange.complete = True
            self._release(exchange)
        elif isinstance(event, h2.events.StreamReset) and exchange is not None:
            reason = f"HTTP/2 stream {event.stream_id} reset by the server ({event.error_code!r})"
            exchange.error = (
                ClientPayloadError(reason)
                if exchange.head_done
                else ServerDisconnectedError(reason)
            )
            self._release(exchange)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = True
            last = event.last_stream_id or 0
            for sid, other in list(self._streams.items()):
                if sid > last:  # never processed by the server: safe to retry elsewhere
                    other.error = ServerDisconnectedError(
                        f"HTTP/2 GOAWAY ({event.error_code!r}): stream {sid} not processed"
                    )
                    self._release(other)
                    self._wake(other)
            self._on_stream_done(self, 0)
            return
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._settings_seen = True
            self._wake_start()
            return
        elif isinstance(event, h2.events.WindowUpdated):
            for other in self._streams.values():  # a writer may wait for window
                self._wake(other)
            return
        else:
            return
        if exchange is not None:
            self._wake(exchange)

    def _wake(self, exchange: Exchange) -> None:
        exchange.events += 1
        wakeup = exchange.wakeup
        if wakeup is not None:
            wakeup.set()

    def _wake_start(self) -> None:
        event, self._settings_event = self._settings_event, None
        if event is not None:
            event.set()

    def _fail_all(self, error: BaseException) -> None:
        self._wake_start()
        for exchange in list(self._streams.values()):
            if not exchange.complete and exchange.error is None:
                if exchange.head_done:  # the body was cut short
                    exchange.error = ClientPayloadError(
                        f"Response payload is not completed: {error}"
                    )
                    exchange.error.__cause__ = error.__cause__
                else:
                    exchange.error = error
            self._release(exchange)
            self._wake(exchange)
        self._on_stream_done(self, 0)

    # --- writing ---

    def _send_soon(self) -> None:
        data = self._h2.data_to_send()
        if data and not self.stream.write_nowait(data):
            self._unsent.append(data)

    @property
    def needs_flush(self) -> bool:
        return bool(self._unsent)

    async def flush(self) -> None:
        """Send queued frames (acknowledgements, resets). A failure here fails no request by
        itself: what the server already sent can still be read."""
        with contextlib.suppress(ServerDisconnectedError):
            await self._flush()

    async def _flush(self) -> None:
        """Send what h2 has queued, one writer at a time. The h2 calls before it are
        synchronous, so frames go out in the order they were made."""
        async with self._write_lock:
            data = b"".join(self._unsent) + self._h2.data_to_send()
            self._unsent.clear()
            if not data:
                return
            # Shielded: frames of every stream share this write, and a write cut off by one
            # request's cancellation would break the connection for all of them (trio).
            with anyio.CancelScope(shield=True) as scope:
                scope.deadline = anyio.current_time() + _WRITE_TIMEOUT
                try:
                    await self.stream.send(data)
                except OSError as exc:
                    self.broken = True
                    raise ServerDisconnectedError(f"HTTP/2 connection lost: {exc}") from exc
            if scope.cancelled_caught:
                self.close()
                raise ServerDisconnectedError("HTTP/2 connection stalled: a write took too long")


class _H2Connection(h2.connection.H2Connection):
    """h2's connection, but a GOAWAY leaves the streams it did take able to finish.

    h2 moves to its CLOSED state on receiving GOAWAY and then refuses every frame, while
    RFC 9113 6.8 lets the streams up to `last_stream_id` complete. compat opens no new
    stream after a GOAWAY (`HTTP2Connection.goaway`), so reading on is safe."""

    def _receive_goaway_frame(self, frame: Any) -> Any:
        result = super()._receive_goaway_frame(frame)
        self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return result
