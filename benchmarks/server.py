"""A minimal keep-alive HTTP/1.1 server for the benchmarks: `python benchmarks/server.py`.

asyncio protocol, no framework: it answers every request with a fixed body, so the client is
what gets measured. `/big` answers 64 KiB, `/headers` 13 bytes under a
typical server's 12 headers, anything else 13 bytes under 2. It listens on 127.0.0.1 only,
prints its port, and exits when its parent process goes away or after `--lifetime` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

_SMALL = b"Hello, world!"
_BIG = b"b" * 64 * 1024


def _reply(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n\r\n"
    return head.encode() + body


# `/headers`: the small body under the head a typical web server sends (12 headers, ~400 B)
_TYPICAL = (
    b"HTTP/1.1 200 OK\r\nDate: Thu, 03 Dec 2026 12:00:00 GMT\r\nServer: nginx/1.27.1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n"
    b"Connection: keep-alive\r\nCache-Control: private, max-age=0\r\n"
    b'ETag: "5f3c-1a2b3c4d"\r\nLast-Modified: Wed, 02 Dec 2026 08:30:00 GMT\r\n'
    b"Vary: Accept-Encoding\r\nX-Request-Id: 7b2f6c1e-9d4a-4e8b-a1f3-2c5d8e9b0a17\r\n"
    b"Strict-Transport-Security: max-age=31536000\r\nX-Content-Type-Options: nosniff\r\n"
    b"\r\n" + _SMALL
)
_REPLIES = {b"/big": _reply(_BIG), b"/headers": _TYPICAL}
_DEFAULT = _reply(_SMALL)


class _Protocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self._buffer = self._buffer[length:]  # bodies are small and ignored
            path = head.split(b" ", 2)[1]
            self._transport.write(_REPLIES.get(path, _DEFAULT))


async def main(lifetime: float) -> None:
    loop = asyncio.get_running_loop()
    parent = os.getppid()
    server = await loop.create_server(_Protocol, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    deadline = loop.time() + lifetime

    def watch() -> None:
        if loop.time() >= deadline or os.getppid() != parent:
            stop.set()
        else:
            loop.call_later(1, watch)

    watch()
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifetime", type=float, default=1800, help="exit after this (seconds)")
    try:
        asyncio.run(main(parser.parse_args().lifetime))
    except KeyboardInterrupt:
        sys.exit(0)
