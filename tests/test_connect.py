"""Issue 19: opening connections as aiohttp does, and safer. On asyncio and trio, real sockets on
127.0.0.1: TLS to https proxies (credentials only inside it), Happy Eyeballs, `resolver=`, and
the caller's SSLContext left as it was given."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import aiohttp.abc
import anyio
import pytest
import trustme

import compat

from .conftest import Recorder
from .proxy_server import ProxyServer
from .server import TestServer
from .wireserver import SlowAcceptServer

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t-proxy-pass"


async def _text(session: compat.ClientSession, url: str, **kwargs: Any) -> str:
    async with session.get(url, **kwargs) as resp:
        return await resp.text()


def socket_fds() -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
    return count


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = anyio.current_time() + timeout
    while not check():
        if anyio.current_time() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        await anyio.sleep(0.01)


# --- 1. https proxies ---


class FirstBytes:
    """A plain TCP listener posing as an https proxy: records the first bytes each client
    sends, then hangs up. A client that speaks TLS first sends a ClientHello (0x16 0x03…)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(10)
        self.port = self._listener.getsockname()[1]
        self.received: list[bytes] = []
        self.got = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                with conn:
                    conn.settimeout(5)
                    data = b""
                    with contextlib.suppress(OSError):
                        while len(data) < 512:  # a ClientHello is longer; a CONNECT head too
                            chunk = conn.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                    self.received.append(data)
                    self.got.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(10)


@pytest.fixture
def posing_proxy() -> Iterator[FirstBytes]:
    srv = FirstBytes()
    yield srv
    srv.close()


@pytest.mark.parametrize("target", ["https://example.test/x", "http://example.test/x"])
async def test_https_proxy_gets_tls_first_never_a_credential(
    posing_proxy: FirstBytes, recorder: Recorder, target: str
) -> None:
    proxy = f"https://user:{SECRET}@127.0.0.1:{posing_proxy.port}"
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        with pytest.raises(compat.ClientError), anyio.fail_after(10):
            await _text(session, target, proxy=proxy)
    assert posing_proxy.received, "the client never reached the proxy"
    first = posing_proxy.received[0]
    assert first[:2] == b"\x16\x03", f"not a TLS handshake first: {first[:40]!r}"
    for data in posing_proxy.received:
        assert SECRET.encode() not in data
        assert b"Proxy-Authorization" not in data and b"CONNECT" not in data
        assert b"dXNlcjpzM2NyM3QtcHJveHktcGFzcw" not in data  # base64 of user:secret
    assert recorder.names()[-1] == "request_exception"
    (start,) = recorder.params("tls_handshake_start")
    assert start.host == "127.0.0.1"  # the proxy's handshake, traced


