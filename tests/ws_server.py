"""Websocket servers for the tests, in a thread with its own asyncio loop (so asyncio and trio
test runs use the same ones): aiohttp.web's own websocket server, and a raw server of ours
that answers handshakes wrongly or sends frames aiohttp.web would not."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import struct
import threading
import zlib
from typing import Any

import aiohttp
from aiohttp import web

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _bomb() -> bytes:
    """32 MiB of zeros, deflated (RFC 7692: without the sync flush's 4-byte tail)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflater.compress(b"\0" * 32 * 2**20) + deflater.flush(zlib.Z_SYNC_FLUSH)
    return body[:-4]


BOMB = _bomb()


def accept_for(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """An unmasked (server) frame."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, size)
    elif size < 65536:
        head = struct.pack("!BBH", first, 126, size)
    else:
        head = struct.pack("!BBQ", first, 127, size)
    return head + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One masked (client) frame: (opcode, payload)."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4)
    data = bytearray(await reader.readexactly(size))
    for i in range(size):
        data[i] ^= mask[i % 4]
    return first & 0x0F, bytes(data)


TAIL = b"the first bytes of the upgraded stream, in the 101's own segment"
"""What the raw server's /tail sends right behind its 101 head, in the same write."""


class WSServer:
    """aiohttp.web websockets on `port`, the raw server on `raw_port`."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.raw_port = 0
        self.pongs: list[bytes] = []  # what the raw server's /fragments PING got back
        self.handlers_done = 0
        self._runner: web.AppRunner | None = None
        self._raw: asyncio.base_events.Server | None = None

    # --- aiohttp.web ---

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("chat", "v2"), max_msg_size=8 * 2**20)
        await ws.prepare(request)
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
                    continue
                text = msg.data
                if text == "close-me":
                    await ws.close(code=4001, message=b"bye")
                elif text.startswith("big "):
                    await ws.send_bytes(b"x" * int(text[4:]))
                elif text.startswith("ping "):
                    await ws.ping(text[5:].encode())
                else:
                    await ws.send_str(text)
        finally:
            self.handlers_done += 1
        return ws

    async def _silent(self, request: web.Request) -> web.StreamResponse:
        """Reads nothing, so answers no PING."""
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await asyncio.sleep(5)
        return ws

    async def _forbidden(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPForbidden()

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/echo")

    # --- raw ---

    async def _raw_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            accept = accept_for(fields.get("sec-websocket-key", "").encode())
            upgrade = b"Upgrade: websocket\r\n"
            connection = b"Connection: Upgrade\r\n"
            extensions = b""
            if path == "/bad-accept":
                accept = base64.b64encode(b"0" * 20)
            elif path == "/no-upgrade":
                upgrade = b""
            elif path == "/keep-alive":
                connection = b"Connection: keep-alive\r\n"
            elif path == "/bomb":
                extensions = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\n"
                + upgrade
                + connection
                + extensions
                + b"Sec-WebSocket-Accept: "
                + accept
                + b"\r\n\r\n"
                + (TAIL if path == "/tail" else b"")  # in the head's own segment
            )
            if path == "/abort":
                # half of a 100-byte message, then the connection ends
                writer.write(frame(0x2, b"y" * 100)[:50])
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.close()
                return
            if path == "/fragments":
                writer.write(
                    frame(0x1, b"hel", fin=False) + frame(0x9, b"pp") + frame(0x0, b"lo", fin=True)
                )
                opcode, payload = await read_frame(reader)
                self.pongs.append(bytes([opcode]) + payload)
                writer.write(frame(0x1, f"got {opcode} {payload.decode()}".encode()))
                opcode, payload = await read_frame(reader)
                if opcode == 0x8:  # answer the client's close, or it waits out its close timeout
                    writer.write(frame(0x8, payload))
            elif path == "/bomb":
                writer.write(frame(0x2, BOMB, rsv1=True))
            await writer.drain()
            while await reader.read(65536):  # until the client goes
                pass
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    # --- life ---

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/echo", self._echo)
        app.router.add_get("/silent", self._silent)
        app.router.add_get("/forbidden", self._forbidden)
        app.router.add_get("/redirect", self._redirect)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        self._raw = await asyncio.start_server(self._raw_client, "127.0.0.1", 0)
        self.raw_port = self._raw.sockets[0].getsockname()[1]

    def start(self) -> WSServer:
        self.loop.run_until_complete(self._start())
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        async def stop() -> None:
            assert self._runner is not None and self._raw is not None
            self._raw.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
