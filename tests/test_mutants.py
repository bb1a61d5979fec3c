"""Tests written to kill mutants that survived mutation testing (issue 15; see the README's
"Development" section for the command). Each test names, in its docstring, the behaviour a
user would notice if the mutated line came back; all of it observed from outside: what the
server received or saw closed, what handlers were given, what the caller got.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
import respx

import compat

from .conftest import Recorder
from .h2_server import HypercornServer
from .hostile import Action, HostileServer, Pause, Request, Signal, Wait
from .hostile import response as R
from .server import TestServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def plain() -> Iterator[HostileServer]:
    """A server answering every request with a 2-byte body, on keep-alive connections."""
    server = HostileServer(lambda request: [R(200, b"ok")]).start()
    yield server
    server.stop()


async def _client_closed(server: HostileServer, index: int, timeout: float) -> bool:
    """Whether the server saw the client close connection `index` within `timeout`."""
    event = server.connections[index].client_closed
    return await anyio.to_thread.run_sync(event.wait, timeout)


# --- the pool ---


@pytest.mark.parametrize("entry", ["session", "httpx"])
async def test_no_keepalive_timeout_keeps_reusing_idle_connections(
    plain: HostileServer, recorder: Recorder, entry: str
) -> None:
    """`keepalive_timeout=None` (httpx: `keepalive_expiry=None`): idle connections never
    expire and are reused (a mutant compared the idle time with None and failed the reuse)."""
    if entry == "session":
        connector = compat.TCPConnector(keepalive_timeout=None)
        async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
            for _ in range(3):
                async with s.get(plain.url_for("/")) as resp:
                    assert await resp.read() == b"ok"
    else:
        limits = httpx.Limits(keepalive_expiry=None)
        async with compat.traced_client(
            trace_configs=[recorder.config], limits=limits, trust_env=False
        ) as client:
            for _ in range(3):
                assert (await client.get(plain.url_for("/"))).content == b"ok"
    assert len(plain.connections) == 1
    assert [r.index for r in plain.requests] == [0, 1, 2]
    assert recorder.names().count("connection_reuseconn") == 2


async def test_an_idle_connection_expires_after_many_reuses(recorder: Recorder) -> None:
    """After more than 64 reuses of one connection (the pool then compacts its expiry list),
    the connection still expires once idle past `keepalive_timeout`: the server sees it
    closed on the next pool activity (a mutant kept the stale entries and dropped the live
    one, leaving the connection open for good)."""
    with (
        HostileServer(lambda request: [R(200, b"a")]) as a,
        HostileServer(lambda request: [R(200, b"b")]) as b,
    ):
        connector = compat.TCPConnector(keepalive_timeout=1.0)
        async with compat.ClientSession(connector=connector) as s:
            for _ in range(70):
                async with s.get(a.url_for("/")) as resp:
                    assert await resp.read() == b"a"
            assert len(a.connections) == 1  # one connection, reused 69 times
            assert not a.connections[0].client_closed.is_set()
            await anyio.sleep(1.3)
            async with s.get(b.url_for("/")) as resp:  # pool activity (trio has no timer)
                assert await resp.read() == b"b"
            assert await _client_closed(a, 0, 3.0), "an expired idle connection was left open"
            assert s.connector.stats().idle == 1  # b's connection only


async def test_queued_signals_carry_aiohttps_params(recorder: Recorder) -> None:
    """A request that waits for a slot gets queued start and end, each with aiohttp's params
    object (a mutant sent None as the queued-end params)."""
    body_rest = threading.Event()
    head = R(200, headers=[("Content-Length", "4")])

    def script(request: Request) -> list[Action]:
        if request.path == "/held":
            return [head + b"he", Wait(body_rest), b"ld"]
        return [R(200, b"ok")]

    queued = anyio.Event()

    async def on_queued(session: Any, ctx: Any, params: Any) -> None:
        queued.set()

    recorder.config.on_connection_queued_start.append(on_queued)
    connector = compat.TCPConnector(limit=1)
    with HostileServer(script) as server:
        async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
            async with s.get(server.url_for("/held")) as held:
                async with anyio.create_task_group() as tg:

                    async def second() -> None:
                        async with s.get(server.url_for("/ok")) as resp:
                            assert await resp.read() == b"ok"

                    tg.start_soon(second)
                    with anyio.fail_after(5):
                        await queued.wait()
                    body_rest.set()
                    assert await held.read() == b"held"
            body_rest.set()
    (start,) = recorder.params("connection_queued_start")
    (end,) = recorder.params("connection_queued_end")
    assert isinstance(start, compat.TraceConnectionQueuedStartParams)
    assert isinstance(end, compat.TraceConnectionQueuedEndParams)


async def test_a_pool_timeout_says_what_it_waited_for(server: TestServer) -> None:
    """httpx's pool timeout through `traced_client` explains itself (a mutant raised it with
    no message)."""
    limits = httpx.Limits(max_connections=1)
    async with compat.traced_client(
        limits=limits, timeout=httpx.Timeout(5, pool=0.1), trust_env=False
    ) as client:
        async with client.stream("GET", server.url_for("/ok")):
            with pytest.raises(httpx.PoolTimeout) as caught:
                await client.get(server.url_for("/ok"))
    message = str(caught.value)
    assert "0.1" in message and "connection" in message, message


# --- the session ---


async def test_an_invalid_url_error_carries_the_url() -> None:
    """`InvalidUrlClientError.url` is the URL the caller gave (a mutant set it to None)."""
    async with compat.ClientSession() as s:
        with pytest.raises(compat.InvalidUrlClientError) as caught:
            await s.get("http://[::1")
    assert caught.value.url == "http://[::1"
    assert "http://[::1" in str(caught.value)


async def test_an_invalid_header_name_error_names_the_header(plain: HostileServer) -> None:
    """A header name that is not a token is refused before anything is sent, and the error
    names it (a mutant raised a bare ValueError(None))."""
    async with compat.ClientSession() as s:
        with pytest.raises(ValueError, match="Bad Name"):
            await s.get(plain.url_for("/"), headers={"Bad Name": "1"})
        async with s.get(plain.url_for("/")) as resp:  # the session and its pool still work
            assert await resp.read() == b"ok"
    assert [r.header("Bad Name") for r in plain.requests] == [None]


# --- the connection ---


async def test_headers_sent_of_a_streamed_body_carries_method_and_url(
    plain: HostileServer, recorder: Recorder
) -> None:
    """With a streamed (async iterable) body, `on_request_headers_sent` gets the method and URL
    of the request, as with a bytes body (a mutant passed None as the method)."""

    async def body() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    url = plain.url_for("/upload")
    async with compat.ClientSession(trace_configs=[recorder.config]) as s:
        async with s.post(url, data=body()) as resp:
            assert await resp.read() == b"ok"
    (sent,) = recorder.params("request_headers_sent")
    assert sent.method == "POST"
    assert str(sent.url) == url
    assert plain.requests[0].body == b"abcd"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", id="all-bare-LF"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nok", id="one-bare-LF"),
    ],
)
async def test_a_response_with_bare_lf_line_ends_is_read_as_aiohttp_does(raw: bytes) -> None:
    """Bare LF line ends in a response head are accepted, as aiohttp's parser does (a mutant
    turned llhttp's leniency off: every such response failed with a 400)."""
    with HostileServer(lambda request: [raw]) as server:
        async with compat.ClientSession() as s:
            async with s.get(server.url_for("/")) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Length"] == "2"
                assert await resp.read() == b"ok"


