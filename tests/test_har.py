"""compat.har: HAR 1.2 files from both entry points, validated against the HAR 1.2 schema."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

import compat
from compat.__main__ import main as cli_main
from compat.har import REDACTED, HarRecorder

from .har_schema import HAR_SCHEMA
from .server import TestServer

pytestmark = pytest.mark.anyio

_CHECKER = jsonschema.Draft7Validator(HAR_SCHEMA, format_checker=jsonschema.FormatChecker())


def _valid(document: dict[str, Any]) -> list[dict[str, Any]]:
    errors = sorted(_CHECKER.iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    # the document survives a round trip through JSON (no bytes, no objects)
    assert json.loads(json.dumps(document)) == document
    entries: list[dict[str, Any]] = document["log"]["entries"]
    return entries


def _adds_up(entry: dict[str, Any]) -> None:
    phases = entry["timings"]
    total = sum(v for k, v in phases.items() if k != "ssl" and v != -1)
    assert entry["time"] == pytest.approx(total, abs=0.002)
    if phases["ssl"] != -1:
        assert phases["connect"] >= phases["ssl"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redirect_hops_are_entries_of_their_own_on_one_reused_connection(
    server: TestServer,
) -> None:
    recorder = HarRecorder()
    async with compat.ClientSession(trace_configs=[recorder.trace_config()]) as session:
        async with session.get(server.url_for("/redirect/1", host="localhost")) as resp:
            assert await resp.read() == b"ok"
    first, second = _valid(recorder.to_dict())
    assert first["response"]["status"] == 302
    assert first["response"]["redirectURL"] == server.url_for("/ok", host="localhost")
    assert second["request"]["url"] == server.url_for("/ok", host="localhost")
    assert second["response"]["status"] == 200
    assert second["response"]["content"]["size"] == 2
    assert second["response"]["content"]["mimeType"] == "text/plain"
    # keep-alive: the second hop went over the first hop's connection
    assert first["connection"] == second["connection"]
    assert first["serverIPAddress"] == second["serverIPAddress"] == "127.0.0.1"
    assert first["timings"]["dns"] >= 0 and first["timings"]["connect"] >= 0
    assert second["timings"]["dns"] == -1 and second["timings"]["connect"] == -1
    assert first["timings"]["ssl"] == second["timings"]["ssl"] == -1
    for entry in (first, second):
        _adds_up(entry)
        assert entry["request"]["httpVersion"] == entry["response"]["httpVersion"] == "HTTP/1.1"
        names = {h["name"].lower() for h in entry["request"]["headers"]}
        assert {"host", "accept", "user-agent"} <= names  # the headers that went on the wire
        assert entry["request"]["headersSize"] > 0 and entry["response"]["headersSize"] > 0


async def test_connection_ids_tell_reuse_from_new_connections(server: TestServer) -> None:
    recorder = HarRecorder()
    async with compat.ClientSession(trace_configs=[recorder.trace_config()]) as session:
        for path in ("/ok", "/ok", "/close", "/ok"):
            async with session.get(server.url_for(path)) as resp:
                await resp.read()
    entries = _valid(recorder.to_dict())
    ids = [e["connection"] for e in entries]
    assert ids[0] == ids[1] == ids[2]  # reused twice, then the server closes it
    assert ids[3] != ids[2]
    assert [e["timings"]["connect"] == -1 for e in entries] == [False, True, True, False]


async def test_a_failed_request_is_an_entry_with_its_error(server: TestServer) -> None:
    recorder = HarRecorder()
    url = f"http://127.0.0.1:{_closed_port()}/nothing"
    async with compat.ClientSession(trace_configs=[recorder.trace_config()]) as session:
        with pytest.raises(compat.ClientConnectorError):
            await session.get(url)
    (entry,) = _valid(recorder.to_dict())
    assert entry["request"]["url"] == url
    assert entry["response"]["status"] == 0
    assert entry["response"]["_error"].startswith("ClientConnectorError")
    assert "connection" not in entry
    _adds_up(entry)


async def test_no_secret_reaches_the_file(server: TestServer, tmp_path: Path) -> None:
    recorder = HarRecorder()
    secret = "s3cr3t-pw"
    base = server.url_for("/cookie").replace("http://", f"http://user:{secret}@")
    async with compat.ClientSession(trace_configs=[recorder.trace_config()]) as session:
        async with session.get(base) as resp:
            await resp.read()
        session.cookie_jar.update_cookies({"session": "cookie-value-42"})
        async with session.get(
            server.url_for("/headers"),
            auth=compat.BasicAuth("alice", secret),
            headers={"Proxy-Authorization": "Basic proxy-secret"},
        ) as resp:
            await resp.read()
    path = tmp_path / "out.har"
    recorder.save(path)
    text = path.read_text("utf-8")
    entries = _valid(json.loads(text))
    for leaked in (
        secret,
        base64.b64encode(f"user:{secret}".encode()).decode(),
        base64.b64encode(f"alice:{secret}".encode()).decode(),
        "ginger",  # the Set-Cookie value
        "cookie-value-42",
        "proxy-secret",
    ):
        assert leaked not in text
    first, second = entries
    assert first["response"]["cookies"][0] == {
        "name": "flavour",
        "value": REDACTED,
        "httpOnly": False,
        "secure": False,
        "path": "/",
    }
    assert {"name": "session", "value": REDACTED} in second["request"]["cookies"]
    sent = {h["name"].lower(): h["value"] for h in second["request"]["headers"]}
    assert sent["authorization"] == sent["proxy-authorization"] == REDACTED


async def test_redact_false_keeps_what_was_sent(server: TestServer) -> None:
    recorder = HarRecorder(redact=False)
    async with compat.ClientSession(trace_configs=[recorder.trace_config()]) as session:
        async with session.get(server.url_for("/cookie"), auth=compat.BasicAuth("a", "b")) as r:
            await r.read()
    (entry,) = _valid(recorder.to_dict())
    sent = {h["name"].lower(): h["value"] for h in entry["request"]["headers"]}
    assert sent["authorization"] == "Basic " + base64.b64encode(b"a:b").decode()
    assert entry["response"]["cookies"][0]["value"] == "ginger"


async def test_traced_client_records_each_hop(server: TestServer) -> None:
    recorder = HarRecorder()
    async with compat.traced_client(
        trace_configs=[recorder.trace_config()], follow_redirects=True
    ) as client:
        response = await client.get(server.url_for("/redirect/1"))
        assert response.status_code == 200
    first, second = _valid(recorder.to_dict())
    assert [first["response"]["status"], second["response"]["status"]] == [302, 200]
    assert first["connection"] == second["connection"]
    assert second["response"]["bodySize"] == second["response"]["content"]["size"] == 2


async def test_bodies_only_when_asked_and_bounded(server: TestServer) -> None:
    plain, with_bodies = HarRecorder(), HarRecorder(record_bodies=True, max_body_size=10)
    configs = [plain.trace_config(), with_bodies.trace_config()]
    async with compat.ClientSession(trace_configs=configs) as session:
        async with session.post(server.url_for("/echo"), data=b"0123456789abcdef") as resp:
            assert await resp.read() == b"0123456789abcdef"
    (bare,) = _valid(plain.to_dict())
    (full,) = _valid(with_bodies.to_dict())
    assert bare["request"]["bodySize"] == 16
    assert bare["request"]["postData"] == {"mimeType": "application/octet-stream", "text": ""}
    assert "text" not in bare["response"]["content"]
    assert full["request"]["postData"]["text"] == "0123456789"
    assert full["request"]["postData"]["comment"] == "first 10 bytes only"
    assert full["response"]["content"]["text"] == "0123456789"
    assert full["response"]["content"]["size"] == 16


async def test_gzip_sizes(server: TestServer) -> None:
    recorder = HarRecorder()
    async with compat.ClientSession(trace_configs=[recorder.trace_config()]) as session:
        async with session.get(server.url_for("/gzip")) as resp:
            body = await resp.read()
    (entry,) = _valid(recorder.to_dict())
    content = entry["response"]["content"]
    assert content["size"] == len(body) == len(b"compressed " * 1000)
    assert 0 < entry["response"]["bodySize"] < content["size"]
    assert content["compression"] == content["size"] - entry["response"]["bodySize"]


async def test_memory_is_bounded_by_max_entries(server: TestServer) -> None:
    recorder = HarRecorder(max_entries=3)
    async with compat.ClientSession(trace_configs=[recorder.trace_config()]) as session:
        for n in range(7):
            async with session.get(server.url_for(f"/ok?n={n}")) as resp:
                await resp.read()
    document = recorder.to_dict()
    entries = _valid(document)
    assert [e["request"]["queryString"] for e in entries] == [
        [{"name": "n", "value": str(n)}] for n in (4, 5, 6)
    ]
    assert document["log"]["comment"] == "4 older entries dropped (max_entries)"
    with pytest.raises(ValueError):
        HarRecorder(max_entries=0)


async def test_concurrent_and_cancelled_requests_each_get_their_entry(server: TestServer) -> None:
    recorder = HarRecorder()
    async with compat.ClientSession(trace_configs=[recorder.trace_config()]) as session:

        async def fetch(n: int) -> None:
            async with session.get(server.url_for(f"/ok?n={n}")) as resp:
                await resp.read()

        async def hang() -> None:
            await session.get(server.url_for("/fault/hang"))

        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(fetch, n)
        with anyio.move_on_after(0.3) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(hang)
                tg.start_soon(hang)
        assert scope.cancelled_caught
    entries = _valid(recorder.to_dict())
    ok = [e for e in entries if e["response"]["status"] == 200]
    cancelled = [e for e in entries if e["response"]["status"] == 0]
    assert sorted(e["request"]["queryString"][0]["value"] for e in ok) == [str(n) for n in range(8)]
    assert len(cancelled) == 2
    assert all("Cancel" in e["response"]["_error"] for e in cancelled)


def test_the_cli_writes_a_valid_har(server: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "cli.har"
    url = server.url_for("/redirect/1", host="localhost")
    assert cli_main([url, "--repeat", "2", "--har", str(path), "--json"]) == 0
    entries = _valid(json.loads(path.read_text("utf-8")))
    assert [e["response"]["status"] for e in entries] == [302, 200, 302, 200]
    assert len({e["connection"] for e in entries}) == 1
