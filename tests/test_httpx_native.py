"""Issue 12: `traced_client` / `TracedTransport` lose nothing of httpx, and the ecosystem sees them.

One section per numbered item of the issue. Each check looks from outside: at spans an exporter
received, at what the server saw, at the exceptions raised, and, wherever httpx has an answer of
its own, at what a bare `httpx.AsyncClient` does with the same request on the same server.
logfire is not installed here, so its `instrument_httpx()` is not covered.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.metadata
import itertools
import json
import os
import socket
import ssl
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
import respx
import trustme
from opentelemetry import trace as otel_trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import compat

from .conftest import Recorder
from .server import Request, TestServer

pytestmark = pytest.mark.anyio

ClientFactory = Callable[..., httpx.AsyncClient]


# --- helpers ---


class ObservingServer(TestServer):
    """The test server, also counting requests in progress and recording client addresses."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(ssl_context)
        self.in_flight = 0
        self.max_in_flight = 0
        self.peers: list[Any] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername"))
        await super()._serve(reader, writer)

    async def _route(self, request: Request, writer: asyncio.StreamWriter) -> bytes | None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await super()._route(request, writer)
        finally:
            self.in_flight -= 1


@pytest.fixture
def own_server() -> Iterator[ObservingServer]:
    """A server of the test's own, for counts that other tests' connections must not blur."""
    srv = ObservingServer().start()
    yield srv
    srv.stop()


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `check` until it holds; the timeout only bounds a failing test (a loaded machine
    may take long to get there)."""
    deadline = anyio.current_time() + timeout
    while not check():
        if anyio.current_time() > deadline:
            return False
        await anyio.sleep(0.01)
    return True


def _traced(recorder: Recorder) -> ClientFactory:
    def make(**kwargs: Any) -> httpx.AsyncClient:
        return compat.traced_client(trace_configs=[recorder.config], **kwargs)

    return make


def _span_summary(span: ReadableSpan, port: int) -> dict[str, Any]:
    attributes = {
        k: (v.replace(str(port), "PORT") if isinstance(v, str) else v)
        for k, v in (span.attributes or {}).items()
        if "port" not in k
    }
    return {
        "name": span.name,
        "kind": str(span.kind),
        "status": str(span.status.status_code),
        "attributes": attributes,
    }


CONNECTION_THEN_REUSE = [
    "request_start",
    "connection_create_start",
    "connection_create_end",
    "request_headers_sent",
    "request_end",
    "request_start",
    "connection_reuseconn",
    "request_headers_sent",
    "request_end",
]


# --- 1. instrumentation and mocking libraries see traced_client ---


async def test_global_httpx_instrumentation_gives_one_span_per_request_and_signals_fire(
    server: TestServer, recorder: Recorder
) -> None:
    provider, exporter = _provider()
    current: list[int] = []

    async def note_current_span(session: Any, ctx: Any, params: Any) -> None:
        current.append(otel_trace.get_current_span().get_span_context().span_id)

    recorder.config.on_request_start.append(note_current_span)
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        async with compat.traced_client(trace_configs=[recorder.config]) as client:
            echoed = (await client.get(server.url_for("/headers"))).json()
            assert (await client.get(server.url_for("/status/503"))).status_code == 503
        async with httpx.AsyncClient() as bare:
            await bare.get(server.url_for("/headers"))
            await bare.get(server.url_for("/status/503"))
    finally:
        instrumentor.uninstrument()
    spans = exporter.get_finished_spans()
    assert len(spans) == 4, [s.name for s in spans]  # one per request, none doubled
    ours, theirs = spans[:2], spans[2:]
    assert [_span_summary(s, server.port) for s in ours] == [
        _span_summary(s, server.port) for s in theirs
    ]
    assert [str(s.status.status_code) for s in ours] == ["StatusCode.UNSET", "StatusCode.ERROR"]
    # the handlers ran inside the request's span, and its context reached the server
    assert current == [s.context.span_id for s in ours]
    traceparent = dict((k.lower(), v) for k, v in echoed)["traceparent"]
    assert f"{ours[0].context.trace_id:032x}" in traceparent
    assert recorder.names() == CONNECTION_THEN_REUSE
    # uninstrumented: no more spans
    async with compat.traced_client() as client:
        await client.get(server.url_for("/ok"))
    assert len(exporter.get_finished_spans()) == 4


async def test_global_httpx_instrumentation_does_not_double_client_session_spans(
    server: TestServer,
) -> None:
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    provider, exporter = _provider()
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        config = create_trace_config(tracer_provider=provider)
        async with compat.ClientSession(trace_configs=[config]) as session:
            for path in ("/ok", "/status/503"):
                async with session.get(server.url_for(path)) as resp:
                    await resp.read()
    finally:
        instrumentor.uninstrument()
    scopes = [s.instrumentation_scope.name for s in exporter.get_finished_spans()]
    assert scopes == ["opentelemetry.instrumentation.aiohttp_client"] * 2


async def test_per_client_httpx_instrumentation_gives_one_span_per_request(
    server: TestServer, recorder: Recorder
) -> None:
    provider, exporter = _provider()
    async with compat.traced_client(trace_configs=[recorder.config]) as client:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
        await client.get(server.url_for("/ok"))
        await client.get(server.url_for("/ok"))
    spans = exporter.get_finished_spans()
    assert [(s.name, s.attributes.get("http.status_code")) for s in spans] == [
        ("GET", 200),
        ("GET", 200),
    ]
    assert recorder.names() == CONNECTION_THEN_REUSE


async def test_per_client_uninstrument_stops_the_spans_as_for_httpx(server: TestServer) -> None:
    counts = {}
    for name, make in (("httpx", httpx.AsyncClient), ("compat", compat.traced_client)):
        provider, exporter = _provider()
        async with make() as client:
            HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
            await client.get(server.url_for("/ok"))
            HTTPXClientInstrumentor.uninstrument_client(client)
            await client.get(server.url_for("/ok"))
        counts[name] = len(exporter.get_finished_spans())
    assert counts == {"httpx": 1, "compat": 1}


async def test_pytest_httpx_mocks_traced_client_requests(
    httpx_mock: Any, recorder: Recorder
) -> None:
    httpx_mock.add_response(url="http://mocked.test/thing", status_code=201, text="mocked")
    async with compat.traced_client(trace_configs=[recorder.config]) as client:
        response = await client.get("http://mocked.test/thing")
    assert (response.status_code, response.text) == (201, "mocked")
    assert len(httpx_mock.get_requests()) == 1
    assert not recorder.params("connection_create_start")  # no socket was opened


@pytest.mark.parametrize("using", ["httpcore", "httpx"])
async def test_respx_mocks_traced_client_requests(recorder: Recorder, using: str) -> None:
    async with compat.traced_client(trace_configs=[recorder.config]) as client:
        with respx.mock(using=using, assert_all_called=True) as mock:
            route = mock.get("http://mocked.test/thing").respond(202, json={"mocked": using})
            response = await client.get("http://mocked.test/thing")
    assert response.status_code == 202 and response.json() == {"mocked": using}
    assert route.call_count == 1
    assert not recorder.params("connection_create_start")
    if using == "httpcore":  # intercepted below our transport: the request signals fire
        names = recorder.names()
        assert names[0] == "request_start" and names[-1] == "request_end"


@pytest.mark.parametrize("using", ["httpcore", "httpx"])
async def test_respx_mocks_client_session_requests(recorder: Recorder, using: str) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        with respx.mock(using=using, assert_all_called=True) as mock:
            route = mock.get("http://mocked.test/thing").respond(202, json={"mocked": using})
            async with session.get("http://mocked.test/thing") as resp:
                assert resp.status == 202 and await resp.json() == {"mocked": using}
    assert route.call_count == 1
    assert not recorder.params("connection_create_start")
    assert recorder.names()[0] == "request_start" and recorder.names()[-1] == "request_end"


@pytest.mark.parametrize("using", ["httpcore", "httpx"])
async def test_a_mock_started_between_two_requests_is_seen_and_its_end_too(
    server: TestServer, using: str
) -> None:
    # The session remembers the hooks a mocker replaces as last found unpatched; a mock that
    # starts after real requests (and ends before the next) must still be noticed each time.
    real = server.url_for("/ok")
    async with compat.ClientSession() as session:
        for _ in range(2):
            async with session.get(real) as resp:
                assert (resp.status, await resp.text()) == (200, "ok")
        with respx.mock(using=using, assert_all_called=True) as mock:
            route = mock.get(real).respond(203, text="mocked")
            async with session.get(real) as resp:
                assert (resp.status, await resp.text()) == (203, "mocked")
        async with session.get(real) as resp:
            assert (resp.status, await resp.text()) == (200, "ok")
    assert route.call_count == 1


# --- 2. transport arguments: honoured, or refused by name ---


@pytest.mark.parametrize("verify", ["test-ca", False, True])
async def test_verify(
    tls_server: TestServer, client_ssl: ssl.SSLContext, recorder: Recorder, verify: Any
) -> None:
    url = tls_server.url_for("/ok", host="localhost")
    outcomes = []
    for make in (httpx.AsyncClient, _traced(recorder)):
        async with make(verify=client_ssl if verify == "test-ca" else verify) as client:
            try:
                response = await client.get(url)
                outcomes.append((response.status_code, response.text))
            except httpx.HTTPError as exc:
                outcomes.append((type(exc).__name__, ""))
    expected = ("ConnectError", "") if verify is True else (200, "ok")
    assert outcomes == [expected, expected]
    if verify is not True:
        (handshake,) = recorder.params("tls_handshake_end")
        assert handshake.version.startswith("TLS")


async def test_client_certificate_reaches_a_server_that_requires_one(
    ca: trustme.CA, tmp_path: Path
) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED
    pem = tmp_path / "client.pem"
    ca.issue_cert("client.example").private_key_and_cert_chain_pem.write_to_path(str(pem))

    def trusting() -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        return context

    srv = ObservingServer(server_context).start()
    try:
        url = srv.url_for("/ok", host="localhost")
        for make in (httpx.AsyncClient, compat.traced_client):
            with warnings.catch_warnings():  # httpx deprecates cert= in favour of the context
                warnings.simplefilter("ignore", DeprecationWarning)
                client = make(verify=trusting(), cert=str(pem))
            async with client:
                assert (await client.get(url)).text == "ok", make
            async with make(verify=trusting()) as client:
                with pytest.raises(httpx.TransportError):
                    await client.get(url)
    finally:
        srv.stop()


@pytest.mark.parametrize("max_connections", [1, 2])
async def test_max_connections_bounds_the_requests_the_server_sees_at_once(
    own_server: ObservingServer, recorder: Recorder, max_connections: int
) -> None:
    seen = []
    for make in (httpx.AsyncClient, _traced(recorder)):
        own_server.max_in_flight = 0
        limits = httpx.Limits(max_connections=max_connections)
        async with make(limits=limits) as client, anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(client.get, own_server.url_for("/slow?delay=0.15"))
        seen.append(own_server.max_in_flight)
    assert seen == [max_connections, max_connections]
    assert len(recorder.params("connection_queued_start")) == (max_connections == 1)


async def test_pool_timeout_while_the_only_connection_is_held(
    own_server: ObservingServer, recorder: Recorder
) -> None:
    for make in (httpx.AsyncClient, _traced(recorder)):
        limits = httpx.Limits(max_connections=1)
        async with make(limits=limits, timeout=httpx.Timeout(5, pool=0.2)) as client:
            async with client.stream("GET", own_server.url_for("/slow-body?delay=1")):
                started = anyio.current_time()
                with pytest.raises(httpx.PoolTimeout):
                    await client.get(own_server.url_for("/ok"))
                took = anyio.current_time() - started
                # the pool timeout is the delay under test: not before it, and not 10 times it
                # (the held response stays open whatever its body does, so nothing else ends it)
                assert 0.2 - 0.01 <= took < 0.2 * 10, took


async def test_an_open_response_holds_its_connection_even_once_its_body_has_arrived(
    own_server: ObservingServer, recorder: Recorder
) -> None:
    outcomes = []
    for make in (httpx.AsyncClient, _traced(recorder)):
        limits = httpx.Limits(max_connections=1)
        async with make(limits=limits, timeout=httpx.Timeout(5, pool=0.2)) as client:
            own_server.stats.replies = 0
            async with client.stream("GET", own_server.url_for("/bytes/10")) as held:
                # the server has written and drained the whole body: it is in, unread
                assert await _eventually(lambda: own_server.stats.replies == 1)
                try:
                    outcome = (await client.get(own_server.url_for("/ok"))).text
                except httpx.PoolTimeout:
                    outcome = "PoolTimeout"
                assert await held.aread() == b"x" * 10
            outcomes.append(outcome)
    assert outcomes[1] == outcomes[0] == "PoolTimeout"


@pytest.mark.parametrize(("concurrent", "keepalive"), [(3, 1), (3, None), (30, 5)])
async def test_max_keepalive_connections_closes_the_extra_idle_ones(
    own_server: ObservingServer, recorder: Recorder, concurrent: int, keepalive: int | None
) -> None:
    expected_open = keepalive or concurrent
    for make in (httpx.AsyncClient, _traced(recorder)):
        own_server.reset_stats()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=keepalive)
        async with make(limits=limits) as client:
            async with anyio.create_task_group() as tg:
                for _ in range(concurrent):
                    tg.start_soon(client.get, own_server.url_for("/slow?delay=0.3"))
            assert own_server.stats.connections == concurrent
            await _eventually(lambda: own_server.stats.open_connections <= expected_open, 1)
            await anyio.sleep(0.05)
            assert own_server.stats.open_connections == expected_open, make
        assert await _eventually(lambda: own_server.stats.open_connections == 0)


@pytest.mark.parametrize("expiry", [0.15, 5.0])
async def test_keepalive_expiry(
    own_server: ObservingServer, recorder: Recorder, expiry: float
) -> None:
    for make in (httpx.AsyncClient, _traced(recorder)):
        own_server.reset_stats()
        async with make(limits=httpx.Limits(keepalive_expiry=expiry)) as client:
            await client.get(own_server.url_for("/ok"))
            await anyio.sleep(0.3)
            await client.get(own_server.url_for("/ok"))
        assert own_server.stats.connections == (2 if expiry < 0.3 else 1), make
    reuses = recorder.params("connection_reuseconn")
    assert len(reuses) == (0 if expiry < 0.3 else 1)


async def test_local_address(own_server: ObservingServer) -> None:
    local = "127.0.0.2"  # not the default source address, so choosing it shows
    with socket.socket() as probe:
        try:
            probe.bind((local, 0))  # all of 127/8 is loopback on Linux, not everywhere
        except OSError as exc:
            pytest.skip(f"{local} cannot be bound here ({exc}): nothing to tell apart")
    for transport in (
        httpx.AsyncHTTPTransport(local_address=local),
        compat.TracedTransport(local_address=local),
    ):
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(own_server.url_for("/ok"))
            stream = response.extensions["network_stream"]
            assert stream.get_extra_info("client_addr")[0] == local
    assert [peer[0] for peer in own_server.peers] == [local, local]


REFUSED: list[tuple[str, Callable[[], object], str]] = [
    ("traced_client http1", lambda: compat.traced_client(http1=False), "http1"),
    ("traced_client socks", lambda: compat.traced_client(proxy="socks5://127.0.0.1:9"), "socks5"),
    (
        "traced_client mounts",
        lambda: compat.traced_client(mounts={"http://": httpx.AsyncHTTPTransport()}),
        "mounts",
    ),
    (
        "traced_client transport",
        lambda: compat.traced_client(transport=httpx.AsyncHTTPTransport()),
        "transport",
    ),
    (
        "TracedTransport proxy ssl_context",
        lambda: compat.TracedTransport(
            proxy=httpx.Proxy("https://127.0.0.1:9", ssl_context=ssl.create_default_context())
        ),
        "ssl_context",
    ),
    ("TracedTransport uds", lambda: compat.TracedTransport(uds="/tmp/compat.sock"), "uds"),
    ("TracedTransport retries", lambda: compat.TracedTransport(retries=1), "retries"),
    (
        "TracedTransport socket_options",
        lambda: compat.TracedTransport(
            socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
        ),
        "socket_options",
    ),
]


@pytest.mark.parametrize(("make", "name"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
async def test_unsupported_arguments_are_refused_at_construction(
    make: Callable[[], object], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_a_proxy_in_the_environment_is_used_unless_trust_env_is_false(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """As httpx.AsyncClient: trust_env routes through the environment's (here unreachable)
    proxy; trust_env=False connects directly. (It was refused before proxies were built.)"""
    monkeypatch.setenv(variable, "http://127.0.0.1:9")
    errors = []
    for client in (httpx.AsyncClient(), compat.traced_client()):
        async with client:
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(server.url_for("/ok"))
            errors.append(info.type)
    assert errors == [httpx.ConnectError, httpx.ConnectError]
    async with compat.traced_client(trust_env=False) as client:
        assert (await client.get(server.url_for("/ok"))).text == "ok"


# --- 3. lifecycle: the client closes the connector it was given, unless told not to ---


@pytest.mark.parametrize("how", ["traced_client", "TracedTransport"])
async def test_closing_the_client_closes_its_connector(
    own_server: ObservingServer, how: str
) -> None:
    connector = compat.TCPConnector()
    if how == "traced_client":
        client = compat.traced_client(connector=connector)
    else:
        client = httpx.AsyncClient(transport=compat.TracedTransport(connector=connector))
    async with client:
        await client.get(own_server.url_for("/ok"))
        assert own_server.stats.open_connections == 1
    assert connector.closed
    assert await _eventually(lambda: own_server.stats.open_connections == 0)


async def test_a_connector_not_owned_stays_open(own_server: ObservingServer) -> None:
    connector = compat.TCPConnector()
    for _ in range(2):
        async with compat.traced_client(connector=connector, connector_owner=False) as client:
            await client.get(own_server.url_for("/ok"))
        assert not connector.closed
    await anyio.sleep(0.05)
    assert own_server.stats.connections == 1 and own_server.stats.open_connections == 1
    await connector.close()
    assert await _eventually(lambda: own_server.stats.open_connections == 0)


# --- 4. the pool timeout measures the queue, not the handlers ---


@pytest.mark.parametrize("pool", [0.1, 0.0])
async def test_pool_timeout_does_not_count_handler_time(
    server: TestServer, recorder: Recorder, pool: float
) -> None:
    async def slow_reuse(session: Any, ctx: Any, params: Any) -> None:
        await anyio.sleep(0.3)

    recorder.config.on_connection_reuseconn.append(slow_reuse)
    async with compat.traced_client(
        trace_configs=[recorder.config],
        limits=httpx.Limits(max_connections=1),
        timeout=httpx.Timeout(5, pool=pool),
    ) as client:
        for _ in range(3):
            assert (await client.get(server.url_for("/ok"))).text == "ok"
    assert len(recorder.params("connection_reuseconn")) == 2


# --- 5. the sync client ---


def test_a_sync_client_gets_a_clear_type_error(server: TestServer) -> None:
    transport = compat.TracedTransport()
    client = httpx.Client(transport=transport)
    with pytest.raises(TypeError, match="AsyncClient"):
        client.get(server.url_for("/ok"))
    with pytest.raises(TypeError, match="AsyncClient"):
        with httpx.Client(transport=transport):
            pass
    anyio.run(transport.aclose)


# --- 6. closing mid-stream ---


@pytest.mark.parametrize("closing", ["client", "transport"])
async def test_closing_mid_stream_does_what_httpx_does(
    server: TestServer, recorder: Recorder, closing: str
) -> None:
    async def run(client: httpx.AsyncClient) -> str:
        try:
            async with client.stream("GET", server.url_for("/chunked/40/1000")) as response:
                chunks = response.aiter_raw()
                await chunks.__anext__()
                if closing == "client":
                    await client.aclose()
                else:
                    await client._transport.aclose()
                async for _ in chunks:
                    pass
        except Exception as exc:
            return type(exc).__name__
        return "read to the end"

    with anyio.fail_after(10):
        expected = await run(httpx.AsyncClient())
        got = await run(_traced(recorder)())
    assert got == expected


# --- 7. Sentry ---


def test_sentry_sees_each_request_once(server: TestServer, anyio_backend: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.aiohttp import create_trace_config
    from sentry_sdk.integrations.httpx import HttpxIntegration
    from sentry_sdk.transport import Transport

    transactions: list[dict[str, Any]] = []

    class Capture(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            for item in envelope.items:
                if item.type == "transaction":
                    transactions.append(item.payload.json)

    async def main() -> None:
        async with compat.ClientSession(trace_configs=[create_trace_config()]) as session:
            with sentry_sdk.start_transaction(name="session"):
                for path in ("/ok", "/status/500"):
                    async with session.get(server.url_for(path)) as resp:
                        await resp.read()
        async with compat.traced_client() as client:
            with sentry_sdk.start_transaction(name="traced_client"):
                for path in ("/ok", "/status/500"):
                    await client.get(server.url_for(path))

    sentry_sdk.init(dsn="http://key@127.0.0.1:1/1", traces_sample_rate=1.0, transport=Capture)
    try:
        assert sentry_sdk.get_client().get_integration(HttpxIntegration) is not None
        anyio.run(main, backend=anyio_backend)
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
    spans = {
        t["transaction"]: [
            (s["description"], s.get("data", {}).get("http.response.status_code"))
            for s in t["spans"]
            if s["op"] == "http.client"
        ]
        for t in transactions
    }
    expected = [(f"GET {server.url}/ok", 200), (f"GET {server.url}/status/500", 500)]
    assert spans == {"session": expected, "traced_client": expected}


# --- 8. zero-code OpenTelemetry for ClientSession ---


def _otel_spans_of(lib: Any, url: str, backend: str, configs: list[Any] | None = None) -> None:
    async def main() -> None:
        session = lib.ClientSession(trace_configs=configs) if configs else lib.ClientSession()
        async with session:
            for path in ("/ok", "/status/503"):
                async with session.get(url + path) as resp:
                    await resp.read()

    if lib is aiohttp:
        asyncio.run(main())
    else:
        anyio.run(main, backend=backend)


def test_compat_instrumentor_gives_every_session_the_spans_aiohttp_gets(
    server: TestServer, anyio_backend: str
) -> None:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    from compat.otel import CompatInstrumentor

    aiohttp_provider, aiohttp_exporter = _provider()
    instrumentor: Any = AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=aiohttp_provider)
    try:
        _otel_spans_of(aiohttp, server.url, "asyncio")
    finally:
        instrumentor.uninstrument()
    expected = [_span_summary(s, server.port) for s in aiohttp_exporter.get_finished_spans()]

    provider, exporter = _provider()
    recorder = Recorder()
    instrumentor = CompatInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        _otel_spans_of(compat, server.url, anyio_backend)
        _otel_spans_of(compat, server.url, anyio_backend, [recorder.config])
    finally:
        instrumentor.uninstrument()
    got = [_span_summary(s, server.port) for s in exporter.get_finished_spans()]
    assert len(expected) == 2
    assert got == expected + expected
    assert [s["status"] for s in got[:2]] == ["StatusCode.UNSET", "StatusCode.ERROR"]
    assert recorder.names().count("request_end") == 2  # configs passed in are kept

    _otel_spans_of(compat, server.url, anyio_backend)
    assert len(exporter.get_finished_spans()) == 4  # uninstrumented: no more spans


async def test_compat_instrumentor_is_an_opentelemetry_instrumentor_entry_point() -> None:
    from compat.otel import CompatInstrumentor

    points = importlib.metadata.entry_points(group="opentelemetry_instrumentor")
    (point,) = [p for p in points if p.name == "compat"]
    assert point.load() is CompatInstrumentor


_ZERO_CODE_APP = """
import sys, anyio, compat