async def test_stats_name_each_origin_by_scheme_host_and_port(
    plain: HostileServer, server: TestServer
) -> None:
    """`connector.stats().hosts` is keyed "scheme://host:port" (a mutant put the ssl flag
    where the port goes, merging origins that differ by port only)."""
    async with compat.ClientSession() as s:
        async with s.get(plain.url_for("/")) as resp:
            await resp.read()
        async with s.get(server.url_for("/ok")) as resp:
            await resp.read()
        hosts = s.connector.stats().hosts
    assert set(hosts) == {
        f"http://127.0.0.1:{plain.port}",
        f"http://127.0.0.1:{server.port}",
    }
    assert all(h.idle == 1 and h.in_use == 0 for h in hosts.values())


async def test_a_queued_request_gets_the_slot_soon_after_the_held_body_arrives(
    recorder: Recorder,
) -> None:
    """`limit=1`: a response is held unread while its body is still coming; a second request
    queues. Once the rest of the body is on the wire the connection is free, and the queued
    request gets it within a fraction of a second, on trio too, where the pool polls the
    unread connection while requests wait (a mutant started polling at 1 s instead of 5 ms).
    The bound is 10x the worst polling interval, not a measure of speed."""
    body_rest, body_sent = threading.Event(), threading.Event()
    head = R(200, headers=[("Content-Length", "4")])

    def script(request: Request) -> list[Action]:
        if request.path == "/held":
            return [head + b"he", Wait(body_rest), b"ld", Signal(body_sent)]
        return [R(200, b"ok")]

    queued, granted = anyio.Event(), anyio.Event()

    async def on_queued_start(session: Any, ctx: Any, params: Any) -> None:
        queued.set()

    async def on_queued_end(session: Any, ctx: Any, params: Any) -> None:
        granted.set()

    recorder.config.on_connection_queued_start.append(on_queued_start)
    recorder.config.on_connection_queued_end.append(on_queued_end)
    connector = compat.TCPConnector(limit=1)
    with HostileServer(script) as server:
        async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
            held = await s.get(server.url_for("/held"))
            try:
                async with anyio.create_task_group() as tg:

                    async def second() -> None:
                        async with s.get(server.url_for("/ok")) as resp:
                            assert await resp.read() == b"ok"

                    tg.start_soon(second)
                    with anyio.fail_after(5):
                        await queued.wait()
                    body_rest.set()
                    assert await anyio.to_thread.run_sync(body_sent.wait, 5.0)
                    sent_at = anyio.current_time()
                    with anyio.fail_after(5):
                        await granted.wait()
                    waited = anyio.current_time() - sent_at
                assert await held.read() == b"held"
            finally:
                body_rest.set()
                held.release()
    assert waited < 0.5, f"the queued request got the free slot {waited:.2f}s late"
    assert [r.conn for r in server.requests] == [0, 0]  # the same connection, handed over


