"""Request-level behaviour of compat.ClientSession: params, contexts, headers, redirects, errors."""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import json
import socket
import sys
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

import compat
from compat._transport._decoders import ACCEPT_ENCODING

from .conftest import Recorder
from .server import TestServer
from .wireserver import SlowAcceptServer, WireServer

pytestmark = pytest.mark.anyio


async def test_params_carry_method_url_with_query_headers_and_response(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get(
            server.url_for("/status/404"), params={"q": "a b"}, headers={"X-One": "1"}
        ) as resp:
            assert resp.status == 404
    (start,) = recorder.params("request_start")
    (end,) = recorder.params("request_end")
    assert start.method == "GET" and end.method == "GET"
    assert start.url == URL(server.url_for("/status/404")).with_query(q="a b") == end.url
    assert isinstance(start.headers, CIMultiDict) and start.headers["x-one"] == "1"
    assert end.headers is start.headers  # one mutable object through the request
    assert end.response is resp and end.response.status == 404
    assert recorder.sessions and all(s is session for s in recorder.sessions)


async def test_one_context_per_request_shared_by_its_signals(server: TestServer) -> None:
    recorder = Recorder(factory=SimpleNamespace)
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        for attempt in (1, 2):
            async with session.get(
                server.url_for("/ok"), trace_request_ctx={"current_attempt": attempt}
            ) as resp:
                await resp.read()
    contexts = [ctx for _, _, ctx in recorder.events]
    first = [c for c in contexts if c.trace_request_ctx == {"current_attempt": 1}]
    second = [c for c in contexts if c.trace_request_ctx == {"current_attempt": 2}]
    assert len(first) + len(second) == len(contexts)
    assert len({id(c) for c in first}) == 1 and len({id(c) for c in second}) == 1
    assert first[0] is not second[0]


async def test_two_trace_configs_each_get_their_own_context(server: TestServer) -> None:
    a, b = Recorder(), Recorder()
    async with compat.ClientSession(trace_configs=[a.config, b.config]) as session:
        async with session.get(server.url_for("/ok")) as resp:
            await resp.read()
    assert a.names() == b.names()
    assert {id(c) for _, _, c in a.events}.isdisjoint({id(c) for _, _, c in b.events})


async def test_headers_injected_in_request_start_reach_the_wire(server: TestServer) -> None:
    async def inject(session: Any, ctx: Any, params: compat.TraceRequestStartParams) -> None:
        params.headers["traceparent"] = "00-abc-def-01"
        params.headers.add("baggage", "a=1")
        params.headers.add("baggage", "b=2")

    config = compat.TraceConfig()
    config.on_request_start.append(inject)
    async with compat.ClientSession(trace_configs=[config]) as session:
        async with session.get(server.url_for("/headers"), headers={"Baggage": "z=0"}) as resp:
            sent = [(k.lower(), v) for k, v in await resp.json()]
            info_headers = resp.request_info.headers
    assert ("traceparent", "00-abc-def-01") in sent
    assert [v for k, v in sent if k == "baggage"] == ["z=0", "a=1", "b=2"]
    assert isinstance(info_headers, CIMultiDictProxy)
    assert info_headers["traceparent"] == "00-abc-def-01"
    assert info_headers.getall("baggage") == ["z=0", "a=1", "b=2"]
    assert info_headers["host"] == f"127.0.0.1:{server.port}"


async def test_signals_run_in_the_callers_context(server: TestServer) -> None:
    """OpenTelemetry attaches in start and detaches in end: a token only resets in its context."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("span", default="none")
    seen: list[str] = []

    async def start(session: Any, ctx: Any, params: Any) -> None:
        ctx.token = var.set("in-request")

    async def end(session: Any, ctx: Any, params: Any) -> None:
        seen.append(var.get())
        var.reset(ctx.token)

    async def exception(session: Any, ctx: Any, params: Any) -> None:
        seen.append("exception:" + var.get())
        var.reset(ctx.token)

    config = compat.TraceConfig()
    config.on_request_start.append(start)
    config.on_request_end.append(end)
    config.on_request_exception.append(exception)
    async with compat.ClientSession(trace_configs=[config]) as session:
        async with session.get(server.url_for("/ok")) as resp:
            await resp.read()
        with pytest.raises(compat.ClientResponseError):
            await session.get(server.url_for("/status/503"), raise_for_status=True)
    assert seen == ["in-request", "exception:in-request"]
    assert var.get() == "none"


async def test_redirect_hops_carry_their_own_url_and_response(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get(server.url_for("/redirect/2")) as resp:
            assert await resp.text() == "ok"
    redirects = recorder.params("request_redirect")
    assert [p.url.path for p in redirects] == ["/redirect/2", "/redirect/1"]
    assert [p.response.status for p in redirects] == [302, 302]
    (end,) = recorder.params("request_end")
    assert end.url.path == "/ok" and end.response is resp
    assert resp.history == tuple(p.response for p in redirects)
    assert len(recorder.params("request_start")) == 1


async def test_303_turns_post_into_get_and_307_keeps_the_body(server: TestServer) -> None:
    async with compat.ClientSession() as session:
        target = server.url_for("/echo")
        async with session.post(
            server.url_for("/redirect-to"), params={"url": target, "status": "303"}, data=b"body"
        ) as resp:
            assert resp.headers["X-Method"] == "GET" and await resp.read() == b""
        async with session.post(
            server.url_for("/redirect-to"), params={"url": target, "status": "307"}, data=b"body"
        ) as resp:
            assert resp.headers["X-Method"] == "POST" and await resp.read() == b"body"


async def test_too_many_redirects_after_the_last_redirect_signal(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        with pytest.raises(compat.TooManyRedirects) as info:
            await session.get(server.url_for("/redirect/50"), max_redirects=4)
    assert len(info.value.history) == 4
    assert recorder.names()[-2:] == ["request_redirect", "request_exception"]
    assert recorder.params("request_exception")[0].exception is info.value
    assert session.connector.stats().in_use == 0


async def test_no_redirects_when_not_allowed(server: TestServer, recorder: Recorder) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get(server.url_for("/redirect/1"), allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/ok"
    assert "request_redirect" not in recorder.names()


@pytest.mark.parametrize(
    ("entry", "target"),
    [
        ("session", "same-origin"),
        ("session", "other-port"),
        ("session", "other-host"),
        ("httpx", "other-port"),
        ("httpx", "other-host"),
    ],
)
@pytest.mark.parametrize("credentials", ["headers", "basic-auth"])
async def test_a_redirect_to_another_origin_sends_no_credentials_or_cookies(
    entry: str, target: str, credentials: str
) -> None:
    """Checked on the raw request the second hop's server received."""
    sent: dict[str, Any] = {"headers": {"Cookie": "explicit=k1", "X-Keep": "1"}}
    if credentials == "headers":
        sent["headers"]["Authorization"] = "Bearer t0ken"
    with WireServer(ports=2) as wire:
        final = {
            "same-origin": wire.url("/final"),
            "other-port": wire.url("/final", port=1),
            "other-host": wire.url("/final", host="localhost"),
        }[target]
        # The first hop also sets a jar cookie, for 127.0.0.1.
        url = httpx.URL(wire.url("/redirect"), params={"to": final, "cookie": "jar=k2"})
        if entry == "session":
            auth = compat.BasicAuth("user", "pw") if credentials == "basic-auth" else None
            async with compat.ClientSession() as session:
                async with session.get(str(url), auth=auth, **sent) as resp:
                    assert await resp.text() == "ok"
        else:
            auth = ("user", "pw") if credentials == "basic-auth" else None
            async with compat.traced_client(follow_redirects=True) as client:
                response = await client.get(url, auth=auth, **sent)
                assert response.text == "ok"
        (first,) = wire.seen("/redirect")
        (second,) = wire.seen("/final")
    assert first.header("authorization") and first.header("cookie") == "explicit=k1"
    assert second.header("x-keep") == "1"
    if target == "same-origin":
        assert second.header("authorization") == first.header("authorization")
        assert "explicit=k1" in (second.header("cookie") or "")
    else:
        assert "authorization" not in second.header_names()
        assert b"t0ken" not in second.head and b"explicit=k1" not in second.head
        if target == "other-host":  # cookies are scoped by host, not by port
            assert "cookie" not in second.header_names()


_PASSWORD = "s3cret-pw"


def _assert_no_password(recorder: Recorder, error: BaseException | None) -> None:
    """No URL a handler or the caller can see carries the password."""

    def check_url(url: Any, where: str) -> None:
        assert url is None or (URL(str(url)).password is None and _PASSWORD not in str(url)), where

    def check_response(response: Any, where: str) -> None:
        for hop in (*getattr(response, "history", ()), response):
            check_url(hop.url, where + ".response.url")
            info = getattr(hop, "request_info", None)
            if info is not None:
                check_url(info.url, where + ".request_info.url")
                check_url(info.real_url, where + ".request_info.real_url")

    for name, params, _ in recorder.events:
        check_url(getattr(params, "url", None), name)
        if getattr(params, "response", None) is not None:
            check_response(params.response, name)
        if getattr(params, "exception", None) is not None:
            assert _PASSWORD not in str(params.exception) + repr(params.exception), name
    if error is not None:
        assert _PASSWORD not in str(error) + repr(error)
        info = getattr(error, "request_info", None)
        if info is not None:
            check_url(info.url, "error.request_info.url")
        for hop in getattr(error, "history", ()):
            check_response(hop, "error.history")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "case", ["ok", "redirect", "other-origin", "error", "refused", "dns", "timeout"]
)
async def test_credentials_in_the_url_become_a_header_and_reach_no_handler(
    server: TestServer, recorder: Recorder, case: str
) -> None:
    creds = f"alice:{_PASSWORD}@"
    base = f"http://{creds}127.0.0.1:{server.port}"
    url = {
        "ok": f"{base}/headers",
        "redirect": f"{base}/redirect/2",
        "other-origin": f"{base}/redirect-to?url=" + server.url_for("/headers", host="localhost"),
        "error": f"{base}/status/500",
        "refused": f"http://{creds}127.0.0.1:{_closed_port()}/",
        "dns": f"http://{creds}no-such-host.invalid/",
        "timeout": f"{base}/slow?delay=2",
    }[case]
    seen_before = len(server.stats.seen)
    error: BaseException | None = None
    timeout = compat.ClientTimeout(total=0.2 if case == "timeout" else 10)
    async with compat.ClientSession(trace_configs=[recorder.config], timeout=timeout) as session:
        try:
            async with session.get(url, raise_for_status=True) as resp:
                await resp.read()
                _assert_no_password(recorder, None)
                for hop in (*resp.history, resp):
                    assert hop.url.password is None and _PASSWORD not in str(hop.url)
        except (compat.ClientError, TimeoutError) as exc:
            error = exc
    assert (error is None) == (case in ("ok", "redirect", "other-origin")), error
    names = recorder.names()
    assert names[-1] == ("request_exception" if error else "request_end")
    _assert_no_password(recorder, error)
    first = server.stats.seen[seen_before:][:1]
    if case not in ("refused", "dns"):  # the password went only into Authorization
        assert first[0].header("authorization") == compat.BasicAuth("alice", _PASSWORD).encode()
    if case == "other-origin":
        assert server.stats.seen[-1].header("authorization") is None


