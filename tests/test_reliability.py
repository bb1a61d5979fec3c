"""Faults, cancellation, load and hostile input: nothing leaks, every signal pair closes."""

from __future__ import annotations

import gc
import os
import random
import warnings
from collections import Counter
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import compat
from compat._tracing import AIOHTTP_SIGNALS

from .conftest import Recorder
from .server import TestServer

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

    async def hang(*_: Any) -> None:
        await anyio.sleep(10)

    config.on_request_headers_sent.append(hang)
    async with compat.ClientSession(trace_configs=[config]) as s:
        with anyio.move_on_after(0.1) as scope:
            await s.get(server.url_for("/ok"))
        assert scope.cancelled_caught
        assert s.connector.stats().in_use == 0


async def test_a_slow_handler_delays_only_its_own_request(server: TestServer) -> None:
    config = compat.TraceConfig()

    async def slow(session: Any, ctx: Any, params: Any) -> None:
        if ctx.trace_request_ctx == "slow":
            await anyio.sleep(0.5)

    config.on_request_end.append(slow)
    done: list[str] = []
    async with compat.ClientSession(trace_configs=[config]) as s:

        async def one(label: str) -> None:
            await _fetch(s, server.url_for("/ok"), trace_request_ctx=label)
            done.append(label)

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "slow")
            await anyio.sleep(0.05)
            with anyio.fail_after(0.4):
                for i in range(5):
                    await one(f"fast{i}")
    assert done[-1] == "slow" and len(done) == 6


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


_header_names = st.text(
    alphabet=st.characters(min_codepoint=1, max_codepoint=300), min_size=1, max_size=12
)
_header_values = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=300), max_size=20)


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["GET", "POST", "get", "PATCH", "G E T", "GET\r\nX: y", "", "ÜBER"]),
    path=st.text(max_size=20),
    headers=st.lists(st.tuples(_header_names, _header_values), max_size=3),
    params=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    body=st.one_of(st.none(), st.binary(max_size=50), st.text(max_size=20)),
)
async def test_hostile_input_gets_clear_errors_and_never_reaches_the_wire_malformed(
    server: TestServer,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    params: dict[str, str],
    body: bytes | str | None,
) -> None:
    recorder = Recorder()
    seen_before = len(server.stats.seen)
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        try:
            async with session.request(
                method,
                server.url + "/echo/" + path,
                headers=headers,
                params=params,
                data=body,
            ) as resp:
                await resp.read()
        except (compat.ClientError, ValueError, TypeError) as exc:
            assert str(exc)
            assert type(exc).__module__.startswith(("compat", "builtins")), type(exc)
        assert session.connector.stats().in_use == 0
    names = recorder.names()
    assert names.count("request_start") == names.count("request_end") + names.count(
        "request_exception"
    )
    for request in server.stats.seen[seen_before:]:
        for name, value in request.headers:
            assert "\r" not in name + value and "\n" not in name + value
            assert name.lower() != "x"  # no header smuggled in through the method or a value
