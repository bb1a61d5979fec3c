"""The websocket frame protocol, on wsproto: bytes in, whole messages out, and back.

wsproto parses and writes frames (masking, fragmentation, control frames, the close
handshake, UTF-8 checks). Compression and the message size limit are one wsproto extension
of ours: permessage-deflate inflated within `max_msg_size` (wsproto's own inflates a frame
whole, so a small compressed frame could grow without bound), with aiohttp's limits: the
bytes of a message on the wire must stay under `max_msg_size`, and inflated not above it.
Imported only by `ws_connect`: wsproto is the optional extra `ws`.
"""

from __future__ import annotations

import zlib
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits
from wsproto.utilities import LocalProtocolError

from ._exceptions import ClientConnectionResetError
from ._websocket import WebSocketError, WSMessage, WSMsgType

__all__ = ["Frames"]

_TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with; RFC 7692 leaves it off the wire
_NO_STATUS = 1005


class _Deflate(Extension):
    """permessage-deflate (when negotiated, `bits` > 0) and the message size limit (always)."""

    name = "permessage-deflate"

    def __init__(self, max_size: int, bits: int, notakeover: bool) -> None:
        self.max_size = max_size
        self.bits = bits
        self.notakeover = notakeover
        self.error: str | None = None  # why the last frame was refused, in aiohttp's words
        self.next_compress: int | None = None  # send_*(compress=…) for the next message
        self._wire = 0  # bytes of the current message's frames so far
        self._inflated = 0
        self._data = False  # the current frame carries a message (not a control frame)
        self._compressed = False  # the current message is compressed
        self._inflater: Any = None
        self._deflater: Any = None

    def enabled(self) -> bool:
        return True  # the size limit applies with or without compression

    def offer(self) -> bool | str:
        return False  # the handshake is ours (the HTTP request), not wsproto's

    def _refuse(self, code: CloseReason, message: str) -> CloseReason:
        self.error = message
        return code

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol():
            self._data = False
            if rsv.rsv1 and self.bits:
                return self._refuse(CloseReason.PROTOCOL_ERROR, "Compressed control frame")
            return RsvBits(False, False, False)  # (rsv1 unnegotiated: wsproto refuses it)
        self._data = True
        if opcode is not Opcode.CONTINUATION:
            self._wire = self._inflated = 0
            self._compressed = bool(self.bits and rsv.rsv1)
        elif rsv.rsv1 and self.bits:
            return self._refuse(CloseReason.PROTOCOL_ERROR, "Compressed continuation frame")
        if self.max_size and payload_length >= self.max_size - self._wire:
            return self._refuse(
                CloseReason.MESSAGE_TOO_BIG,
                f"Message size {payload_length + self._wire} exceeds limit {self.max_size}",
            )
        self._wire += payload_length
        return RsvBits(bool(self.bits), False, False)

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(-15)  # any window the server used
        budget = self.max_size - self._inflated
        try:
            out: bytes = inflater.decompress(data, budget + 1 if self.max_size else 0)
        except zlib.error as exc:
            return self._refuse(CloseReason.INVALID_FRAME_PAYLOAD_DATA, f"Bad deflate data: {exc}")
        if self.max_size and len(out) > budget:  # stopped at the bound: never inflated further
            return self._refuse(
                CloseReason.MESSAGE_TOO_BIG,
                f"Decompressed message exceeds size limit {self.max_size}",
            )
        self._inflated += len(out)
        return out

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if not (self._data and self._compressed):
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not (self._data and self._compressed and fin):
            return None
        self._compressed = False
        return self._inflate(_TAIL)

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        if opcode.iscontrol() or not self.bits:
            return rsv, data
        bits, self.next_compress = self.next_compress, None
        if bits:  # a message of its own settings, from a fresh context (aiohttp's way)
            deflater = zlib.compressobj(zlib.Z_BEST_SPEED, zlib.DEFLATED, -bits)
        else:
            deflater = self._deflater
            if deflater is None:
                deflater = self._deflater = zlib.compressobj(
                    zlib.Z_BEST_SPEED, zlib.DEFLATED, -self.bits
                )
        flush = zlib.Z_FULL_FLUSH if self.notakeover else zlib.Z_SYNC_FLUSH
        out = deflater.compress(data) + deflater.flush(flush)
        return RsvBits(True, rsv.rsv2, rsv.rsv3), out.removesuffix(_TAIL)


class Frames:
    """One client websocket's frame state: `feed` bytes, get messages; `text`/`binary`/
    `ping`/`pong`/`close` give the bytes to write."""

    __slots__ = ("_conn", "_ext", "_kind", "_parts", "decode_text", "error")

    def __init__(self, *, max_msg_size: int, compress: int, notakeover: bool, decode_text: bool):
        self._ext = _Deflate(max_msg_size, compress, notakeover)
        self._conn = Connection(ConnectionType.CLIENT, [self._ext])
        self._parts: list[Any] = []
        self._kind: WSMsgType | None = None
        self.decode_text = decode_text
        self.error: WebSocketError | None = None  # a protocol failure: no message after it

    def feed(self, data: bytes) -> list[WSMessage]:
        """The messages completed by `data`; a failure is kept in `error` (after them)."""
        if self.error is not None:
            return []
        conn = self._conn
        conn.receive_data(data)
        messages: list[WSMessage] = []
        for event in conn.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self._parts.append(event.data)
                if self._kind is None:
                    self._kind = (
                        WSMsgType.TEXT if isinstance(event, TextMessage) else WSMsgType.BINARY
                    )
                if event.message_finished:
                    messages.append(self._message())
            elif isinstance(event, Ping):
                messages.append(WSMessage(WSMsgType.PING, bytes(event.payload), ""))
            elif isinstance(event, Pong):
                messages.append(WSMessage(WSMsgType.PONG, bytes(event.payload), ""))
            elif isinstance(event, CloseConnection):
                if conn.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
                    # not the peer's CLOSE: wsproto refused what it read
                    reason = self._ext.error or event.reason or "Protocol error"
                    self.error = WebSocketError(int(event.code), reason)
                    break
                code = 0 if event.code == _NO_STATUS else int(event.code)  # as aiohttp
                messages.append(WSMessage(WSMsgType.CLOSE, code, event.reason or ""))
        return messages

    def _message(self) -> WSMessage:
        parts, self._parts = self._parts, []
        kind, self._kind = self._kind, None
        if kind is WSMsgType.TEXT:
            text = "".join(parts)
            return WSMessage(kind, text if self.decode_text else text.encode(), "")
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        return WSMessage(WSMsgType.BINARY, bytes(data), "")

    def _send(self, event: Any) -> bytes:
        try:
            return bytes(self._conn.send(event))
        except LocalProtocolError as exc:
            raise ClientConnectionResetError("Cannot write to closing transport") from exc

    def text(self, data: str, compress: int | None = None) -> bytes:
        self._ext.next_compress = compress
        return self._send(TextMessage(data=data))

    def binary(self, data: bytes, compress: int | None = None) -> bytes:
        self._ext.next_compress = compress
        return self._send(BytesMessage(data=data))

    def ping(self, payload: bytes) -> bytes:
        return self._send(Ping(payload=payload))

    def pong(self, payload: bytes) -> bytes:
        return self._send(Pong(payload=payload))

    def close(self, code: int, reason: str) -> bytes:
        return self._send(CloseConnection(code=code, reason=reason))
