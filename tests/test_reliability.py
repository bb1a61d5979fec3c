"""Faults, cancellation, load and hostile input: nothing leaks, every signal pair closes."""

from __future__ import annotations

import contextlib
import gc
import os
import random
import re
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import compat
from compat._tracing import AIOHTTP_SIGNALS

from .conftest import Recorder
from .server import TestServer
from .wireserver import Seen, WireServer, fake_dns

pytestmark = pytest.mark.anyio


async def _fetch(session: compat.ClientSession, url: str, **kwargs: Any) -> bytes:
    async with session.get(url, **kwargs) as resp:
        return await resp.read()


@pytest.mark.parametrize(
    ("path", "error", "on_read"),
    [
        ("/fault/disconnect", compat.ServerDisconnectedError, False),
        ("/fault/reset-before", compat.ClientConnectionError, False),
        ("/fault/reset-after", compat.ClientPayloadError, True),
        ("/fault/truncate", compat.ClientPayloadError, True),
        ("/fault/invalid", compat.ClientResponseError, False),
        ("/fault/huge-headers", compat.ClientError, False),
    ],
)
async def test_server_faults_raise_aiohttp_named_errors(
    server: TestServer, recorder: Recorder, path: str, error: type[Exception], on_read: bool
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        if on_read:
            resp = await session.get(server.url_for(path))
            with pytest.raises(error) as info:
                await resp.read()
            assert recorder.names()[-1] == "request_end"
        else:
            with pytest.raises(error) as info:
                await session.get(server.url_for(path))
            assert recorder.params("request_exception")[0].exception is info.value
        assert str(info.value)
        assert session.connector.stats().in_use == 0
        assert await _fetch(session, server.url_for("/ok")) == b"ok"


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("http://[::1", compat.InvalidUrlRedirectClientError),
        ("ftp://example.org/", compat.NonHttpUrlRedirectClientError),
        ("http:///nohost", compat.InvalidUrlRedirectClientError),
    ],
)
async def test_redirects_to_bad_urls(
    server: TestServer, recorder: Recorder, location: str, error: type[Exception]
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        with pytest.raises(error):
            await session.get(server.url_for("/redirect-to"), params={"url": location})
        assert session.connector.stats().in_use == 0
    assert recorder.names()[-2:] == ["request_redirect", "request_exception"]


@pytest.mark.parametrize("signal", AIOHTTP_SIGNALS)
async def test_a_raising_handler_on_any_signal_leaks_nothing(
    server: TestServer, signal: str
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        await _raise_in_every_request(server, signal)
        gc.collect()
    unclosed = [str(w.message) for w in caught if "unclosed" in str(w.message)]
    assert unclosed == []  # no socket was left for the garbage collector to close


async def _raise_in_every_request(server: TestServer, signal: str) -> None:
    recorder = Recorder()

    async def boom(*_: Any) -> None:
        raise LookupError(signal)

    getattr(recorder.config, signal).append(boom)
    connector = compat.TCPConnector(limit=1, force_close=signal == "on_dns_cache_hit")
    raised: list[BaseException] = []
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        for url in [
            server.url_for("/redirect/1", host="localhost"),  # DNS, create, redirect, reuse
            server.url_for("/redirect/1", host="localhost"),  # reuse; a cache hit if force_close
            server.url_for("/status/500"),  # raise_for_status: the exception signal
        ]:

            async def one(url: str = url) -> None:
                try:
                    async with s.post(url, data=b"body", raise_for_status=True) as resp:
                        await resp.read()
                except (LookupError, compat.ClientResponseError) as exc:
                    raised.append(exc)

            async with anyio.create_task_group() as tg:  # two at once: limit=1 queues one
                tg.start_soon(one)
                tg.start_soon(one)
            assert connector.stats().in_use == 0
        async with compat.ClientSession(connector=connector, connector_owner=False) as plain:
            assert await _fetch(plain, server.url_for("/ok")) == b"ok"  # the pool still works
    assert connector.stats().open == 0
    assert any(isinstance(e, LookupError) for e in raised), "the handler ran and raised"
    per_request: dict[int, list[str]] = {}
    for name, _, ctx in recorder.events:
        per_request.setdefault(id(ctx), []).append(name[3:])
    for names in per_request.values():
        assert names.count("request_exception") <= 1
        if signal != "on_request_start":  # aiohttp sends no exception for a failed start
            assert "request_end" in names or "request_exception" in names, names
        for start, end in [
            ("connection_queued_start", "connection_queued_end"),
            ("connection_create_start", "connection_create_end"),
            ("dns_resolvehost_start", "dns_resolvehost_end"),
        ]:
            opened = names.count(start) - names.count(end)
            assert opened == 0 or (opened == 1 and "request_exception" in names), names


async def test_a_cancelled_handler_leaks_nothing(server: TestServer) -> None:
    config = compat.TraceConfig()
    entered = anyio.Event()

    async def hang(session: Any, ctx: Any, params: Any) -> None:
        if ctx.trace_request_ctx == "hang":
            entered.set()
            await anyio.sleep_forever()

    config.on_request_headers_sent.append(hang)
    connector = compat.TCPConnector(limit=1)
    scope = anyio.CancelScope()
    async with compat.ClientSession(connector=connector, trace_configs=[config]) as s:

        async def hanging() -> None:
            with scope:
                await s.get(server.url_for("/ok"), trace_request_ctx="hang")

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(hanging)
                await entered.wait()
                scope.cancel()
            assert scope.cancelled_caught
            assert await _fetch(s, server.url_for("/ok")) == b"ok"  # limit=1: the slot is back


async def test_a_slow_handler_delays_only_its_own_request(server: TestServer) -> None:
    config = compat.TraceConfig()
    slow_entered, let_go = anyio.Event(), anyio.Event()

    async def slow(session: Any, ctx: Any, params: Any) -> None:
        if ctx.trace_request_ctx == "slow":
            slow_entered.set()
            await let_go.wait()

    config.on_request_end.append(slow)
    done: list[str] = []
    async with compat.ClientSession(trace_configs=[config]) as s:

        async def one(label: str) -> None:
            await _fetch(s, server.url_for("/ok"), trace_request_ctx=label)
            done.append(label)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(one, "slow")
                await slow_entered.wait()
                for i in range(5):  # while the slow handler is blocked
                    await one(f"fast{i}")
                assert done == [f"fast{i}" for i in range(5)]
                let_go.set()
    assert done[-1] == "slow" and len(done) == 6


@contextlib.asynccontextmanager
async def _entry(
    entry: str, connector: compat.TCPConnector, configs: list[Any]
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """A `request(method, url, body=None) -> text` through ClientSession or traced_client."""
    if entry == "session":
        async with compat.ClientSession(connector=connector, trace_configs=configs) as s:

            async def request(method: str, url: str, body: Any = None) -> str:
                async with s.request(method, url, data=body) as resp:
                    return await resp.text()

            yield request
        return
    try:
        async with compat.traced_client(connector=connector, trace_configs=configs) as client:

            async def request(method: str, url: str, body: Any = None) -> str:
                return (await client.request(method, url, content=body)).text

            yield request
    finally:
        await connector.close()


@pytest.mark.parametrize("entry", ["session", "httpx"])
@pytest.mark.parametrize("stage", ["queued", "resolving", "sending", "waiting", "in-a-handler"])
async def test_an_awaiting_exception_handler_completes_under_cancellation(
    entry: str, stage: str, anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request is cancelled at `stage`; the exception handler awaits before it records:
    it must still run to its end (the signal is sent shielded), on trio too, and the slot of
    the `limit=1` connector must come back."""
    fake_dns(monkeypatch, {"slow-dns.test": ["127.0.0.1"]}, delay=60)
    delivered: list[BaseException] = []
    reached = anyio.Event()
    config = compat.TraceConfig()

    async def on_exception(session: Any, ctx: Any, params: Any) -> None:
        await anyio.sleep(0.01)
        await anyio.lowlevel.checkpoint()
        delivered.append(params.exception)

    async def mark(session: Any, ctx: Any, params: Any) -> None:
        if reached.is_set():  # only the victim, the first request to get here
            return
        reached.set()
        if stage == "in-a-handler":
            await anyio.sleep_forever()

    config.on_request_exception.append(on_exception)
    getattr(
        config,
        {
            "queued": "on_connection_queued_start",
            "resolving": "on_dns_resolvehost_start",
            "in-a-handler": "on_request_headers_sent",
        }.get(stage, "on_request_end"),  # on_request_end: never reached in the other stages
    ).append(mark)

    async def body_that_stalls() -> AsyncIterator[bytes]:
        yield b"<first>"
        await anyio.sleep_forever()

    with WireServer() as wire:
        url = wire.url("/hold/victim")
        if stage == "resolving":
            url = f"http://slow-dns.test:{wire.ports[0]}/victim"
        scope = anyio.CancelScope()
        async with _entry(entry, compat.TCPConnector(limit=1), [config]) as request:

            async def victim() -> None:
                with scope:
                    body = body_that_stalls() if stage == "sending" else None
                    await request("POST", url, body)

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    if stage == "queued":  # another request holds the only slot
                        tg.start_soon(request, "GET", wire.url("/hold/holder"))
                        await wire.wait_for(lambda: bool(wire.seen("/hold/holder")))
                    tg.start_soon(victim)
                    if stage == "waiting":
                        await wire.wait_for(lambda: bool(wire.seen("/hold/victim")))
                    elif stage == "sending":
                        await wire.wait_for(lambda: b"<first>" in wire.received())
                    else:
                        await reached.wait()
                    scope.cancel()
                    wire.release("holder")
                assert scope.cancelled_caught
                assert len(delivered) == 1, "the exception handler was cut off"
                assert isinstance(delivered[0], anyio.get_cancelled_exc_class())
                assert await request("GET", wire.url("/next")) == "ok"


@pytest.mark.parametrize("entry", ["session", "httpx"])
@pytest.mark.parametrize("method", ["GËT", "GE T", "GET\r\nSmuggled: 1", "GET\x00", ""])
async def test_an_invalid_method_fails_clearly_and_gives_its_slot_back(
    entry: str, method: str
) -> None:
    """Through a `limit=1` connector: the request fails with a message, nothing reaches the
    wire, and the next request gets the connection at once."""
    allowed = (compat.ClientError, ValueError, TypeError, httpx.HTTPError)
    with WireServer() as wire:
        async with _entry(entry, compat.TCPConnector(limit=1), []) as request:
            with anyio.fail_after(5):
                with pytest.raises(allowed) as info:
                    await request(method, wire.url("/rejected"))
                assert str(info.value)
            with anyio.fail_after(5):
                assert await request("GET", wire.url("/next")) == "ok"
        assert [r.path for r in wire.requests] == ["/next"]
        assert wire.received().startswith(b"GET /next HTTP/1.1\r\n")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_soak_with_faults_timeouts_and_cancellations(
    server: TestServer, anyio_backend: str
) -> None:
    rng = random.Random(20261126)
    recorder = Recorder()
    connector = compat.TCPConnector(limit=10)
    paths = ["/ok"] * 10 + [
        "/bytes/70000",
        "/chunked/3/100",
        "/redirect/2",
        "/close",
        "/status/500",
        "/slow?delay=0.05",
        "/slow-body?delay=0.05",
        "/fault/disconnect",
        "/fault/reset-before",
        "/fault/reset-after",
        "/fault/truncate",
        "/fault/invalid",
    ]
    fds_before = _open_fds()
    outcomes: Counter[str] = Counter()
    peak = 0

    async def one(session: compat.ClientSession) -> None:
        nonlocal peak
        path = rng.choice(paths)
        timeout = compat.ClientTimeout(total=rng.choice([None, None, 0.03, 0.2]))
        cancel_after = rng.choice([None, None, None, 0.01, 0.05])
        with anyio.move_on_after(cancel_after) as scope:
            try:
                async with session.get(server.url_for(path), timeout=timeout) as resp:
                    peak = max(peak, connector.stats().in_use)
                    await resp.read()
                outcomes["ok"] += 1
            except (compat.ClientError, TimeoutError) as exc:
                outcomes[type(exc).__name__] += 1
        if scope.cancelled_caught:
            outcomes["cancelled"] += 1

    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        with anyio.fail_after(120):
            limiter = anyio.Semaphore(100)

            async def bounded(session: compat.ClientSession) -> None:
                async with limiter:
                    await one(session)

            async with anyio.create_task_group() as tg:
                for _ in range(3000):
                    tg.start_soon(bounded, s)
        assert connector.stats().in_use == 0 and connector.stats().waiting == 0
        assert connector.stats().max_in_use <= 10 and peak <= 10
        assert await _fetch(s, server.url_for("/ok")) == b"ok"
    assert connector.stats().open == 0
    assert sum(outcomes.values()) == 3000
    assert outcomes["ok"] > 500 and outcomes["cancelled"] > 50 and outcomes["TimeoutError"] > 50

    per_request: dict[int, list[str]] = {}
    for name, _, ctx in recorder.events:
        per_request.setdefault(id(ctx), []).append(name[3:])
    assert len(per_request) == 3001
    for names in per_request.values():
        finals = [n for n in names if n in ("request_end", "request_exception")]
        assert len(finals) == 1, names
        for start, end in [
            ("connection_queued_start", "connection_queued_end"),
            ("connection_create_start", "connection_create_end"),
            ("dns_resolvehost_start", "dns_resolvehost_end"),
        ]:
            opened = names.count(start) - names.count(end)
            assert opened == 0 or (opened == 1 and finals == ["request_exception"]), names

    with anyio.fail_after(10):  # the server side closes its ends a moment later
        while _open_fds() > fds_before:  # noqa: ASYNC110 - polling the fd table, no event
            await anyio.sleep(0.05)


_MARK = "Smuggled"
"""Every hostile sample tries to start a header line with this name."""

_HOSTILE = [
    f"a\r\n{_MARK}: 1",
    f"a\n{_MARK}: 1",
    f"a\r{_MARK}: 1",
    f"\r\n\r\nGET /{_MARK} HTTP/1.1",
    "a\x00b",
    "\x00",
    "\r\n",
    " padded ",
    "tab\tinside",
    "\x7f",
    "é",
]
_ascii = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=12)
_printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
_token = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}", fullmatch=True)
# Mostly valid, so that many requests get as far as the wire; hostile often enough.
_header_names = st.one_of(
    _token,
    _token,
    st.sampled_from([f"X-A\r\n{_MARK}", f"X\n{_MARK}", "Bad Name", "Colon:", "Nul\x00", "", "É"]),
    _ascii.filter(bool),
)
_header_values = st.one_of(_printable, _printable, st.sampled_from(_HOSTILE), _ascii)
_methods = st.sampled_from(
    ["GET", "POST", "get", "PATCH", "G E T", f"GET\r\n{_MARK}: y", "GET\n", "GET\x00", "", "ÜBER"]
)
_paths = st.one_of(_printable, st.sampled_from(_HOSTILE), st.text(max_size=20))

_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [\x21-\x7e]+ HTTP/1\.1")
_HEADER_LINE = re.compile(
    rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[ \t]*(?:[\x21-\x7e\x80-\xff][\x20-\x7e\x80-\xff\t]*)?"
)


def _assert_well_formed(request: Seen) -> None:
    """The head as it was on the wire: one request line, then header lines, each a token, a
    colon and a value with no CR, LF, NUL or other control character in it."""
    lines = request.head[:-4].split(b"\r\n")
    assert _REQUEST_LINE.fullmatch(lines[0]), lines[0]
    for line in lines[1:]:
        assert _HEADER_LINE.fullmatch(line), line
        assert not line.lower().startswith(_MARK.lower().encode()), line
    assert _MARK.lower() not in request.header_names()


@pytest.mark.parametrize("entry", ["session", "httpx"])
@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@example(method="ÜBER", path="x", headers=[], params={}, body=None)
@example(method="G E T", path="x", headers=[], params={}, body=None)
@example(method="", path="x", headers=[], params={}, body=None)
@example(method="GET", path="x", headers=[("X-Ok", f"a\r\n{_MARK}: 1")], params={}, body=None)
@example(method="GET", path="x", headers=[(f"X\r\n{_MARK}", "1")], params={}, body=None)
@example(method="GET", path="x", headers=[("X-Ok", "a\x00b")], params={}, body=None)
@example(method="GET", path="x", headers=[("X-Ok", "a\nb")], params={}, body=None)
@example(method=f"GET\r\n{_MARK}: y", path="x", headers=[], params={}, body=None)
@example(method="GET", path=f"a\r\n{_MARK}: 1", headers=[], params={}, body=None)
@example(method="GET", path="x", headers=[], params={"q": f"a\r\n{_MARK}: 1"}, body=None)
@example(method="POST", path="x", headers=[], params={}, body=f"a\r\n{_MARK}: 1")
@given(
    method=_methods,
    path=_paths,
    headers=st.lists(st.tuples(_header_names, _header_values), max_size=3),
    params=st.dictionaries(
        st.one_of(_ascii, st.sampled_from(_HOSTILE)), _header_values, max_size=2
    ),
    body=st.one_of(st.none(), st.binary(max_size=50), st.text(max_size=20)),
)
async def test_hostile_input_gets_clear_errors_and_never_reaches_the_wire_malformed(
    entry: str,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    params: dict[str, str],
    body: bytes | str | None,
) -> None:
    """Checked on the raw bytes the server received: a request that fails left nothing on the
    wire; one that went out is a single well-formed request with the method asked for; and
    the `limit=1` connector's slot is back either way."""
    recorder = Recorder()
    connector = compat.TCPConnector(limit=1)
    error: BaseException | None = None
    with WireServer() as wire:
        url = wire.url("/echo/" + path)
        with anyio.fail_after(10):
            if entry == "session":
                async with compat.ClientSession(
                    connector=connector, trace_configs=[recorder.config]
                ) as session:
                    try:
                        async with session.request(
                            method, url, headers=headers, params=params, data=body
                        ) as resp:
                            await resp.read()
                    except (compat.ClientError, ValueError, TypeError) as exc:
                        assert type(exc).__module__.startswith(("compat", "builtins")), exc
                        error = exc
                    async with session.get(wire.url("/after")) as resp:
                        assert await resp.text() == "ok"
            else:
                try:
                    async with compat.traced_client(
                        connector=connector, trace_configs=[recorder.config]
                    ) as client:
                        try:
                            await client.request(
                                method, url, headers=headers, params=params, content=body
                            )
                        except (httpx.HTTPError, httpx.InvalidURL, ValueError, TypeError) as exc:
                            error = exc
                        assert (await client.get(wire.url("/after"))).text == "ok"
                finally:
                    await connector.close()
            await wire.wait_for(lambda: wire.open_connections() == 0)
        sent = [r for r in wire.requests if r.path != "/after"]
        assert wire.malformed == []
        assert sum(r.size for r in wire.requests) == len(wire.received())  # no stray bytes
        if error is not None:
            assert str(error), repr(error)
            assert sent == [], "a request that failed put bytes on the wire"
        else:
            (request,) = sent
            _assert_well_formed(request)
            assert request.method == method.upper()
        for request in wire.requests:
            _assert_well_formed(request)
    names = recorder.names()
    assert names.count("request_start") == names.count("request_end") + names.count(
        "request_exception"
    )


def test_a_request_deadline_keeps_no_event_loop_alive(server: TestServer) -> None:
    """The deadlines' one timer per loop is found through a weak mapping: a loop that ran
    requests (their timer still armed for `total=300`) is freed once the app drops it."""
    import asyncio
    import weakref

    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        async with compat.ClientSession() as session, session.get(server.url_for("/ok")) as resp:
            assert await resp.text() == "ok"

    asyncio.run(main())
    gc.collect()
    assert loops[0]() is None


async def test_concurrent_bodies_on_many_connections_each_arrive_intact(server: TestServer) -> None:
    """Every connection of an asyncio loop or a trio run reads into one shared receive buffer,
    each read taken out before the next: bodies read at once on many connections must not mix."""
    bodies = [os.urandom(150_000 + 4_999 * i) for i in range(12)]
    connector = compat.TCPConnector(limit=12)
    async with compat.ClientSession(connector=connector) as session:

        async def round_trip(body: bytes, results: list[bool]) -> None:
            async with session.post(server.url_for("/echo"), data=body) as resp:
                pieces = [piece async for piece in resp.content.iter_chunked(7_001)]
            results.append(b"".join(pieces) == body)

        results: list[bool] = []
        async with anyio.create_task_group() as tg:
            for body in bodies:
                tg.start_soon(round_trip, body, results)
        assert results == [True] * len(bodies)
        assert connector.stats().max_in_use >= 2  # several connections were reading at once


def test_requests_run_on_uvloop(server: TestServer) -> None:
    """aiohttp users often run uvloop: its transports are not asyncio.Transport subclasses, and
    its timers and loop must work with the request deadlines' one timer per loop."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        timeout = compat.ClientTimeout(total=0.5)
        async with compat.ClientSession(timeout=timeout) as session:
            async with session.get(server.url_for("/ok")) as resp:
                assert await resp.text() == "ok"
            async with session.get(server.url_for("/bytes/300000")) as resp:
                assert await resp.read() == b"x" * 300_000
            with pytest.raises(TimeoutError):
                await session.get(server.url_for("/slow?delay=2"))
            async with session.get(server.url_for("/ok")) as resp:  # the session still works
                assert await resp.text() == "ok"

    uvloop.run(main())
