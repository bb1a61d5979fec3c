"""Client websockets with aiohttp's API: `ClientSession.ws_connect` and its response.

The handshake is an ordinary traced request of the session (the same signals as aiohttp's:
`request_start` … `request_end` with status 101); its connection is then taken over
(`_transport._upgrade`) and held by the websocket until it closes. Frames are wsproto's
(`_wsframes`); this module does the I/O, the timeouts and aiohttp's semantics.

No task is started, on either backend: the heartbeat is driven by the websocket's own calls.
A `receive()` waits for data at most until the next heartbeat is due, then sends the PING (or,
if the PONG is overdue, fails as aiohttp does); a send also sends a PING that is due. A
websocket nobody reads or writes sends no PING (aiohttp's loop timer would): trio has no
timer without a task, and a task would need a nursery the caller does not give.
"""

from __future__ import annotations

import base64
import hashlib
import json as json_module
import math
import os
import re
import sys
import warnings
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass
from enum import IntEnum
from ssl import SSLContext
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
from multidict import CIMultiDict

from ._exceptions import (
    ClientConnectionError,
    ClientConnectionResetError,
    ServerDisconnectedError,
    ServerTimeoutError,
    WSMessageTypeError,
    WSServerHandshakeError,
)
from ._models import BasicAuth, Fingerprint

if TYPE_CHECKING:
    from ._response import ClientResponse
    from ._session import ClientSession
    from ._transport._upgrade import UpgradedStream
    from ._wsframes import Frames

__all__ = [
    "ClientWSTimeout",
    "ClientWebSocketResponse",
    "WSCloseCode",
    "WSMessage",
    "WSMsgType",
    "WebSocketError",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

if sys.version_info >= (3, 11):
    _Timeout = TimeoutError  # asyncio's is the builtin
else:  # aiohttp raises asyncio's, a class of its own before 3.11
    from asyncio import TimeoutError as _Timeout


# RFC 6455 §7.4.1 close codes, then the message types: the wire's opcodes and aiohttp's three
# of its own (never on the wire: CLOSING, CLOSED, ERROR), each with its lower-case alias.
WSCloseCode = IntEnum(
    "WSCloseCode",
    [
        ("OK", 1000), ("GOING_AWAY", 1001), ("PROTOCOL_ERROR", 1002),
        ("UNSUPPORTED_DATA", 1003), ("ABNORMAL_CLOSURE", 1006), ("INVALID_TEXT", 1007),
        ("POLICY_VIOLATION", 1008), ("MESSAGE_TOO_BIG", 1009), ("MANDATORY_EXTENSION", 1010),
        ("INTERNAL_ERROR", 1011), ("SERVICE_RESTART", 1012), ("TRY_AGAIN_LATER", 1013),
        ("BAD_GATEWAY", 1014),
    ],
)  # fmt: skip


class WSMsgType(IntEnum):
    CONTINUATION = 0x0
    TEXT = text = 0x1
    BINARY = binary = 0x2
    PING = ping = 0x9
    PONG = pong = 0xA
    CLOSE = close = 0x8
    CLOSING = closing = 0x100
    CLOSED = closed = 0x101
    ERROR = error = 0x102


class WSMessage(NamedTuple):
    """A received message: TEXT/BINARY/PING/PONG data with extra "", CLOSE (code, reason),
    ERROR (the exception, None), CLOSING/CLOSED (None, None)."""

    type: WSMsgType
    data: Any
    extra: str | None

    def json(self, *, loads: Callable[[Any], Any] = json_module.loads) -> Any:
        return loads(self.data)


_CLOSED = WSMessage(WSMsgType.CLOSED, None, None)
_CLOSING = WSMessage(WSMsgType.CLOSING, None, None)
_INTERNAL = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.PING, WSMsgType.PONG})
_ENDS_ITERATION = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED})


class WebSocketError(Exception):
    """A websocket protocol error (`code` is the close code it was closed with)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(code, message)

    def __str__(self) -> str:
        return str(self.args[1])


@dataclass(frozen=True, slots=True)
class ClientWSTimeout:
    """`ws_receive`: a `receive()` waits at most this; `ws_close`: `close()` waits this
    for the server's CLOSE."""

    ws_receive: float | None = None
    ws_close: float | None = None


