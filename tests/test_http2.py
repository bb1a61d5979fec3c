"""Issue 14: HTTP/2, traced. Against real servers on 127.0.0.1, on asyncio and trio.

hypercorn (a well-kept HTTP/2 server) for what a correct server does; `RawH2Server` (tests/h2_server.py,
on h2) for what a server may do to a client: GOAWAY, RST_STREAM, a dropped connection, a stream
limit. Each check looks from outside: what the server saw (connections, streams at once, resets),
what the handlers received, what the caller got.

Requests meant to fail are POSTs: compat, like aiohttp, retries an idempotent request once on a
dropped connection, which would hide the failure (the GET case has a test of its own).
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
import trustme

import compat

from .conftest import Recorder
from .h2_server import HypercornServer, RawH2Server, pattern

pytestmark = pytest.mark.anyio

CANCEL = 0x8  # RST_STREAM error code the client sends when it gives up on a stream


# --- helpers ---


@pytest.fixture
def hyper(ca: trustme.CA) -> Any:
    with HypercornServer(ca) as server:
        yield server


def session(
    recorder: Recorder | None, ctx: ssl.SSLContext, **connector_kwargs: Any
) -> compat.ClientSession:
    connector = compat.TCPConnector(ssl=ctx, http2=True, **connector_kwargs)
    configs = [recorder.config] if recorder is not None else []
    return compat.ClientSession(connector=connector, trace_configs=configs)


async def until(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll `check` (the servers run in threads) until true; fail after `timeout`."""
    deadline = anyio.current_time() + timeout
    while not check():
        if anyio.current_time() > deadline:
            raise AssertionError(f"waited {timeout} s for {what or 'a condition'}")
        await anyio.sleep(0.005)


async def settle(measure: Callable[[], int], at_most: int, timeout: float = 2.0) -> int:
    deadline = anyio.current_time() + timeout
    while True:
        value = measure()
        if value <= at_most or anyio.current_time() >= deadline:
            return value
        await anyio.sleep(0.02)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def count(recorder: Recorder, name: str) -> int:
    return recorder.names(all_signals=True).count(name)


def exceptions(recorder: Recorder) -> list[BaseException]:
    return [p.exception for p in recorder.params("request_exception")]


async def gather(*fns: Callable[[], Any]) -> list[Any]:
    """Run `fns` at once; each result is its return value or the exception it raised."""
    results: list[Any] = [None] * len(fns)

    async def run(i: int, fn: Callable[[], Any]) -> None:
        try:
            results[i] = await fn()
        except Exception as exc:
            results[i] = exc

    async with anyio.create_task_group() as tg:
        for i, fn in enumerate(fns):
            tg.start_soon(run, i, fn)
    return results


H2 = compat.HttpVersion(2, 0)  # aiohttp's `resp.version` of an HTTP/2 response


async def get(s: compat.ClientSession, url: str) -> tuple[int, compat.HttpVersion, bytes]:
    async with s.get(url) as resp:
        return resp.status, resp.version, await resp.read()


async def post(s: compat.ClientSession, url: str, data: bytes) -> bytes:
    async with s.post(url, data=data) as resp:
        assert resp.status == 200
        return await resp.read()


# --- 1. one connection, many streams ---


