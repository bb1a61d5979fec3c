"""The pool and DNS layers on real sockets: limits, queueing, reuse, expiry, DNS cache, TLS."""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import anyio
import pytest

import compat
from compat._dns import Resolver
from compat._tracing import NO_TRACE

from .conftest import Recorder
from .server import TestServer

pytestmark = pytest.mark.anyio

PAIRS = [
    ("connection_queued_start", "connection_queued_end"),
    ("connection_create_start", "connection_create_end"),
    ("dns_resolvehost_start", "dns_resolvehost_end"),
]


def assert_pairs_balanced(recorder: Recorder) -> None:
    names = recorder.names()
    for start, end in PAIRS:
        assert names.count(start) == names.count(end), (start, end)
    assert names.count("request_start") == names.count("request_end") + names.count(
        "request_exception"
    )


async def _fetch(session: compat.ClientSession, url: str) -> bytes:
    async with session.get(url) as resp:
        return await resp.read()


@pytest.mark.parametrize("limits", [{"limit": 10}, {"limit": 0, "limit_per_host": 10}])
async def test_in_use_never_exceeds_the_limit_under_1000_requests(
    server: TestServer, recorder: Recorder, limits: dict[str, int]
) -> None:
    connector = compat.TCPConnector(**limits)
    peak = 0

    async def watch(session: Any, ctx: Any, params: Any) -> None:
        nonlocal peak
        peak = max(peak, connector.stats().in_use)

    recorder.config.on_request_headers_sent.append(watch)
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(1000):
                    tg.start_soon(_fetch, s, server.url_for("/ok"))
        stats = connector.stats()
        assert stats.in_use == 0 and stats.waiting == 0
        assert stats.max_in_use == 10 and peak <= 10
        assert stats.idle <= 10
    assert connector.stats().open == 0
    names = recorder.names()
    assert names.count("connection_queued_start") > 0
    assert names.count("connection_create_start") <= 10
    assert_pairs_balanced(recorder)


async def test_per_host_limit_queues_one_host_but_not_another(
    server: TestServer, recorder: Recorder
) -> None:
    connector = compat.TCPConnector(limit=0, limit_per_host=1)
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        slow = server.url_for("/slow-body?delay=0.3")
        async with anyio.create_task_group() as tg:
            tg.start_soon(_fetch, s, slow)
            await anyio.sleep(0.1)
            tg.start_soon(_fetch, s, slow)  # same host: queues
            await anyio.sleep(0.05)
            other = await _fetch(s, server.url_for("/ok", host="localhost"))  # no wait
            assert other == b"ok"
            assert connector.stats().hosts[f"http://127.0.0.1:{server.port}"].waiting == 1
    per_request = recorder.per_request()
    queued = [r for r in per_request if "connection_queued_start" in r]
    assert len(queued) == 1
    assert queued[0][:3] == ["request_start", "connection_queued_start", "connection_queued_end"]


async def test_a_cancelled_waiter_passes_its_turn_on(server: TestServer) -> None:
    connector = compat.TCPConnector(limit=1)
    async with compat.ClientSession(connector=connector) as s:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_fetch, s, server.url_for("/slow-body?delay=0.3"))
            await anyio.sleep(0.05)
            with anyio.move_on_after(0.1):
                await _fetch(s, server.url_for("/ok"))  # queued, then cancelled
            assert connector.stats().waiting == 0
            with anyio.fail_after(5):
                assert await _fetch(s, server.url_for("/ok")) == b"ok"
    assert connector.stats().in_use == 0


async def test_connect_timeout_covers_the_queue(server: TestServer, recorder: Recorder) -> None:
    connector = compat.TCPConnector(limit=1)
    timeout = compat.ClientTimeout(connect=0.1)
    async with compat.ClientSession(
        connector=connector, timeout=timeout, trace_configs=[recorder.config]
    ) as s:
        async with s.get(server.url_for("/slow-body?delay=0.5")) as held:
            with pytest.raises(compat.ConnectionTimeoutError):
                await s.get(server.url_for("/ok"))
            await held.read()
    assert recorder.names().count("connection_queued_start") == 1
    assert connector.stats().in_use == 0 and connector.stats().waiting == 0


