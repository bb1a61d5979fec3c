"""HTTP/1.1 wire behaviour against a hostile server (issue 10), on asyncio and trio.

Every test here drives the public API (`compat.ClientSession`, `compat.TCPConnector`,
`compat.TraceConfig`, the aiohttp-named exceptions, `response.headers/raw_headers/read()/
content.iter_chunked()`, `connector.stats()`) against `tests.hostile.HostileServer`, which answers
each request with exact bytes chosen by the test and records, from outside, how many connections
were opened, what arrived on each and which connection served which request.

"facts §N" quotes, at each test, a fact about aiohttp 3.14.5 (C parser) from the notes made
when these tests were written: the quote is the fact, and §N only its topic (0 common, 7 release
when the body has arrived, 9 the HTTP/1.1 wire, 10 decompression).
"confirmed" marks an expectation checked by running aiohttp 3.14.5 itself against this server.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import compat

from .conftest import Recorder
from .hostile import (
    CLOSE,
    DELIVERED,
    RESET,
    Action,
    HostileServer,
    Pause,
    Request,
    Script,
    Signal,
    Wait,
)
from .hostile import response as R

pytestmark = pytest.mark.anyio

MiB = 1 << 20
EVIL = R(200, b"EVIL", [("X-Evil", "1")])
"""A complete response hidden after the real one: it must never reach any request."""


# --- helpers ---


def own(req: Request) -> list[Action]:
    """Every request but the scripted one gets a response naming its own path."""
    return [R(200, b"own " + req.path.encode())]


def first_then(first: Sequence[Action], rest: Script = own) -> Script:
    """`first` for the first request the server sees; `rest` for every later one."""

    def script(req: Request) -> Sequence[Action]:
        return first if req.number == 0 else rest(req)

    return script


def assert_aiohttp_named(exc: BaseException) -> None:
    """No parser, h11, httpcore or httpx exception ever reaches the caller (issue 10)."""
    module = type(exc).__module__
    assert module.startswith("compat") or module == "builtins", (
        f"{type(exc).__module__}.{type(exc).__qualname__} reached the caller: {exc!r}"
    )
    assert str(exc), "an error without a message"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def wait_for(event: threading.Event, timeout: float = 5.0) -> bool:
    """Wait for an event the server thread sets, without blocking the event loop."""
    return await anyio.to_thread.run_sync(event.wait, timeout)


@contextlib.asynccontextmanager
async def checked_session(server: HostileServer, **kwargs: Any) -> AsyncIterator[Any]:
    """A session that, when the test body ends normally, must have nothing in use; after its
    close every connection must be closed (the server sees it) and no fd may be left."""
    fds = _open_fds()
    session = compat.ClientSession(**kwargs)
    try:
        yield session
    except BaseException:
        with anyio.CancelScope(shield=True):
            await session.close()
        raise
    assert session.connector.stats().in_use == 0
    await session.close()
    assert await anyio.to_thread.run_sync(server.wait_closed, 5.0), "a connection was left open"
    assert _open_fds() <= fds + 1  # small slack: a loop or resolver may keep one


async def fetch(session: Any, url: str, **kwargs: Any) -> tuple[int, bytes]:
    async with session.get(url, **kwargs) as resp:
        return resp.status, await resp.read()


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer(own).start()
    yield server
    server.stop()
    assert not server.errors, server.errors  # a script of ours went wrong


# --- 1. desync: bytes left over after a response are never served to the next request ---


@pytest.mark.parametrize(
    "first",
    [
        pytest.param([R(200, b"one") + EVIL], id="same-write"),
        pytest.param(
            [R(200, headers=[("Content-Length", "3")]), Pause(0.02), b"one" + EVIL],
            id="with-the-body-after-the-head",
        ),
    ],
)
async def test_an_extra_response_after_the_body_is_never_served(
    hostile: HostileServer, recorder: Recorder, first: list[Action]
) -> None:
    # facts §9: "A complete extra response in the same segment → request succeeds; connection
    # closed, not pooled." (confirmed: aiohttp returns "one", then opens a 2nd connection.)
    # With the head in an earlier segment than body + extra response, aiohttp 3.14.5 serves
    # EVIL to the next request (confirmed: an aiohttp bug); issue 10 asks for never.
    hostile.script = first_then(first)
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        assert await fetch(session, hostile.url_for("/first")) == (200, b"one")
        async with session.get(hostile.url_for("/second")) as resp:
            assert await resp.read() == b"own /second"
            assert "X-Evil" not in resp.headers
        assert hostile.paths() == [(0, "/first"), (1, "/second")]
        assert await wait_for(hostile.connections[0].client_closed)  # closed, not kept idle
    assert recorder.params("request_exception") == []


async def test_garbage_after_a_response_in_the_same_write_fails_that_request(
    hostile: HostileServer, recorder: Recorder
) -> None:
    # facts §9: "Extra garbage after a complete response, same segment → that request fails
    # 'Bad status line'" (confirmed: ClientResponseError, status 400; the next request opens a
    # new connection and gets its own response).
    hostile.script = first_then([R(200, b"one") + b"garbage\r\n\r\n"])
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with pytest.raises(compat.ClientResponseError) as info:
            await fetch(session, hostile.url_for("/first"))
        assert_aiohttp_named(info.value)
        assert info.value.status == 400
        assert [p.exception for p in recorder.params("request_exception")] == [info.value]
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (1, "/second")]


@pytest.mark.parametrize(
    ("method", "first"),
    [
        pytest.param("HEAD", R(200, b"hello"), id="HEAD-with-body"),
        pytest.param("GET", R(204, b"hello", reason="No Content"), id="204-with-CL-and-body"),
        pytest.param(
            "GET", R(204, reason="No Content", length=False) + b"hello", id="204-no-CL-with-body"
        ),
        pytest.param("GET", R(304, b"hello", reason="Not Modified"), id="304-with-body"),
        pytest.param("HEAD", R(200, b"hello") + EVIL, id="HEAD-with-body-and-response"),
    ],
)
async def test_a_body_where_none_may_be_fails_the_request(
    hostile: HostileServer, recorder: Recorder, method: str, first: bytes
) -> None:
    # facts §9: "HEAD answered with CL 5 + 5 bytes, 204 with body (with/without CL), 304 with
    # body → 'Bad status line'" (confirmed for each: ClientResponseError 400, a new connection
    # for the next request).
    hostile.script = first_then([first])
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with pytest.raises(compat.ClientResponseError) as info:
            async with session.request(method, hostile.url_for("/first")) as resp:
                await resp.read()
        assert_aiohttp_named(info.value)
        assert info.value.status == 400
        assert [p.exception for p in recorder.params("request_exception")] == [info.value]
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (1, "/second")]


async def test_304_with_content_length_and_no_body_is_fine_and_reused(
    hostile: HostileServer,
) -> None:
    # facts §9: "304 with CL and no body → fine, reused" (confirmed).
    hostile.script = first_then([R(304, reason="Not Modified", headers=[("Content-Length", "5")])])
    async with checked_session(hostile) as session:
        assert await fetch(session, hostile.url_for("/first")) == (304, b"")
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (0, "/second")]


_SMUGGLED = b"0\r\n\r\n" + EVIL  # a chunked reader ends after "0\r\n\r\n" and sees EVIL next


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(
            R(
                200,
                headers=[("Transfer-Encoding", "chunked"), ("Content-Length", str(len(_SMUGGLED)))],
            )
            + _SMUGGLED,
            id="TE-then-CL",
        ),
        pytest.param(
            R(
                200,
                headers=[("Content-Length", str(len(_SMUGGLED))), ("Transfer-Encoding", "chunked")],
            )
            + _SMUGGLED,
            id="CL-then-TE",
        ),
        pytest.param(
            R(200, headers=[("Content-Length", "5"), ("Transfer-Encoding", "identity")])
            + b"hello"
            + EVIL,
            id="CL-and-TE-identity",
        ),
        pytest.param(
            R(200, headers=[("Content-Length", "5"), ("Content-Length", "5")]) + b"hello" + EVIL,
            id="two-equal-CL",
        ),
        pytest.param(
            R(200, headers=[("Content-Length", "5"), ("Content-Length", "3")]) + b"hello" + EVIL,
            id="two-different-CL",
        ),
        pytest.param(R(200, headers=[("Content-Length", "5, 5")]) + b"hello" + EVIL, id="CL-list"),
    ],
)
async def test_ambiguous_framing_fails_with_400_and_closes_the_connection(
    hostile: HostileServer, recorder: Recorder, first: bytes
) -> None:
    # facts §9: TE+CL either order (TE identity too) → "Content-Length can't be present with
    # Transfer-Encoding" / the reverse; two CLs equal or not → "Duplicate Content-Length";
    # "5, 5" → "Invalid character in Content-Length"; parse errors → ClientResponseError 400,
    # request_exception, connection closed, no retry (confirmed for each variant).
    hostile.script = first_then([first])
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with pytest.raises(compat.ClientResponseError) as info:
            await fetch(session, hostile.url_for("/first"))
        assert_aiohttp_named(info.value)
        assert info.value.status == 400
        assert [p.exception for p in recorder.params("request_exception")] == [info.value]
        assert recorder.names()[-1] == "request_exception"
        async with session.get(hostile.url_for("/second")) as resp:
            assert await resp.read() == b"own /second"
            assert "X-Evil" not in resp.headers
        assert hostile.paths() == [(0, "/first"), (1, "/second")]  # no retry, no reuse
        assert await wait_for(hostile.connections[0].client_closed)


@pytest.mark.parametrize(
    "unsolicited",
    [
        pytest.param(b"garbage\r\n\r\n", id="garbage"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-Ev", id="half-a-head"),
        pytest.param(EVIL, id="a-whole-response"),
    ],
)
async def test_bytes_arriving_later_on_an_idle_connection_are_never_a_response(
    hostile: HostileServer, recorder: Recorder, unsolicited: bytes
) -> None:
    # facts §9: "Garbage arriving later on a pooled idle connection → closed; next request
    # silently opens a new one." Confirmed on aiohttp for garbage; but aiohttp 3.14.5 reuses the
    # connection after half a head, and serves a whole unsolicited response (EVIL) to the next
    # request (confirmed: an aiohttp bug). Issue 10: such a connection is closed, never reused.
    go, sent = threading.Event(), threading.Event()
    hostile.script = first_then([R(200, b"one"), Wait(go), unsolicited, Signal(sent)])
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        assert await fetch(session, hostile.url_for("/first")) == (200, b"one")
        go.set()
        assert await wait_for(sent)  # sent on loopback: in the client's socket buffer now
        for _ in range(5):  # let an asyncio protocol's data_received run (one loop pass each)
            await anyio.lowlevel.checkpoint()
        async with session.get(hostile.url_for("/second")) as resp:
            assert await resp.read() == b"own /second"
            assert "X-Evil" not in resp.headers
        assert hostile.paths() == [(0, "/first"), (1, "/second")]
    assert recorder.params("request_exception") == []


# --- 2. release when the body has arrived (facts §7) ---


_SMALL = b"service unavailable!"  # 20 bytes


@pytest.mark.parametrize("body_write", ["same-write", "second-write"])
async def test_unread_small_responses_do_not_block_the_pool(
    hostile: HostileServer, recorder: Recorder, body_write: str
) -> None:
    # facts §7: "The connection is released when the parser reaches the body's end, read or
    # not". aiohttp-retry keeps each 503 unread while it retries; with limit=1 aiohttp gives
    # 503, 503, 200 on one connection (confirmed, both variants; same-write without queueing,
    # second-write queues until the body arrives, then reuses).
    def script(req: Request) -> Sequence[Action]:
        if req.number >= 2:
            return [R(200, b"done")]
        if body_write == "same-write":
            return [R(503, _SMALL, reason="Service Unavailable")]
        head = R(503, reason="Service Unavailable", headers=[("Content-Length", "20")])
        return [head, Pause(0.05), _SMALL]

    hostile.script = script
    connector = compat.TCPConnector(limit=1)
    async with checked_session(
        hostile, connector=connector, trace_configs=[recorder.config]
    ) as session:
        held = []
        with anyio.fail_after(5):  # a regression fails here instead of hanging
            for attempt in range(5):
                resp = await session.get(
                    hostile.url_for("/retry"), trace_request_ctx={"current_attempt": attempt}
                )
                held.append(resp)
                if resp.status == 200:
                    break
        assert [r.status for r in held] == [503, 503, 200]
        assert [await r.read() for r in held] == [_SMALL, _SMALL, b"done"]  # still readable
        for resp in held:
            await resp.release()
        assert hostile.paths() == [(0, "/retry")] * 3
        if body_write == "same-write":
            assert "connection_queued_start" not in recorder.names()
            assert recorder.names().count("connection_reuseconn") == 2


async def test_a_large_unread_body_still_holds_the_connection(
    hostile: HostileServer, recorder: Recorder
) -> None:
    # facts §7: only a body up to 2 x read_bufsize (512 KiB) frees the connection unread; a
    # 4 MiB one holds it, and the next request at limit=1 queues until it is read (confirmed).
    big = b"b" * (4 * MiB)
    hostile.script = first_then([R(200, big)])
    queued = anyio.Event()

    async def on_queued(*_: Any) -> None:
        queued.set()

    recorder.config.on_connection_queued_start.append(on_queued)
    connector = compat.TCPConnector(limit=1)
    second: list[tuple[int, bytes]] = []
    async with checked_session(
        hostile, connector=connector, trace_configs=[recorder.config]
    ) as session:
        with anyio.fail_after(10):
            first = await session.get(hostile.url_for("/big"))
            async with anyio.create_task_group() as tg:

                async def get_second() -> None:
                    second.append(await fetch(session, hostile.url_for("/second")))

                tg.start_soon(get_second)
                await queued.wait()
                assert second == []
                assert connector.stats().waiting == 1
                assert len(await first.read()) == len(big)
            assert second == [(200, b"own /second")]
            await first.release()


# --- 3. 101 without Upgrade, 1xx ---


async def test_101_without_upgrade_is_an_empty_response_and_the_connection_is_reused(
    hostile: HostileServer, recorder: Recorder
) -> None:
    # facts §9: "101 without Upgrade: status 101, empty body, connection released and reused"
    # (confirmed).
    hostile.script = first_then([b"HTTP/1.1 101 Switching Protocols\r\n\r\n"])
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        async with session.get(hostile.url_for("/first")) as resp:
            assert resp.status == 101
            assert await resp.read() == b""
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (0, "/second")]
    assert recorder.params("request_exception") == []


@pytest.mark.parametrize(
    "first",
    [
        pytest.param([b"HTTP/1.1 100 Continue\r\n\r\n" + R(200, b"hello")], id="100-same-write"),
        pytest.param(
            [
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
                Pause(0.02),
                R(200, b"hello"),
            ],
            id="103-then-200",
        ),
        pytest.param(
            [b"HTTP/1.1 102 Processing\r\n\r\n" * 2, Pause(0.02), R(200, b"hello")],
            id="102-twice",
        ),
    ],
)
async def test_informational_responses_are_skipped(
    hostile: HostileServer, recorder: Recorder, first: list[Action]
) -> None:
    # facts §9: "1xx (100, 102 x2, 103 with Link) before the final response: skipped, no
    # signal, headers lost; connection reused" (confirmed for these three).
    hostile.script = first_then(first)
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        async with session.get(hostile.url_for("/first")) as resp:
            assert resp.status == 200
            assert await resp.read() == b"hello"
            assert "Link" not in resp.headers
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (0, "/second")]
    assert recorder.names().count("request_end") == 2


# --- 4. header case ---


_CASED = [
    ("x-LoWeR-Mixed", "a"),
    ("X-Dup", "1"),
    ("x-dup", "2"),
    ("CONTENT-TYPE", "text/plain"),
    ("Set-COOKIE", "k=v"),
    ("content-length", "2"),
]


async def test_header_names_keep_the_wire_case(hostile: HostileServer) -> None:
    # facts §9: "raw_headers keep exact bytes; resp.headers keeps unknown names as sent
    # (x-LoWeR-Mixed; X-Dup and x-dup both kept)" (confirmed).
    hostile.script = first_then([R(200, b"hi", _CASED)])
    async with checked_session(hostile) as session:
        async with session.get(hostile.url_for("/first")) as resp:
            assert resp.raw_headers == tuple((k.encode(), v.encode()) for k, v in _CASED)
            items = list(resp.headers.items())
            assert ("x-LoWeR-Mixed", "a") in items
            assert ("X-Dup", "1") in items and ("x-dup", "2") in items
            assert resp.headers["X-LOWER-MIXED"] == "a"  # lookups stay case-insensitive
            assert resp.headers.getall("X-DUP") == ["1", "2"]
            assert resp.headers["content-type"] == "text/plain"
            assert await resp.read() == b"hi"


async def test_a_repeated_header_s_first_value_is_the_one_used(hostile: HostileServer) -> None:
    # aiohttp 3.14.5 (observed): content_type and charset come from the first Content-Type
    # field, whatever the case of the later ones (CIMultiDict.get).
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("content-type", "text/html; charset=latin-1"),
    ]
    hostile.script = first_then([R(200, b'{"a": 1}', headers)])
    async with checked_session(hostile) as session:
        async with session.get(hostile.url_for("/first")) as resp:
            assert (resp.content_type, resp.charset) == ("application/json", "utf-8")
            assert await resp.json() == {"a": 1}
            assert resp.headers.getall("Content-Type") == [v for _, v in headers]


async def test_known_header_names_are_canonicalised_as_aiohttp(hostile: HostileServer) -> None:
    # facts §9: "...but canonicalises known ones (CONTENT-LENGTH → Content-Length, Set-COOKIE
    # → Set-Cookie)" (confirmed: keys Content-Type, Set-Cookie, Content-Length).
    hostile.script = first_then([R(200, b"hi", _CASED)])
    async with checked_session(hostile) as session:
        async with session.get(hostile.url_for("/first")) as resp:
            names = [k for k, _ in resp.headers.items()]
            assert "Content-Type" in names and "CONTENT-TYPE" not in names
            assert "Set-Cookie" in names and "Set-COOKIE" not in names
            assert "Content-Length" in names and "content-length" not in names
            await resp.read()


# --- 5. a user Content-Length that disagrees with the body ---


@pytest.mark.parametrize("length", ["10", "1"])
async def test_user_content_length_that_disagrees_with_the_body_fails_before_writing(
    hostile: HostileServer, recorder: Recorder, length: str
) -> None:
    # Issue 10: "a clear aiohttp-named error before anything is written". aiohttp itself does
    # NOT do this (confirmed): with CL 10 it writes the head and 3 bytes, then fails with
    # ServerDisconnectedError; with CL 1 it silently truncates the body to 1 byte. We pin the
    # issue's behaviour, with the class family aiohttp uses for bad arguments (ClientError or
    # ValueError).
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with pytest.raises((compat.ClientError, ValueError)) as info:
            async with session.post(
                hostile.url_for("/first"), data=b"abc", headers={"Content-Length": length}
            ) as resp:
                await resp.read()
        assert_aiohttp_named(info.value)
        assert [p.exception for p in recorder.params("request_exception")] == [info.value]
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        # anything written for the POST would have arrived before the GET that followed it
        assert b"POST" not in hostile.received()
        assert b"abc" not in hostile.received()
        assert [path for _, path in hostile.paths()] == ["/second"]


# --- 6. decompression bombs (facts §10; issue 10) ---


def _gzip_member(blocks: Sequence[bytes], repeat: int, size: int) -> bytes:
    """A gzip member of `blocks * repeat` (raw deflate blocks of zeros), `size` bytes inflated."""
    crc = 0
    zero = bytes(MiB)
    for _ in range(size // MiB):
        crc = zlib.crc32(zero, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # an empty last block
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + b"".join(blocks) * repeat + final + trailer


@functools.cache
def gzip_bomb() -> bytes:
    """1 GiB of zeros as gzip, ~1 MiB: 1024 identical fully-flushed deflate blocks of 1 MiB."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    zero = bytes(MiB)
    block = deflate.compress(zero) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(zero) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert block == again  # a full flush resets the state: every block is the same
    return _gzip_member([block], 1024, 1 << 30)


