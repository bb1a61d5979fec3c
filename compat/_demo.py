"""The demo server behind `python -m compat` with no URL: h11 over anyio, on 127.0.0.1.

Routes: `/hello`, `/redirect` (302 to /hello), `/slow` (answers after 150 ms), `/big` (256 KiB).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import h11

__all__ = ["demo_server"]

_ROUTES = {
    "/hello": (200, [(b"Content-Type", b"text/plain")], b"hello from the compat demo\n"),
    "/redirect": (302, [(b"Location", b"/hello")], b""),
    "/slow": (200, [(b"Content-Type", b"text/plain")], b"worth the wait\n"),
    "/big": (200, [(b"Content-Type", b"application/octet-stream")], b"z" * 256 * 1024),
}


async def _serve(stream: anyio.abc.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    async with stream:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    conn.receive_data(await stream.receive(65536))
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                continue
            if isinstance(event, h11.Request):
                path = event.target.decode()
                status, headers, body = _ROUTES.get(path, (404, [], b"not found\n"))
                if path == "/slow":
                    await anyio.sleep(0.15)
                headers = [*headers, (b"Content-Length", str(len(body)).encode())]
                reason = {200: b"OK", 302: b"Found"}.get(status, b"Not Found")
                response = h11.Response(status_code=status, headers=headers, reason=reason)
                data = conn.send(response) or b""
                data += conn.send(h11.Data(data=body)) or b""
                data += conn.send(h11.EndOfMessage()) or b""
                await stream.send(data)
            elif isinstance(event, h11.EndOfMessage):
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return


@asynccontextmanager
async def demo_server() -> AsyncIterator[int]:
    """Serve in the background while the block runs; yields the port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _serve)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()