async def test_idle_connections_expire_one_after_another(anyio_backend: str) -> None:
    """Two connections go idle at different times; each is closed once idle past
    `keepalive_timeout`: on asyncio by the pool's timer, which re-arms for the next one (a
    mutant stopped re-arming it, leaving the second open), on trio at the next pool activity
    (there is no timer there, as the README says)."""
    with (
        HostileServer(lambda request: [R(200, b"a")]) as a,
        HostileServer(lambda request: [R(200, b"b")]) as b,
        HostileServer(lambda request: [R(200, b"c")]) as c,
    ):
        connector = compat.TCPConnector(keepalive_timeout=0.3)
        async with compat.ClientSession(connector=connector) as s:
            async with s.get(a.url_for("/")) as resp:
                assert await resp.read() == b"a"
            await anyio.sleep(0.15)
            async with s.get(b.url_for("/")) as resp:
                assert await resp.read() == b"b"
            await anyio.sleep(0.6)  # both idle past 0.3 s by now
            if anyio_backend == "trio":
                async with s.get(c.url_for("/")) as resp:  # pool activity expires them
                    assert await resp.read() == b"c"
            assert await _client_closed(a, 0, 3.0), "the first idle connection was left open"
            assert await _client_closed(b, 0, 3.0), "the second idle connection was left open"


async def test_leaving_async_with_releases_an_unfinished_response() -> None:
    """Leaving `async with session.get(...)` without reading an unfinished body releases the
    response at once: with `limit=1` the next request gets through, on a new connection, as
    the unfinished one cannot be reused (a mutant skipped the release on exit: the next
    request waited for a slot that never came)."""
    never = threading.Event()

    def script(request: Request) -> list[Action]:
        if request.path == "/unfinished":
            return [R(200, headers=[("Content-Length", "100")]) + b"part", Wait(never)]
        return [R(200, b"ok")]

    with HostileServer(script) as server:
        try:
            connector = compat.TCPConnector(limit=1)
            async with compat.ClientSession(connector=connector) as s:
                async with s.get(server.url_for("/unfinished")) as resp:
                    assert resp.status == 200
                with anyio.fail_after(3):
                    async with s.get(server.url_for("/next")) as resp:
                        assert await resp.read() == b"ok"
        finally:
            never.set()
    assert [(r.path, r.conn) for r in server.requests] == [("/unfinished", 0), ("/next", 1)]