@functools.cache
def gzip_gzip_bomb() -> bytes:
    """The gzip bomb gzipped again (`Content-Encoding: gzip, gzip`): ~2.5 KiB."""
    outer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return outer.compress(gzip_bomb()) + outer.flush()


@functools.cache
def br_bomb() -> bytes:
    """1 GiB of zeros as brotli: under 1 KiB (quality 5, 16 MiB window: ~1 s to build)."""
    import brotli  # the test extra installs it: the br bomb must run in CI

    compressor = brotli.Compressor(quality=5, lgwin=24)
    zero = bytes(MiB)
    parts = [compressor.process(zero) for _ in range(1024)]
    return b"".join([*parts, compressor.finish()])


BOMBS = {"gzip": gzip_bomb, "gzip, gzip": gzip_gzip_bomb, "br": br_bomb}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    """Reset VmHWM (peak RSS) to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class _Memory:
    """RSS growth since creation: sampled current RSS, and the kernel's peak when resettable."""

    def __init__(self) -> None:
        self.has_peak = _reset_peak()
        self.start = self.high = _rss()

    def sample(self) -> None:
        self.high = max(self.high, _rss())

    def growth(self) -> int:
        self.sample()
        peak = _peak() if self.has_peak else 0
        return max(self.high, peak) - self.start


