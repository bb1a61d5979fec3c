"""`ClientSession.ws_connect` against aiohttp.web's websocket server (and a raw one of ours),
compared with aiohttp's own client on the same server: messages, close codes, exceptions and
the handshake's signals. aiohttp runs in a thread of its own (asyncio); compat runs on the
test's backend, asyncio or trio. Also httpx-ws over `traced_client` (the upgraded
`network_stream`)."""

from __future__ import annotations

import asyncio
import ssl
import sys
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import httpcore
import httpx_ws
import pytest
import trustme

import compat

from .conftest import Recorder
from .ws_server import TAIL, WSServer

pytestmark = pytest.mark.anyio

Scenario = Callable[[Any], Awaitable[Any]]


@pytest.fixture(scope="module")
def ws() -> Iterator[WSServer]:
    server = WSServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wss(ca: trustme.CA) -> Iterator[WSServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = WSServer(context).start()
    yield server
    server.stop()


async def both(scenario: Scenario) -> tuple[Any, Any]:
    """(aiohttp's result, compat's result) of the same scenario."""
    reference = await anyio.to_thread.run_sync(lambda: asyncio.run(scenario(aiohttp)))  # type: ignore[arg-type]
    return reference, await scenario(compat)


def shape(msg: Any) -> tuple[Any, ...]:
    """A message as comparable values (an ERROR's exception by type and code)."""
    kind = int(msg.type)
    data = msg.data
    if isinstance(data, BaseException):
        return (kind, type(data).__name__, getattr(data, "code", None), msg.extra)
    return (kind, data, msg.extra)


def state(ws: Any) -> tuple[Any, ...]:
    exc = ws.exception()
    return (ws.closed, ws.close_code, None if exc is None else type(exc).__name__)


async def test_echo_messages_and_handshake_signals_match_aiohttp(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        recorder = Recorder(lib=lib)
        seen: list[Any] = []
        async with lib.ClientSession(trace_configs=[recorder.config]) as session:
            async with session.ws_connect(f"http://127.0.0.1:{ws.port}/echo") as sock:
                await sock.send_str("hello")
                seen.append(shape(await sock.receive()))
                await sock.send_bytes(b"\x00\x01")
                seen.append(shape(await sock.receive()))
                await sock.send_json({"a": [1, "é"]})
                seen.append(await sock.receive_json())
                await sock.send_frame(b"frame", lib.WSMsgType.TEXT)
                seen.append(await sock.receive_str())
                await sock.ping(b"hi")  # the PONG is swallowed (autoping)
                await sock.send_str("after ping")
                seen.append(await sock.receive_str())
                seen.append((sock.protocol, sock.compress, sock.client_notakeover))
                seen.append(sock.get_extra_info("peername")[0])
                seen.append(await sock.close(code=1000, message=b"done"))
                seen.append(state(sock))
                seen.append(await sock.close())
                seen.append(shape(await sock.receive()))
        sent = recorder.params("request_headers_sent")[0].headers
        seen.append({k: sent[k] for k in ("Upgrade", "Connection", "Sec-WebSocket-Version")})
        seen.append(len(sent["Sec-WebSocket-Key"]))
        seen.append([p.response.status for p in recorder.params("request_end")])
        return recorder.names(), seen

    reference, ours = await both(scenario)
    assert ours == reference
    names, seen = ours
    assert names == [
        "request_start",
        "connection_create_start",
        "connection_create_end",
        "request_headers_sent",
        "request_end",
    ]
    assert seen[0] == (int(compat.WSMsgType.TEXT), "hello", "")
    assert seen[-1] == [101]


async def test_server_close_with_and_without_autoclose(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        seen: list[Any] = []
        async with lib.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{ws.port}/echo") as sock:
                await sock.send_str("close-me")
                seen.append(shape(await sock.receive()))
                seen.append(state(sock))
                seen.append(shape(await sock.receive()))
                seen.append(await sock.close())
            url = f"http://127.0.0.1:{ws.port}/echo"
            async with session.ws_connect(url, autoclose=False) as sock:
                await sock.send_str("close-me")
                seen.append(shape(await sock.receive()))
                seen.append(state(sock))
                seen.append(await sock.close(code=4000))
                seen.append(state(sock))
        return seen

    reference, ours = await both(scenario)
    assert ours == reference
    assert ours[0] == (int(compat.WSMsgType.CLOSE), 4001, "bye")
    assert ours[1] == (True, 4001, None)


@pytest.mark.parametrize(
    ("path", "raw", "status", "message"),
    [
        ("/forbidden", False, 403, "Invalid response status"),
        ("/bad-accept", True, 101, "Invalid challenge response"),
        ("/no-upgrade", True, 101, "Invalid upgrade header"),
        ("/keep-alive", True, 101, "Invalid connection header"),
    ],
)
async def test_handshake_refusals(
    ws: WSServer, path: str, raw: bool, status: int, message: str
) -> None:
    async def scenario(lib: Any) -> Any:
        recorder = Recorder(lib=lib)
        port = ws.raw_port if raw else ws.port
        connector = lib.TCPConnector(limit=1)
        async with lib.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
            with pytest.raises(lib.WSServerHandshakeError) as caught:
                await s.ws_connect(f"http://127.0.0.1:{port}{path}")
            error = caught.value
            # the session stays usable, the refused connection's slot is back (limit=1)
            with anyio.fail_after(5):
                async with s.ws_connect(f"http://127.0.0.1:{ws.port}/echo") as sock:
                    await sock.send_str("still fine")
                    echoed = await sock.receive_str()
        names = recorder.names()
        return (
            isinstance(error, lib.ClientResponseError),
            error.status,
            error.message,
            names[: names.index("request_end") + 1],
            echoed,
        )

    reference, ours = await both(scenario)
    assert ours == reference
    assert ours[:3] == (True, status, message)
    assert "request_exception" not in ours[3]


async def test_a_redirect_before_the_upgrade_is_followed(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        recorder = Recorder(lib=lib)
        async with lib.ClientSession(trace_configs=[recorder.config]) as session:
            async with session.ws_connect(f"http://127.0.0.1:{ws.port}/redirect") as sock:
                await sock.send_str("moved")
                echoed = await sock.receive_str()
        sent = recorder.params("request_headers_sent")
        return recorder.names(), echoed, [p.headers.get("Upgrade") for p in sent]

    reference, ours = await both(scenario)
    assert ours == reference
    assert "request_redirect" in ours[0]


async def test_protocols_and_compression_are_negotiated_as_aiohttp(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        seen: list[Any] = []
        recorder = Recorder(lib=lib)
        url = f"http://127.0.0.1:{ws.port}/echo"
        async with lib.ClientSession(trace_configs=[recorder.config]) as session:
            for protocols in (("v2", "chat"), ("nope",), ()):
                async with session.ws_connect(url, protocols=protocols) as sock:
                    seen.append(sock.protocol)
            for compress in (15, 10):
                async with session.ws_connect(url, compress=compress) as sock:
                    seen.append((sock.compress, sock.client_notakeover))
                    text = "compress me " * 20000
                    await sock.send_str(text)
                    seen.append(await sock.receive_str() == text)
                    await sock.send_bytes(b"z" * 300000, compress=9)
                    seen.append(len(await sock.receive_bytes()))
        sent = recorder.params("request_headers_sent")
        seen.append([p.headers.get("Sec-WebSocket-Protocol") for p in sent])
        seen.append([p.headers.get("Sec-WebSocket-Extensions") for p in sent])
        return seen

    reference, ours = await both(scenario)
    assert ours == reference
    assert ours[0] == "v2"  # aiohttp.web picks the client's first that it knows
    assert ours[3] == (15, False)


async def test_heartbeat_without_pong_fails_the_pending_receive(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        async with lib.ClientSession() as session:
            url = f"http://127.0.0.1:{ws.port}/silent"
            async with session.ws_connect(url, heartbeat=0.3) as sock:
                started = anyio.current_time()
                msg = await sock.receive()
                waited = anyio.current_time() - started
                after = (state(sock), shape(await sock.receive()), await sock.close())
        return shape(msg), after, waited

    reference, ours = await both(scenario)
    assert ours[:2] == reference[:2]
    assert ours[0][:2] == (int(compat.WSMsgType.ERROR), "ServerTimeoutError")
    assert ours[1][0] == (True, 1006, "ServerTimeoutError")
    assert 0.4 <= ours[2] < 4  # a PING after 0.3 s, then 0.15 s for the PONG


async def test_a_fragmented_message_is_whole_and_a_ping_between_fragments_answered(
    ws: WSServer,
) -> None:
    async def scenario(lib: Any) -> Any:
        async with lib.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{ws.raw_port}/fragments") as sock:
                return [await sock.receive_str(), await sock.receive_str()]

    reference, ours = await both(scenario)
    assert ours == reference == ["hello", "got 10 pp"]
    assert ws.pongs[-2:] == [b"\x0app", b"\x0app"]


async def test_4_mib_messages_and_the_size_limit(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        seen: list[Any] = []
        async with lib.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{ws.port}/echo") as sock:
                await sock.send_bytes(b"m" * (4 * 2**20 - 1))  # echoed: under the limit
                seen.append(len(await sock.receive_bytes()))
                await sock.send_str(f"big {4 * 2**20 - 1}")
                seen.append(len(await sock.receive_bytes()))
                await sock.send_str(f"big {4 * 2**20}")  # exactly max_msg_size: refused
                seen.append(shape(await sock.receive()))
                seen.append(state(sock))
            url = f"http://127.0.0.1:{ws.port}/echo"
            async with session.ws_connect(url, max_msg_size=0) as sock:
                await sock.send_str(f"big {5 * 2**20}")
                seen.append(len(await sock.receive_bytes()))
        return seen

    reference, ours = await both(scenario)
    assert ours == reference
    assert ours[2][:3] == (int(compat.WSMsgType.ERROR), "WebSocketError", 1009)
    assert ours[3] == (True, 1009, None)


async def test_a_compression_bomb_is_refused_within_bounded_memory(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        async with lib.ClientSession() as session:
            url = f"http://127.0.0.1:{ws.raw_port}/bomb"
            async with session.ws_connect(url, compress=15) as sock:
                msg = await sock.receive()
                return shape(msg), state(sock)

    reference = await anyio.to_thread.run_sync(lambda: asyncio.run(scenario(aiohttp)))  # type: ignore[arg-type]
    tracemalloc.start()
    try:
        ours = await scenario(compat)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ours == reference
    assert ours[0][:3] == (int(compat.WSMsgType.ERROR), "WebSocketError", 1009)
    assert peak < 16 * 2**20  # 32 MiB inflated; compat stops at max_msg_size (4 MiB)


async def test_the_peer_dropping_mid_message(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        async with lib.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{ws.raw_port}/abort") as sock:
                msg = await sock.receive()
                return shape(msg), state(sock), await sock.close()

    reference, ours = await both(scenario)
    assert ours == reference
    assert ours == (
        (int(compat.WSMsgType.CLOSED), None, None),
        (True, 1006, "ClientConnectionResetError"),
        False,
    )


async def test_receive_timeout_and_cancellation_leave_the_websocket_working(
    ws: WSServer,
) -> None:
    async def scenario(lib: Any) -> Any:
        seen: list[Any] = []
        async with lib.ClientSession() as session:
            url = f"http://127.0.0.1:{ws.port}/echo"
            async with session.ws_connect(url) as sock:
                with pytest.raises(asyncio.TimeoutError):
                    await sock.receive(timeout=0.1)
                seen.append(state(sock))
                await sock.send_str("still")
                seen.append(await sock.receive_str())
                with anyio.move_on_after(0.1):
                    await sock.receive()
                seen.append(state(sock))
                await sock.send_str("again")
                seen.append(await sock.receive_str())
                seen.append(await sock.close())
                seen.append(state(sock))
            timeout = lib.ClientWSTimeout(ws_receive=0.1)
            async with session.ws_connect(url, timeout=timeout) as sock:
                with pytest.raises(asyncio.TimeoutError):
                    await sock.receive()
        return seen

    reference, ours = await both(scenario)
    assert ours == reference
    assert ours[0] == (False, 1006, None)
    assert ours[-1] == (True, 1006, None)


async def test_close_from_another_task_ends_the_pending_receive(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        got: list[Any] = []
        async with lib.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{ws.port}/echo") as sock:

                async def reader() -> None:
                    got.append(shape(await sock.receive()))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(reader)
                    await anyio.sleep(0.05)
                    with pytest.raises(RuntimeError):
                        await sock.receive()  # a second concurrent receive
                    got.append(await sock.close())
                got.append(state(sock))
        return got

    reference, ours = await both(scenario)
    assert ours == reference
    assert ours[0] == (int(compat.WSMsgType.CLOSING), None, None)


async def test_type_errors_and_sending_after_close(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        seen: list[str] = []
        async with lib.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{ws.port}/echo") as sock:
                await sock.send_bytes(b"bin")
                with pytest.raises(lib.WSMessageTypeError):
                    await sock.receive_str()
                await sock.send_str("not json")
                with pytest.raises(ValueError):
                    await sock.receive_json()
                for bad in (sock.send_bytes("str"), sock.send_str(b"bytes")):
                    with pytest.raises(TypeError):
                        await bad
                await sock.close()
                for send in (sock.send_str("x"), sock.send_bytes(b"x"), sock.ping()):
                    with pytest.raises(lib.ClientConnectionResetError):
                        await send
                    seen.append("reset")
        return seen

    reference, ours = await both(scenario)
    assert ours == reference == ["reset"] * 3


async def test_decode_text_false_gives_bytes(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        async with lib.ClientSession() as session:
            url = f"http://127.0.0.1:{ws.port}/echo"
            async with session.ws_connect(url, decode_text=False) as sock:
                await sock.send_str("raw é")
                return await sock.receive_str()

    reference, ours = await both(scenario)
    assert ours == reference == "raw é".encode()


async def test_the_websocket_holds_its_slot_and_closes_its_connection(ws: WSServer) -> None:
    """limit=1: a request waits (queued) while the websocket is open, then gets a new
    connection: the upgraded one was closed, never pooled."""

    async def scenario(lib: Any) -> Any:
        recorder = Recorder(lib=lib)
        queued = anyio.Event()

        async def on_queued(*_: Any) -> None:
            queued.set()

        recorder.config.on_connection_queued_start.append(on_queued)
        connector = lib.TCPConnector(limit=1)
        async with lib.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
            sock = await s.ws_connect(f"http://127.0.0.1:{ws.port}/echo")
            recorder.clear()
            done = anyio.Event()

            async def request() -> None:
                async with s.ws_connect(f"http://127.0.0.1:{ws.port}/echo") as other:
                    await other.send_str("second")
                    await other.receive_str()
                done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(request)
                with anyio.fail_after(5):
                    await queued.wait()
                assert not done.is_set()
                await sock.close()
            return recorder.names()

    reference, ours = await both(scenario)
    assert ours == reference
    assert ours[:6] == [
        "request_start",
        "connection_queued_start",
        "connection_queued_end",
        "connection_create_start",
        "connection_create_end",
        "request_headers_sent",
    ]


async def test_every_way_out_gives_the_slot_back(ws: WSServer) -> None:
    connector = compat.TCPConnector(limit=1)
    async with compat.ClientSession(connector=connector) as session:
        base = f"http://127.0.0.1:{ws.port}"
        sock = await session.ws_connect(f"{base}/echo")
        assert connector.stats().in_use == 1
        await sock.close()
        assert connector.stats().in_use == 0
        sock = await session.ws_connect(f"{base}/echo")  # dropped by the server
        await sock.send_str("close-me")
        await sock.receive()
        assert connector.stats().in_use == 0
        sock = await session.ws_connect(f"http://127.0.0.1:{ws.raw_port}/abort")
        await sock.receive()  # the peer went mid-message
        assert connector.stats().in_use == 0
        sock = await session.ws_connect(f"{base}/echo")
        await sock.send_str(f"big {4 * 2**20}")
        await sock.receive()  # too big: an error
        assert connector.stats().in_use == 0
        sock = await session.ws_connect(f"{base}/silent", heartbeat=0.1)
        assert (await sock.receive()).type == compat.WSMsgType.ERROR  # no PONG
        assert connector.stats().in_use == 0
        sock = await session.ws_connect(f"{base}/silent")
        with anyio.move_on_after(0.05):
            await sock.receive()  # cancelled
        assert connector.stats().in_use == 1
        await sock.close()
        assert connector.stats().in_use == 0
        sock = await session.ws_connect(f"{base}/echo")
    for _ in range(100):  # (asyncio closes an aborted socket a loop turn later)
        if sock.get_extra_info("socket").fileno() == -1:
            break
        await anyio.lowlevel.checkpoint()
    assert sock.get_extra_info("socket").fileno() == -1  # session.close() closed it


async def test_trace_request_ctx_is_a_compat_extension(ws: WSServer) -> None:
    recorder = Recorder()
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        url = f"http://127.0.0.1:{ws.port}/echo"
        async with session.ws_connect(url, trace_request_ctx={"id": 7}):
            pass
    contexts = {id(ctx) for _, _, ctx in recorder.events}
    assert len(contexts) == 1
    assert recorder.events[0][2].trace_request_ctx == {"id": 7}


async def test_deprecated_arguments_warn_and_work_as_in_aiohttp(ws: WSServer) -> None:
    async with compat.ClientSession() as session:
        url = f"http://127.0.0.1:{ws.port}/echo"
        with pytest.warns(DeprecationWarning):
            sock = await session.ws_connect(url, receive_timeout=5, timeout=3.0)  # type: ignore[arg-type]
        assert sock._timeout == compat.ClientWSTimeout(ws_receive=5, ws_close=3.0)
        await sock.close()
        sock = await session.ws_connect(url)
        assert sock._timeout == compat.ClientWSTimeout(ws_receive=None, ws_close=10.0)
        await sock.close()
    with pytest.raises(TypeError):
        session.ws_connect(url, no_such_argument=1)  # type: ignore[call-arg]


def test_a_missing_wsproto_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "wsproto" or n.startswith("wsproto.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "wsproto", None)
    monkeypatch.delitem(sys.modules, "compat._wsframes", raising=False)

    async def main() -> None:
        async with compat.ClientSession() as session:
            await session.ws_connect("http://127.0.0.1:9/")

    with pytest.raises(ImportError, match=r"httpx-trace-compat\[ws\]"):
        anyio.run(main)


# --- httpx: the upgraded network_stream ---


async def test_httpx_ws_on_traced_client(ws: WSServer) -> None:
    recorder = Recorder()
    async with compat.traced_client(trace_configs=[recorder.config]) as client:
        url = f"http://127.0.0.1:{ws.port}/echo"
        async with httpx_ws.aconnect_ws(url, client) as sock:
            await sock.send_text("via httpx-ws")
            assert await sock.receive_text() == "via httpx-ws"
            await sock.send_bytes(b"b" * 200000)
            assert await sock.receive_bytes() == b"b" * 200000
            assert sock.stream.get_extra_info("server_addr")[1] == ws.port
        stats = client._transport.connector.stats()  # type: ignore[attr-defined]
        assert stats.in_use == 0 and stats.idle == 0
    assert recorder.names()[-1] == "request_end"
    assert recorder.params("request_end")[0].response.status == 101


async def test_network_stream_of_an_ordinary_response_refuses_io(ws: WSServer) -> None:
    async with compat.traced_client() as client:
        response = await client.get(f"http://127.0.0.1:{ws.port}/forbidden")
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("server_addr")[1] == ws.port
        with pytest.raises(RuntimeError, match="101"):
            await stream.read(10)


_UPGRADE_BY_HAND = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}
"""A websocket handshake's request headers, for a plain httpx request that upgrades by hand."""


async def test_raw_101_upgrade_read_write_close(ws: WSServer) -> None:
    """httpcore's way by hand: the bytes right behind the 101 head are the stream's first."""
    async with compat.traced_client() as client:
        url = f"http://127.0.0.1:{ws.raw_port}/fragments"
        async with client.stream("GET", url, headers=_UPGRADE_BY_HAND) as response:
            assert response.status_code == 101
            stream = response.extensions["network_stream"]
            data = b""
            while len(data) < 13:  # three frames: "hel", PING "pp", "lo"
                data += await stream.read(100)
            assert data[:5] == b"\x01\x03hel"
            await stream.write(b"\x8a\x82\x00\x00\x00\x00pp")  # a masked PONG "pp"
            reply = await stream.read(100)
            assert reply.endswith(b"got 10 pp")
            await stream.aclose()
            with pytest.raises(httpcore.WriteError):  # as httpcore: closed is closed
                await stream.write(b"x")


async def test_bytes_behind_a_101_survive_other_reads_into_the_shared_buffer(ws: WSServer) -> None:
    """A stream is fed views of its loop's (or trio run's) one receive buffer: the bytes that
    came behind a 101 head, in the same read, are kept as a copy, so reads on another
    connection (into the same buffer) before they are taken do not change them."""
    async with compat.traced_client() as client:
        url = f"http://127.0.0.1:{ws.raw_port}/tail"
        async with client.stream("GET", url, headers=_UPGRADE_BY_HAND) as response:
            assert response.status_code == 101
            for _ in range(3):  # other responses, read into the same buffer meanwhile
                other = await client.get(f"http://127.0.0.1:{ws.port}/forbidden")
                assert other.status_code == 403 and other.content
            stream = response.extensions["network_stream"]
            assert await stream.read(len(TAIL)) == TAIL
            await stream.aclose()


async def test_ws_urls_are_traced_as_given(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        recorder = Recorder(lib=lib)
        async with lib.ClientSession(trace_configs=[recorder.config]) as session:
            async with session.ws_connect(f"ws://127.0.0.1:{ws.port}/echo") as sock:
                await sock.send_str("over ws://")
                echoed = await sock.receive_str()
        return echoed, [str(p.url) for p in recorder.params("request_start")]

    reference, ours = await both(scenario)
    assert ours == reference
    assert ours[1] == [f"ws://127.0.0.1:{ws.port}/echo"]


def test_the_cli_traces_a_websocket_handshake(
    ws: WSServer, anyio_backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from compat.__main__ import main

    backend = anyio_backend
    url = f"ws://127.0.0.1:{ws.port}/echo"
    assert main([url, "--backend", backend]) == 0
    out = capsys.readouterr().out
    assert f"GET {url} -> 101 Switching Protocols" in out
    assert "request_headers_sent" in out and "request_end" in out and "status=101" in out
    refused = f"ws://127.0.0.1:{ws.port}/forbidden"
    assert main([refused, "--backend", backend]) == 1
    assert "WSServerHandshakeError: 403" in capsys.readouterr().out


async def test_wss_with_a_reader_and_a_sender_at_once(
    wss: WSServer, client_ssl: ssl.SSLContext
) -> None:
    """TLS, and two tasks on one websocket: one receives while the other sends (and the
    heartbeat PINGs go out from the receiving one)."""
    got: list[str] = []
    async with compat.ClientSession() as session:
        url = f"wss://127.0.0.1:{wss.port}/echo"
        async with session.ws_connect(url, ssl=client_ssl, heartbeat=0.05) as sock:

            async def reader() -> None:
                for _ in range(50):
                    got.append(await sock.receive_str())

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(reader)
                    for i in range(50):
                        await sock.send_str(f"{i} " + "w" * 5000)
            assert sock.get_extra_info("ssl_object") is not None
    assert [int(text.split()[0]) for text in got] == list(range(50))


async def test_a_queued_ws_connect_cancelled(ws: WSServer) -> None:
    async def scenario(lib: Any) -> Any:
        recorder = Recorder(lib=lib)
        queued = anyio.Event()

        async def on_queued(*_: Any) -> None:
            queued.set()

        recorder.config.on_connection_queued_start.append(on_queued)
        connector = lib.TCPConnector(limit=1)
        async with lib.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
            async with s.ws_connect(f"http://127.0.0.1:{ws.port}/echo"):
                recorder.clear()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(s.ws_connect, f"http://127.0.0.1:{ws.port}/echo")
                    with anyio.fail_after(5):
                        await queued.wait()
                    tg.cancel_scope.cancel()
            exception = recorder.params("request_exception")[0].exception
            return recorder.names(), isinstance(exception, anyio.get_cancelled_exc_class())

    reference, ours = await both(scenario)
    assert (
        ours[0]
        == reference[0]
        == [
            "request_start",
            "connection_queued_start",
            "request_exception",
        ]
    )
    assert ours[1] and reference[1]
