"""`compat.timings` and the `python -m compat` command, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import anyio
import pytest

import compat
from compat.timings import PHASES, Timings, timing_trace_config

from .server import TestServer
from .wireserver import SlowAcceptServer, WireServer, fake_dns


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _assert_phases_add_up(phases_ms: dict[str, float]) -> None:
    total = sum(phases_ms[p] for p in PHASES)
    assert abs(total - phases_ms["total"]) < 0.01 * len(PHASES), phases_ms


@pytest.mark.anyio
async def test_timings_add_up_and_reuse_has_no_dns_or_connect(server: TestServer) -> None:
    config = timing_trace_config()
    async with compat.ClientSession(trace_configs=[config]) as session:
        results = []
        for _ in range(2):
            async with session.get(server.url_for("/redirect/1", host="localhost")) as resp:
                await resp.read()
                results.append(resp.timings)  # type: ignore[attr-defined]
    first, second = results
    assert first.complete and second.complete
    for timings in results:
        assert abs(sum(timings.phases.values()) - timings.total) < 1e-6
        assert timings.total > 0
    assert first.phases["dns"] > 0 and first.phases["connect"] > 0
    assert second.phases["dns"] == 0 and second.phases["connect"] == 0
    assert first.phases["wait"] > 0 and second.phases["wait"] > 0
    assert [name for _, name, _ in first.events].count("on_request_redirect") == 1


async def _timed(entry: str, url: str, **session_kwargs: Any) -> Timings:
    """Fetch `url` (body read) with the timing config; its timings."""
    config = timing_trace_config()
    if entry == "session":
        async with compat.ClientSession(trace_configs=[config], **session_kwargs) as session:
            async with session.get(url) as resp:
                await resp.read()
                return resp.timings  # type: ignore[attr-defined,no-any-return]

    async def keep(session: Any, ctx: Any, params: Any) -> None:
        ctx.trace_request_ctx["timings"] = ctx.timings

    config.on_request_start.append(keep)
    holder: dict[str, Timings] = {}
    async with compat.traced_client(trace_configs=[config]) as client:
        await client.get(url, extensions={"trace_request_ctx": holder})
    return holder["timings"]


DELAY = 0.3
"""What the server waits; each phase is checked against it with a tolerance, not for speed."""


@pytest.mark.anyio
@pytest.mark.parametrize("entry", ["session", "httpx"])
async def test_wait_covers_a_server_delay_before_the_head(server: TestServer, entry: str) -> None:
    timings = await _timed(entry, server.url_for(f"/slow?delay={DELAY}"))
    assert timings.complete
    assert timings.phases["wait"] >= 0.9 * DELAY, timings.phases
    assert timings.phases["receive"] < timings.phases["wait"], timings.phases  # the delay's phase
    assert abs(sum(timings.phases.values()) - timings.total) < 1e-6


@pytest.mark.anyio
@pytest.mark.parametrize("entry", ["session", "httpx"])
async def test_receive_covers_a_body_that_pauses_midway(server: TestServer, entry: str) -> None:
    """The server sends the head and 2 bytes, waits, then the last 2: the wait is `receive`,
    and the first chunk was signalled before the pause ended, not with the rest."""
    timings = await _timed(entry, server.url_for(f"/slow-body?delay={DELAY}"))
    assert timings.complete
    assert timings.phases["receive"] >= 0.9 * DELAY, timings.phases
    assert timings.phases["wait"] < timings.phases["receive"], timings.phases  # the delay's phase
    at = {name: t for t, name, _ in reversed(timings.events)}  # each signal's first time
    assert at["on_response_body_complete"] - at["on_response_chunk_received"] >= 0.9 * DELAY
    chunks = [p.chunk for _, name, p in timings.events if name == "on_response_chunk_received"]
    assert b"".join(chunks) == b"slow" and len(chunks) >= 2


@pytest.mark.anyio
async def test_blocked_covers_the_wait_for_a_slot() -> None:
    config = timing_trace_config()
    queued = anyio.Event()

    async def on_queued(session: Any, ctx: Any, params: Any) -> None:
        queued.set()

    config.on_connection_queued_start.append(on_queued)
    connector = compat.TCPConnector(limit=1)
    result: dict[str, Timings] = {}
    with WireServer() as wire:
        async with compat.ClientSession(connector=connector, trace_configs=[config]) as s:

            async def fetch(label: str, url: str) -> None:
                async with s.get(url) as resp:
                    await resp.read()
                    result[label] = resp.timings  # type: ignore[attr-defined]

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(fetch, "holder", wire.url("/hold/holder"))
                    await wire.wait_for(lambda: bool(wire.seen("/hold/holder")))
                    tg.start_soon(fetch, "queued", wire.url("/ok"))
                    await queued.wait()
                    await anyio.sleep(DELAY)  # the time to be measured, not an ordering
                    wire.release("holder")
    phases = result["queued"].phases
    assert phases["blocked"] >= 0.9 * DELAY, phases
    assert result["holder"].phases["wait"] >= 0.9 * DELAY
    assert result["holder"].phases["blocked"] < phases["blocked"]  # only the queued one waited


@pytest.mark.anyio
async def test_dns_and_connect_phases_each_cover_their_own_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS answers after DELAY (a faked resolver); the TCP connect is slowed by TCP itself: the
    server's accept queue is full, its first SYN is dropped and the kernel sends it again about
    a second later, by which time the queue has room. Each phase gets its own delay."""
    fake_dns(monkeypatch, {"slow-dns.test": ["127.0.0.1"]}, delay=DELAY)
    with SlowAcceptServer() as slow:
        opener = compat.TraceConfig()

        async def open_soon(session: Any, ctx: Any, params: Any) -> None:
            slow.open_after(DELAY)  # after the first SYN has been dropped, before the retry

        opener.on_dns_resolvehost_end.append(open_soon)
        config = timing_trace_config()
        async with compat.ClientSession(trace_configs=[config, opener]) as session:
            async with session.get(f"http://slow-dns.test:{slow.port}/") as resp:
                assert await resp.text() == "ok"
                timings: Timings = resp.timings  # type: ignore[attr-defined]
    phases = timings.phases
    assert 0.9 * DELAY <= phases["dns"] < DELAY + 0.5, phases
    assert phases["connect"] >= 0.5, phases  # about 1 s: TCP's first retransmission
    assert abs(sum(phases.values()) - timings.total) < 1e-6


