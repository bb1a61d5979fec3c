"""Existing code, unchanged: httpx clients, OpenTelemetry, Sentry, aiohttp sessions, respx."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
import respx

import compat

from .conftest import Recorder
from .server import TestServer

pytestmark = pytest.mark.anyio


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- httpx-native entry point ---


async def test_a_plain_httpx_client_gets_the_signals_per_hop(
    server: TestServer, recorder: Recorder
) -> None:
    async def inject(session: Any, ctx: Any, params: Any) -> None:
        params.headers["traceparent"] = "00-httpx-01"

    recorder.config.on_request_start.append(inject)
    async with compat.traced_client(
        trace_configs=[recorder.config], follow_redirects=True
    ) as client:
        response = await client.get(server.url_for("/redirect/1"))
        assert response.status_code == 200 and response.text == "ok"
        sent = await client.get(server.url_for("/headers"))
        assert ["traceparent", "00-httpx-01"] in [[k.lower(), v] for k, v in sent.json()]
    assert recorder.names()[:9] == [
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
    assert all(s is client for s in recorder.sessions)
    assert [p.response.status for p in recorder.params("request_end")][:2] == [302, 200]


async def test_a_plain_httpx_client_reports_body_chunks_and_timings(server: TestServer) -> None:
    from compat.timings import timing_trace_config

    recorder = Recorder()
    timings_config = timing_trace_config()

    async def keep(session: Any, ctx: Any, params: Any) -> None:
        ctx.trace_request_ctx["timings"] = ctx.timings

    timings_config.on_request_start.append(keep)
    holder: dict[str, Any] = {}
    async with compat.traced_client(trace_configs=[recorder.config, timings_config]) as client:
        response = await client.get(
            server.url_for("/chunked/4/500"), extensions={"trace_request_ctx": holder}
        )
        assert response.content == b"y" * 2000
    chunks = [p.chunk for p in recorder.params("response_chunk_received")]
    assert b"".join(chunks) == b"y" * 2000 and len(chunks) >= 2
    (complete,) = recorder.params("response_body_complete")
    assert complete.size == 2000
    timings = holder["timings"]
    assert timings.complete and timings.phases["receive"] > 0
    assert abs(sum(timings.phases.values()) - timings.total) < 1e-6


async def test_httpx_errors_stay_httpx_errors_and_reach_the_exception_signal(
    recorder: Recorder,
) -> None:
    transport = compat.TracedTransport(trace_configs=[recorder.config])
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{_closed_port()}/")
    assert recorder.names() == ["request_start", "connection_create_start", "request_exception"]
    assert isinstance(recorder.params("request_exception")[0].exception, httpx.ConnectError)
    assert transport.connector.closed


# --- a compat.TraceConfig on aiohttp itself ---


def test_a_compat_trace_config_works_on_aiohttp(server: TestServer) -> None:
    recorder = Recorder()

    async def run() -> None:
        async with aiohttp.ClientSession(trace_configs=[recorder.config]) as session:
            async with session.get(server.url_for("/ok")) as resp:
                assert await resp.text() == "ok"

    asyncio.run(run())
    assert recorder.names() == [
        "request_start",
        "connection_create_start",
        "connection_create_end",
        "request_headers_sent",
        "request_end",
    ]


# --- OpenTelemetry and Sentry, unchanged, give what they give on aiohttp ---


def _run(lib: Any, main: Callable[[], Awaitable[None]], backend: str) -> None:
    """aiohttp on asyncio; compat on the backend under test."""
    if lib is aiohttp:
        asyncio.run(main())  # type: ignore[arg-type]
    else:
        anyio.run(main, backend=backend)


async def _refused(lib: Any, session: Any) -> None:
    with pytest.raises(lib.ClientConnectorError):
        async with session.get(f"http://127.0.0.1:{_closed_port()}/x"):
            pass


def _otel_run(lib: Any, url: str, backend: str) -> list[dict[str, Any]]:
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen_headers: list[str] = []

    async def main() -> None:
        config = create_trace_config(tracer_provider=provider)
        async with lib.ClientSession(trace_configs=[config]) as session:
            for path in ("/headers", "/status/503"):
                async with session.get(url + path) as resp:
                    if path == "/headers":
                        sent = dict((k.lower(), v) for k, v in await resp.json())
                        seen_headers.append(sent.get("traceparent", ""))
            await _refused(lib, session)

    _run(lib, main, backend)
    spans = []
    for span in exporter.get_finished_spans():
        attributes = {k: v for k, v in span.attributes.items() if "port" not in k}
        attributes = {
            k: (v if "url" not in k or "127.0.0.1:" not in str(v) else "URL")
            for k, v in attributes.items()
        }
        spans.append(
            {
                "name": span.name,
                "kind": str(span.kind),
                "status": str(span.status.status_code),
                "attributes": attributes,
                "propagated": span.context.trace_id.to_bytes(16, "big").hex()
                in "".join(seen_headers),
            }
        )
    return spans


def test_opentelemetry_gives_the_same_spans_as_on_aiohttp(
    server: TestServer, anyio_backend: str
) -> None:
    expected = _otel_run(aiohttp, server.url, "asyncio")
    got = _otel_run(compat, server.url, anyio_backend)
    assert len(got) == 3
    assert got == expected
    assert got[0]["propagated"] and got[0]["status"] == "StatusCode.UNSET"
    assert got[1]["status"] == "StatusCode.ERROR" and got[2]["status"] == "StatusCode.ERROR"


def _mask_port(text: str) -> str:
    """The refused request's port differs between the two runs."""
    import re

    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)