@pytest.fixture(scope="module")
def tls_proxy(ca: trustme.CA) -> Iterator[ProxyServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    srv = ProxyServer(context).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("kind", ["http", "https"])
async def test_through_a_tls_proxy_end_to_end(
    tls_proxy: ProxyServer,
    server: TestServer,
    tls_server: TestServer,
    client_ssl: ssl.SSLContext,
    recorder: Recorder,
    kind: str,
) -> None:
    tls_proxy.reset()
    target = server if kind == "http" else tls_server
    url = target.url_for("/ok", host="localhost")
    proxy = tls_proxy.url.replace("https://", f"https://user:{SECRET}@")
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        assert await _text(session, url, proxy=proxy, ssl=client_ssl) == "ok"
        assert await _text(session, url, proxy=proxy, ssl=client_ssl) == "ok"  # pooled
    assert tls_proxy.connections == 1
    heads = tls_proxy.heads
    if kind == "https":
        assert [h.method for h in heads] == ["CONNECT"]
        assert heads[0].target == f"localhost:{target.port}"
    else:
        assert [(h.method, h.target) for h in heads] == [("GET", url)] * 2
    assert heads[0].header("Proxy-Authorization") == compat.BasicAuth("user", SECRET).encode()
    # TLS to the proxy first; for an https target, TLS to the target inside it
    hosts = [p.host for p in recorder.params("tls_handshake_end")]
    assert hosts == (["127.0.0.1", "localhost"] if kind == "https" else ["127.0.0.1"])
    versions = [p.version for p in recorder.params("tls_handshake_end")]
    assert all(v and v.startswith("TLS") for v in versions)
    names = recorder.names()
    assert names.count("connection_create_start") == names.count("connection_create_end") == 1
    assert names.count("connection_reuseconn") == 1
    assert not [n for n in names if n.startswith("dns_")]  # as aiohttp: none when proxied


async def test_https_proxy_certificate_is_verified_by_default(
    tls_proxy: ProxyServer, server: TestServer, recorder: Recorder
) -> None:
    tls_proxy.reset()
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        with pytest.raises(compat.ClientConnectorCertificateError) as caught:
            await _text(session, server.url_for("/ok"), proxy=tls_proxy.url)
    assert caught.value.host == "127.0.0.1" and caught.value.port == tls_proxy.port
    assert tls_proxy.heads == []  # nothing was sent to an unverified proxy
    assert recorder.names()[-1] == "request_exception"


async def test_a_fingerprint_pins_the_target_and_the_proxy_is_verified_as_usual(
    tls_proxy: ProxyServer, tls_server: TestServer, client_ssl: ssl.SSLContext
) -> None:
    import hashlib

    pem = await anyio.to_thread.run_sync(ssl.get_server_certificate, ("127.0.0.1", tls_server.port))
    pin = compat.Fingerprint(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest())
    wrong = compat.Fingerprint(bytes(32))
    tls_proxy.reset()
    url = tls_server.url_for("/ok", host="localhost")
    async with compat.ClientSession(connector=compat.TCPConnector(ssl=client_ssl)) as session:
        assert await _text(session, url, proxy=tls_proxy.url, ssl=pin) == "ok"
        with pytest.raises(compat.ServerFingerprintMismatch):
            await _text(session, url, proxy=tls_proxy.url, ssl=wrong)
    assert [h.method for h in tls_proxy.heads] == ["CONNECT", "CONNECT"]
    async with compat.ClientSession() as session:  # the default connector: system CAs only
        with pytest.raises(compat.ClientConnectorCertificateError):
            await _text(session, url, proxy=tls_proxy.url, ssl=pin)


# --- 2. Happy Eyeballs ---


class PinnedResolver(compat.abc.AbstractResolver):
    """Answers each name with fixed (address, port) pairs, in order: service discovery, say."""

    def __init__(self, answers: dict[str, list[tuple[str, int]]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int, int]] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[compat.abc.ResolveResult]:
        self.asked.append((host, port, family))
        if host not in self.answers:
            raise OSError(None, f"{host} is not pinned")
        return [
            compat.abc.ResolveResult(
                hostname=host,
                host=address,
                port=pinned_port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address, pinned_port in self.answers[host]
        ]

    async def close(self) -> None:
        self.closed = True


async def test_a_black_holed_first_address_costs_one_stagger_not_the_timeout(
    server: TestServer, recorder: Recorder
) -> None:
    with SlowAcceptServer() as black_hole:  # its accept queue is full: SYNs go unanswered
        resolver = PinnedResolver(
            {"he.test": [("127.0.0.1", black_hole.port), ("127.0.0.1", server.port)]}
        )
        connector = compat.TCPConnector(resolver=resolver)
        timeout = compat.ClientTimeout(sock_connect=5)
        async with compat.ClientSession(
            connector=connector, timeout=timeout, trace_configs=[recorder.config]
        ) as session:
            started = anyio.current_time()
            assert await _text(session, f"http://he.test:{server.port}/ok") == "ok"
            took = anyio.current_time() - started
    assert 0.2 <= took < 3, f"{took:.2f}s: the second address was not tried 0.25s after the first"
    (established,) = recorder.params("connection_established")
    assert established.peer == ("127.0.0.1", server.port)
    assert recorder.names() == [
        "request_start",
        "connection_create_start",
        "dns_cache_miss",
        "dns_resolvehost_start",
        "dns_resolvehost_end",
        "connection_create_end",
        "request_headers_sent",
        "request_end",
    ]
    assert [p.host for p in recorder.params("dns_resolvehost_end")] == ["he.test"]
    assert resolver.closed is False  # the caller's resolver: the connector does not close it


async def test_happy_eyeballs_cancelled_leaks_no_socket_or_task(recorder: Recorder) -> None:
    with SlowAcceptServer() as one, SlowAcceptServer() as two:
        baseline = socket_fds()
        resolver = PinnedResolver(
            {"holes.test": [("127.0.0.1", one.port), ("127.0.0.1", two.port)]}
        )
        connector = compat.TCPConnector(resolver=resolver, happy_eyeballs_delay=0.05)
        async with compat.ClientSession(
            connector=connector, trace_configs=[recorder.config]
        ) as session:
            with anyio.move_on_after(0.5) as scope:
                await _text(session, "http://holes.test/")
            assert scope.cancelled_caught
        # both attempts were in flight (staggered by 0.05 s); none may outlive the cancel
        await until(lambda: socket_fds() <= baseline, 5, "the attempts' sockets to close")
    assert recorder.names()[-1] == "request_exception"


def test_interleave_alternates_families() -> None:
    from compat._transport._opener import _interleaved

    six = [("::1", 1, socket.AF_INET6), ("::2", 1, socket.AF_INET6), ("::3", 1, socket.AF_INET6)]
    four = [("127.0.0.1", 1, socket.AF_INET), ("127.0.0.2", 1, socket.AF_INET)]
    got = [a[0] for a in _interleaved(six + four, 1)]
    assert got == ["::1", "127.0.0.1", "::2", "127.0.0.2", "::3"]
    got = [a[0] for a in _interleaved(six + four, 2)]
    assert got == ["::1", "::2", "127.0.0.1", "::3", "127.0.0.2"]


# --- 3. resolver= ---


async def test_resolver_is_wrapped_by_the_cache_and_the_signals(
    server: TestServer, recorder: Recorder
) -> None:
    resolver = PinnedResolver({"api.test": [("127.0.0.1", server.port)]})
    connector = compat.TCPConnector(resolver=resolver, force_close=True)
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        assert await _text(s, f"http://api.test:{server.port}/ok") == "ok"
        assert await _text(s, f"http://api.test:{server.port}/ok") == "ok"
        assert s.connector.cached_hosts() == {("api.test", server.port): ["127.0.0.1"]}
    assert resolver.asked == [("api.test", server.port, socket.AF_UNSPEC)]
    dns = [n for n in recorder.names() if n.startswith("dns_")]
    assert dns == [
        "dns_cache_miss",
        "dns_resolvehost_start",
        "dns_resolvehost_end",
        "dns_cache_hit",
    ]


async def test_an_aiohttp_resolver_subclass_works_unchanged(
    server: TestServer, recorder: Recorder
) -> None:
    class AiohttpPinned(aiohttp.abc.AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[Any]:
            return [
                {
                    "hostname": host,
                    "host": "127.0.0.1",
                    "port": port,
                    "family": socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            ]

        async def close(self) -> None:
            pass

    connector = compat.TCPConnector(resolver=AiohttpPinned())
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        assert await _text(s, f"http://svc.internal:{server.port}/ok") == "ok"
    assert [p.host for p in recorder.params("dns_resolvehost_start")] == ["svc.internal"]


async def test_a_failing_resolver_is_a_dns_error(recorder: Recorder) -> None:
    connector = compat.TCPConnector(resolver=PinnedResolver({}))
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        with pytest.raises(compat.ClientConnectorDNSError, match="not pinned"):
            await _text(s, "http://nowhere.test/")
    assert recorder.names()[-2:] == ["dns_resolvehost_start", "request_exception"]


async def test_family_filters_what_the_resolver_returns(server: TestServer) -> None:
    resolver = PinnedResolver({"dual.test": [("::1", server.port), ("127.0.0.1", server.port)]})
    connector = compat.TCPConnector(resolver=resolver, family=socket.AF_INET)
    assert connector.family == socket.AF_INET
    async with compat.ClientSession(connector=connector) as s:
        assert await _text(s, f"http://dual.test:{server.port}/ok") == "ok"
        assert s.connector.cached_hosts() == {("dual.test", server.port): ["127.0.0.1"]}
    assert resolver.asked[0][2] == socket.AF_INET


async def test_threaded_resolver_answers_in_aiohttps_shape() -> None:
    resolver = compat.ThreadedResolver()
    assert compat.DefaultResolver is compat.ThreadedResolver
    results = await resolver.resolve("localhost", 8080, socket.AF_INET)
    assert {"hostname": "localhost", "host": "127.0.0.1", "port": 8080} in [
        {k: r[k] for k in ("hostname", "host", "port")} for r in results
    ]
    assert all(r["family"] == socket.AF_INET for r in results)
    with pytest.raises(OSError):
        await resolver.resolve("no-such-host.invalid", 80, socket.AF_INET)
    await resolver.close()


async def test_async_resolver_on_asyncio_and_a_clear_error_on_trio(
    anyio_backend: str, server: TestServer, recorder: Recorder
) -> None:
    if anyio_backend == "trio":
        with pytest.raises(RuntimeError, match=r"trio.*asyncio"):
            compat.AsyncResolver()
        return
    resolver = compat.AsyncResolver()
    connector = compat.TCPConnector(resolver=resolver, family=socket.AF_INET)
    async with compat.ClientSession(connector=connector, trace_configs=[recorder.config]) as s:
        assert await _text(s, server.url_for("/ok", host="localhost")) == "ok"
    assert [p.host for p in recorder.params("dns_resolvehost_end")] == ["localhost"]
    await resolver.close()


def test_resolver_must_have_resolve_and_close() -> None:
    with pytest.raises(TypeError, match="AbstractResolver"):
        compat.TCPConnector(resolver=object())


# --- issue 20's small defects in the connector ---


def _offered_alpn(client: ssl.SSLContext, ca: trustme.CA) -> str | None:
    """Handshake `client` against an in-memory server that accepts h2: what ALPN was agreed."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    server.set_alpn_protocols(["h2", "http/1.1"])
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    return c.selected_alpn_protocol()


async def test_http2_leaves_the_callers_context_unchanged(
    client_ssl: ssl.SSLContext, ca: trustme.CA
) -> None:
    assert _offered_alpn(client_ssl, ca) is None
    connector = compat.TCPConnector(ssl=client_ssl, http2=True)
    assert _offered_alpn(client_ssl, ca) is None  # the caller's object, as it was
    used = connector._engine.opener._ssl_context
    assert used is not client_ssl and _offered_alpn(used, ca) == "h2"
    assert used.verify_mode == ssl.CERT_REQUIRED and used.check_hostname
    await connector.close()


async def test_unix_connector_builds_one_engine(tmp_path: Any) -> None:
    from compat._transport import _engine

    made: list[Any] = []
    real = _engine.Engine.__init__

    def counting(self: Any, **kwargs: Any) -> None:
        made.append(kwargs)
        real(self, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_engine.Engine, "__init__", counting)
        connector = compat.UnixConnector(str(tmp_path / "sock"))
    assert [m["unix_path"] for m in made] == [str(tmp_path / "sock")]
    assert connector.path == str(tmp_path / "sock")
    await connector.close()
