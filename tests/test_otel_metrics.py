"""compat.otel.CompatMetrics: OpenTelemetry's HTTP client metrics, read with an in-memory reader."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import compat
from compat.otel import CompatInstrumentor, CompatMetrics

from .server import TestServer

pytestmark = pytest.mark.anyio


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def _open(reader: InMemoryMetricReader) -> dict[str, int]:
    totals = {"active": 0, "idle": 0}
    for point in _points(reader, "http.client.open_connections"):
        totals[point.attributes["http.connection.state"]] += point.value
    return totals


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_open_connections_rise_to_the_limit_and_fall_to_zero(server: TestServer) -> None:
    reader = InMemoryMetricReader()
    metrics = CompatMetrics(MeterProvider(metric_readers=[reader]))
    seen: list[dict[str, int]] = []
    config = compat.TraceConfig()

    async def sample(session: Any, ctx: Any, params: Any) -> None:
        seen.append(_open(reader))

    config.on_request_end.append(sample)
    connector = compat.TCPConnector(limit=2)
    session = compat.ClientSession(
        connector=connector, trace_configs=[metrics.trace_config(), config]
    )
    async with session:

        async def fetch() -> None:
            async with session.get(server.url_for("/slow?delay=0.05", host="localhost")) as r:
                assert await r.read() == b"slow"

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(fetch)
        assert max(s["active"] for s in seen) == 2  # the limit, reached and held
        assert _open(reader) == {"active": 0, "idle": 2}
        with pytest.raises(compat.ClientConnectorError):
            await session.get(f"http://127.0.0.1:{_closed_port()}/")
    assert _open(reader) == {"active": 0, "idle": 0}  # closed: reported as zero once
    (lived,) = _points(reader, "http.client.connection.duration")
    assert lived.count == 2  # the two connections the limit allowed, closed with the session
    assert lived.sum >= 2 * 4 * 0.05  # both lived through four rounds of 50 ms requests
    assert lived.attributes == {
        "server.address": "localhost",
        "server.port": server.port,
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "network.peer.address": "127.0.0.1",
    }

    durations = _points(reader, "http.client.request.duration")
    assert sum(p.count for p in durations) == 9
    by_outcome = {p.attributes.get("error.type", "ok"): p for p in durations}
    ok = by_outcome["ok"]
    assert ok.count == 8
    assert ok.sum >= 8 * 0.05  # each waited for the server's 50 ms at least
    assert ok.attributes == {
        "http.request.method": "GET",
        "server.address": "localhost",
        "server.port": server.port,
        "url.scheme": "http",
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
    }
    assert by_outcome["ClientConnectorError"].count == 1
    lookups = _points(reader, "dns.lookup.duration")
    assert lookups and all(p.attributes == {"dns.question.name": "localhost"} for p in lookups)


async def test_error_statuses_and_methods_follow_the_conventions(server: TestServer) -> None:
    reader = InMemoryMetricReader()
    metrics = CompatMetrics(MeterProvider(metric_readers=[reader]))
    async with compat.ClientSession(trace_configs=[metrics.trace_config()]) as session:
        async with session.get(server.url_for("/status/503")) as resp:
            await resp.read()
        async with session.request("BREW", server.url_for("/ok")) as resp:
            await resp.read()
    points = {
        (p.attributes["http.request.method"], p.attributes["http.response.status_code"]): p
        for p in _points(reader, "http.client.request.duration")
    }
    assert points[("GET", 503)].attributes["error.type"] == "503"
    assert "error.type" not in points[("_OTHER", 200)].attributes


async def test_the_instrumentor_meters_sessions_and_traced_clients(server: TestServer) -> None:
    reader = InMemoryMetricReader()
    instrumentor = CompatInstrumentor()
    instrumentor.instrument(meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        async with compat.ClientSession() as session:
            async with session.get(server.url_for("/ok")) as resp:
                await resp.read()
            assert _open(reader) == {"active": 0, "idle": 1}
        async with compat.traced_client() as client:
            assert (await client.get(server.url_for("/ok"))).status_code == 200
            assert (await client.get(server.url_for("/ok"))).status_code == 200
            assert _open(reader) == {"active": 0, "idle": 1}
    finally:
        instrumentor.uninstrument()
    assert _open(reader) == {"active": 0, "idle": 0}
    assert sum(p.count for p in _points(reader, "http.client.request.duration")) == 3
    async with compat.ClientSession() as session:  # uninstrumented: nothing more recorded
        async with session.get(server.url_for("/ok")) as resp:
            await resp.read()
    assert sum(p.count for p in _points(reader, "http.client.request.duration")) == 3