async def test_idle_connections_closed_by_the_server_are_not_reused(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as s:
        await _fetch(s, server.url_for("/ok"))
        server.close_idle_connections()
        await anyio.sleep(0.1)
        recorder.clear()
        assert await _fetch(s, server.url_for("/ok")) == b"ok"
    assert "connection_reuseconn" not in recorder.names()
    assert recorder.names()[1:3] == ["connection_create_start", "connection_create_end"]


async def test_keepalive_timeout_expires_idle_connections(
    server: TestServer, recorder: Recorder
) -> None:
    connector = compat.TCPConnector(keepalive_timeout=0.1)
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        await _fetch(s, server.url_for("/ok"))
        await _fetch(s, server.url_for("/ok"))
        await anyio.sleep(0.25)
        await _fetch(s, server.url_for("/ok"))
    names = recorder.names()
    assert names.count("connection_create_start") == 2
    assert names.count("connection_reuseconn") == 1


async def test_force_close_and_connection_close_never_reuse(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(
        connector=compat.TCPConnector(force_close=True), trace_configs=[recorder.config]
    ) as s:
        await _fetch(s, server.url_for("/ok"))
        await _fetch(s, server.url_for("/ok"))
        assert s.connector.stats().open == 0
    async with compat.ClientSession(trace_configs=[recorder.config]) as s:
        await _fetch(s, server.url_for("/close"))
        await _fetch(s, server.url_for("/close"))
        assert s.connector.stats().idle == 0
    assert "connection_reuseconn" not in recorder.names()
    assert recorder.names().count("connection_create_start") == 4


async def test_sessions_sharing_a_connector_never_mix_signals(server: TestServer) -> None:
    connector = compat.TCPConnector(limit=5)
    a, b = Recorder(), Recorder()
    async with (
        compat.ClientSession(
            connector=connector, connector_owner=False, trace_configs=[a.config]
        ) as sa,
        compat.ClientSession(
            connector=connector, connector_owner=False, trace_configs=[b.config]
        ) as sb,
    ):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(_fetch, sa, server.url_for("/ok"))
                tg.start_soon(_fetch, sb, server.url_for("/bytes/10"))
    assert not connector.closed
    assert {p.url.path for p in a.params("request_headers_sent")} == {"/ok"}
    assert {p.url.path for p in b.params("request_headers_sent")} == {"/bytes/10"}
    assert_pairs_balanced(a)
    assert_pairs_balanced(b)
    await connector.close()
    assert connector.stats().open == 0


async def test_dns_cache_hit_miss_and_expiry(server: TestServer, recorder: Recorder) -> None:
    connector = compat.TCPConnector(force_close=True, ttl_dns_cache=0.2)
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        url = server.url_for("/ok", host="localhost")
        await _fetch(s, url)
        await _fetch(s, url)
        assert ("localhost", server.port) in connector.cached_hosts()
        await anyio.sleep(0.3)
        await _fetch(s, url)
    dns = [n for n in recorder.names() if n.startswith("dns")]
    assert dns == [
        "dns_cache_miss",
        "dns_resolvehost_start",
        "dns_resolvehost_end",
        "dns_cache_hit",
        "dns_cache_miss",
        "dns_resolvehost_start",
        "dns_resolvehost_end",
    ]
    assert {p.host for p in recorder.params("dns_cache_miss")} == {"localhost"}


async def test_ip_literals_skip_dns(server: TestServer, recorder: Recorder) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as s:
        await _fetch(s, server.url_for("/ok"))
    assert not [n for n in recorder.names() if n.startswith("dns")]


async def test_concurrent_connections_share_one_resolution(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as s:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(_fetch, s, server.url_for("/slow?delay=0.1", host="localhost"))
    names = recorder.names()
    assert names.count("dns_resolvehost_start") == 1 == names.count("dns_resolvehost_end")
    assert names.count("dns_cache_miss") == 1
    assert names.count("dns_cache_hit") == 4
    assert names.count("connection_create_start") == 5


async def test_dns_failure_is_not_cached(recorder: Recorder) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as s:
        for _ in range(2):
            with pytest.raises(compat.ClientConnectorDNSError) as info:
                await s.get("http://does-not-exist.invalid/")
            assert info.value.host == "does-not-exist.invalid"
            assert "does-not-exist.invalid" in str(info.value)
        assert s.connector.cached_hosts() == {}
        assert s.connector.stats().in_use == 0
    names = recorder.names()
    assert names.count("dns_cache_miss") == 2 and names.count("dns_resolvehost_end") == 0
    assert [type(p.exception).__name__ for p in recorder.params("request_exception")] == [
        "ClientConnectorDNSError"
    ] * 2


async def test_resolver_tries_every_address(server: TestServer) -> None:
    resolver = Resolver(use_cache=True, ttl=None)
    assert await resolver.resolve("127.0.0.1", 80, NO_TRACE) == ["127.0.0.1"]
    addresses = await resolver.resolve("localhost", server.port, NO_TRACE)
    assert "127.0.0.1" in addresses
    assert resolver.cached_hosts()[("localhost", server.port)] == addresses
    # A refused address first, then the server: the connection still succeeds.
    from compat._network import Opener

    opener = Opener(resolver, NO_TRACE, tls=False)
    stream = await opener._connect_first(["127.0.0.2", "127.0.0.1"], server.port, None, None)
    assert stream.get_extra_info("server_addr")[1] == server.port
    await stream.aclose()


async def test_refused_connection(recorder: Recorder) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with compat.ClientSession(trace_configs=[recorder.config]) as s:
        with pytest.raises(compat.ClientConnectorError) as info:
            await s.get(f"http://127.0.0.1:{port}/")
    err = info.value
    assert type(err) is compat.ClientConnectorError
    assert err.host == "127.0.0.1" and err.port == port
    assert isinstance(err.os_error, ConnectionRefusedError)
    assert recorder.names() == ["request_start", "connection_create_start", "request_exception"]


async def test_https_with_tls_signals_and_sni(
    tls_server: TestServer, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    connector = compat.TCPConnector(ssl=client_ssl)
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        assert await _fetch(s, tls_server.url_for("/ok", host="localhost")) == b"ok"
        async with s.get(tls_server.url_for("/ok", host="localhost")) as resp:
            ssl_object = resp.connection.transport.get_extra_info("ssl_object")  # type: ignore[union-attr]
            assert ssl_object is not None and ssl_object.server_hostname == "localhost"
            assert resp.connection.transport.get_extra_info("peername")[1] == tls_server.port  # type: ignore[union-attr]
    names = recorder.names(all_signals=True)
    first = names[: names.index("request_end")]
    assert first == [
        "request_start",
        "connection_create_start",
        "dns_cache_miss",
        "dns_resolvehost_start",
        "dns_resolvehost_end",
        "tls_handshake_start",
        "tls_handshake_end",
        "connection_create_end",
        "connection_established",
        "request_headers_sent",
        "request_sent",
        "response_headers_received",
    ]
    (tls,) = recorder.params("tls_handshake_end")
    assert tls.version and tls.version.startswith("TLS") and tls.cipher
    (established,) = recorder.params("connection_established")
    assert established.tls and established.peer == ("127.0.0.1", tls_server.port)


async def test_certificates_are_verified_by_default(
    tls_server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as s:
        with pytest.raises(compat.ClientConnectorCertificateError) as info:
            await s.get(tls_server.url_for("/ok", host="localhost"))
        assert isinstance(info.value.certificate_error, ssl.SSLCertVerificationError)
        assert s.connector.stats().in_use == 0
    async with compat.ClientSession(connector=compat.TCPConnector(ssl=False)) as s:
        assert await _fetch(s, tls_server.url_for("/ok", host="localhost")) == b"ok"


async def test_signals_of_a_traced_request_always_balance_over_faults(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(
        connector=compat.TCPConnector(limit=3), trace_configs=[recorder.config]
    ) as s:

        async def one(path: str) -> None:
            with contextlib.suppress(compat.ClientError):
                await _fetch(s, server.url_for(path))

        async with anyio.create_task_group() as tg:
            for path in [
                "/ok",
                "/fault/disconnect",
                "/fault/reset-before",
                "/fault/truncate",
                "/fault/invalid",
                "/close",
                "/redirect/2",
            ] * 5:
                tg.start_soon(one, path)
        assert s.connector.stats().in_use == 0
    assert_pairs_balanced(recorder)


async def test_local_addr_binds_the_client_side(server: TestServer, recorder: Recorder) -> None:
    connector = compat.TCPConnector(local_addr=("127.0.0.2", 0))
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        assert await _fetch(s, server.url_for("/ok")) == b"ok"
    (established,) = recorder.params("connection_established")
    assert established.local[0] == "127.0.0.2" and established.peer[0] == "127.0.0.1"


async def test_idle_connections_left_by_a_burst_expire(server: TestServer) -> None:
    connector = compat.TCPConnector(keepalive_timeout=0.3)
    async with compat.ClientSession(connector=connector) as s:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(_fetch, s, server.url_for("/slow?delay=0.05"))
        assert connector.stats().idle == 5
        # One connection stays in use, fresh; the other four age past keepalive_timeout and
        # are closed one per release, though no request ever takes them again.
        with anyio.fail_after(10):
            for _ in range(20):
                await _fetch(s, server.url_for("/ok"))
                await anyio.sleep(0.04)
        assert connector.stats().idle == 1