async def test_a_redirect_location_is_requoted_as_aiohttp_does() -> None:
    """A Location with characters that must be quoted is requoted before the next hop goes
    out (`requote_redirect_url=True`, aiohttp's default); a mutant took it as already encoded
    and sent a space in the request line."""

    def script(request: Request) -> list[Action]:
        if request.path == "/from":
            return [R(302, headers=[("Location", "/to a/b?q=a b")])]
        return [R(200, b"ok")]

    with HostileServer(script) as server:
        async with compat.ClientSession() as s:
            async with s.get(server.url_for("/from")) as resp:
                assert await resp.read() == b"ok"
    assert [r.target for r in server.requests] == ["/from", "/to%20a/b?q=a+b"]


async def test_the_reason_after_an_informational_response_is_the_final_ones() -> None:
    """A 100 Continue before the response leaves no trace: `reason` is the final response's
    own (a mutant left junk from the 1xx in front of it)."""
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\r\nContent-Length: 2\r\n\r\nok"
    with HostileServer(lambda request: [raw]) as server:
        async with compat.ClientSession() as s:
            async with s.get(server.url_for("/")) as resp:
                assert (resp.status, resp.reason) == (200, "Fine")
                assert await resp.read() == b"ok"


async def test_a_101_with_upgrade_is_returned_and_its_connection_never_reused(
    recorder: Recorder,
) -> None:
    """A 101 with an Upgrade header: the connection now speaks another protocol, so it is not
    handed to the next request, which opens a new one (a mutant never found the Upgrade
    header and put the upgraded connection back in the pool)."""

    def script(request: Request) -> list[Action]:
        if request.path == "/upgrade":
            upgrade = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            return [b"HTTP/1.1 101 Switching Protocols\r\n" + upgrade + b"\r\n"]
        return [R(200, b"ok")]

    with HostileServer(script) as server:
        async with compat.ClientSession(trace_configs=[recorder.config]) as s:
            async with s.get(server.url_for("/upgrade")) as resp:
                assert resp.status == 101
                assert resp.headers["Upgrade"] == "websocket"
            async with s.get(server.url_for("/next")) as resp:
                assert await resp.read() == b"ok"
    assert [(r.path, r.conn) for r in server.requests] == [("/upgrade", 0), ("/next", 1)]
    assert "connection_reuseconn" not in recorder.names()


async def test_a_host_whose_waiter_was_cancelled_still_gets_global_slots() -> None:
    """`limit=1`, two hosts. A request for host B queues and is cancelled; when the slot is
    freed, B's turn finds no waiter. B must still be served when it queues again later (a
    mutant left B marked as queued though it was not: its next request waited forever)."""
    never = threading.Event()

    def held(request: Request) -> list[Action]:
        return [R(200, headers=[("Content-Length", "100")]) + b"part", Wait(never)]

    queued: list[anyio.Event] = []

    async def on_queued(session: Any, ctx: Any, params: Any) -> None:
        queued[-1].set()

    config = compat.TraceConfig()
    config.on_connection_queued_start.append(on_queued)
    connector = compat.TCPConnector(limit=1)
    with HostileServer(held) as a, HostileServer(lambda request: [R(200, b"b")]) as b:
        try:
            async with compat.ClientSession(connector=connector, trace_configs=[config]) as s:
                first = await s.get(a.url_for("/held"))  # holds the only slot
                queued.append(anyio.Event())
                async with anyio.create_task_group() as tg:
                    cancelled = anyio.CancelScope()

                    async def cancelled_waiter() -> None:
                        with cancelled:
                            await s.get(b.url_for("/never"))

                    tg.start_soon(cancelled_waiter)
                    with anyio.fail_after(5):
                        await queued[-1].wait()
                    cancelled.cancel()
                assert cancelled.cancelled_caught
                first.release()  # the slot is free; B's turn comes, with no waiter left

                second = await s.get(a.url_for("/held"))  # the slot is taken again
                queued.append(anyio.Event())
                async with anyio.create_task_group() as tg:

                    async def waiter() -> None:
                        with anyio.fail_after(3):
                            async with s.get(b.url_for("/served")) as resp:
                                assert await resp.read() == b"b"

                    tg.start_soon(waiter)
                    with anyio.fail_after(5):
                        await queued[-1].wait()
                    second.release()  # the freed slot goes to B's waiter
        finally:
            never.set()
    assert [r.path for r in b.requests] == ["/served"]