def _chunk_sizes_config() -> tuple[compat.TraceConfig, list[int]]:
    """A TraceConfig recording only the sizes of `on_response_chunk_received` chunks (the
    conftest Recorder would keep the chunks themselves: 64 MiB of them)."""
    sizes: list[int] = []
    config = compat.TraceConfig()

    async def on_chunk(session: Any, ctx: Any, params: Any) -> None:
        sizes.append(len(params.chunk))

    config.on_response_chunk_received.append(on_chunk)
    return config, sizes


@pytest.mark.parametrize("encoding", list(BOMBS))
async def test_a_decompression_bomb_is_inflated_in_bounded_chunks(
    hostile: HostileServer, encoding: str
) -> None:
    # Issue 10: each chunk handed out, and each on_response_chunk_received, at most the read
    # size asked for; resident memory grows by a few MiB, not by the bomb. Confirmed on
    # aiohttp: gzip → 65536-byte chunks, +2.4 MiB RSS; br → +16 MiB; "gzip, gzip" is not
    # decoded by aiohttp at all (the 2.5 KiB body comes back as is), which we accept too.
    body = BOMBS[encoding]()
    hostile.script = first_then([R(200, body, [("Content-Encoding", encoding)])])
    config, signal_sizes = _chunk_sizes_config()
    async with checked_session(hostile, trace_configs=[config]) as session:
        memory = _Memory()
        total = 0
        passed_through = False
        with anyio.fail_after(30):
            async with session.get(hostile.url_for("/bomb")) as resp:
                async for chunk in resp.content.iter_chunked(65536):
                    assert len(chunk) <= 65536
                    assert max(signal_sizes, default=0) <= 65536, max(signal_sizes)
                    if total == 0 and chunk == body[: len(chunk)]:
                        passed_through = True  # aiohttp's way with "gzip, gzip"
                    if not passed_through:
                        assert not chunk.strip(b"\0"), "inflated to something else than zeros"
                    total += len(chunk)
                    memory.sample()
                    if total >= 64 * MiB:
                        break
                resp.release()
        growth = memory.growth()
        assert growth < 64 * MiB, f"resident memory grew by {growth / MiB:.0f} MiB"
        if passed_through:
            assert encoding == "gzip, gzip" and total == len(body)
        else:
            assert total >= 64 * MiB
        assert sum(signal_sizes) >= total  # every byte handed out was signalled first
        await resp.release()