async def test_credentials_in_the_url_reach_no_handler_of_an_httpx_client(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.traced_client(
        trace_configs=[recorder.config], follow_redirects=True
    ) as client:
        response = await client.get(f"http://alice:{_PASSWORD}@127.0.0.1:{server.port}/redirect/1")
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://alice:{_PASSWORD}@127.0.0.1:{_closed_port()}/")
    assert recorder.names().count("request_exception") == 1
    _assert_no_password(recorder, None)


async def test_bad_status_is_an_end_and_raise_for_status_is_an_exception(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get(server.url_for("/status/500")) as resp:
            assert resp.status == 500 and not resp.ok
        with pytest.raises(compat.ClientResponseError) as info:
            await session.get(server.url_for("/status/500"), raise_for_status=True)
    assert info.value.status == 500 and info.value.message == "Internal Server Error"
    assert recorder.names().count("request_end") == 1
    (exc,) = recorder.params("request_exception")
    assert exc.exception is info.value
    assert session.connector.stats().in_use == 0


async def test_response_api(server: TestServer) -> None:
    async with compat.ClientSession() as session:
        async with session.get(server.url_for("/json")) as resp:
            assert resp.content_type == "application/json" and resp.charset is None
            assert resp.get_encoding() == "utf-8"
            assert await resp.json() == {"answer": 42}
            assert resp.url == URL(server.url_for("/json")) == resp.real_url
            assert resp.method == "GET" and resp.reason == "OK"
            resp.custom_attribute = "tracing libraries set these"  # type: ignore[attr-defined]
        async with session.get(server.url_for("/ok")) as resp:
            with pytest.raises(compat.ContentTypeError):
                await resp.json()
        resp = await session.get(server.url_for("/bytes/10"))
        assert await resp.read() == b"x" * 10
        assert await resp.text() == "x" * 10


async def test_every_read_path_fires_chunks_that_add_up_to_the_body(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        for reader in ("read", "text", "iter_chunked", "iter_any", "content.read"):
            recorder.clear()
            async with session.get(server.url_for("/chunked/5/1000")) as resp:
                if reader == "read":
                    body = await resp.read()
                elif reader == "text":
                    body = (await resp.text()).encode()
                elif reader == "iter_chunked":
                    body = b"".join([c async for c in resp.content.iter_chunked(300)])
                elif reader == "iter_any":
                    body = b"".join([c async for c in resp.content.iter_any()])
                else:
                    body = await resp.content.read()
            chunks = [p.chunk for p in recorder.params("response_chunk_received")]
            assert b"".join(chunks) == body == b"y" * 5000, reader
            (complete,) = recorder.params("response_body_complete")
            assert complete.size == 5000
    assert session.connector.stats().in_use == 0


@pytest.mark.parametrize(
    "reader", ["read", "text", "iter_chunked", "iter_any", "content.read", "httpx", "httpx-stream"]
)
async def test_response_chunks_are_signalled_as_the_body_arrives(reader: str) -> None:
    """The server sends 1,000 bytes of a 3,000-byte body and waits: a chunk signal comes
    before the server is let go, and no body-complete signal does."""
    recorder = Recorder()
    arrived = anyio.Event()

    async def on_chunk(session: Any, ctx: Any, params: Any) -> None:
        arrived.set()

    recorder.config.on_response_chunk_received.append(on_chunk)
    body: list[bytes] = []
    with WireServer() as wire:
        url = wire.url("/part/rest?size=3000&first=1000")

        async def read() -> None:
            if reader.startswith("httpx"):
                async with compat.traced_client(trace_configs=[recorder.config]) as client:
                    if reader == "httpx":
                        body.append((await client.get(url)).content)
                    else:
                        async with client.stream("GET", url) as response:
                            body.extend([c async for c in response.aiter_raw()])
                return
            async with (
                compat.ClientSession(trace_configs=[recorder.config]) as session,
                session.get(url) as resp,
            ):
                if reader == "read":
                    body.append(await resp.read())
                elif reader == "text":
                    body.append((await resp.text()).encode())
                elif reader == "iter_chunked":
                    body.extend([c async for c in resp.content.iter_chunked(300)])
                elif reader == "iter_any":
                    body.extend([c async for c in resp.content.iter_any()])
                else:
                    body.append(await resp.content.read())

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                try:
                    with anyio.move_on_after(5):
                        await arrived.wait()
                    before = b"".join(p.chunk for p in recorder.params("response_chunk_received"))
                    completed_before = recorder.params("response_body_complete")
                finally:
                    wire.release("rest")
    assert before and before == b"a" * len(before) and len(before) <= 1000, "no chunk on time"
    assert completed_before == []
    chunks = [p.chunk for p in recorder.params("response_chunk_received")]
    assert b"".join(chunks) == b"".join(body) == b"a" * 1000 + b"b" * 2000
    (complete,) = recorder.params("response_body_complete")
    assert complete.size == 3000


@pytest.mark.parametrize("entry", ["session", "httpx"])
@pytest.mark.parametrize("body_kind", ["streamed", "bytes"])
async def test_request_signals_come_once_the_server_can_see_the_bytes(
    entry: str, body_kind: str
) -> None:
    """headers-sent once the head is on the wire; each chunk-sent once that chunk is: each
    handler waits (bounded) for the server to have received those bytes."""
    parts = [b"<one:" + b"1" * 10 + b">", b"<two:" + b"2" * 200_000 + b">", b"<three>"]
    on_time: list[tuple[str, bytes, bool]] = []
    recorder = Recorder()
    with WireServer() as wire:

        async def until_received(what: str, data: bytes) -> None:
            try:
                await wire.wait_for(lambda: data in wire.received(), timeout=2)
                on_time.append((what, data[:8], True))
            except TimeoutError:
                on_time.append((what, data[:8], False))

        async def on_headers_sent(session: Any, ctx: Any, params: Any) -> None:
            await until_received("head", b"\r\n\r\n")

        async def on_chunk_sent(session: Any, ctx: Any, params: Any) -> None:
            await until_received("chunk", params.chunk)

        recorder.config.on_request_headers_sent.append(on_headers_sent)
        recorder.config.on_request_chunk_sent.append(on_chunk_sent)

        async def streamed() -> Any:
            for part in parts:
                yield part

        content: Any = streamed() if body_kind == "streamed" else b"".join(parts)
        with anyio.fail_after(30):
            if entry == "session":
                async with (
                    compat.ClientSession(trace_configs=[recorder.config]) as session,
                    session.post(wire.url("/echo"), data=content) as resp,
                ):
                    echoed = await resp.read()
            else:
                async with compat.traced_client(trace_configs=[recorder.config]) as client:
                    echoed = (await client.post(wire.url("/echo"), content=content)).content
    assert echoed == b"".join(parts)
    sent = [p.chunk for p in recorder.params("request_chunk_sent")]
    assert sent == (parts if body_kind == "streamed" else [b"".join(parts)])
    assert [what for what, _, _ in on_time] == ["head"] + ["chunk"] * len(sent)
    assert all(ok for _, _, ok in on_time), on_time


async def test_request_body_chunks_are_signalled_in_order_and_add_up(
    server: TestServer, recorder: Recorder
) -> None:
    async def body() -> Any:
        for part in (b"one-", b"two-", b"three"):
            yield part

    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.post(server.url_for("/echo"), data=body()) as resp:
            assert await resp.read() == b"one-two-three"
        async with session.post(server.url_for("/echo"), json={"a": 1}) as resp:
            assert json.loads(await resp.read()) == {"a": 1}
    chunks = [p.chunk for p in recorder.params("request_chunk_sent")]
    assert chunks[:3] == [b"one-", b"two-", b"three"]
    assert json.loads(b"".join(chunks[3:])) == {"a": 1}
    sent = recorder.params("request_headers_sent")
    assert sent[0].headers["Transfer-Encoding"] == "chunked"
    assert sent[1].headers["Content-Type"] == "application/json"


async def test_a_start_handler_error_reaches_the_caller_without_an_exception_signal(
    server: TestServer,
) -> None:
    exceptions: list[Any] = []

    async def start(*_: Any) -> None:
        raise LookupError("from start")

    async def on_exception(session: Any, ctx: Any, params: Any) -> None:
        exceptions.append(params.exception)

    config = compat.TraceConfig()
    config.on_request_start.append(start)
    config.on_request_exception.append(on_exception)
    async with compat.ClientSession(trace_configs=[config]) as session:
        with pytest.raises(LookupError):
            await session.get(server.url_for("/ok"))
    assert exceptions == []


@pytest.mark.parametrize(
    "signal",
    [
        "on_connection_create_end",
        "on_request_headers_sent",
        "on_request_end",
        "on_connection_reuseconn",
    ],
)
async def test_a_later_handler_error_reaches_exception_and_frees_the_connection(
    server: TestServer, signal: str
) -> None:
    exceptions: list[BaseException] = []

    async def boom(*_: Any) -> None:
        raise LookupError(signal)

    async def on_exception(session: Any, ctx: Any, params: Any) -> None:
        exceptions.append(params.exception)

    config = compat.TraceConfig()
    getattr(config, signal).append(boom)
    config.on_request_exception.append(on_exception)
    async with compat.ClientSession(trace_configs=[config]) as session:
        if signal == "on_connection_reuseconn":
            with pytest.raises(LookupError):  # first request creates; second reuses
                for _ in range(2):
                    await (await session.get(server.url_for("/ok"))).read()
        else:
            with pytest.raises(LookupError):
                await session.get(server.url_for("/ok"))
        assert [type(e) for e in exceptions] == [LookupError]
        assert session.connector.stats().in_use == 0
        config_free = compat.ClientSession(connector=session.connector, connector_owner=False)
        async with config_free, config_free.get(server.url_for("/ok")) as resp:
            assert await resp.text() == "ok"  # the session's pool still works


async def test_invalid_and_non_http_urls(server: TestServer, recorder: Recorder) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        with pytest.raises(compat.NonHttpUrlClientError):
            await session.get("ftp://example.org/file")
        assert recorder.events == []  # refused before on_request_start, as aiohttp
        with pytest.raises(compat.InvalidUrlClientError):
            await session.get("http:///no-host")
        assert recorder.names() == ["request_start", "request_exception"]
        with pytest.raises(compat.InvalidURL):
            await session.get("http://[::1")
        with pytest.raises(ValueError, match="non-token"):
            await session.request("GE T", server.url_for("/ok"))


async def test_total_timeout_raises_timeout_error_and_the_session_stays_usable(
    server: TestServer, recorder: Recorder
) -> None:
    timeout = compat.ClientTimeout(total=0.2)
    async with compat.ClientSession(trace_configs=[recorder.config], timeout=timeout) as session:
        with pytest.raises(TimeoutError) as info:
            await session.get(server.url_for("/slow?delay=2"))
        assert type(info.value).__name__ == "TimeoutError"
        assert isinstance(info.value, asyncio.TimeoutError)  # aiohttp users' except clause
        if sys.version_info >= (3, 11):
            assert type(info.value) is TimeoutError
        assert recorder.params("request_exception")[0].exception is info.value
        assert session.connector.stats().in_use == 0
        async with session.get(server.url_for("/ok")) as resp:
            assert await resp.text() == "ok"


async def test_each_request_s_total_timeout_fires_at_its_own_deadline(server: TestServer) -> None:
    """One timer serves every pending deadline of a loop: a shorter deadline that starts while
    a longer one is pending still fires on time, and only the deadlines that are due fire."""
    long_started = anyio.Event()

    async def started(*_: Any) -> None:
        long_started.set()

    config = compat.TraceConfig()
    config.on_connection_create_start.append(started)  # inside the request's deadline
    bodies: list[str] = []
    long_timeout = compat.ClientTimeout(total=30)
    short_timeout = compat.ClientTimeout(total=0.3)
    async with (
        compat.ClientSession(timeout=long_timeout, trace_configs=[config]) as patient,
        compat.ClientSession(timeout=short_timeout) as hasty,
    ):

        async def slow_but_in_time() -> None:
            async with patient.get(server.url_for("/slow?delay=1.5")) as resp:
                bodies.append(await resp.text())

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_but_in_time)
            await long_started.wait()
            for _ in range(2):  # the second after the first has fired and re-armed the timer
                with pytest.raises(TimeoutError):
                    await hasty.get(server.url_for("/slow?delay=1.5"))
                assert bodies == []  # the long request is still waiting, not cancelled
    assert bodies == ["slow"]


async def test_an_untraced_request_times_out_on_a_reused_connection(server: TestServer) -> None:
    """A request that runs no code of the user's (no handlers, middlewares or body iterators)
    needs no cancel scope for its deadline on trio: the socket wait it is in is woken at the
    deadline instead (`Deadline`, watched). It fails as any other: TimeoutError, its
    connection dropped, the session usable, and the deadline its own."""
    timeout = compat.ClientTimeout(total=0.3)
    async with compat.ClientSession(timeout=timeout) as session:
        for method in ("GET", "POST"):  # (a POST is not retried on a dropped connection)
            async with session.get(server.url_for("/ok")) as resp:  # a connection to reuse
                assert await resp.text() == "ok"
            assert session.connector.stats().idle == 1
            started = anyio.current_time()
            with anyio.fail_after(5), pytest.raises(TimeoutError) as info:
                await session.request(method, server.url_for("/slow?delay=3"), data=b"x")
            assert 0.25 <= anyio.current_time() - started < 2.5
            if sys.version_info >= (3, 11):
                assert type(info.value) is TimeoutError
            stats = session.connector.stats()
            assert stats.in_use == 0 and stats.idle == 0  # the timed-out connection is gone
        async with session.get(server.url_for("/slow?delay=0.1")) as resp:  # in time
            assert await resp.text() == "slow"


async def test_untraced_deadlines_on_reused_connections_fire_each_at_its_own_time(
    server: TestServer,
) -> None:
    """Watched deadlines share one timer per run (as asyncio's share one per loop): a shorter
    one that starts while a longer one is pending fires on time and alone; and a request
    cancelled from outside still frees its connection."""
    async with compat.ClientSession(connector=compat.TCPConnector(limit=10)) as session:
        async with anyio.create_task_group() as tg:  # two idle connections to reuse
            for _ in range(2):
                tg.start_soon(_read_ok, session, server.url_for("/slow?delay=0.1"))
        assert session.connector.stats().idle == 2
        bodies: list[str] = []

        async def patient() -> None:
            timeout = compat.ClientTimeout(total=30)
            async with session.get(server.url_for("/slow?delay=1.5"), timeout=timeout) as resp:
                bodies.append(await resp.text())

        async with anyio.create_task_group() as tg:
            tg.start_soon(patient)
            with anyio.fail_after(5):
                while session.connector.stats().idle != 1:  # the patient one took its connection
                    await anyio.lowlevel.checkpoint()
            started = anyio.current_time()
            with anyio.fail_after(5), pytest.raises(TimeoutError):
                await session.get(
                    server.url_for("/slow?delay=3"), timeout=compat.ClientTimeout(total=0.3)
                )
            assert anyio.current_time() - started < 1.2
            assert bodies == []  # the patient one is still waiting, not woken
        assert bodies == ["slow"]
        with anyio.move_on_after(0.2) as scope:
            await session.get(server.url_for("/slow?delay=2"))
        assert scope.cancelled_caught
        assert session.connector.stats().in_use == 0
        assert await _read_ok(session, server.url_for("/ok")) == "ok"


async def _read_ok(session: compat.ClientSession, url: str) -> str:
    async with session.get(url) as resp:
        return await resp.text()


async def test_an_untraced_request_s_deadline_bounds_connecting_and_queueing(
    server: TestServer,
) -> None:
    """The other waits of such a request (connecting, waiting for a pool slot) are bounded by
    the same deadline, through cancel scopes of their own."""
    with SlowAcceptServer() as black_hole:  # its accept queue is full: SYNs go unanswered
        timeout = compat.ClientTimeout(total=0.3, sock_connect=30)
        async with compat.ClientSession(timeout=timeout) as session:
            started = anyio.current_time()
            with anyio.fail_after(5), pytest.raises(TimeoutError):
                await session.get(f"http://127.0.0.1:{black_hole.port}/")
            assert anyio.current_time() - started < 2.5
    connector = compat.TCPConnector(limit=1)
    async with compat.ClientSession(connector=connector) as session:
        held = await session.get(server.url_for("/slow-body?delay=3"))  # holds the only slot
        started = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(TimeoutError):
            await session.get(server.url_for("/ok"), timeout=compat.ClientTimeout(total=0.3))
        assert anyio.current_time() - started < 2.5
        held.release()
        async with session.get(server.url_for("/ok")) as resp:
            assert await resp.text() == "ok"


@pytest.fixture
def answers_once_then_stops_reading() -> Iterator[int]:
    """A server that answers one request with "ok", then reads nothing more from the
    connection (small receive buffer): an upload after it stalls once the buffers are full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        done.wait(10)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    done.set()
    thread.join(10)
    listener.close()


async def test_an_untraced_upload_stalled_on_a_reused_connection_times_out(
    answers_once_then_stops_reading: int,
) -> None:
    """The watched deadline wakes a send waiting for room as it wakes a read (see above)."""
    url = f"http://127.0.0.1:{answers_once_then_stops_reading}/"
    async with compat.ClientSession(timeout=compat.ClientTimeout(total=0.5)) as session:
        async with session.get(url) as resp:
            assert await resp.text() == "ok"
        with anyio.fail_after(5), pytest.raises(TimeoutError):
            await session.post(url, data=b"x" * (32 * 2**20))  # far more than the buffers
        assert session.connector.stats().in_use == 0


async def test_total_timeout_covers_the_body(server: TestServer) -> None:
    async with compat.ClientSession(timeout=compat.ClientTimeout(total=0.3)) as session:
        resp = await session.get(server.url_for("/slow-body?delay=2"))
        with pytest.raises(TimeoutError):
            await resp.read()
        assert session.connector.stats().in_use == 0


@pytest.mark.parametrize("signal", ["on_connection_reuseconn", "on_request_headers_sent"])
async def test_a_handler_waiting_past_the_total_timeout_is_cut_and_frees_the_connection(
    server: TestServer, recorder: Recorder, signal: str
) -> None:
    """The total timeout bounds the handlers a request runs (aiohttp's does). On trio a
    traced request on a reused connection has no cancel scope of its own (`Deadline.guarded`):
    a handler that waits is still cut at the deadline, by a `Cancelled` it can see."""
    seen: list[str] = []

    async def hang(session: Any, ctx: Any, params: Any) -> None:
        if ctx.trace_request_ctx != "hang":
            return
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise

    getattr(recorder.config, signal).append(hang)
    connector = compat.TCPConnector(limit=1)
    timeout = compat.ClientTimeout(total=0.3)
    async with compat.ClientSession(
        connector=connector, timeout=timeout, trace_configs=[recorder.config]
    ) as session:
        assert await _read_ok(session, server.url_for("/ok")) == "ok"  # a connection to reuse
        recorder.clear()
        started = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(TimeoutError) as info:
            await session.get(server.url_for("/ok"), trace_request_ctx="hang")
        assert 0.25 <= anyio.current_time() - started < 2.5
        assert seen == ["cancelled"]
        assert recorder.params("request_exception")[0].exception is info.value
        assert "connection_reuseconn" in recorder.names()
        assert session.connector.stats().in_use == 0
        assert await _read_ok(session, server.url_for("/ok")) == "ok"  # limit=1: it is back


async def test_a_body_signal_handler_waiting_past_the_total_timeout_is_cut(
    server: TestServer,
) -> None:
    """A read of a body still arriving runs the chunk signal's handlers under the same
    deadline (on trio a watched read, its handlers guarded): one that waits is cut."""
    seen: list[str] = []

    async def hang(session: Any, ctx: Any, params: Any) -> None:
        seen.append(params.chunk.decode())
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise

    config = compat.TraceConfig()
    config.on_response_chunk_received.append(hang)
    timeout = compat.ClientTimeout(total=0.5)
    async with compat.ClientSession(timeout=timeout, trace_configs=[config]) as session:
        started = anyio.current_time()
        resp = await session.get(server.url_for("/slow-body?delay=0.1"))
        with anyio.fail_after(5), pytest.raises(TimeoutError):
            await resp.read()
        assert 0.4 <= anyio.current_time() - started < 2.5
        assert seen[-1] == "cancelled" and seen[0] in ("sl", "slow")
        assert session.connector.stats().in_use == 0


async def test_a_handler_may_send_requests_of_its_own(server: TestServer) -> None:
    """A handler that sends requests (through another session, one with a middleware: a
    deadline of its own kind) works, and the outer request's deadline still bounds it: the
    inner request sees it as a cancellation, not as compat's internal wake-up."""
    bodies: list[str] = []

    async def passthrough(req: Any, handler: Any) -> Any:
        return await handler(req)

    inner_recorder = Recorder()
    async with compat.ClientSession(
        middlewares=(passthrough,), trace_configs=[inner_recorder.config]
    ) as inner:

        async def fetch(session: Any, ctx: Any, params: Any) -> None:
            path = "/slow?delay=2" if ctx.trace_request_ctx == "slow" else "/ok"
            async with inner.get(server.url_for(path)) as resp:
                bodies.append(await resp.text())

        config = compat.TraceConfig()
        config.on_request_headers_sent.append(fetch)
        timeout = compat.ClientTimeout(total=0.5)
        async with compat.ClientSession(timeout=timeout, trace_configs=[config]) as session:
            with anyio.fail_after(5):
                for _ in range(2):  # a new connection, then a reused one
                    assert await _read_ok(session, server.url_for("/ok")) == "ok"
                assert bodies == ["ok", "ok"]
                started = anyio.current_time()
                with pytest.raises(TimeoutError):
                    await session.get(server.url_for("/ok"), trace_request_ctx="slow")
                assert anyio.current_time() - started < 1.5
                assert session.connector.stats().in_use == 0
            (inner_error,) = inner_recorder.params("request_exception")
            assert isinstance(inner_error.exception, anyio.get_cancelled_exc_class())
            assert await _read_ok(inner, server.url_for("/ok")) == "ok"


async def test_a_shield_a_handler_opens_does_not_hold_off_the_total_timeout(
    server: TestServer,
) -> None:
    """aiohttp's total timeout cancels the task, which an anyio shield inside a handler does not
    stop on asyncio; compat cuts such a wait at the deadline on both backends alike."""
    outcome: list[str] = []

    async def shielded(session: Any, ctx: Any, params: Any) -> None:
        if ctx.trace_request_ctx != "shielded":
            return
        try:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(1.5)
        except anyio.get_cancelled_exc_class():
            outcome.append("cut")
            raise
        outcome.append("held")

    config = compat.TraceConfig()
    config.on_request_headers_sent.append(shielded)
    timeout = compat.ClientTimeout(total=0.3)
    async with compat.ClientSession(timeout=timeout, trace_configs=[config]) as session:
        assert await _read_ok(session, server.url_for("/ok")) == "ok"  # a connection to reuse
        started = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(TimeoutError):
            await session.get(server.url_for("/ok"), trace_request_ctx="shielded")
        assert anyio.current_time() - started < 1.2
    assert outcome == ["cut"]


async def test_an_exception_handler_is_not_bounded_by_the_request_s_deadline(
    server: TestServer,
) -> None:
    """`on_request_exception` runs after the request's deadline is over (aiohttp sends it
    outside its total timeout): a handler of it that awaits past that deadline completes, also
    when the failure came out of a request whose deadline had no cancel scope (trio)."""
    delivered: list[BaseException] = []

    async def on_exception(session: Any, ctx: Any, params: Any) -> None:
        await anyio.sleep(0.6)
        delivered.append(params.exception)

    config = compat.TraceConfig()
    config.on_request_exception.append(on_exception)
    timeout = compat.ClientTimeout(total=0.3)
    async with compat.ClientSession(timeout=timeout, trace_configs=[config]) as session:
        assert await _read_ok(session, server.url_for("/ok")) == "ok"  # a connection to reuse
        with anyio.fail_after(5), pytest.raises(compat.ClientError) as info:
            await session.get(server.url_for("/fault/reset-before"))
    assert delivered == [info.value]


async def test_a_slow_reuse_handler_counts_against_the_connect_timeout(server: TestServer) -> None:
    """aiohttp sends `on_connection_reuseconn` from inside `connector.connect()`, under
    `ClientTimeout.connect`: a handler slower than it fails the request as a connect timeout,
    on trio's scope-less way for a reused connection too."""

    async def slow(session: Any, ctx: Any, params: Any) -> None:
        if ctx.trace_request_ctx == "slow":
            await anyio.sleep(1.5)

    config = compat.TraceConfig()
    config.on_connection_reuseconn.append(slow)
    timeout = compat.ClientTimeout(total=10, connect=0.3)
    async with compat.ClientSession(timeout=timeout, trace_configs=[config]) as session:
        assert await _read_ok(session, server.url_for("/ok")) == "ok"
        started = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(compat.ConnectionTimeoutError):
            await session.get(server.url_for("/ok"), trace_request_ctx="slow")
        assert anyio.current_time() - started < 1.2
        assert session.connector.stats().in_use == 0
        assert await _read_ok(session, server.url_for("/ok")) == "ok"


async def test_a_handler_with_scopes_and_tasks_of_its_own_runs_to_its_end(
    server: TestServer, recorder: Recorder
) -> None:
    """A handler that waits inside cancel scopes and task groups of its own (as an exporter
    sending over httpx does) completes, and the request with it: the deadline's scopes around
    its waits (trio, `Deadline.guarded`) nest inside the handler's."""
    done: list[str] = []

    async def busy(session: Any, ctx: Any, params: Any) -> None:
        with anyio.move_on_after(5):
            await anyio.sleep(0.01)
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep, 0.02)
            await anyio.sleep(0.01)
        with anyio.move_on_after(0.01) as scope:
            await anyio.sleep(5)
        assert scope.cancelled_caught
        await anyio.lowlevel.checkpoint()
        done.append(type(params).__name__)

    recorder.config.on_request_headers_sent.append(busy)
    recorder.config.on_connection_reuseconn.append(busy)
    timeout = compat.ClientTimeout(total=5)
    async with compat.ClientSession(timeout=timeout, trace_configs=[recorder.config]) as session:
        with anyio.fail_after(10):
            for _ in range(2):  # a new connection, then a reused one
                assert await _read_ok(session, server.url_for("/ok")) == "ok"
    assert done == [
        "TraceRequestHeadersSentParams",
        "TraceConnectionReuseconnParams",
        "TraceRequestHeadersSentParams",
    ]
    assert recorder.names().count("request_end") == 2


@pytest.mark.parametrize("group", ["anyio", "native"])
async def test_a_handler_waiting_in_its_own_task_group_is_cut_at_the_deadline(
    server: TestServer, recorder: Recorder, anyio_backend: str, group: str
) -> None:
    """The deadline's cancellation reaches a handler parked in a task group of its own (anyio's,
    or the backend's own); the group's tasks end with it and the request fails with
    TimeoutError."""
    if group == "native" and anyio_backend == "trio":
        import trio

        task_group: Any = trio.open_nursery
    elif group == "native":
        if sys.version_info < (3, 11):
            pytest.skip("asyncio.TaskGroup is 3.11's")
        task_group = asyncio.TaskGroup
    else:
        task_group = anyio.create_task_group
    ended: list[str] = []

    async def child() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            ended.append("child")

    async def parked(session: Any, ctx: Any, params: Any) -> None:
        if ctx.trace_request_ctx != "park":
            return
        async with task_group() as tg:
            if hasattr(tg, "start_soon"):
                tg.start_soon(child)
            else:
                tg.create_task(child())
            await anyio.sleep_forever()

    recorder.config.on_request_headers_sent.append(parked)
    timeout = compat.ClientTimeout(total=0.3)
    async with compat.ClientSession(timeout=timeout, trace_configs=[recorder.config]) as session:
        assert await _read_ok(session, server.url_for("/ok")) == "ok"
        with anyio.fail_after(5), pytest.raises(TimeoutError):
            await session.get(server.url_for("/ok"), trace_request_ctx="park")
        assert ended == ["child"]
        assert session.connector.stats().in_use == 0
        assert await _read_ok(session, server.url_for("/ok")) == "ok"


async def test_sock_read_timeout_is_a_socket_timeout_error(
    server: TestServer, recorder: Recorder
) -> None:
    timeout = compat.ClientTimeout(sock_read=0.2)
    async with compat.ClientSession(trace_configs=[recorder.config], timeout=timeout) as session:
        with pytest.raises(compat.SocketTimeoutError) as info:
            await session.get(server.url_for("/slow?delay=2"))
    assert isinstance(info.value, compat.ServerTimeoutError) and isinstance(
        info.value, TimeoutError
    )
    assert type(recorder.params("request_exception")[0].exception).__name__ == "SocketTimeoutError"


async def test_cancellation_reaches_the_exception_signal_and_frees_the_connection(
    server: TestServer, recorder: Recorder, anyio_backend: str
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        with anyio.move_on_after(0.2) as scope:
            await session.get(server.url_for("/slow?delay=2"))
        assert scope.cancelled_caught
        (params,) = recorder.params("request_exception")
        expected = anyio.get_cancelled_exc_class()
        assert isinstance(params.exception, expected)
        assert session.connector.stats().in_use == 0
        async with session.get(server.url_for("/ok")) as resp:
            assert await resp.text() == "ok"


async def test_unreleased_responses_give_their_connection_back(server: TestServer) -> None:
    connector = compat.TCPConnector(limit=1)
    with anyio.fail_after(10):
        await _drop_unreleased(connector, server)
    assert connector.stats().in_use == 0 and connector.closed


async def _drop_unreleased(connector: compat.TCPConnector, server: TestServer) -> None:
    async with compat.ClientSession(connector=connector) as session:
        for _ in range(3):  # each response is dropped unread; limit=1 would deadlock otherwise
            resp = await session.get(server.url_for("/bytes/100"))
            assert resp.status == 200
            del resp
        resp = await session.get(server.url_for("/ok"))
        resp.release()  # aiohttp style, not awaited
        resp = await session.get(server.url_for("/ok"))
        assert await resp.text() == "ok"


async def test_closed_session_refuses_requests(server: TestServer) -> None:
    session = compat.ClientSession()
    await session.close()
    assert session.closed
    with pytest.raises(RuntimeError, match="closed"):
        await session.get(server.url_for("/ok"))


async def test_base_url_cookies_and_default_headers(server: TestServer) -> None:
    # The server is an IP address: as aiohttp's, the default jar keeps no cookie set by one.
    async with compat.ClientSession(
        server.url,
        headers={"X-Default": "d"},
        cookies={"a": "1"},
        cookie_jar=compat.CookieJar(unsafe=True),
    ) as session:
        async with session.get("/cookie") as resp:
            assert resp.status == 200
        async with session.get("/headers") as resp:
            sent = {k.lower(): v for k, v in await resp.json()}
    assert sent["x-default"] == "d"
    assert "flavour=ginger" in sent["cookie"] and "a=1" in sent["cookie"]


async def test_aiohttp_trace_config_objects_work_unchanged(server: TestServer) -> None:
    import aiohttp

    seen: list[tuple[str, int]] = []

    async def on_end(session: Any, ctx: Any, params: Any) -> None:
        seen.append((params.method, params.response.status))

    config = aiohttp.TraceConfig()
    config.on_request_end.append(on_end)
    async with compat.ClientSession(trace_configs=[config]) as session:
        async with session.get(server.url_for("/ok")) as resp:
            await resp.read()
    assert seen == [("GET", 200)]


async def test_compressed_bodies_are_decoded_and_their_chunks_add_up(
    server: TestServer, recorder: Recorder
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get(server.url_for("/gzip")) as resp:
            assert resp.get_encoding() == "latin-1"
            text = await resp.text()
    assert text == "compressed " * 1000
    chunks = b"".join(p.chunk for p in recorder.params("response_chunk_received"))
    assert chunks == text.encode()
    # br only where a brotli package is installed (the test extra installs one)
    assert recorder.params("request_headers_sent")[0].headers["Accept-Encoding"] == ACCEPT_ENCODING
    assert ("br" in ACCEPT_ENCODING) == (importlib.util.find_spec("brotli") is not None)


def test_an_unclosed_session_warns_as_in_aiohttp() -> None:
    import gc

    session = compat.ClientSession()
    with pytest.warns(ResourceWarning, match="Unclosed client session"):
        del session
        gc.collect()