async def test_an_invalid_redirect_location_is_the_errors_url(recorder: Recorder) -> None:
    """A redirect to something that is no URL fails with `InvalidUrlRedirectClientError`
    whose `url` is the Location as sent (a mutant put the description there)."""

    def script(request: Request) -> list[Action]:
        return [R(302, headers=[("Location", "http://[::1")])]

    with HostileServer(script) as server:
        async with compat.ClientSession(trace_configs=[recorder.config]) as s:
            with pytest.raises(compat.InvalidUrlRedirectClientError) as caught:
                await s.get(server.url_for("/from"))
    assert caught.value.url == "http://[::1"
    assert recorder.names()[-2:] == ["request_redirect", "request_exception"]


async def test_redirect_params_carry_the_request_headers(recorder: Recorder) -> None:
    """`on_request_redirect` gets the method, URL and headers of the request that was
    redirected, and its response (a mutant passed None as the headers)."""

    def script(request: Request) -> list[Action]:
        if request.path == "/from":
            return [R(302, headers=[("Location", "/to")])]
        return [R(200, b"ok")]

    with HostileServer(script) as server:
        async with compat.ClientSession(trace_configs=[recorder.config]) as s:
            async with s.get(server.url_for("/from"), headers={"X-Mine": "1"}) as resp:
                assert await resp.read() == b"ok"
    (redirect,) = recorder.params("request_redirect")
    assert redirect.method == "GET"
    assert str(redirect.url) == server.url_for("/from")
    assert redirect.headers["X-Mine"] == "1"
    assert redirect.response.status == 302


async def test_too_many_redirects_carries_the_first_requests_info(server: TestServer) -> None:
    """`TooManyRedirects.request_info` is the first request's, and `history` holds every
    redirect (a mutant raised it with no request info)."""
    async with compat.ClientSession() as s:
        with pytest.raises(compat.TooManyRedirects) as caught:
            await s.get(server.url_for("/redirect/5"), max_redirects=2)
    assert str(caught.value.request_info.url) == server.url_for("/redirect/5")
    assert [r.status for r in caught.value.history] == [302, 302]


async def test_a_body_that_yields_no_bytes_is_refused_by_type(plain: HostileServer) -> None:
    """An async iterable body that yields a str fails with a TypeError naming what it yielded
    (a mutant raised a TypeError without a message)."""

    async def body() -> AsyncIterator[Any]:
        yield b"ok"
        yield "not bytes"

    async with compat.ClientSession() as s:
        with pytest.raises(TypeError, match="str"):
            await s.post(plain.url_for("/"), data=body())


async def test_framing_header_names_on_the_wire_are_aiohttps(plain: HostileServer) -> None:
    """The framing headers the session adds are spelled as aiohttp spells them on the wire
    (mutants sent CONTENT-LENGTH and TRANSFER-ENCODING)."""

    async def body() -> AsyncIterator[bytes]:
        yield b"streamed"

    async with compat.ClientSession() as s:
        async with s.post(plain.url_for("/sized"), data=b"four") as resp:
            await resp.read()
        async with s.post(plain.url_for("/streamed"), data=body()) as resp:
            await resp.read()
    sized, streamed = plain.requests
    assert b"\r\nContent-Length: 4\r\n" in sized.raw
    assert b"\r\nTransfer-Encoding: chunked\r\n" in streamed.raw
    assert streamed.body == b"streamed"


async def test_respx_sees_the_body_of_a_mocked_session_request() -> None:
    """A request of `ClientSession` mocked by respx carries its body to the mock (a mutant
    dropped it)."""
    async with compat.ClientSession() as s:
        with respx.mock(assert_all_called=True) as mock:
            route = mock.post("http://mocked.test/upload").respond(201)
            async with s.post("http://mocked.test/upload", data=b"payload") as resp:
                assert resp.status == 201
    assert route.calls.last.request.content == b"payload"