@pytest.mark.parametrize("encoding", list(BOMBS))
async def test_a_compressed_redirect_body_is_discarded_without_inflating(
    hostile: HostileServer, recorder: Recorder, encoding: str
) -> None:
    # Issue 10: "a redirect body is discarded without being inflated". Confirmed on aiohttp:
    # 302 with a gzip/br bomb body → /ok in under 0.2 s, RSS +2 MiB at most.
    body = BOMBS[encoding]()

    def script(req: Request) -> Sequence[Action]:
        if req.path == "/redirect":
            return [R(302, body, [("Content-Encoding", encoding), ("Location", "/ok")])]
        return own(req)

    hostile.script = script
    config, signal_sizes = _chunk_sizes_config()
    async with checked_session(hostile, trace_configs=[config, recorder.config]) as session:
        memory = _Memory()
        # CPU time of this process, not wall time: other processes' load does not count, and
        # inflating the bomb would take seconds of it (aiohttp: under 0.2 s in all)
        started = time.process_time()
        with anyio.fail_after(30):
            async with session.get(hostile.url_for("/redirect")) as resp:
                assert resp.status == 200
                assert await resp.read() == b"own /ok"
                assert [h.status for h in resp.history] == [302]
        elapsed = time.process_time() - started
        growth = memory.growth()
    assert elapsed < 1.0, f"{elapsed:.2f} s of CPU: the redirect body was inflated"
    assert growth < 32 * MiB, f"resident memory grew by {growth / MiB:.0f} MiB"
    assert sum(signal_sizes) < 64 * MiB  # never the inflated redirect body
    assert recorder.names().count("request_redirect") == 1