async def main():
    async with compat.ClientSession() as session:
        async with session.get(sys.argv[1]) as resp:
            print(await resp.text())

anyio.run(main, backend=sys.argv[2])
"""


def test_opentelemetry_instrument_traces_a_session_with_no_code_change(
    server: TestServer, anyio_backend: str, tmp_path: Path
) -> None:
    """`opentelemetry-instrument python app.py` loads CompatInstrumentor by its entry point.

    No OpenTelemetry distro is installed here, so nothing would export the spans; an SDK tracer
    provider chosen by environment variable makes them recording, and the request's span shows
    at the server as the `traceparent` header it propagates. Disabling the `compat`
    instrumentor by name removes it: it is ours that did it."""
    app = tmp_path / "app.py"
    app.write_text(_ZERO_CODE_APP)
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {
        **os.environ,
        "OTEL_PYTHON_TRACER_PROVIDER": "sdk_tracer_provider",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }

    def traceparent(**extra: str) -> list[str]:
        done = subprocess.run(
            [str(instrument), sys.executable, str(app), server.url_for("/headers"), anyio_backend],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return [v for k, v in json.loads(done.stdout) if k.lower() == "traceparent"]

    (sent,) = traceparent()
    assert sent.startswith("00-") and sent.endswith(("-01", "-03"))  # a sampled span
    assert traceparent(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="compat") == []


# --- 9. httpx's own client behaviours, with TracedTransport in place ---


def _seen(server: TestServer, case: str) -> Request:
    (request,) = [r for r in server.stats.seen if r.header("x-case") == case]
    return request


_cases = itertools.count()


def _case() -> dict[str, str]:
    return {"x-case": f"case-{next(_cases)}"}


def _error(exc: httpx.HTTPError, url: str) -> dict[str, Any]:
    try:
        request_url = str(exc.request.url)
    except RuntimeError:
        request_url = None
    return {"error": type(exc).__name__, "request_url": request_url == url}


async def _redirect_followed(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    r = await client.get(s.url_for("/redirect/3"), follow_redirects=True)
    return {
        "status": r.status_code,
        "text": r.text,
        "url": str(r.url),
        "history": [(h.status_code, str(h.url), h.headers["location"]) for h in r.history],
        "requests": [str(h.request.url) for h in r.history],
    }


async def _redirect_not_followed(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    r = await client.get(s.url_for("/redirect/1"))
    assert r.next_request is not None
    return {
        "status": r.status_code,
        "is_redirect": r.is_redirect,
        "has_redirect_location": r.has_redirect_location,
        "next": str(r.next_request.url),
    }


async def _redirect_post(client: httpx.AsyncClient, s: TestServer, status: int) -> dict[str, Any]:
    r = await client.post(
        s.url_for(f"/redirect-to?url=/echo&status={status}"),
        content=b"payload",
        follow_redirects=True,
    )
    return {
        "status": r.status_code,
        "method": r.headers["x-method"],
        "body": r.content,
        "history": [h.status_code for h in r.history],
    }


async def _redirect_streamed_body(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    async def body() -> AsyncIterator[bytes]:
        yield b"streamed"

    url = s.url_for("/redirect-to?url=/echo&status=307")
    try:
        await client.post(url, content=body(), follow_redirects=True)
    except (httpx.HTTPError, httpx.StreamError) as exc:  # StreamConsumed is a StreamError
        return {"error": type(exc).__name__}
    return {"error": None}


async def _too_many_redirects(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    url = s.url_for("/redirect/5")
    try:
        await client.get(url, follow_redirects=True)
    except httpx.HTTPError as exc:
        return {"error": type(exc).__name__}
    return {"error": None}


async def _event_hooks(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    calls: list[Any] = []

    async def on_request(request: httpx.Request) -> None:
        calls.append(("request", request.method, str(request.url)))

    async def on_response(response: httpx.Response) -> None:
        await response.aread()
        calls.append(("response", response.status_code, response.text))

    client.event_hooks = {"request": [on_request], "response": [on_response]}
    await client.get(s.url_for("/redirect/1"), follow_redirects=True)
    return {"calls": calls}


async def _stream_bytes(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    async with client.stream("GET", s.url_for("/chunked/4/500")) as r:
        body = b"".join([chunk async for chunk in r.aiter_bytes()])
        consumed = r.is_stream_consumed
        downloaded = r.num_bytes_downloaded
    return {
        "body": body,
        "consumed": consumed,
        "downloaded": downloaded,
        "closed": r.is_closed,
        "chunked": r.headers.get("transfer-encoding"),
    }


async def _stream_raw_gzip(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    async with client.stream("GET", s.url_for("/gzip")) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    return {
        "raw_matches_length": len(raw) == int(r.headers["content-length"]),
        "decoded": gzip.decompress(raw),
    }


async def _stream_lines(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    body = b"one\ntwo\r\nthree\n\nfour"
    async with client.stream("POST", s.url_for("/echo"), content=body) as r:
        lines = [line async for line in r.aiter_lines()]
    async with client.stream("GET", s.url_for("/json")) as r:
        text = "".join([t async for t in r.aiter_text()])
    return {"lines": lines, "text": text}


async def _gzip_decoded(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    r = await client.get(s.url_for("/gzip"))
    return {
        "text": r.text,
        "encoding": r.encoding,
        "content_encoding": r.headers["content-encoding"],
        "content_type": r.headers["content-type"],
    }


async def _cookies(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    await client.get(s.url_for("/cookie"))
    echoed = (await client.get(s.url_for("/headers"))).json()
    return {
        "jar": dict(client.cookies),
        "sent": [v for k, v in echoed if k.lower() == "cookie"],
    }


async def _query_params(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    case = _case()
    params = {"a": "1", "b": ["x", "y"], "odd": "a b&c=d/é"}
    r = await client.get(s.url_for("/ok?z=0"), params=params, headers=case)
    return {"url": str(r.url), "seen": _seen(s, case["x-case"]).query}


async def _request_body(client: httpx.AsyncClient, s: TestServer, **kwargs: Any) -> dict[str, Any]:
    case = _case()
    r = await client.post(s.url_for("/echo"), headers=case, **kwargs)
    seen = _seen(s, case["x-case"])
    content_type = seen.header("content-type") or ""
    body = r.content
    if "boundary=" in content_type:
        boundary = content_type.split("boundary=")[1]
        body = body.replace(boundary.encode(), b"BOUNDARY")
        content_type = content_type.replace(boundary, "BOUNDARY")
    return {
        "body": body,
        "content_type": content_type,
        "content_length": seen.header("content-length"),
        "transfer_encoding": seen.header("transfer-encoding"),
    }


async def _streamed_request_body(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"first ", b"second ", b"third"):
            yield part

    return await _request_body(client, s, content=body())


async def _basic_auth(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    echoed = (await client.get(s.url_for("/headers"), auth=("u", "p"))).json()
    in_url = s.url_for("/headers").replace("://", "://user:pass@")
    echoed_url = (await client.get(in_url)).json()
    return {
        "auth": [v for k, v in echoed if k.lower() == "authorization"],
        "url_auth": [v for k, v in echoed_url if k.lower() == "authorization"],
    }


async def _read_timeout(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    url = s.url_for("/slow?delay=5")  # far past the 0.1 s timeout, however loaded the machine
    try:
        await client.get(url, timeout=0.1)
    except httpx.HTTPError as exc:
        return _error(exc, url)
    return {"error": None}


async def _base_url(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    client.base_url = httpx.URL(s.url_for("/api/"))
    r = await client.get("../ok")
    return {"url": str(r.url), "text": r.text, "request": str(r.request.url)}


async def _response_attributes(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    r = await client.get(s.url_for("/status/404"))
    try:
        r.raise_for_status()
        raised = None
    except httpx.HTTPStatusError as exc:
        raised = str(exc).replace(str(s.port), "PORT")
    return {
        "status": r.status_code,
        "reason": r.reason_phrase,
        "version": r.http_version,
        "elapsed": isinstance(r.elapsed, timedelta) and r.elapsed > timedelta(0),
        "headers": r.headers.multi_items(),
        "text": r.text,
        "is_error": r.is_error,
        "raised": raised,
    }


async def _network_stream(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    r = await client.get(s.url_for("/ok"))
    stream = r.extensions["network_stream"]
    sock = stream.get_extra_info("socket")
    return {
        "server_addr": stream.get_extra_info("server_addr"),
        "client_host": stream.get_extra_info("client_addr")[0],
        "ssl_object": stream.get_extra_info("ssl_object"),
        "socket_peer": sock.getpeername() if sock is not None else None,
    }


async def _request_headers(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    r = await client.get(s.url_for("/headers"), headers={"X-Custom": "One", "x-dup": "a"})
    return {"echoed": r.json(), "request": r.request.headers.multi_items()}


async def _head(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    # The test server answers HEAD with the GET body; /cookie's is empty, so it is a valid reply.
    r = await client.head(s.url_for("/cookie"))
    then = (await client.get(s.url_for("/ok"))).text
    return {
        "status": r.status_code,
        "content": r.content,
        "headers": r.headers.multi_items(),
        "then": then,
    }


async def _large_body(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    r = await client.get(s.url_for("/bytes/1000000"))
    return {"size": len(r.content), "sha": hashlib.sha256(r.content).hexdigest()}


async def _keepalive(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    before = s.stats.connections
    for path in ("/ok", "/json", "/bytes/10", "/close", "/ok"):
        await client.get(s.url_for(path))
    return {"connections": s.stats.connections - before}


async def _stream_left_early(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    before = s.stats.connections
    async with client.stream("GET", s.url_for("/chunked/50/1000")) as r:
        await r.aiter_raw().__anext__()
    after = (await client.get(s.url_for("/ok"))).text
    return {"then": after, "connections": s.stats.connections - before}


async def _refused(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    url = f"http://127.0.0.1:{_closed_port()}/"
    try:
        await client.get(url)
    except httpx.HTTPError as exc:
        return _error(exc, url)
    return {"error": None}


async def _fault(client: httpx.AsyncClient, s: TestServer, kind: str) -> dict[str, Any]:
    url = s.url_for(f"/fault/{kind}")
    try:
        r = await client.get(url)
    except httpx.HTTPError as exc:
        return _error(exc, url)
    return {"error": None, "status": r.status_code}


async def _unsupported_scheme(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
    url = "ftp://127.0.0.1/"
    try:
        await client.get(url)
    except httpx.HTTPError as exc:
        return _error(exc, url)
    return {"error": None}


Scenario = Callable[[httpx.AsyncClient, TestServer], Awaitable[dict[str, Any]]]


def _with(
    function: Callable[..., Awaitable[dict[str, Any]]], *args: Any, **kwargs: Any
) -> Scenario:
    async def scenario(client: httpx.AsyncClient, s: TestServer) -> dict[str, Any]:
        return await function(client, s, *args, **kwargs)

    return scenario


SCENARIOS: dict[str, Scenario] = {
    "redirect followed": _redirect_followed,
    "redirect not followed": _redirect_not_followed,
    "303 turns POST into GET": _with(_redirect_post, 303),
    "307 resends the body": _with(_redirect_post, 307),
    "307 with a streamed body": _redirect_streamed_body,
    "too many redirects": _too_many_redirects,
    "event hooks": _event_hooks,
    "aiter_bytes": _stream_bytes,
    "aiter_raw of gzip": _stream_raw_gzip,
    "aiter_lines and aiter_text": _stream_lines,
    "gzip decoded": _gzip_decoded,
    "cookies": _cookies,
    "params": _query_params,
    "json": _with(_request_body, json={"k": [1, "two", None], "é": True}),
    "data": _with(_request_body, data={"a": "1", "b": ["x", "two words"]}),
    "files": _with(
        _request_body,
        data={"field": "value"},
        files={"upload": ("a.txt", b"hello\r\nworld", "text/plain")},
    ),
    "streamed request body": _streamed_request_body,
    "basic auth": _basic_auth,
    "read timeout": _read_timeout,
    "base_url": _base_url,
    "response attributes": _response_attributes,
    "network_stream": _network_stream,
    "request headers": _request_headers,
    "HEAD": _head,
    "large body": _large_body,
    "keep-alive": _keepalive,
    "stream left early": _stream_left_early,
    "connection refused": _refused,
    "server disconnects": _with(_fault, "disconnect"),
    "truncated body": _with(_fault, "truncate"),
    "reset before the response": _with(_fault, "reset-before"),
    "reset mid-body": _with(_fault, "reset-after"),
    "invalid response": _with(_fault, "invalid"),
    "unsupported scheme": _unsupported_scheme,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_httpx_behaves_the_same_over_traced_transport(
    server: TestServer, recorder: Recorder, name: str
) -> None:
    scenario = SCENARIOS[name]
    async with httpx.AsyncClient() as client:
        expected = await scenario(client, server)
    async with _traced(recorder)() as client:
        got = await scenario(client, server)
    assert got == expected
    if name != "unsupported scheme":
        assert recorder.params("request_start"), "the trace configs saw nothing"


async def test_tls_network_stream_matches_httpx(
    tls_server: TestServer, client_ssl: ssl.SSLContext
) -> None:
    url = tls_server.url_for("/ok", host="localhost")
    seen = []
    for make in (httpx.AsyncClient, compat.traced_client):
        async with make(verify=client_ssl) as client:
            r = await client.get(url)
            ssl_object = r.extensions["network_stream"].get_extra_info("ssl_object")
            seen.append(
                (
                    r.http_version,
                    ssl_object.version(),
                    ssl_object.selected_alpn_protocol(),
                    ssl_object.server_hostname,
                )
            )
    assert seen[1] == seen[0]