async def test_max_keepalive_connections_still_holds_after_an_expiry() -> None:
    """httpx's `max_keepalive_connections=1` through `traced_client`: after an idle connection
    expired, two responses finishing together leave one connection idle and close the other
    (a mutant miscounted the expired one, and then kept both)."""

    def script(request: Request) -> list[Action]:
        return [Pause(0.2), R(200, b"ok")] if request.path == "/slow" else [R(200, b"ok")]

    limits = httpx.Limits(max_keepalive_connections=1, keepalive_expiry=1.0)
    with HostileServer(script) as server:
        async with compat.traced_client(limits=limits, trust_env=False) as client:
            assert (await client.get(server.url_for("/first"))).content == b"ok"
            await anyio.sleep(1.3)  # connection 0 expires (on trio: at the next request)
            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    tg.start_soon(client.get, server.url_for("/slow"))
            assert sorted(r.conn for r in server.requests) == [0, 1, 2]
            assert await _client_closed(server, 0, 3.0)
            # the extra connection is closed when released; the kept one would expire only
            # 1 s later: look as soon as one of them is closed
            with anyio.fail_after(10):
                while not any(server.connections[i].client_closed.is_set() for i in (1, 2)):
                    await anyio.to_thread.run_sync(server.connections[1].client_closed.wait, 0.01)
            closed = [server.connections[i].client_closed.is_set() for i in (1, 2)]
            assert sorted(closed) == [False, True], "not exactly one connection kept idle"


async def test_sock_connect_bounds_opening_even_when_connect_is_longer() -> None:
    """`ClientTimeout(connect=5, sock_connect=0.3)`: opening a connection whose TLS handshake
    never completes fails after about 0.3 s, not 5 (a mutant let `connect` replace the
    shorter `sock_connect`): not before 0.3 s, and under 10 times it (3 s, still short of 5)."""
    with socket.socket() as listener:  # accepts nothing: the handshake hangs in the backlog
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        timeout = compat.ClientTimeout(connect=5, sock_connect=0.3)
        async with compat.ClientSession(timeout=timeout) as s:
            started = anyio.current_time()
            with pytest.raises(compat.ConnectionTimeoutError):
                await s.get(f"https://127.0.0.1:{port}/")
            took = anyio.current_time() - started
    assert 0.3 - 0.01 <= took < 0.3 * 10, f"sock_connect=0.3 took {took:.1f}s"


async def test_a_callers_cookie_header_is_merged_with_the_jars(plain: HostileServer) -> None:
    """A `Cookie` header of the caller's and the jar's cookies go out as one merged header,
    as aiohttp sends them (mutants sent two Cookie headers)."""
    async with compat.ClientSession(cookies={"jar": "1"}) as s:
        async with s.get(plain.url_for("/"), headers={"Cookie": "mine=2"}) as resp:
            await resp.read()
    (request,) = plain.requests
    assert [v for k, v in request.headers if k.lower() == "cookie"] == ["mine=2; jar=1"]


