"""httpx's transport features on compat's two entry points (issue 21), compared with bare httpx.

- `ClientSession(transport=<any httpx transport>)`: aiohttp's API over httpx.ASGITransport and
  httpx.MockTransport, request-level signals only, no socket;
- pytest-httpx mocks `ClientSession` requests as respx does.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import anyio
import httpcore
import httpx
import pytest
import trustme

import compat

from .conftest import Recorder
from .proxy_server import ProxyServer
from .server import TestServer

pytestmark = pytest.mark.anyio

Scope = dict[str, Any]
Receive = Any
Send = Any


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A tiny ASGI app: echoes the request as JSON, redirects `/old`, sets a cookie on `/login`."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    status = 200
    if scope["path"] == "/old":
        status = 302
        headers.append((b"location", b"/new"))
    if scope["path"] == "/login":
        headers.append((b"set-cookie", b"session=abc; Path=/"))
    payload = json.dumps(
        {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "body": body.decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        }
    ).encode()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_session_talks_to_an_asgi_app_in_process(recorder: Recorder) -> None:
    fds = _open_fds()
    transport = httpx.ASGITransport(app=asgi_app)
    async with compat.ClientSession(
        "http://app.test", transport=transport, trace_configs=[recorder.config]
    ) as session:
        async with session.post("/items", params={"q": "1"}, json={"a": 1}) as resp:
            assert resp.status == 200
            echoed = await resp.json()
        async with session.get("/login") as resp:
            assert resp.status == 200
        async with session.get("/old") as resp:  # the session follows the redirect itself
            moved = await resp.json()
            assert [r.status for r in resp.history] == [302]
        assert _open_fds() == fds  # no socket opened
    assert echoed["method"] == "POST" and echoed["query"] == "q=1"
    assert json.loads(echoed["body"]) == {"a": 1}
    assert echoed["headers"]["content-type"] == "application/json"
    assert moved["path"] == "/new"
    assert moved["headers"]["cookie"] == "session=abc"  # aiohttp's cookie jar at work
    assert recorder.names() == [
        "request_start",
        "request_end",
        "request_start",
        "request_end",
        "request_start",
        "request_redirect",
        "request_end",
    ]
    assert not recorder.params("connection_create_start")
    assert recorder.params("response_chunk_received")


async def test_a_mock_transport_failure_is_aiohttp_named_and_traced(recorder: Recorder) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused by the mock", request=request)

    transport = httpx.MockTransport(handler)
    async with compat.ClientSession(transport=transport, trace_configs=[recorder.config]) as s:
        with pytest.raises(compat.ClientConnectionError):
            await s.get("http://mock.test/")
        transport_ok = httpx.MockTransport(lambda r: httpx.Response(204))
    async with compat.ClientSession(transport=transport_ok) as s2:
        async with s2.delete("http://mock.test/x") as resp:
            assert resp.status == 204
    assert recorder.names() == ["request_start", "request_exception"]


async def test_a_session_closes_the_transport_it_was_given() -> None:
    closed: list[bool] = []

    class Transport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, text="ok")

        async def aclose(self) -> None:
            closed.append(True)

    async with compat.ClientSession(transport=Transport()) as session:
        async with session.get("http://x.test/") as resp:
            assert await resp.text() == "ok"
    assert closed == [True]


def test_a_transport_that_is_not_httpx_is_refused() -> None:
    with pytest.raises(TypeError, match=r"httpx\.AsyncBaseTransport"):
        compat.ClientSession(transport=object())


async def test_pytest_httpx_mocks_client_session_requests(
    httpx_mock: Any, recorder: Recorder
) -> None:
    httpx_mock.add_response(url="http://mocked.test/thing", status_code=201, text="mocked")
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get("http://mocked.test/thing") as resp:
            assert (resp.status, await resp.text()) == (201, "mocked")
    assert len(httpx_mock.get_requests()) == 1
    assert recorder.names() == ["request_start", "request_end"]  # request-level signals only


# --- the same calls on bare httpx and on traced_client: the same outcome ---


def _clients(recorder: Recorder, **kwargs: Any) -> dict[str, httpx.AsyncClient]:
    return {
        "httpx": httpx.AsyncClient(**kwargs),
        "compat": compat.traced_client(trace_configs=[recorder.config], **kwargs),
    }


@pytest.fixture
def sni_server(ca: trustme.CA) -> Iterator[tuple[TestServer, list[str | None]]]:
    """A TLS server whose certificate names only `sni.test`; it records the SNI it was sent."""
    seen: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("sni.test").configure_cert(context)
    context.sni_callback = lambda _sock, name, _ctx: seen.append(name)  # type: ignore[assignment,misc,return-value]
    srv = TestServer(context).start()
    yield srv, seen
    srv.stop()


async def test_sni_hostname_names_the_server_as_httpx_does(
    sni_server: tuple[TestServer, list[str | None]], client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    srv, seen = sni_server
    outcomes: dict[str, Any] = {}
    for name, client in _clients(recorder, verify=client_ssl, trust_env=False).items():
        async with client:
            with pytest.raises(httpx.ConnectError):  # the certificate does not name 127.0.0.1
                await client.get(srv.url_for("/ok"))
            response = await client.get(srv.url_for("/ok"), extensions={"sni_hostname": "sni.test"})
            outcomes[name] = (response.status_code, response.text, seen[-1])
    assert outcomes["compat"] == outcomes["httpx"] == (200, "ok", "sni.test")
    assert recorder.params("tls_handshake_end")


@pytest.fixture
def stalled_server() -> Iterator[int]:
    """A listening socket on 127.0.0.1 that accepts nothing and reads nothing: uploads stall."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