def test_demo_runs_and_shows_the_whole_timeline() -> None:
    result = _cli()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for signal in (
        "request_start",
        "dns_cache_miss",
        "dns_resolvehost_start",
        "connection_create_end",
        "request_redirect",
        "connection_reuseconn",
        "request_end",
        "response_body_complete",
    ):
        assert signal in out, signal
    assert out.count("total") == 3 and "-> 200 OK" in out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_json_repeat_shows_reuse_and_cache(server: TestServer, backend: str) -> None:
    url = server.url_for("/bytes/2000", host="localhost")
    result = _cli(url, "--json", "--repeat", "2", "--backend", backend)
    assert result.returncode == 0, result.stderr
    first, second = _json_lines(result.stdout)
    signals = [[e["signal"] for e in r["events"]] for r in (first, second)]
    assert "dns_cache_miss" in signals[0] and "connection_create_start" in signals[0]
    assert "connection_reuseconn" in signals[1] and "dns_cache_miss" not in signals[1]
    assert first["status"] == 200 and first["bytes"] == 2000 and first["error"] is None
    for record in (first, second):
        _assert_phases_add_up(record["phases_ms"])
    assert second["phases_ms"]["connect"] == 0 and second["phases_ms"]["dns"] == 0


def test_https_insecure_shows_tls_and_concurrency_shows_queueing(tls_server: TestServer) -> None:
    url = tls_server.url_for("/ok", host="localhost")
    result = _cli(url, "--insecure", "--json", "--concurrency", "3", "--limit", "1")
    assert result.returncode == 0, result.stderr
    records = _json_lines(result.stdout)
    assert len(records) == 3
    signals = [e["signal"] for r in records for e in r["events"]]
    assert signals.count("tls_handshake_end") == 1
    assert signals.count("connection_queued_start") == 2
    tls = next(e for r in records for e in r["events"] if e["signal"] == "tls_handshake_end")
    assert tls["version"].startswith("TLS")
    assert _cli(url, "--json").returncode == 1  # verified by default: the test CA is unknown


def test_method_headers_and_body(server: TestServer) -> None:
    result = _cli(
        server.url_for("/echo"), "-X", "post", "-H", "X-Test: yes", "-d", "hello", "--json"
    )
    assert result.returncode == 0, result.stderr
    (record,) = _json_lines(result.stdout)
    assert record["method"] == "POST" and record["bytes"] == 5
    seen = server.stats.seen[-1]
    assert seen.method == "POST" and seen.header("x-test") == "yes" and seen.body == b"hello"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["http://127.0.0.1:9/"], "ClientConnectorError"),
        (["http://no-such-host.invalid/"], "ClientConnectorDNSError"),
        (["http:///no-host"], "InvalidUrlClientError"),
    ],
)
def test_errors_end_the_timeline_with_an_exit_code_and_no_traceback(
    args: list[str], error: str
) -> None:
    result = _cli(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert error in result.stdout
    events = [line for line in result.stdout.splitlines() if " ms " in line and "|" not in line]
    last_event = events[-1]
    assert "request_exception" in last_event


def test_timeout_error(server: TestServer) -> None:
    result = _cli(server.url_for("/slow?delay=3"), "--timeout", "0.3", "--json")
    assert result.returncode == 1
    (record,) = _json_lines(result.stdout)
    assert (
        record["error"] == "TimeoutError" and record["events"][-1]["signal"] == "request_exception"
    )


def test_bad_arguments_exit_2() -> None:
    result = _cli("--repeat", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