# --- 7. framing and truncation errors are aiohttp-named ---


async def test_a_body_shorter_than_its_content_length_is_a_payload_error(
    hostile: HostileServer, recorder: Recorder
) -> None:
    # facts §9: "Body shorter than CL then close → read() raises ClientPayloadError
    # (ContentLengthError 'received 5 of 10 bytes') after request_end" (confirmed).
    hostile.script = first_then([R(200, headers=[("Content-Length", "10")]) + b"hello", CLOSE])
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with anyio.fail_after(5):
            resp = await session.get(hostile.url_for("/first"))
            assert recorder.names()[-1] == "request_end"
            with pytest.raises(compat.ClientPayloadError) as info:
                await resp.read()
        assert_aiohttp_named(info.value)
        await resp.release()
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (1, "/second")]


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(
            [R(200, headers=[("Transfer-Encoding", "chunked")]) + b"zz\r\nhello\r\n0\r\n\r\n"],
            id="same-write",
        ),
        pytest.param(
            [R(200, headers=[("Transfer-Encoding", "chunked")]), Pause(0.05), b"zz\r\nhello\r\n"],
            id="after-the-head",
        ),
    ],
)
async def test_a_bad_chunk_size_is_an_aiohttp_named_error(
    hostile: HostileServer, recorder: Recorder, first: list[Action]
) -> None:
    # facts §9: "Bad chunk size → 'Invalid character in chunk size'". Confirmed on aiohttp:
    # in the head's segment → ClientResponseError 400 from get(); arriving after the head,
    # aiohttp's read() hangs until a timeout (an aiohttp bug we do not copy): here it must be
    # an error (ClientPayloadError or ClientResponseError) within the bound.
    hostile.script = first_then(first)
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with anyio.fail_after(5), pytest.raises(compat.ClientError) as info:
            async with session.get(hostile.url_for("/first")) as resp:
                await resp.read()
        assert_aiohttp_named(info.value)
        assert isinstance(info.value, (compat.ClientPayloadError, compat.ClientResponseError))
        if recorder.params("request_exception"):  # failed before the head was handed out
            assert recorder.params("request_exception")[0].exception is info.value
            assert isinstance(info.value, compat.ClientResponseError)
            assert info.value.status == 400
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (1, "/second")]


