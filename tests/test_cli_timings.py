"""`compat.timings` and the `python -m compat` command, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import compat
from compat.timings import PHASES, timing_trace_config

from .server import TestServer


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