DEFAULT_WS_CLIENT_TIMEOUT = ClientWSTimeout(ws_receive=None, ws_close=10.0)


class _PeerGone(Exception):
    """The connection ended under a pending read (internal)."""


class ClientWebSocketResponse:
    """An open client websocket (aiohttp's `ClientWebSocketResponse`)."""

    def __init__(
        self,
        upgraded: UpgradedStream,
        frames: Frames,
        protocol: str | None,
        response: ClientResponse,
        timeout: ClientWSTimeout,
        autoclose: bool,
        autoping: bool,
        *,
        heartbeat: float | None = None,
        compress: int = 0,
        client_notakeover: bool = False,
    ) -> None:
        self._upgraded = upgraded
        self._frames = frames
        self._protocol = protocol
        self._response = response
        self._autoping, self._autoclose = autoping, autoclose
        self._timeout, self._heartbeat = timeout, heartbeat
        self._compress, self._client_notakeover = compress, client_notakeover
        self._pending: deque[WSMessage] = deque()
        self._closed = False
        self._closing = False
        self._close_sent = False
        self._close_code: int | None = None
        self._exception: BaseException | None = None
        self._waiting = False
        self._interrupted = False  # close() from another task ended the pending receive
        self._close_wait: anyio.Event | None = None
        self._read_scope: anyio.CancelScope | None = None
        self._send_lock = anyio.Lock()
        self._ping_at = math.inf if heartbeat is None else anyio.current_time() + heartbeat
        self._pong_by = math.inf  # a heartbeat PING went out: data must come by then

    # --- state ---

    @property
    def protocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        return self._protocol

    @property
    def compress(self) -> int:
        """The deflate window bits agreed on; 0 without compression."""
        return self._compress

    @property
    def client_notakeover(self) -> bool:
        """Whether the client resets its compression context after each message."""
        return self._client_notakeover

    @property
    def closed(self) -> bool:
        """Both CLOSE frames went (or the connection is gone)."""
        return self._closed

    @property
    def close_code(self) -> int | None:
        """The code the server closed with, or ours for an abnormal end (1006, 1009)."""
        return self._close_code

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The socket's details (`peername`, `sockname`, `ssl_object`, `socket`)."""
        return self._upgraded.get_extra_info(name, default)

    def exception(self) -> BaseException | None:
        return self._exception

    # --- sending ---

    async def _write(self, make: Callable[[], bytes]) -> None:
        """Frame (and compress) and write under one lock, so frames leave in the order their
        compression context saw them."""
        if self._close_sent or self._upgraded.closed:
            raise ClientConnectionResetError("Cannot write to closing transport")
        async with self._send_lock:
            data = make()
            if self._ping_at <= anyio.current_time() and not (self._closing or self._closed):
                data += self._heartbeat_ping()
            try:
                await self._upgraded.send(data)
            except OSError as exc:
                raise ClientConnectionResetError("Cannot write to closing transport") from exc

    async def ping(self, message: bytes = b"") -> None:
        await self._write(lambda: self._frames.ping(bytes(message)))

    async def pong(self, message: bytes = b"") -> None:
        await self._write(lambda: self._frames.pong(bytes(message)))

    async def send_frame(
        self, message: bytes, opcode: WSMsgType, compress: int | None = None
    ) -> None:
        """One frame of `opcode` (TEXT, BINARY, PING, PONG or CLOSE) with `message`."""
        frames = self._frames
        if opcode == WSMsgType.TEXT:
            text = bytes(message).decode("utf-8")
            await self._write(lambda: frames.text(text, compress))
        elif opcode == WSMsgType.BINARY:
            await self._write(lambda: frames.binary(bytes(message), compress))
        elif opcode == WSMsgType.PING:
            await self.ping(message)
        elif opcode == WSMsgType.PONG:
            await self.pong(message)
        elif opcode == WSMsgType.CLOSE:
            code = int.from_bytes(message[:2], "big") if len(message) >= 2 else 1000
            reason = bytes(message[2:]).decode("utf-8", "replace")
            await self._write(lambda: frames.close(code, reason))
            self._close_sent = True
        else:
            raise ValueError(f"send_frame cannot send a frame of opcode {opcode!r}")

    async def send_str(self, data: str, compress: int | None = None) -> None:
        if not isinstance(data, str):
            raise TypeError(f"data argument must be str ({type(data)!r})")
        await self._write(lambda: self._frames.text(data, compress))

    async def send_bytes(self, data: bytes, compress: int | None = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be byte-ish ({type(data)!r})")
        await self._write(lambda: self._frames.binary(bytes(data), compress))

    async def send_json(
        self,
        data: Any,
        compress: int | None = None,
        *,
        dumps: Callable[[Any], str] = json_module.dumps,
    ) -> None:
        await self.send_str(dumps(data), compress=compress)

    async def send_json_bytes(
        self, data: Any, compress: int | None = None, *, dumps: Callable[[Any], bytes]
    ) -> None:
        await self.send_bytes(dumps(data), compress=compress)

    # --- heartbeat ---

    def _heartbeat_ping(self) -> bytes:
        """The heartbeat PING's bytes, now due; the PONG (or any data) must follow in h/2."""
        assert self._heartbeat is not None
        now = anyio.current_time()
        self._ping_at = math.inf
        self._pong_by = now + self._heartbeat / 2
        return self._frames.ping(b"")

    def _heard(self) -> None:
        """Data came: the peer is alive, the next PING is a heartbeat away."""
        if self._heartbeat is not None:
            self._ping_at = anyio.current_time() + self._heartbeat
            self._pong_by = math.inf

    # --- receiving ---

    async def _next(self, timeout: float | None) -> WSMessage:
        """The next message off the wire (control messages included), `_CLOSING` if close()
        interrupted the wait. Raises TimeoutError, `_PeerGone`, WebSocketError, or
        ServerTimeoutError (heartbeat)."""
        pending = self._pending
        if pending:
            return pending.popleft()
        frames = self._frames
        if frames.error is not None:
            raise frames.error
        upgraded = self._upgraded
        give_up = math.inf if not timeout else anyio.current_time() + timeout
        while True:
            if self._interrupted:  # close() in another task: this receive ends first
                self._interrupted = False
                return _CLOSING
            data = upgraded.receive_nowait()
            if not data:
                if upgraded.eof or upgraded.closed:
                    raise _PeerGone()
                beat = math.inf if self._closed else min(self._ping_at, self._pong_by)
                with anyio.CancelScope(deadline=min(give_up, beat)) as scope:
                    self._read_scope = scope
                    try:
                        data = await upgraded.receive()
                    finally:
                        self._read_scope = None
                if not data:
                    if self._interrupted:
                        continue
                    if not scope.cancelled_caught:
                        raise _PeerGone()
                    now = anyio.current_time()
                    if now >= self._pong_by and not self._closed:
                        raise ServerTimeoutError(
                            f"No PONG received after {self._heartbeat / 2} seconds"  # type: ignore[operator]
                        )
                    if now >= self._ping_at and not self._closed:
                        async with self._send_lock:
                            await upgraded.send(self._heartbeat_ping())
                    if now >= give_up:
                        raise _Timeout()
                    continue
            self._heard()
            messages = frames.feed(data)
            if messages:
                pending.extend(messages[1:])
                return messages[0]
            if frames.error is not None:
                raise frames.error

    async def receive(self, timeout: float | None = None) -> WSMessage:
        receive_timeout = timeout or self._timeout.ws_receive
        while True:
            if self._waiting:
                raise RuntimeError("Concurrent call to receive() is not allowed")
            if self._closed:
                return _CLOSED
            if self._closing:
                await self.close()
                return _CLOSED
            self._waiting = True
            try:
                try:
                    msg = await self._next(receive_timeout)
                finally:
                    self._waiting = False
                    self._interrupted = False
                    if self._close_wait is not None:
                        self._close_wait.set()
            except BaseException as exc:
                outcome = await self._read_failed(exc)
                if outcome is None:
                    raise
                return outcome

            kind = msg.type
            if kind not in _INTERNAL:
                return msg
            if kind is WSMsgType.CLOSE:
                self._closing = True
                self._close_code = msg.data
                if not self._closed and self._autoclose:
                    await self.close()
            elif kind is WSMsgType.CLOSING:
                self._closing = True
            elif kind is WSMsgType.PING and self._autoping:
                await self.pong(msg.data)
                continue
            elif kind is WSMsgType.PONG and self._autoping:
                continue
            return msg

    async def _read_failed(self, exc: BaseException) -> WSMessage | None:
        """What a failed read becomes for the caller, with aiohttp's state after it (None:
        the exception itself goes on: a timeout or a cancellation leaves the socket open)."""
        if isinstance(exc, ServerTimeoutError):  # heartbeat: no PONG in time; drop the socket
            self._closed = True
            self._upgraded.close()
        elif isinstance(exc, _PeerGone):
            self._close_code = WSCloseCode.OK
            await self.close()  # fails to send: close_code 1006 and the reset recorded
            return _CLOSED
        elif isinstance(exc, WebSocketError):  # the server broke the protocol, or a limit
            self._close_code = exc.code
            await self.close(code=exc.code)
            return WSMessage(WSMsgType.ERROR, exc, None)
        elif isinstance(exc, (_Timeout, anyio.get_cancelled_exc_class())):
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            return None
        elif isinstance(exc, Exception):
            self._closing = True
        else:
            return None
        self._close_code = WSCloseCode.ABNORMAL_CLOSURE
        self._exception = exc
        if not self._closed:
            await self.close()
        return WSMessage(WSMsgType.ERROR, exc, None)

    async def receive_str(self, *, timeout: float | None = None) -> Any:
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.TEXT:
            raise WSMessageTypeError(
                f"Received message {msg.type}:{msg.data!r} is not WSMsgType.TEXT"
            )
        return msg.data

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.BINARY:
            raise WSMessageTypeError(
                f"Received message {msg.type}:{msg.data!r} is not WSMsgType.BINARY"
            )
        return bytes(msg.data)

    async def receive_json(
        self,
        *,
        loads: Callable[[Any], Any] = json_module.loads,
        timeout: float | None = None,
    ) -> Any:
        return loads(await self.receive_str(timeout=timeout))

    # --- closing ---

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes | str = b"") -> bool:
        """Send CLOSE (`code`, `message`) and wait (`ws_close`) for the server's; True if this
        call closed the websocket, False if it was closed already."""
        if self._waiting and not self._closing:
            # end the receive() another task is in first: it returns CLOSING
            self._close_wait = anyio.Event()
            self._closing = True
            self._interrupted = True
            if self._read_scope is not None:
                self._read_scope.cancel()
            await self._close_wait.wait()
        if self._closed:
            return False
        self._closed = True
        upgraded = self._upgraded
        reason = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        try:
            await self._write(lambda: self._frames.close(code, reason))
        except anyio.get_cancelled_exc_class():
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            upgraded.close()
            raise
        except Exception as exc:
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            self._exception = exc
            upgraded.close()
            return True
        finally:
            self._close_sent = True
        if self._close_code:
            upgraded.close()
            return True
        while True:
            try:
                with anyio.fail_after(self._timeout.ws_close):
                    msg = await self._next(None)
            except anyio.get_cancelled_exc_class():
                self._close_code = WSCloseCode.ABNORMAL_CLOSURE
                upgraded.close()
                raise
            except Exception as exc:
                self._close_code = WSCloseCode.ABNORMAL_CLOSURE
                self._exception = ServerDisconnectedError() if isinstance(exc, _PeerGone) else exc
                upgraded.close()
                return True
            if msg.type is WSMsgType.CLOSE:
                self._close_code = msg.data
                upgraded.close()
                return True

    # --- iteration and context ---

    async def __aenter__(self) -> ClientWebSocketResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __aiter__(self) -> ClientWebSocketResponse:
        return self

    async def __anext__(self) -> WSMessage:
        """The next data message; the iteration ends where the websocket starts closing."""
        msg = await self.receive()
        if msg.type in _ENDS_ITERATION:
            raise StopAsyncIteration
        return msg