@pytest.mark.parametrize(
    ("first", "reused"),
    [
        pytest.param(
            [R(200, b"to the close", version="HTTP/1.0", length=False), CLOSE],
            False,
            id="HTTP/1.0-read-to-close",
        ),
        pytest.param(
            [R(200, b"to the close", length=False), CLOSE], False, id="HTTP/1.1-read-to-close"
        ),
        pytest.param(
            [R(200, b"to the close", [("Connection", "close")])],  # the server keeps it open
            False,
            id="Connection-close-not-closed",
        ),
        pytest.param(
            [R(200, b"to the close", [("Connection", "keep-alive")], version="HTTP/1.0")],
            True,
            id="HTTP/1.0-keep-alive",
        ),
    ],
)
async def test_close_delimited_and_connection_close_responses(
    hostile: HostileServer, recorder: Recorder, first: list[Action], reused: bool
) -> None:
    # facts §9: "HTTP/1.0 no CL → read to close, not reused; 1.0 + keep-alive + CL → reused;
    # Connection: close → not reused" (confirmed, also with a server that says close and keeps
    # the connection open: aiohttp opens a new one).
    hostile.script = first_then(first)
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with anyio.fail_after(5):
            assert await fetch(session, hostile.url_for("/first")) == (200, b"to the close")
            assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (0 if reused else 1, "/second")]
        if not reused:
            assert await wait_for(hostile.connections[0].client_closed)
    assert recorder.params("request_exception") == []