async def test_20_concurrent_requests_share_one_connection(
    hyper: HypercornServer, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    """1 create and 19 reuses; every response HTTP/2; the server saw one connection carrying
    all 20 at once; each request on its own odd stream id."""
    with anyio.fail_after(20):
        async with session(recorder, client_ssl) as s:
            url = hyper.url("/slow?ms=150")
            results = await gather(*[lambda: get(s, url)] * 20)
            assert results == [(200, H2, b"slow")] * 20
            names = recorder.names()
            assert names.count("connection_create_start") == 1
            assert names.count("connection_create_end") == 1
            assert names.count("connection_reuseconn") == 19
            assert names.count("request_end") == 20
            assert names.count("request_exception") == 0
            # each request either opened the connection or reused it, once
            for signals in recorder.per_request():
                assert (
                    signals.count("connection_create_start") + signals.count("connection_reuseconn")
                    == 1
                ), signals
            # a later request reuses it too
            assert await get(s, hyper.url("/")) == (200, H2, b"hello / over HTTP/2")
            assert count(recorder, "connection_reuseconn") == 20
    assert hyper.stats.connections == 1
    assert hyper.stats.http_versions == ["2"] * 21
    assert hyper.stats.max_in_flight == 20  # multiplexed, not one after another

    (established,) = recorder.params("connection_established")
    assert established.protocol == "HTTP/2" and established.tls is True
    (tls_end,) = recorder.params("tls_handshake_end")
    assert tls_end.alpn_protocol == "h2"
    heads = [p.stream_id for p in recorder.params("response_headers_received")]
    sent = [p.stream_id for p in recorder.params("request_sent")]
    assert len(heads) == 21 and len(set(heads)) == 21, heads
    assert all(isinstance(sid, int) and sid % 2 == 1 for sid in heads), heads
    assert sorted(sent) == sorted(heads)


async def test_limit_counts_connections_not_streams(
    hyper: HypercornServer, ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    """`limit=1`: 10 concurrent requests still go at once, on the one connection (no queueing);
    and once they are done, an idle HTTP/2 connection is not "in use": a request to another
    origin gets the slot (as an idle HTTP/1.1 connection would let it, in compat and aiohttp)."""
    with HypercornServer(ca) as other, anyio.fail_after(20):
        async with session(recorder, client_ssl, limit=1) as s:
            results = await gather(*[lambda: get(s, hyper.url("/slow?ms=100"))] * 10)
            assert all(r[:2] == (200, H2) for r in results), results
            assert count(recorder, "connection_queued_start") == 0
            assert hyper.stats.max_in_flight == 10
            with anyio.move_on_after(10) as scope:  # at once when right; never when wrong
                status, version, _ = await get(s, other.url("/"))
            assert not scope.cancelled_caught, (
                "a request to a second origin waited 10 s for the slot an idle HTTP/2"
                f" connection holds; stats: {s.connector.stats()}"  # type: ignore[union-attr]
            )
            assert (status, version) == (200, H2)


async def test_idle_http2_connection_expires_after_keepalive_timeout(
    ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    """`keepalive_timeout` applies to an idle HTTP/2 connection as to an HTTP/1.1 one: a request
    made after it opens a new connection, and the old one is closed."""
    with RawH2Server(ca) as server, anyio.fail_after(20):
        async with session(recorder, client_ssl, keepalive_timeout=0.2) as s:
            assert (await get(s, server.url("/a")))[:2] == (200, H2)
            await anyio.sleep(0.5)
            assert (await get(s, server.url("/b")))[:2] == (200, H2)
            names = recorder.names()
            assert names.count("connection_create_start") == 2, names
            assert server.stats.connections == 2
            await until(lambda: server.stats.closed_connections >= 1, 2, "the idle one closed")


# --- 2. the server's stream limit ---


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
async def test_stream_limit_queues_requests(
    ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder, warm: bool
) -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS=2, 6 concurrent slow requests: the server never has more
    than 2 streams open; the others queue (queued_start then queued_end, once each) and all
    succeed on the one connection. `cold`: the 6 are the first requests (the connection is
    opened by one of them); `warm`: the connection is up already."""
    with RawH2Server(ca, max_concurrent_streams=2) as server, anyio.fail_after(20):
        async with session(recorder, client_ssl) as s:
            if warm:
                assert (await get(s, server.url("/first")))[0] == 200
                recorder.clear()
            results = await gather(*[lambda: get(s, server.url("/slow?ms=150"))] * 6)
        stats = server.stats
        assert stats.protocol_errors == [], stats.protocol_errors
        assert stats.refused == [], f"streams opened past the server's limit: {stats.refused}"
        assert stats.max_open_streams <= 2
        assert all(not isinstance(r, Exception) for r in results), results
        assert [r[0] for r in results] == [200] * 6
        assert stats.connections == 1
        groups = recorder.per_request()
        queued = [g for g in groups if "connection_queued_start" in g]
        assert len(queued) >= 4, groups
        for signals in groups:
            starts = signals.count("connection_queued_start")
            assert starts == signals.count("connection_queued_end"), signals
            assert starts <= 1, f"a request queued {starts} times: {signals}"
            if starts:
                assert signals.index("connection_queued_start") < signals.index(
                    "connection_queued_end"
                )


# --- 3. GOAWAY ---


async def test_goaway_fails_exactly_the_unprocessed_streams(
    ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    """3 streams open, GOAWAY(last_stream_id=1): stream 1 completes; streams 3 and 5 fail with
    ServerDisconnectedError, and on_request_exception fires for those two only. The next request
    opens a new connection; the old one is closed once its last stream is done."""
    with RawH2Server(ca) as server, anyio.fail_after(20):
        async with session(recorder, client_ssl) as s:
            bodies = [b"first", b"second", b"third"]
            pending = [lambda b=b: post(s, server.url("/hold"), b) for b in bodies]
            async with anyio.create_task_group() as tg:
                results: list[Any] = []

                async def run_all() -> None:
                    results.extend(await gather(*pending))

                tg.start_soon(run_all)
                await until(lambda: len(server.held()) == 3)
                server.goaway(last_stream_id=1)
            by_stream = {st.stream_id: st.body for st in server.stats.streams}
            done = [r for r in results if isinstance(r, bytes)]
            failed = [r for r in results if isinstance(r, Exception)]
            assert done == [by_stream[1]], results
            assert len(failed) == 2 and all(
                isinstance(e, compat.ServerDisconnectedError) for e in failed
            ), results
            assert len(exceptions(recorder)) == 2
            assert all(isinstance(e, compat.ServerDisconnectedError) for e in exceptions(recorder))
            assert count(recorder, "request_end") == 1

            recorder.clear()
            assert await post(s, server.url("/echo"), b"after") == b"after"
            assert recorder.names().count("connection_create_start") == 1
            assert recorder.names().count("connection_reuseconn") == 0
            assert server.stats.connections == 2
            assert server.stats.streams[-1].conn == 1
            await until(lambda: server.stats.closed_connections >= 1, what="old connection closed")
            assert s.connector.stats().in_use <= 1  # type: ignore[union-attr]


async def test_goaway_retries_idempotent_requests_on_a_new_connection(
    ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    """GETs the server did not process (above GOAWAY's last stream id) are retried once, as
    aiohttp retries on a dropped connection: all 3 succeed; the 2 retries share a new connection."""
    with RawH2Server(ca) as server, anyio.fail_after(20):
        async with session(recorder, client_ssl) as s:
            results: list[Any] = []
            async with anyio.create_task_group() as tg:

                async def run_all() -> None:
                    results.extend(await gather(*[lambda: get(s, server.url("/hold"))] * 3))

                tg.start_soon(run_all)
                await until(lambda: len(server.held()) == 3)
                server.goaway(last_stream_id=1)
                with anyio.move_on_after(2):  # the retries, on connection 1
                    await until(lambda: len(server.held()) == 2)
                server.release()
        assert [r if isinstance(r, Exception) else r[:2] for r in results] == [(200, H2)] * 3, (
            results
        )
        assert server.stats.connections == 2
        assert [st.conn for st in server.stats.streams] == [0, 0, 0, 1, 1]
        assert exceptions(recorder) == []
        assert count(recorder, "connection_create_start") == 2


# --- 4. RST_STREAM ---


@pytest.mark.parametrize("when", ["before_head", "mid_body"])
async def test_stream_reset_fails_only_its_request(
    ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder, when: str
) -> None:
    """RST_STREAM on one of 3 streams: only that request fails (ServerDisconnectedError and
    on_request_exception before its head, ClientPayloadError while reading its body after);
    the other two succeed, and the connection carries on."""
    path = "/hold" if when == "before_head" else "/partial"
    with RawH2Server(ca) as server, anyio.fail_after(20):
        async with session(recorder, client_ssl) as s:
            results: list[Any] = []
            async with anyio.create_task_group() as tg:

                async def run_all() -> None:
                    results.extend(
                        await gather(
                            *[lambda b=b: post(s, server.url(path), b) for b in (b"x", b"y", b"z")]
                        )
                    )

                tg.start_soon(run_all)
                await until(lambda: len(server.held()) == 3)
                server.reset(3)
                server.release()
            failed = [r for r in results if isinstance(r, Exception)]
            assert len(failed) == 1, results
            if when == "before_head":
                assert isinstance(failed[0], compat.ServerDisconnectedError), failed
                assert len(exceptions(recorder)) == 1
                assert isinstance(exceptions(recorder)[0], compat.ServerDisconnectedError)
                assert count(recorder, "request_end") == 2
                by_stream = {st.stream_id: st.body for st in server.stats.streams}
                assert sorted(r for r in results if isinstance(r, bytes)) == sorted(
                    [by_stream[1], by_stream[5]]
                )
            else:
                assert isinstance(failed[0], compat.ClientPayloadError), failed
                assert count(recorder, "request_end") == 3
                assert [r for r in results if isinstance(r, bytes)] == [
                    b"a" * 1000 + b"b" * 1000
                ] * 2

            recorder.clear()
            assert await post(s, server.url("/echo"), b"again") == b"again"
            assert recorder.names().count("connection_reuseconn") == 1
        assert server.stats.connections == 1
        assert server.stats.protocol_errors == []


# --- 5. connection loss ---


async def test_connection_loss_fails_every_open_request_and_leaks_nothing(
    ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    """The connection drops with 4 streams open: 2 waiting for their head (they fail with
    ServerDisconnectedError, on_request_exception for those 2), 2 halfway through their body
    (reading it fails with ClientPayloadError, as in aiohttp and compat's HTTP/1.1). Nothing
    is left in use, the file descriptors come back, and the next request opens a new connection."""
    with RawH2Server(ca) as server, anyio.fail_after(20):
        fds = open_fds()
        connector = compat.TCPConnector(ssl=client_ssl, http2=True)
        async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
            heads_failed: list[Any] = []
            bodies_failed: list[Any] = []

            async def no_head() -> None:
                try:
                    await post(s, server.url("/hold"), b"h")
                except Exception as exc:
                    heads_failed.append(exc)

            async def mid_body() -> None:
                async with s.post(server.url("/partial"), data=b"p") as resp:
                    assert resp.status == 200 and resp.version == H2
                    assert await resp.content.readexactly(1000) == b"a" * 1000
                    try:
                        await resp.read()
                    except Exception as exc:
                        bodies_failed.append(exc)

            async with anyio.create_task_group() as tg:
                for fn in (no_head, mid_body, no_head, mid_body):
                    tg.start_soon(fn)
                await until(lambda: len(server.held()) == 4)
                await until(lambda: count(recorder, "request_end") == 2)
                server.drop()
            assert len(heads_failed) == 2 and all(
                isinstance(e, compat.ServerDisconnectedError) for e in heads_failed
            ), heads_failed
            assert len(bodies_failed) == 2 and all(
                isinstance(e, compat.ClientPayloadError) for e in bodies_failed
            ), [f"{type(e).__name__}: {e}" for e in bodies_failed]
            assert len(exceptions(recorder)) == 2
            assert await settle(lambda: connector.stats().in_use, 0) == 0
            assert await settle(open_fds, fds) <= fds

            recorder.clear()
            assert await post(s, server.url("/echo"), b"next") == b"next"
            assert recorder.names().count("connection_create_start") == 1
            assert server.stats.connections == 2
        assert connector.stats().in_use == 0
        assert await settle(open_fds, fds) <= fds


# --- 6. a server refusing h2 ---


async def test_server_refusing_h2_gets_http11(
    ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    """ALPN offers only http/1.1: the client speaks HTTP/1.1, says so, one connection per
    request in flight. Once the first connection showed the origin speaks HTTP/1.1, the
    others are opened at once, not one after another (each waiting to see if the previous
    one turns out to be HTTP/2, a TLS handshake each: seconds on a real network)."""
    with HypercornServer(ca, alpn=("http/1.1",)) as server, anyio.fail_after(20):
        async with session(recorder, client_ssl) as s:
            results = await gather(*[lambda: get(s, server.url("/slow?ms=100"))] * 5)
            assert results == [(200, compat.HttpVersion11, b"slow")] * 5
            assert await get(s, server.url("/")) == (
                200,
                compat.HttpVersion11,
                b"hello / over HTTP/1.1",
            )
    assert set(server.stats.http_versions) == {"1.1"}
    assert server.stats.connections == 5
    established = recorder.params("connection_established")
    assert [p.protocol for p in established] == ["HTTP/1.1"] * 5
    assert {p.alpn_protocol for p in recorder.params("tls_handshake_end")} == {"http/1.1"}
    assert all(p.stream_id is None for p in recorder.params("response_headers_received"))
    names = recorder.names()
    assert names.count("connection_create_start") == 5
    assert names.count("connection_reuseconn") == 1
    opening, most = 0, 0
    for name in names:
        if name.startswith("connection_create_"):
            opening += 1 if name.endswith("start") else -1
            most = max(most, opening)
    creates = " ".join(n[18:] for n in names if n.startswith("connection_create_"))
    assert most >= 2, f"connections opened one at a time (create start/end: {creates})"


# --- 7. prior knowledge ---


async def test_prior_knowledge_on_http(recorder: Recorder) -> None:
    """`http1=False` on an http:// URL: HTTP/2 without TLS (h2c), one connection for all; with
    `http1` left on, the same server is spoken to in HTTP/1.1."""
    with HypercornServer(None) as server, anyio.fail_after(10):
        connector = compat.TCPConnector(http2=True, http1=False)
        async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
            results = await gather(*[lambda: get(s, server.url("/slow?ms=100"))] * 5)
            assert results == [(200, H2, b"slow")] * 5
        assert server.stats.connections == 1
        assert server.stats.http_versions == ["2"] * 5
        (established,) = recorder.params("connection_established")
        assert established.protocol == "HTTP/2" and established.tls is False
        assert recorder.names().count("connection_reuseconn") == 4

        async with compat.ClientSession(connector=compat.TCPConnector(http2=True)) as s:
            assert await get(s, server.url("/")) == (
                200,
                compat.HttpVersion11,
                b"hello / over HTTP/1.1",
            )


@pytest.mark.timeout(400)
async def test_concurrent_bodies_never_hang_on_h2c() -> None:
    """200 rounds of 10 concurrent requests, each on a fresh h2c connection, bodies read:
    every round completes. (On trio a reader could block in the socket for data another reader
    had already delivered to it while it flushed: 1 round in 13 to 1 in 50 hung.) A hang is
    caught per round; the bound on all 200 only ends a run gone wrong (a few seconds when idle,
    over 50 s on a loaded machine under mutation testing's trampolines)."""
    with HypercornServer(None) as server, anyio.fail_after(300):
        for number in range(200):
            connector = compat.TCPConnector(http2=True, http1=False)
            async with compat.ClientSession(connector=connector) as s:
                done: list[bytes] = []

                async def one(s: compat.ClientSession = s, done: list[bytes] = done) -> None:
                    done.append((await get(s, server.url("/slow?ms=10")))[2])

                with anyio.move_on_after(10):  # 10 ms each when right; a hang when wrong
                    async with anyio.create_task_group() as tg:
                        for _ in range(10):
                            tg.start_soon(one)
                assert done == [b"slow"] * 10, f"round {number}: {len(done)} of 10 bodies in 10 s"


# --- 8. traced_client ---


async def test_traced_client_http2_matches_httpx(
    hyper: HypercornServer, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    """`traced_client(http2=True)`: HTTP/2, the signals, one connection for concurrent requests,
    and the same body as a bare `httpx.AsyncClient(http2=True)`."""
    url = hyper.url("/")
    with anyio.fail_after(20):
        async with httpx.AsyncClient(http2=True, verify=client_ssl) as bare:
            expected = await bare.get(url)
        assert expected.http_version == "HTTP/2"
        async with compat.traced_client(
            http2=True, verify=client_ssl, trace_configs=[recorder.config]
        ) as client:
            response = await client.get(url)
            assert response.http_version == "HTTP/2"
            assert response.content == expected.content == b"hello / over HTTP/2"
            responses = await gather(*[lambda: client.get(hyper.url("/slow?ms=100"))] * 5)
            assert [(r.status_code, r.http_version) for r in responses] == [(200, "HTTP/2")] * 5
    names = recorder.names()
    assert names.count("request_start") == names.count("request_end") == 6
    assert names.count("connection_create_start") == 1
    assert names.count("connection_reuseconn") == 5
    assert names.count("request_headers_sent") == 6
    (established,) = recorder.params("connection_established")
    assert established.protocol == "HTTP/2"
    assert hyper.stats.connections == 2  # bare httpx's and traced_client's


# --- 9. request and response bodies, flow control ---


async def test_request_bodies_arrive_intact(
    hyper: HypercornServer, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    """bytes and an async generator; three 1 MiB uploads at once (past the server's 64 KiB
    windows: the client must wait for WINDOW_UPDATE); 1 MiB and 20 MiB downloads (past the
    client's own 16 MiB window: it must open it again as the body is read)."""
    big = pattern(2**20)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(10):
            yield bytes([65 + i]) * 3000
            await anyio.sleep(0.001)

    async def echo(s: compat.ClientSession, data: Any) -> tuple[bytes, str]:
        async with s.post(hyper.url("/echo"), data=data) as resp:
            assert resp.version == H2
            return await resp.read(), resp.headers["x-length"]

    with anyio.fail_after(40):
        async with session(recorder, client_ssl) as s:
            assert await echo(s, b"abc" * 1000) == (b"abc" * 1000, "3000")
            sent = b"".join(p.chunk for p in recorder.params("request_chunk_sent"))
            assert sent == b"abc" * 1000

            recorder.clear()
            expected = b"".join(bytes([65 + i]) * 3000 for i in range(10))
            assert await echo(s, chunks()) == (expected, str(len(expected)))
            sent_chunks = [p.chunk for p in recorder.params("request_chunk_sent")]
            assert sent_chunks == [bytes([65 + i]) * 3000 for i in range(10)]

            recorder.clear()
            uploads = await gather(*[lambda: echo(s, big)] * 3)
            assert uploads == [(big, str(2**20))] * 3
            assert sum(len(p.chunk) for p in recorder.params("request_chunk_sent")) == 3 * 2**20

            recorder.clear()
            for size in (2**20, 20 * 2**20):
                status, version, body = await get(s, hyper.url(f"/bytes?n={size}"))
                assert (status, version, len(body)) == (200, H2, size)
                assert body == pattern(size)
            received = sum(len(p.chunk) for p in recorder.params("response_chunk_received"))
            assert received == 21 * 2**20
    assert hyper.stats.connections == 1


# --- 10. cancellation ---


@pytest.mark.parametrize("when", ["before_head", "mid_body"])
async def test_cancelling_one_request_resets_its_stream_only(
    ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder, when: str
) -> None:
    """One of 3 requests is cancelled (waiting for its head, or halfway through its body): the
    client resets that stream (RST_STREAM CANCEL), the other two complete, and the connection
    is reused afterwards."""
    with RawH2Server(ca) as server, anyio.fail_after(20):
        async with session(recorder, client_ssl) as s:
            others: list[Any] = []
            cancelled = anyio.CancelScope()
            first_read = anyio.Event()

            async def victim() -> None:
                with cancelled:
                    if when == "before_head":
                        await post(s, server.url("/hold"), b"victim")
                    else:
                        async with s.post(server.url("/partial"), data=b"victim") as resp:
                            assert await resp.content.readexactly(1000) == b"a" * 1000
                            first_read.set()
                            await resp.read()
                    pytest.fail("not cancelled")

            async def other(body: bytes) -> None:
                others.append(await post(s, server.url("/hold"), body))

            async with anyio.create_task_group() as tg:
                tg.start_soon(victim)
                await until(lambda: len(server.held()) == 1)
                victim_id = server.held()[0]
                tg.start_soon(other, b"one")
                tg.start_soon(other, b"two")
                await until(lambda: len(server.held()) == 3)
                if when == "mid_body":
                    await until(lambda: count(recorder, "request_end") == 1)
                    await first_read.wait()  # it reads on, into what the server holds back
                cancelled.cancel()
                with anyio.move_on_after(5):  # at once when right; at a later write when wrong
                    await until(lambda: len(server.stats.client_resets) == 1)
                prompt = list(server.stats.client_resets)
                server.release()
            assert sorted(others) == [b"one", b"two"]

            recorder.clear()
            assert await post(s, server.url("/echo"), b"after") == b"after"
            assert recorder.names().count("connection_reuseconn") == 1
            assert s.connector.stats().in_use <= 1  # type: ignore[union-attr]
        assert server.stats.connections == 1
        assert server.stats.protocol_errors == []
        assert server.stats.client_resets == [(0, victim_id, CANCEL)]
        assert prompt == [(0, victim_id, CANCEL)], (
            "the RST_STREAM of the cancelled stream was not sent within 5 s (only with a later"
            " write on the connection)"
        )


# --- 11. the command line ---


async def test_cli_http2(hyper: HypercornServer, anyio_backend: str) -> None:
    """`python -m compat --http2 URL --insecure` shows HTTP/2, the stream ids and one connection
    shared by concurrent requests, and exits 0. The bound only ends a hang: a fresh interpreter
    took over 30 s to start and run it under mutation testing on a loaded machine."""
    with anyio.fail_after(120):
        result = await anyio.run_process(
            [
                sys.executable,
                "-m",
                "compat",
                "--http2",
                hyper.url("/"),
                "--insecure",
                "--concurrency",
                "3",
                "--backend",
                anyio_backend,
            ],
            check=False,
        )
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert out.count(f"GET {hyper.url('/')} -> 200") == 3, out
    assert out.count("protocol=HTTP/2") == 1, out
    assert out.count("connection_create_start") == 1, out
    assert out.count("connection_reuseconn") == 2, out
    for stream_id in (1, 3, 5):
        assert f"stream_id={stream_id}" in out, out
    assert hyper.stats.connections == 1