# --- the handshake ---


class WSRequestContextManager(Coroutine[Any, Any, ClientWebSocketResponse]):
    """What `session.ws_connect(...)` returns: awaitable, used as `async with`, or run as a
    task (a coroutine, as aiohttp's)."""

    __slots__ = ("_coro", "_ws")

    def __init__(self, coro: Coroutine[Any, Any, ClientWebSocketResponse]) -> None:
        self._coro = coro
        self._ws: ClientWebSocketResponse | None = None

    def __await__(self) -> Generator[Any, None, ClientWebSocketResponse]:
        return self._coro.__await__()

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    async def __aenter__(self) -> ClientWebSocketResponse:
        self._ws = await self._coro
        return self._ws

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ws is not None:
            await self._ws.close()


_DEPRECATED = "is deprecated and will be removed in v4 (aiohttp)"


async def connect(
    session: ClientSession,
    url: Any,
    *,
    method: str = "GET",
    protocols: Iterable[str] = (),
    timeout: ClientWSTimeout | float | Any = None,
    receive_timeout: float | None = None,
    autoclose: bool = True,
    autoping: bool = True,
    heartbeat: float | None = None,
    auth: BasicAuth | None = None,
    origin: str | None = None,
    params: Any = None,
    headers: Any = None,
    proxy: Any = None,
    proxy_auth: BasicAuth | None = None,
    ssl: SSLContext | bool | Fingerprint = True,
    verify_ssl: bool | None = None,
    fingerprint: bytes | None = None,
    ssl_context: SSLContext | None = None,
    server_hostname: str | None = None,
    proxy_headers: Any = None,
    compress: int = 0,
    max_msg_size: int = 4 * 1024 * 1024,
    decode_text: bool = True,
    trace_request_ctx: Any = None,
) -> ClientWebSocketResponse:
    """`ClientSession.ws_connect`: the upgrade request, its checks, the websocket."""
    try:
        from ._wsframes import Frames
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ImportError("ws_connect needs wsproto: pip install 'httpx-trace-compat[ws]'") from exc
    if auth is not None:
        warnings.warn(f"The 'auth' parameter {_DEPRECATED}", DeprecationWarning, stacklevel=3)
    if proxy_auth is not None:
        warnings.warn(f"The 'proxy_auth' parameter {_DEPRECATED}", DeprecationWarning, 3)
    if timeout is None:
        ws_timeout = DEFAULT_WS_CLIENT_TIMEOUT
    elif isinstance(timeout, ClientWSTimeout):
        ws_timeout = timeout
    else:
        warnings.warn(
            "parameter 'timeout' of type 'float' is deprecated, please use "
            "'timeout=ClientWSTimeout(ws_close=...)'",
            DeprecationWarning,
            stacklevel=3,
        )
        ws_timeout = ClientWSTimeout(ws_close=timeout)
    if receive_timeout is not None:
        warnings.warn(
            "float parameter 'receive_timeout' is deprecated, please use parameter "
            "'timeout=ClientWSTimeout(ws_receive=...)'",
            DeprecationWarning,
            stacklevel=3,
        )
        ws_timeout = ClientWSTimeout(ws_receive=receive_timeout, ws_close=ws_timeout.ws_close)
    if server_hostname is not None:
        raise ValueError("server_hostname= is not supported by compat's ws_connect")
    ssl = _merge_ssl(ssl, verify_ssl, ssl_context, fingerprint)
    if compress and not 9 <= compress <= 15:
        raise ValueError("Compress wbits must between 9 and 15, zlib does not support wbits=8")

    wire: CIMultiDict[str] = CIMultiDict(headers or ())
    wire.setdefault("Upgrade", "websocket")
    wire.setdefault("Connection", "Upgrade")
    wire.setdefault("Sec-WebSocket-Version", "13")
    key = base64.b64encode(os.urandom(16))
    wire["Sec-WebSocket-Key"] = key.decode()
    protocols = tuple(protocols)
    if protocols:
        wire["Sec-WebSocket-Protocol"] = ",".join(protocols)
    if origin is not None:
        wire["Origin"] = origin
    if compress:
        offer = "permessage-deflate; client_max_window_bits"
        wire["Sec-WebSocket-Extensions"] = (
            offer if compress == 15 else f"{offer}; server_max_window_bits={compress}"
        )

    response = await session._request(
        method,
        url,
        params=params,
        headers=list(wire.items()),
        auth=auth,
        proxy=proxy,
        proxy_auth=proxy_auth,
        ssl=ssl,
        proxy_headers=proxy_headers,
        trace_request_ctx=trace_request_ctx,
    )
    exchange = response._exchange
    try:

        def refuse(message: str) -> WSServerHandshakeError:
            return WSServerHandshakeError(
                response.request_info,
                response.history,
                message=message,
                status=response.status,
                headers=response.headers,
            )

        got = response.headers
        if response.status != 101:
            raise refuse("Invalid response status")
        if got.get("Upgrade", "").lower() != "websocket":
            raise refuse("Invalid upgrade header")
        if got.get("Connection", "").lower() != "upgrade":
            raise refuse("Invalid connection header")
        expected = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        if got.get("Sec-WebSocket-Accept", "") != expected:
            raise refuse("Invalid challenge response")
        protocol = None
        if protocols and "Sec-WebSocket-Protocol" in got:
            offered = [p.strip() for p in got["Sec-WebSocket-Protocol"].split(",")]
            protocol = next((p for p in offered if p in protocols), None)
        notakeover = False
        if compress:
            try:
                compress, notakeover = _parse_deflate(got.get("Sec-WebSocket-Extensions"))
            except ValueError as exc:
                raise refuse(str(exc)) from exc
        upgraded = exchange.upgraded
        if upgraded is None:
            raise ClientConnectionError("The 101 response's connection cannot be taken over")
    except BaseException:
        if exchange.upgraded is not None:
            exchange.upgraded.close()
        else:
            exchange.distrust()  # as aiohttp: the refused connection is not reused
            response.close()
        raise
    frames = Frames(
        max_msg_size=max_msg_size,
        compress=compress,
        notakeover=notakeover,
        decode_text=decode_text,
    )
    return ClientWebSocketResponse(
        upgraded,
        frames,
        protocol,
        response,
        ws_timeout,
        autoclose,
        autoping,
        heartbeat=heartbeat,
        compress=compress,
        client_notakeover=notakeover,
    )