_HEAD_ERRORS = {
    "not-http": b"this is not HTTP\r\n\r\n",
    "header-without-colon": b"HTTP/1.1 200 OK\r\nbad header line\r\nContent-Length: 0\r\n\r\n",
    "space-in-header-name": b"HTTP/1.1 200 OK\r\nX Y: z\r\nContent-Length: 0\r\n\r\n",
    "status-not-a-number": b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
    "status-1000": b"HTTP/1.1 1000 OK\r\nContent-Length: 0\r\n\r\n",
    "negative-CL": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "CL-not-a-number": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    "CL-overflow": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "NUL-in-value": b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "bare-CR": b"HTTP/1.1 200 OK\rX: y\r\nContent-Length: 0\r\n\r\n",
    "huge-header": b"HTTP/1.1 200 OK\r\nX-Big: "
    + b"v" * 200_000
    + b"\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("first", list(_HEAD_ERRORS.values()), ids=list(_HEAD_ERRORS))
async def test_an_invalid_head_is_a_400_client_response_error(
    hostile: HostileServer, recorder: Recorder, first: bytes
) -> None:
    # facts §9: "Parse errors → ClientResponseError, status 400, parser message;
    # request_start → … → request_headers_sent → request_exception; connection closed, no
    # retry" (confirmed for every head here).
    hostile.script = first_then([first])
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with anyio.fail_after(5), pytest.raises(compat.ClientResponseError) as info:
            await fetch(session, hostile.url_for("/first"))
        assert_aiohttp_named(info.value)
        assert info.value.status == 400
        assert recorder.names()[-2:] == ["request_headers_sent", "request_exception"]
        assert recorder.params("request_exception")[0].exception is info.value
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (1, "/second")]


_BODY_ERRORS = {
    "bad-chunk-terminator": [
        R(200, headers=[("Transfer-Encoding", "chunked")]) + b"5\r\nhelloXX0\r\n\r\n"
    ],
    "chunk-size-overflow": [
        R(200, headers=[("Transfer-Encoding", "chunked")]) + b"ffffffffffffffffff\r\nhello\r\n"
    ],
    "truncated-chunked": [R(200, headers=[("Transfer-Encoding", "chunked")]) + b"5\r\nhel", CLOSE],
    "reset-mid-body": [
        R(200, headers=[("Content-Length", "100")]) + b"partial",
        Pause(0.02),
        RESET,
    ],
    "bad-gzip": [R(200, b"not gzip at all", [("Content-Encoding", "gzip")])],
}


@pytest.mark.parametrize("first", list(_BODY_ERRORS.values()), ids=list(_BODY_ERRORS))
async def test_a_broken_body_is_an_aiohttp_named_error(
    hostile: HostileServer, recorder: Recorder, first: list[Action]
) -> None:
    # Confirmed on aiohttp: framing errors in the head's segment → ClientResponseError 400 at
    # get(); truncation, reset and bad gzip → ClientPayloadError at read(), after request_end.
    hostile.script = first_then(first)
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with anyio.fail_after(5), pytest.raises(compat.ClientError) as info:
            async with session.get(hostile.url_for("/first")) as resp:
                await resp.read()
        assert_aiohttp_named(info.value)
        assert isinstance(info.value, (compat.ClientPayloadError, compat.ClientResponseError))
        exceptions = [p.exception for p in recorder.params("request_exception")]
        if isinstance(info.value, compat.ClientPayloadError):
            assert exceptions == []  # the head was handed out: request_end, then read() fails
            assert "request_end" in recorder.names()
        else:
            assert exceptions == [info.value]
        assert await fetch(session, hostile.url_for("/second")) == (200, b"own /second")
        assert hostile.paths() == [(0, "/first"), (1, "/second")]


@pytest.mark.parametrize(
    "first",
    [
        pytest.param([CLOSE], id="nothing"),
        pytest.param([b"HTTP/1.1 200 OK\r\nCont", CLOSE], id="half-a-head"),
    ],
)
async def test_a_dropped_connection_before_the_head_is_retried_once(
    hostile: HostileServer, recorder: Recorder, first: list[Action]
) -> None:
    # facts §0: GET is retried once on ServerDisconnectedError (confirmed here: aiohttp gets
    # the second connection's response).
    hostile.script = first_then(first)
    async with checked_session(hostile, trace_configs=[recorder.config]) as session:
        with anyio.fail_after(5):
            assert await fetch(session, hostile.url_for("/first")) == (200, b"own /first")
        assert hostile.paths() == [(0, "/first"), (1, "/first")]
    assert recorder.names().count("request_headers_sent") == 2
    assert recorder.params("request_exception") == []


# --- 8. random splitting: the same result however the bytes are cut ---


def _chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    return (
        b"".join(b"%x;ext=%d\r\n" % (len(p), i) + p + b"\r\n" for i, p in enumerate(pieces))
        + b"0\r\n"
        + trailer
        + b"\r\n"
    )


Step = tuple[str, str, bytes, bytes]  # method, path, response bytes, then glued unsplit after