def _sentry_run(lib: Any, url: str, backend: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    import sentry_sdk
    from sentry_sdk.integrations.aiohttp import AioHttpIntegration, create_trace_config
    from sentry_sdk.transport import Transport

    transactions: list[dict[str, Any]] = []

    class Capture(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            for item in envelope.items:
                if item.type == "transaction":
                    transactions.append(item.payload.json)

    sentry_sdk.init(
        dsn="http://key@127.0.0.1:1/1",
        integrations=[AioHttpIntegration()],
        traces_sample_rate=1.0,
        transport=Capture,
        default_integrations=False,
    )
    sent: dict[str, str] = {}

    # On aiohttp the integration patches ClientSession.__init__ to add its trace config;
    # that never reaches another session class, so with compat it is passed explicitly.
    configs = [] if lib is aiohttp else [create_trace_config()]

    async def main() -> None:
        async with lib.ClientSession(trace_configs=configs) as session:
            with sentry_sdk.start_transaction(name="compat-test"):
                async with session.get(url + "/headers") as resp:
                    sent.update((k.lower(), v) for k, v in await resp.json())
                async with session.get(url + "/status/500") as resp:
                    await resp.read()
                await _refused(lib, session)

    _run(lib, main, backend)
    sentry_sdk.flush()
    spans = []
    for transaction in transactions:
        for span in transaction.get("spans", []):
            data = {
                k: (v.replace(url, "URL") if isinstance(v, str) else v)
                for k, v in span.get("data", {}).items()
                if "thread" not in k
            }
            spans.append(
                {
                    "op": span["op"],
                    "description": span["description"].replace(url, "URL"),
                    "status": span.get("status"),
                    "data": data,
                }
            )
    return spans, sent


def test_sentry_gives_the_same_spans_and_headers_as_on_aiohttp(
    server: TestServer, anyio_backend: str
) -> None:
    expected, expected_sent = _sentry_run(aiohttp, server.url, "asyncio")
    got, sent = _sentry_run(compat, server.url, anyio_backend)
    # Sentry's config has no on_request_exception handler: a refused connection leaves no
    # finished span, on aiohttp as on compat.
    assert len(got) == 2 and got == expected
    assert "sentry-trace" in sent and "baggage" in sent
    assert ("sentry-trace" in expected_sent) and ("baggage" in expected_sent)
    assert [span["status"] for span in got][:2] == ["ok", "internal_error"]


# --- respx ---


async def test_respx_mocked_requests_fire_the_request_signals_and_leak_nothing(
    recorder: Recorder,
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        with respx.mock(assert_all_called=True) as mock:
            mock.get("http://api.test/old").respond(302, headers={"Location": "/new"})
            mock.get("http://api.test/new").respond(200, json={"ok": True})
            mock.get("http://api.test/down").mock(side_effect=httpx.ConnectError("down"))
            async with session.get("http://api.test/old") as resp:
                assert await resp.json() == {"ok": True}
            with pytest.raises(compat.ClientConnectorError):
                await session.get("http://api.test/down")
        stats = session.connector.stats()
        assert stats.in_use == 0 and stats.idle == 0
    # A mocked request reaches no pool and no socket: only the request-level signals fire
    # (nothing is written, so no headers-sent either).
    assert recorder.names() == [
        "request_start",
        "request_redirect",
        "request_end",
        "request_start",
        "request_exception",
    ]
    (redirect,) = recorder.params("request_redirect")
    assert redirect.response.status == 302 and str(redirect.url) == "http://api.test/old"
    chunks = recorder.params("response_chunk_received")
    assert b"".join(p.chunk for p in chunks) == b'{"ok":true}'


async def test_an_httpx_without_the_private_name_respx_patches_is_not_taken_for_mocked(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    """respx's `using="httpx"` replaces httpx's private `AsyncClient._transport_for_url`, so
    the session looks at it; an httpx release without that name must not break requests or
    send them down the mocked path (they reach the pool: connection signals fire)."""
    monkeypatch.delattr(httpx.AsyncClient, "_transport_for_url")
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get(server.url_for("/ok")) as resp:
            assert await resp.read() == b"ok"
    assert "connection_create_end" in recorder.names()