_DEFLATE_PARAM = re.compile(
    r"(server_no_context_takeover|client_no_context_takeover"
    r"|server_max_window_bits(=\d+)?|client_max_window_bits(=\d+)?)"
)


def _parse_deflate(header: str | None) -> tuple[int, bool]:
    """aiohttp's reading of the server's Sec-WebSocket-Extensions: (window bits to compress
    with, 0 if not agreed; client_no_context_takeover). ValueError: refused."""
    if not header:
        return 0, False
    for extension in header.split(","):
        name, _, params = extension.strip().partition(";")
        if name.strip() != "permessage-deflate":
            continue
        bits, notakeover = 15, False
        for param in params.split(";") if params.strip() else ():
            param = param.strip()
            if not _DEFLATE_PARAM.fullmatch(param):
                raise ValueError("Extension for deflate not supported" + params)
            if param == "client_no_context_takeover":
                notakeover = True
            elif param.startswith("client_max_window_bits="):
                bits = int(param.partition("=")[2])
                if not 9 <= bits <= 15:
                    raise ValueError("Invalid window size")
        return bits, notakeover
    return 0, False


def _merge_ssl(
    ssl: SSLContext | bool | Fingerprint,
    verify_ssl: bool | None,
    ssl_context: SSLContext | None,
    fingerprint: bytes | None,
) -> SSLContext | bool | Fingerprint:
    """aiohttp's deprecated `verify_ssl`/`ssl_context`/`fingerprint`, folded into `ssl`."""
    if ssl is None:
        warnings.warn("ssl=None is deprecated, please use ssl=True", DeprecationWarning, 4)
        ssl = True
    for name, value, new in (
        ("verify_ssl", True if verify_ssl is False else None, False),
        ("ssl_context", ssl_context, ssl_context),
        ("fingerprint", fingerprint, None if fingerprint is None else Fingerprint(fingerprint)),
    ):
        if value is None:
            continue
        warnings.warn(f"{name} is deprecated, use ssl= instead", DeprecationWarning, 4)
        if ssl is not True:
            raise ValueError(
                "verify_ssl, ssl_context, fingerprint and ssl parameters are mutually exclusive"
            )
        assert new is not None
        ssl = new
    return ssl