SCENARIOS: dict[str, list[Step]] = {
    "content-length": [
        ("GET", "/a", R(200, b"hello", [("X-A", "1")]), b""),
        ("GET", "/b", R(404, reason="Not Found"), b""),
        ("GET", "/c", R(200, bytes(range(256)) * 8), b""),
    ],
    "chunked-extensions-trailers": [
        (
            "GET",
            "/a",
            R(200, headers=[("Transfer-Encoding", "chunked"), ("X-T", "1")])
            + _chunked(b"hello", b" world", trailer=b"X-Trailer: t\r\n"),
            b"",
        ),
        (
            "GET",
            "/b",
            R(200, headers=[("Transfer-Encoding", "chunked")])
            + b'A;name="quoted;value"\r\n0123456789\r\n0\r\n\r\n',
            b"",
        ),
        ("GET", "/c", R(200, b"after chunked"), b""),
    ],
    "head-1xx-304-204": [
        ("HEAD", "/a", R(200, headers=[("Content-Length", "5")]), b""),
        ("GET", "/b", b"HTTP/1.1 100 Continue\r\n\r\n" + R(200, b"final"), b""),
        ("GET", "/c", R(304, reason="Not Modified", headers=[("Content-Length", "5")]), b""),
        ("GET", "/d", R(204, reason="No Content", length=False), b""),
        ("GET", "/e", R(200, b"x"), b""),
    ],
    "pipelined-extra-response": [
        # EVIL shares the last piece's write. aiohttp 3.14.5 serves EVIL to /b when the head came
        # in an earlier segment (confirmed, 5 of 20 random splits); issue 10 asks for never.
        ("GET", "/a", R(200, b"one"), EVIL),
        ("GET", "/b", R(200, b"two"), b""),
    ],
    "read-to-close": [
        ("GET", "/a", R(200, b"kept", [("Connection", "keep-alive")], version="HTTP/1.0"), b""),
        ("GET", "/b", R(200, b"until the close", version="HTTP/1.0", length=False), b""),
        ("GET", "/c", R(200, b"fresh"), b""),
    ],
}

EXPECTED = {  # (status, body) per request, and which connection served each
    "content-length": (
        [(200, b"hello"), (404, b""), (200, bytes(range(256)) * 8)],
        [0, 0, 0],
    ),
    "chunked-extensions-trailers": (
        [(200, b"hello world"), (200, b"0123456789"), (200, b"after chunked")],
        [0, 0, 0],
    ),
    "head-1xx-304-204": (
        [(200, b""), (200, b"final"), (304, b""), (204, b""), (200, b"x")],
        [0, 0, 0, 0, 0],
    ),
    "pipelined-extra-response": ([(200, b"one"), (200, b"two")], [0, 1]),
    "read-to-close": ([(200, b"kept"), (200, b"until the close"), (200, b"fresh")], [0, 0, 1]),
}

Outcome = tuple[list[tuple[int, tuple[tuple[bytes, bytes], ...], bytes]], list[tuple[int, str]]]


def _split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    edges = [0, *sorted(set(cuts)), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges) if start < end]


def _run_scenario(name: str, cuts: dict[str, Sequence[int]], backend: str) -> Outcome:
    steps = {path: (raw, glued) for _, path, raw, glued in SCENARIOS[name]}

    def script(req: Request) -> Sequence[Action]:
        raw, glued = steps[req.path]
        pieces = _split(raw, cuts.get(req.path, ()))
        pieces[-1] += glued  # an extra response shares the last piece's write
        actions: list[Action] = [pieces[0]]
        for piece in pieces[1:]:  # each piece read by the client before the next is sent
            actions += [DELIVERED, piece]
        if raw.startswith(b"HTTP/1.0") and b"Content-Length" not in raw:
            actions.append(CLOSE)  # a close-delimited body ends with the connection
        return actions

    results: list[tuple[int, tuple[tuple[bytes, bytes], ...], bytes]] = []

    async def main() -> None:
        async with checked_session(server) as session:
            with anyio.fail_after(10):
                for method, path, _, _ in SCENARIOS[name]:
                    async with session.request(method, server.url_for(path)) as resp:
                        results.append((resp.status, resp.raw_headers, await resp.read()))

    with HostileServer(script) as server:
        anyio.run(main, backend=backend)
        assert not server.errors, server.errors
        return results, server.paths()


def _check_expected(name: str, outcome: Outcome) -> None:
    statuses_bodies, conns = EXPECTED[name]
    assert [(status, body) for status, _, body in outcome[0]] == statuses_bodies
    assert [conn for conn, _ in outcome[1]] == conns


@functools.cache
def _unsplit(name: str, backend: str) -> Outcome:
    return _run_scenario(name, {}, backend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_unsplit_scenarios_give_the_expected_responses(scenario: str, backend: str) -> None:
    _check_expected(scenario, _unsplit(scenario, backend))


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    # Each example runs real sockets (~40 ms): shrinking a failure would take minutes, and a
    # failing example prints its cuts ("Draw 1 (/a): [...]") as it is.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
)
@given(data=st.data(), scenario=st.sampled_from(list(SCENARIOS)))
def test_random_splits_give_the_same_responses(
    backend: str, data: st.DataObject, scenario: str
) -> None:
    # Issue 10: valid responses (CL, chunked with extensions and trailers, keep-alive, a
    # response pipelined after another) split at random byte boundaries, each piece its own
    # send: the same statuses, raw headers, bodies and connection use as unsplit, and those
    # are the expected ones.
    cuts = {
        path: data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=6, unique=True), label=path)
        for _, path, raw, _ in SCENARIOS[scenario]
    }
    outcome = _run_scenario(scenario, cuts, backend)
    _check_expected(scenario, outcome)
    assert outcome == _unsplit(scenario, backend)