async def test_a_stalled_upload_raises_write_timeout_as_httpx_does(
    stalled_server: int, recorder: Recorder
) -> None:
    body = b"x" * (32 * 2**20)  # far more than the socket buffers hold
    timeout = httpx.Timeout(None, write=0.2)
    errors: dict[str, type[BaseException]] = {}
    for name, client in _clients(recorder, timeout=timeout, trust_env=False).items():
        async with client:
            started = anyio.current_time()
            with pytest.raises(httpx.TimeoutException) as info:
                await client.post(f"http://127.0.0.1:{stalled_server}/", content=body)
            assert anyio.current_time() - started >= 0.2
            errors[name] = info.type
    assert errors == {"httpx": httpx.WriteTimeout, "compat": httpx.WriteTimeout}
    assert [type(p.exception) for p in recorder.params("request_exception")] == [httpx.WriteTimeout]


async def test_a_client_session_upload_has_no_write_timeout_as_in_aiohttp(
    server: TestServer,
) -> None:
    """aiohttp has no write timeout: ClientTimeout's fields bound connecting and reading only."""
    assert "write" not in {f for f in dir(compat.ClientTimeout()) if not f.startswith("_")}
    async with compat.ClientSession() as session:
        async with session.post(server.url_for("/echo"), data=b"y" * 2**20) as resp:
            assert len(await resp.read()) == 2**20


async def test_a_per_request_timeout_overrides_the_clients_as_in_httpx(
    server: TestServer, recorder: Recorder
) -> None:
    results: dict[str, tuple[type[BaseException], str]] = {}
    for name, client in _clients(recorder, timeout=30, trust_env=False).items():
        async with client:
            with pytest.raises(httpx.TimeoutException) as info:
                await client.get(server.url_for("/slow?delay=2"), timeout=httpx.Timeout(0.1))
            fast = await client.get(server.url_for("/slow?delay=0.2"), timeout=5)
            results[name] = (info.type, fast.text)
    assert results["compat"] == results["httpx"] == (httpx.ReadTimeout, "slow")


# --- proxies on traced_client, as on bare httpx ---


@pytest.fixture
def proxy() -> Iterator[ProxyServer]:
    srv = ProxyServer().start()
    yield srv
    srv.stop()


def _seen(proxy: ProxyServer) -> list[tuple[str, str, str | None]]:
    heads = [(h.method, h.target, h.header("proxy-authorization")) for h in proxy.heads]
    proxy.reset()
    return heads