@pytest.mark.parametrize("entry", ["session", "httpx"])
async def test_exception_params_carry_the_method_and_url(recorder: Recorder, entry: str) -> None:
    """`on_request_exception` gets the method and URL of the request that failed, on both
    entry points (mutants passed None for either)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/path?q=1"
    if entry == "session":
        async with compat.ClientSession(trace_configs=[recorder.config]) as s:
            with pytest.raises(compat.ClientConnectorError):
                await s.post(url, data=b"x")
    else:
        async with compat.traced_client(trace_configs=[recorder.config], trust_env=False) as c:
            with pytest.raises(httpx.ConnectError):
                await c.post(url, content=b"x")
    (params,) = recorder.params("request_exception")
    assert params.method == "POST"
    assert str(params.url) == url


async def test_a_callers_proxy_authorization_is_not_doubled(plain: HostileServer) -> None:
    """Through a forwarding proxy (the test server plays it) with `proxy_auth`, a caller's own
    Proxy-Authorization header is the one sent, once (a mutant added the session's as a
    second one); the target is in absolute form."""
    auth = compat.BasicAuth("user", "secret")
    async with compat.ClientSession() as s:
        async with s.get(
            "http://target.test/x",
            proxy=plain.url,
            proxy_auth=auth,
            headers={"Proxy-Authorization": "Mine"},
        ) as resp:
            assert await resp.read() == b"ok"
    (request,) = plain.requests
    assert request.target == "http://target.test/x"
    assert [v for k, v in request.headers if k.lower() == "proxy-authorization"] == ["Mine"]


async def test_a_raising_raise_for_status_callable_releases_the_response() -> None:
    """A `raise_for_status=` callable that raises on an unfinished response: the error reaches
    the caller and the response is released, so with `limit=1` the next request gets through
    on a new connection (a mutant skipped the release on that error path: the next request
    waited for a slot that never came)."""
    never = threading.Event()

    def script(request: Request) -> list[Action]:
        if request.path == "/unfinished":
            return [R(500, headers=[("Content-Length", "100")]) + b"part", Wait(never)]
        return [R(200, b"ok")]

    async def check(response: compat.ClientResponse) -> None:
        if response.status >= 500:
            raise RuntimeError(f"refused {response.status}")

    with HostileServer(script) as server:
        try:
            connector = compat.TCPConnector(limit=1)
            async with compat.ClientSession(connector=connector, raise_for_status=check) as s:
                with pytest.raises(RuntimeError, match="refused 500"):
                    await s.get(server.url_for("/unfinished"))
                with anyio.fail_after(3):
                    async with s.get(server.url_for("/next")) as resp:
                        assert await resp.read() == b"ok"
        finally:
            never.set()
    assert [(r.path, r.conn) for r in server.requests] == [("/unfinished", 0), ("/next", 1)]


class _HeaderRecordingServer(HypercornServer):
    """The h2 test server, also keeping each request's header fields as hypercorn got them."""

    def __init__(self) -> None:
        super().__init__(None)  # h2c: HTTP/2 without TLS
        self.seen: list[list[tuple[bytes, bytes]]] = []

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append(list(scope["headers"]))
        await super().app(scope, receive, send)


@pytest.mark.parametrize("entry", ["session", "httpx"])
async def test_a_callers_headers_reach_an_http2_server(entry: str) -> None:
    """Over HTTP/2 a caller's own header fields reach the server (lower-cased, as HTTP/2 has
    them) and connection-specific ones do not (a mutant kept only the dropped ones: every
    HTTP/2 request lost its caller's headers, and no test saw it)."""
    headers = {"X-Custom": "yes", "Connection": "keep-alive"}
    with _HeaderRecordingServer() as server, anyio.fail_after(10):
        if entry == "session":
            connector = compat.TCPConnector(http2=True, http1=False)
            async with compat.ClientSession(connector=connector) as s:
                async with s.get(server.url("/x"), headers=headers) as resp:
                    assert resp.version == compat.HttpVersion(2, 0)
                    await resp.read()
        else:
            async with compat.traced_client(http1=False, http2=True, trust_env=False) as c:
                resp = await c.get(server.url("/x"), headers=headers)
                assert resp.http_version == "HTTP/2"
    (fields,) = server.seen
    assert (b"x-custom", b"yes") in fields
    assert all(name != b"connection" for name, _ in fields)


@pytest.mark.parametrize(("userinfo", "auth"), [("token@", ("token", "")), (":pw@", ("", "pw"))])
async def test_a_url_with_only_a_user_or_only_a_password_still_authenticates(
    plain: HostileServer, userinfo: str, auth: tuple[str, str]
) -> None:
    """`http://token@host/` (a user, no password) or `http://:pw@host/` sends Basic auth built
    from what the URL has, the missing part empty, as aiohttp does (a mutant required both
    parts: such URLs went out with no Authorization at all)."""
    url = plain.url.replace("http://", f"http://{userinfo}") + "/x"
    async with compat.ClientSession() as s:
        async with s.get(url) as resp:
            assert await resp.read() == b"ok"
    (request,) = plain.requests
    sent = [v for k, v in request.headers if k.lower() == "authorization"]
    assert sent == [compat.BasicAuth(*auth).encode()]
