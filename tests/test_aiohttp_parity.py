"""The same tracing code, run once on aiohttp and once on compat (asyncio and trio), against the
same server, must see the same signal sequence. aiohttp runs in a worker thread on asyncio."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import pytest

import compat

from .conftest import Recorder
from .server import TestServer

pytestmark = pytest.mark.anyio

Scenario = Callable[[Any, TestServer, Recorder], Awaitable[None]]


async def _get(session: Any, url: str, **kwargs: Any) -> None:
    async with session.get(url, **kwargs) as resp:
        await resp.read()


async def two_gets_by_ip(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        await _get(session, server.url_for("/ok"))
        await _get(session, server.url_for("/ok"))


async def gets_by_name_cached(lib: Any, server: TestServer, rec: Recorder) -> None:
    connector = lib.TCPConnector(force_close=True)
    async with lib.ClientSession(connector=connector, trace_configs=[rec.config]) as session:
        await _get(session, server.url_for("/ok", host="localhost"))
        await _get(session, server.url_for("/ok", host="localhost"))


async def gets_by_name_uncached(lib: Any, server: TestServer, rec: Recorder) -> None:
    connector = lib.TCPConnector(use_dns_cache=False, force_close=True)
    async with lib.ClientSession(connector=connector, trace_configs=[rec.config]) as session:
        await _get(session, server.url_for("/ok", host="localhost"))
        await _get(session, server.url_for("/ok", host="localhost"))


async def redirect_chain(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        await _get(session, server.url_for("/redirect/3"))


async def too_many_redirects(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        with pytest.raises(lib.TooManyRedirects):
            await _get(session, server.url_for("/redirect/9"), max_redirects=3)


async def server_error(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        await _get(session, server.url_for("/status/500"))
        with pytest.raises(lib.ClientResponseError):
            await _get(session, server.url_for("/status/500"), raise_for_status=True)


async def post_body(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        async with session.post(server.url_for("/echo"), data=b"x" * 1000) as resp:
            assert await resp.read() == b"x" * 1000


async def post_streamed_body(lib: Any, server: TestServer, rec: Recorder) -> None:
    async def body() -> Any:
        for part in (b"one-", b"two-" * 100, b"three"):
            yield part

    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        async with session.post(server.url_for("/echo"), data=body()) as resp:
            assert await resp.read() == b"one-" + b"two-" * 100 + b"three"


async def large_body(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        await _get(session, server.url_for("/bytes/300000"))
        await _get(session, server.url_for("/chunked/4/1000"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def refused(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        with pytest.raises(lib.ClientConnectorError):
            await _get(session, f"http://127.0.0.1:{_closed_port()}/")


async def dns_failure(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        with pytest.raises(lib.ClientConnectorDNSError):
            await _get(session, "http://no-such-host.invalid/")


async def no_host(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        with pytest.raises(lib.InvalidUrlClientError):
            await _get(session, "http:///path-only")


async def queued_at_limit(lib: Any, server: TestServer, rec: Recorder) -> None:
    connector = lib.TCPConnector(limit=1)
    async with lib.ClientSession(connector=connector, trace_configs=[rec.config]) as session:
        first_has_connection = anyio.Event() if lib is compat else asyncio.Event()

        async def first() -> None:  # holds the only connection while its body trickles in
            async with session.get(server.url_for("/slow-body?delay=0.3")) as resp:
                first_has_connection.set()
                await resp.read()

        async def second() -> None:
            await first_has_connection.wait()
            await _get(session, server.url_for("/ok"))

        if lib is compat:
            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                tg.start_soon(second)
        else:
            await asyncio.gather(first(), second())


async def total_timeout(lib: Any, server: TestServer, rec: Recorder) -> None:
    timeout = lib.ClientTimeout(total=0.2)
    async with lib.ClientSession(trace_configs=[rec.config], timeout=timeout) as session:
        # asyncio.TimeoutError: what aiohttp raises before Python 3.11 (an alias since)
        with pytest.raises(asyncio.TimeoutError):
            await _get(session, server.url_for("/slow?delay=1"))


async def sock_read_timeout(lib: Any, server: TestServer, rec: Recorder) -> None:
    timeout = lib.ClientTimeout(sock_read=0.2)
    async with lib.ClientSession(trace_configs=[rec.config], timeout=timeout) as session:
        with pytest.raises(lib.SocketTimeoutError):
            await _get(session, server.url_for("/slow?delay=1"))


async def server_disconnects(lib: Any, server: TestServer, rec: Recorder) -> None:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        with pytest.raises(lib.ServerDisconnectedError):
            await _get(session, server.url_for("/fault/disconnect"))


async def per_host_limit(lib: Any, server: TestServer, rec: Recorder) -> None:
    connector = lib.TCPConnector(limit=0, limit_per_host=1)
    async with lib.ClientSession(connector=connector, trace_configs=[rec.config]) as session:
        urls = [server.url_for("/slow-body?delay=0.2")] * 2 + [
            server.url_for("/ok", host="localhost")
        ]
        if lib is compat:
            async with anyio.create_task_group() as tg:
                for url in urls:
                    tg.start_soon(_get, session, url)
        else:
            await asyncio.gather(*(_get(session, url) for url in urls))


SCENARIOS: list[Scenario] = [
    two_gets_by_ip,
    gets_by_name_cached,
    gets_by_name_uncached,
    redirect_chain,
    too_many_redirects,
    server_error,
    post_body,
    post_streamed_body,
    large_body,
    refused,
    dns_failure,
    no_host,
    queued_at_limit,
    total_timeout,
    sock_read_timeout,
    server_disconnects,
    per_host_limit,
]


Chunks = list[tuple[tuple[bytes, ...], bytes]]


def _chunks(rec: Recorder) -> Chunks:
    """Per request: the request chunks as sent, exactly, and the response chunks joined.

    aiohttp 3.14 fires `on_response_chunk_received` only from `read()`, once, with the whole
    body; compat fires it per chunk as the body arrives (a documented extension). So response
    chunks are compared by their concatenation, request chunks one by one."""
    groups: dict[int, tuple[list[bytes], list[bytes]]] = {}
    for name, params, ctx in rec.events:
        sent, received = groups.setdefault(id(ctx), ([], []))
        if name == "on_request_chunk_sent":
            sent.append(params.chunk)
        elif name == "on_response_chunk_received":
            received.append(params.chunk)
    return sorted((tuple(sent), b"".join(received)) for sent, received in groups.values())


def _on_aiohttp(scenario: Scenario, server: TestServer) -> tuple[list[list[str]], Chunks]:
    rec = Recorder(lib=aiohttp)
    asyncio.run(scenario(aiohttp, server, rec))
    return rec.per_request(), _chunks(rec)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_signal_sequence_equals_aiohttp(scenario: Scenario, server: TestServer) -> None:
    expected, expected_chunks = await anyio.to_thread.run_sync(_on_aiohttp, scenario, server)
    rec = Recorder()
    await scenario(compat, server, rec)
    assert rec.per_request() == expected
    assert expected  # the scenario traced something on aiohttp too
    assert _chunks(rec) == expected_chunks


async def _https_by_name(lib: Any, server: TestServer, rec: Recorder, context: Any) -> None:
    connector = lib.TCPConnector(ssl=context)
    async with lib.ClientSession(connector=connector, trace_configs=[rec.config]) as session:
        await _get(session, server.url_for("/ok", host="localhost"))
        await _get(session, server.url_for("/redirect/1", host="localhost"))


async def test_https_sequence_equals_aiohttp(tls_server: TestServer, client_ssl: Any) -> None:
    def on_aiohttp() -> list[list[str]]:
        rec = Recorder(lib=aiohttp)
        asyncio.run(_https_by_name(aiohttp, tls_server, rec, client_ssl))
        return rec.per_request()

    expected = await anyio.to_thread.run_sync(on_aiohttp)
    rec = Recorder()
    await _https_by_name(compat, tls_server, rec, client_ssl)
    assert rec.per_request() == expected
    assert any("dns_resolvehost_start" in names for names in expected)