async def test_proxy_forwards_http_and_tunnels_https_as_httpx_does(
    proxy: ProxyServer,
    server: TestServer,
    tls_server: TestServer,
    client_ssl: ssl.SSLContext,
    recorder: Recorder,
) -> None:
    proxy_url = proxy.url.replace("http://", "http://user:secret@")
    seen: dict[str, list[Any]] = {}
    for name, client in _clients(recorder, proxy=proxy_url, verify=client_ssl).items():
        async with client:
            plain = await client.get(server.url_for("/ok?x=1"))
            tunnelled = await client.get(tls_server.url_for("/ok"))
            seen[name] = [plain.text, tunnelled.text, *_seen(proxy)]
    assert seen["compat"] == seen["httpx"]
    auth = "Basic dXNlcjpzZWNyZXQ="
    assert seen["compat"] == [
        "ok",
        "ok",
        ("GET", server.url_for("/ok?x=1"), auth),
        ("CONNECT", tls_server.url_for("/").removeprefix("https://").rstrip("/"), auth),
    ]
    # traced as ClientSession traces a proxied request: the proxy connection is created
    names = ["request_start", "connection_create_start", "connection_create_end"]
    names += ["request_headers_sent", "request_end"]
    assert recorder.per_request() == [names, names]


async def test_environment_proxies_and_no_proxy_as_httpx_does(
    proxy: ProxyServer,
    server: TestServer,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read when the client is made, as httpx does (ClientSession re-reads them per hop)."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    outcomes: dict[str, list[Any]] = {}
    for name in ("httpx", "compat"):
        outcomes[name] = []
        for no_proxy in ("", "127.0.0.1"):
            monkeypatch.setenv("NO_PROXY", no_proxy)
            async with _clients(recorder)[name] as client:
                monkeypatch.delenv("NO_PROXY")
                await client.get(server.url_for("/ok"))
                outcomes[name].append(_seen(proxy))
    assert outcomes["compat"] == outcomes["httpx"]
    assert outcomes["compat"] == [[("GET", server.url_for("/ok"), None)], []]


async def test_mounted_traced_transports_route_per_pattern_as_httpx_mounts_do(
    proxy: ProxyServer, server: TestServer, recorder: Recorder
) -> None:
    plain = httpx.AsyncClient(
        mounts={"http://": httpx.AsyncHTTPTransport(proxy=proxy.url)}, trust_env=False
    )
    traced = compat.traced_client(
        mounts={
            "http://": compat.TracedTransport(proxy=proxy.url, trace_configs=[recorder.config])
        },
        trust_env=False,
    )
    seen = []
    for client in (plain, traced):
        async with client:
            assert (await client.get(server.url_for("/ok"))).text == "ok"
        seen.append(_seen(proxy))
    assert seen[0] == seen[1] == [("GET", server.url_for("/ok"), None)]
    assert recorder.names()[0] == "request_start" and recorder.names()[-1] == "request_end"
    assert recorder.sessions[0] is traced  # bound to the client, as the main transport is


async def test_a_foreign_transport_in_mounts_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"mounts=.*AsyncHTTPTransport.*TracedTransport"):
        compat.traced_client(mounts={"https://": httpx.AsyncHTTPTransport(proxy="http://p:1")})


# --- httpx's `trace` extension: httpcore's events, names, order and info keys ---


class Events:
    """A `trace` callback recording (event name, sorted info keys) and the infos."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[str]]] = []
        self.infos: list[dict[str, Any]] = []

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        self.seen.append((name, sorted(info)))
        self.infos.append(info)

    def info(self, name: str) -> dict[str, Any]:
        return next(i for (n, _), i in zip(self.seen, self.infos, strict=True) if n == name)


async def _traced_calls(client: httpx.AsyncClient, urls: list[str]) -> Events:
    events = Events()
    async with client:
        for url in urls:
            try:
                response = await client.post(url, content=b"abc", extensions={"trace": events})
                assert response.status_code == 200
            except httpx.ConnectError:
                pass
    return events


async def test_trace_extension_events_match_httpx_over_http_and_https(
    server: TestServer, tls_server: TestServer, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    urls = [
        server.url_for("/echo"),
        server.url_for("/echo"),  # reused: no connection events
        tls_server.url_for("/echo"),
        "http://127.0.0.1:9/",  # refused: connect_tcp.failed
    ]
    got = {
        name: await _traced_calls(client, urls)
        for name, client in _clients(recorder, verify=client_ssl, trust_env=False).items()
    }
    assert got["compat"].seen == got["httpx"].seen
    names = [n for n, _ in got["compat"].seen]
    assert names.count("connection.start_tls.complete") == 1
    assert names[-1] == "connection.connect_tcp.failed"
    for events in got.values():
        start = events.info("connection.connect_tcp.started")
        assert (start["host"], start["port"]) == ("127.0.0.1", server.port)
        head = events.info("http11.receive_response_headers.complete")["return_value"]
        assert (head[0], head[1]) == (b"HTTP/1.1", 200)
        assert isinstance(
            events.info("http11.send_request_headers.started")["request"], httpcore.Request
        )
    assert recorder.params("request_headers_sent")  # our signals still fire alongside


async def test_trace_extension_events_match_httpx_over_http2(
    ca: trustme.CA, client_ssl: ssl.SSLContext, recorder: Recorder
) -> None:
    from .h2_server import HypercornServer

    with HypercornServer(ca) as hyper:
        urls = [hyper.url("/echo"), hyper.url("/echo")]
        got = {
            name: await _traced_calls(client, urls)
            for name, client in _clients(
                recorder, verify=client_ssl, http2=True, trust_env=False
            ).items()
        }
    assert got["compat"].seen == got["httpx"].seen
    names = [n for n, _ in got["compat"].seen]
    assert "http2.send_connection_init.started" in names
    assert names.count("http2.response_closed.complete") == 2
    for events in got.values():
        assert events.info("http2.receive_response_headers.complete")["return_value"][0] == 200


async def test_trace_extension_through_a_proxy_matches_httpx(
    proxy: ProxyServer, server: TestServer, recorder: Recorder
) -> None:
    got = {
        name: await _traced_calls(client, [server.url_for("/echo")])
        for name, client in _clients(recorder, proxy=proxy.url, trust_env=False).items()
    }
    assert got["compat"].seen == got["httpx"].seen
    assert got["compat"].info("connection.connect_tcp.started")["port"] == proxy.port


@pytest.fixture
def tls_proxy(ca: trustme.CA) -> Iterator[ProxyServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    srv = ProxyServer(context).start()
    yield srv
    srv.stop()


async def test_an_https_proxy_is_reached_over_tls_as_httpx_does(
    tls_proxy: ProxyServer,
    server: TestServer,
    tls_server: TestServer,
    client_ssl: ssl.SSLContext,
    recorder: Recorder,
) -> None:
    """TLS to the proxy (the opener's, issue 19), verified with the transport's `verify`;
    httpx verifies it with `httpx.Proxy(ssl_context=…)`, given the same CA here."""
    proxy_url = tls_proxy.url.replace("https://", "https://user:secret@")
    clients = {
        "httpx": httpx.AsyncClient(
            proxy=httpx.Proxy(proxy_url, ssl_context=client_ssl), verify=client_ssl
        ),
        "compat": compat.traced_client(
            trace_configs=[recorder.config], proxy=proxy_url, verify=client_ssl
        ),
    }
    seen: dict[str, list[Any]] = {}
    for name, client in clients.items():
        async with client:
            plain = await client.get(server.url_for("/ok"))
            tunnelled = await client.get(tls_server.url_for("/ok"))
            seen[name] = [plain.text, tunnelled.text, *_seen(tls_proxy)]
    assert seen["compat"] == seen["httpx"]
    assert [s[0] for s in seen["compat"][2:]] == ["GET", "CONNECT"]
    hosts = [p.host for p in recorder.params("tls_handshake_end")]
    assert hosts == ["127.0.0.1", "127.0.0.1", "127.0.0.1"]  # proxy, proxy, target in the tunnel
