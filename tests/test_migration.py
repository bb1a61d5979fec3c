"""aiohttp client code runs unchanged on compat (issue 13): proxies, Unix sockets, request
bodies, the cookie jar, per-request TLS, `response.content`, session options, and whole
programs written once against aiohttp's API.

Most scenarios are written once as `async def scenario(lib, rec, ...)` and run twice against the
same local servers: on aiohttp 3.14.5 (live, asyncio, in a worker thread with its own loop) and
on compat (the test's anyio backend: asyncio or trio). Their signal sequences, what reached the
wire and what they return must be equal, and equal to aiohttp 3.14.5's behaviour as stated at
each test. "§N" labels the topic of such a statement: 1 proxies, 2 UnixConnector, 3 request
bodies, 4 the cookie jar, 5 per-request ssl= and fingerprints, 6 `response.content`.

`compat.CookieJar` / `compat.DummyCookieJar` and `compat.FormData` with file and stream bodies
are written against aiohttp's API: until they are wired into the session those tests fail.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import inspect
import io
import json
import os
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
import trustme
from yarl import URL

import compat
from compat._tracing import AIOHTTP_SIGNALS

from .app_server import CONTAINERS, AppServer
from .conftest import Recorder
from .proxy_server import Head, ProxyServer
from .server import TestServer

pytestmark = [
    pytest.mark.anyio,
    # aiohttp 3.14 deprecates BasicAuth and proxy_auth; the programs use them as users do
    pytest.mark.filterwarnings("ignore:.*deprecated.*:DeprecationWarning"),
]

CREATE = [
    "request_start",
    "connection_create_start",
    "connection_create_end",
    "request_headers_sent",
    "request_end",
]
REUSE = ["request_start", "connection_reuseconn", "request_headers_sent", "request_end"]
DNS = ["dns_cache_miss", "dns_resolvehost_start", "dns_resolvehost_end"]
CREATE_BY_NAME = CREATE[:2] + DNS + CREATE[2:]
CREATE_FAILS = ["request_start", "connection_create_start", "request_exception"]

PROXY_PASSWORD = "pr0xy-s3cret"
BIG = os.urandom(600_000)  # files and streams go in 262144-byte pieces: 262144, 262144, 75712

Scenario = Callable[..., Awaitable[Any]]


# --- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app() -> Iterator[AppServer]:
    srv = AppServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tls_app(ca: trustme.CA) -> Iterator[AppServer]:
    """TLS with a certificate the `client_ssl` context trusts."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    srv = AppServer(context).start()
    yield srv
    srv.stop()


class Pinned:
    """A TLS server whose certificate no client trusts, and its certificate's SHA-256."""

    def __init__(self) -> None:
        cert = trustme.CA().issue_cert("localhost", "127.0.0.1")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        pem = cert.cert_chain_pems[0].bytes().decode()
        self.digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest()
        self.server = AppServer(context).start()


@pytest.fixture(scope="module")
def pinned() -> Iterator[Pinned]:
    pin = Pinned()
    yield pin
    pin.server.stop()


@pytest.fixture(scope="module")
def unix_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    path = tmp_path_factory.mktemp("unix") / "api.sock"
    srv = AppServer(unix_path=str(path)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def module_proxy() -> Iterator[ProxyServer]:
    srv = ProxyServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def proxy(module_proxy: ProxyServer) -> ProxyServer:
    module_proxy.reset()
    return module_proxy


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("files")
    (root / "big.bin").write_bytes(BIG)
    (root / "report.txt").write_text("quarterly numbers\n" * 100)
    return root


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No proxy variables and an empty netrc, whatever the machine has."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    empty = tmp_path / "empty-netrc"
    empty.write_text("")
    monkeypatch.setenv("NETRC", str(empty))
    return monkeypatch


# --- running a scenario on both libraries --------------------------------------------------------


def _on_aiohttp(scenario: Scenario, args: tuple[Any, ...]) -> tuple[Any, Recorder]:
    rec = Recorder(lib=aiohttp)
    return asyncio.run(scenario(aiohttp, rec, *args)), rec


async def both(
    scenario: Scenario, *args: Any, before: Callable[[], None] | None = None
) -> tuple[tuple[Any, Recorder], tuple[Any, Recorder]]:
    """(result, recorder) of the scenario on aiohttp (asyncio, in a thread), then on compat
    (this test's backend). `before` runs ahead of each (resets a server, say)."""
    if before is not None:
        before()
    on_aiohttp = await anyio.to_thread.run_sync(_on_aiohttp, scenario, args)
    if before is not None:
        before()
    rec = Recorder()
    return on_aiohttp, (await scenario(compat, rec, *args), rec)


def sequences(rec: Recorder) -> list[list[str]]:
    """aiohttp's signals without the chunk ones, one list per request (sequential requests)."""
    out: list[list[str]] = []
    for name in rec.names():
        if name == "request_start":
            out.append([])
        out[-1].append(name)
    return out


def signal_names(rec: Recorder) -> list[str]:
    """aiohttp's signals in order, `request_chunk_sent` included."""
    return [
        name[3:]
        for name, _, _ in rec.events
        if name in AIOHTTP_SIGNALS and name != "on_response_chunk_received"
    ]


def chunk_sizes(rec: Recorder) -> list[int]:
    return [len(p.chunk) for p in rec.params("request_chunk_sent")]


def received_chunks(rec: Recorder) -> list[bytes]:
    return [p.chunk for p in rec.params("response_chunk_received")]


def mentions(rec: Recorder, pattern: str) -> list[tuple[str, Any]]:
    """aiohttp's signals whose params (repr, response and exception included) match `pattern`.
    (compat's extension `on_connection_established` names the socket's peer: the proxy.)"""
    return [
        (name, p)
        for name, p, _ in rec.events
        if name in AIOHTTP_SIGNALS and re.search(pattern, repr(p))
    ]


def wire(heads: list[Head]) -> list[tuple[int, str, str, list[tuple[str, str]]]]:
    """What the proxy received, User-Agent's value aside (it names the library)."""
    return [
        (
            h.connection,
            h.method,
            h.target,
            sorted((k.lower(), "*" if k.lower() == "user-agent" else v) for k, v in h.headers),
        )
        for h in heads
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get(session: Any, url: str, **kwargs: Any) -> tuple[int, bytes]:
    async with session.get(url, **kwargs) as resp:
        return resp.status, await resp.read()


# === 1. Proxies ==================================================================================


async def proxied_http(lib: Any, rec: Recorder, app: AppServer, proxy_url: str, how: str) -> Any:
    """Two requests to one http target through a proxy, then another target (§1 a, c, d)."""
    kwargs: dict[str, Any] = {"proxy_headers": {"X-Proxy-Token": "only-for-connect"}}
    options: dict[str, Any] = {}
    if how == "proxy_auth":
        kwargs["proxy"] = proxy_url
        kwargs["proxy_auth"] = lib.BasicAuth("puser", PROXY_PASSWORD)
    elif how == "userinfo":
        kwargs["proxy"] = proxy_url.replace("://", f"://puser:{PROXY_PASSWORD}@")
    else:  # the session's
        options = {"proxy": proxy_url, "proxy_auth": lib.BasicAuth("puser", PROXY_PASSWORD)}
    async with lib.ClientSession(trace_configs=[rec.config], **options) as session:
        results = [
            await _get(session, app.url_for("/whoami?q=1"), **kwargs),
            await _get(session, app.url_for("/whoami?q=1"), **kwargs),
            await _get(session, app.url_for("/whoami", host="localhost"), **kwargs),
        ]
    return results


@pytest.mark.parametrize("how", ["proxy_auth", "userinfo", "session"])
async def test_http_through_proxy(app: AppServer, proxy: ProxyServer, how: str) -> None:
    (aio, aio_rec), (got, rec) = await both(proxied_http, app, proxy.url, how, before=proxy.reset)
    # §1 a, c: no DNS signal at all (not even for `localhost`); a pooled proxy connection is
    # reused for the same target; another target through the same proxy is a new connection.
    assert sequences(aio_rec) == [CREATE, REUSE, CREATE]
    assert sequences(rec) == [CREATE, REUSE, CREATE]
    assert got == aio
    assert [status for status, _ in got] == [200, 200, 200]
    # the wire: absolute-form targets, Host = the target, Proxy-Authorization on the request,
    # proxy_headers never sent when proxying plain http
    credentials = compat.BasicAuth("puser", PROXY_PASSWORD).encode()
    assert [(h.connection, h.method, h.target) for h in proxy.heads] == [
        (1, "GET", app.url_for("/whoami?q=1")),
        (1, "GET", app.url_for("/whoami?q=1")),
        (2, "GET", app.url_for("/whoami", host="localhost")),
    ]
    for head in proxy.heads:
        assert head.header("Host") == head.target.split("/")[2]
        assert head.header("Proxy-Authorization") == credentials
        assert head.header("X-Proxy-Token") is None
    assert proxy.connections == 2
    # request_headers_sent: the target's URL; the headers as sent, Proxy-Authorization included
    sent = rec.params("request_headers_sent")
    assert [str(p.url) for p in sent] == [h.target for h in proxy.heads]
    assert all(p.headers["Proxy-Authorization"] == credentials for p in sent)
    # §1 d: the proxy's URL and credentials are in no params object, on either library
    for recorder in (aio_rec, rec):
        assert mentions(recorder, rf"\b{proxy.port}\b") == []
        assert mentions(recorder, PROXY_PASSWORD) == []


async def proxied_https(
    lib: Any, rec: Recorder, tls: AppServer, proxy_url: str, context: ssl.SSLContext
) -> Any:
    """Two requests to one https target through a CONNECT tunnel, then another target (§1 b-d)."""
    kwargs = {
        "proxy": proxy_url,
        "proxy_auth": lib.BasicAuth("puser", PROXY_PASSWORD),
        "proxy_headers": {"X-Proxy-Token": "t0k"},
        "ssl": context,
    }
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        return [
            await _get(session, tls.url_for("/whoami", host="localhost"), **kwargs),
            await _get(session, tls.url_for("/whoami", host="localhost"), **kwargs),
            await _get(session, tls.url_for("/whoami"), **kwargs),
        ]


async def test_https_through_connect_tunnel(
    tls_app: AppServer, proxy: ProxyServer, client_ssl: ssl.SSLContext
) -> None:
    (aio, aio_rec), (got, rec) = await both(
        proxied_https, tls_app, proxy.url, client_ssl, before=proxy.reset
    )
    # §1 b, c: CONNECT and TLS happen untraced inside create; the tunnel is reused
    assert sequences(aio_rec) == [CREATE, REUSE, CREATE]
    assert sequences(rec) == [CREATE, REUSE, CREATE]
    assert got == aio
    assert [status for status, _ in got] == [200, 200, 200]
    # the proxy sees only the CONNECTs: Host, proxy_headers and Proxy-Authorization on them
    port = tls_app.port
    assert [(h.connection, h.method, h.target) for h in proxy.heads] == [
        (1, "CONNECT", f"localhost:{port}"),
        (2, "CONNECT", f"127.0.0.1:{port}"),
    ]
    for head in proxy.heads:
        assert head.header("Host") == head.target
        assert head.header("X-Proxy-Token") == "t0k"
        assert (
            head.header("Proxy-Authorization") == compat.BasicAuth("puser", PROXY_PASSWORD).encode()
        )
    # request_headers_sent shows the inner request only: no proxy header in it
    for params in rec.params("request_headers_sent"):
        assert params.url.scheme == "https"
        assert "Proxy-Authorization" not in params.headers
        assert "X-Proxy-Token" not in params.headers
    # and none reached the target through the tunnel
    for _, body in got:
        assert b"Proxy" not in body and b"t0k" not in body
    for recorder in (aio_rec, rec):
        assert mentions(recorder, rf"\b{proxy.port}\b") == []
        assert mentions(recorder, PROXY_PASSWORD) == []


async def test_connect_head_as_aiohttp(
    tls_app: AppServer, proxy: ProxyServer, client_ssl: ssl.SSLContext
) -> None:
    """§1 b: aiohttp's CONNECT also carries Accept, Accept-Encoding and User-Agent."""
    heads: list[list[Head]] = []

    def reset_and_keep() -> None:
        heads.append(list(proxy.heads))
        proxy.reset()

    await both(proxied_https, tls_app, proxy.url, client_ssl, before=reset_and_keep)
    aio_heads, compat_heads = heads[1], list(proxy.heads)
    assert wire(compat_heads) == wire(aio_heads)


async def redirected_through_proxy(
    lib: Any, rec: Recorder, target: AppServer, proxy: ProxyServer, context: ssl.SSLContext
) -> Any:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        results = [
            await _get(session, target.url_for("/redirect/1"), proxy=proxy.url, ssl=context)
            for _ in range(2)
        ]
    return results, proxy.connections


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_redirect_through_proxy_as_aiohttp(
    app: AppServer, tls_app: AppServer, proxy: ProxyServer, client_ssl: ssl.SSLContext, scheme: str
) -> None:
    """aiohttp 3.14.5 opens a second proxy connection (or tunnel) for a redirect hop to the same
    target: its connector writes the target's Host into the request's proxy_headers while
    connecting, and those headers are part of the pool key, so the next hop's key differs.
    The request after that reuses both connections, one per key."""
    target = tls_app if scheme == "https" else app
    (aio, aio_rec), (got, rec) = await both(
        redirected_through_proxy, target, proxy, client_ssl, before=proxy.reset
    )
    redirect = ["request_redirect"]
    assert sequences(aio_rec) == [
        CREATE[:4] + redirect + CREATE[1:],
        REUSE[:3] + redirect + REUSE[1:],
    ]
    assert aio == ([(200, b"ok")] * 2, 2)
    # compat does not copy that quirk (README, differences): the redirect hop to the same
    # target through the same proxy reuses the connection, so one proxy connection serves all.
    assert sequences(rec) == [
        CREATE[:4] + redirect + REUSE[1:],
        REUSE[:3] + redirect + REUSE[1:],
    ]
    assert got == ([(200, b"ok")] * 2, 1)


async def connect_refused_407(lib: Any, rec: Recorder, tls: AppServer, proxy_url: str) -> Any:
    auth_url = proxy_url.replace("://", f"://puser:{PROXY_PASSWORD}@")
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        with pytest.raises(lib.ClientHttpProxyError) as info:
            await _get(session, tls.url_for("/whoami", host="localhost"), proxy=auth_url)
        error = info.value
        plain = await _get(session, tls.url_for("/whoami").replace("https", "http"), proxy=auth_url)
    (exc_params,) = rec.params("request_exception")
    assert exc_params.exception is error
    return (
        type(error).__name__,
        isinstance(error, lib.ClientResponseError),
        error.status,
        error.request_info.method,
        plain[0],
    )


async def test_connect_answered_407(tls_app: AppServer, proxy: ProxyServer) -> None:
    def refusing() -> None:
        proxy.reset()
        proxy.answer_407 = True

    (aio, aio_rec), (got, rec) = await both(
        connect_refused_407, tls_app, proxy.url, before=refusing
    )
    # §1: CONNECT → 407 is ClientHttpProxyError (a ClientResponseError, status 407); a plain
    # http request answered 407 by the proxy is an ordinary response
    assert aio == ("ClientHttpProxyError", True, 407, "CONNECT", 407)
    assert got == aio
    assert sequences(aio_rec) == [CREATE_FAILS, CREATE]
    assert sequences(rec) == [CREATE_FAILS, CREATE]
    # compat keeps the proxy's credentials out of the error (aiohttp has them in
    # request_info.real_url); the target is what the error names
    (params,) = rec.params("request_exception")
    assert PROXY_PASSWORD not in repr(params.exception.request_info)
    assert params.exception.request_info.url.host == "localhost"


async def proxy_refuses_tcp(lib: Any, rec: Recorder, app: AppServer, proxy_url: str) -> Any:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        with pytest.raises(lib.ClientProxyConnectionError) as info:
            await _get(session, app.url_for("/ok"), proxy=proxy_url)
    (params,) = rec.params("request_exception")
    assert params.exception is info.value
    return (
        isinstance(info.value, lib.ClientConnectorError),
        (info.value.host, info.value.port),
    )


async def test_proxy_refusing_tcp(app: AppServer) -> None:
    port = _closed_port()
    (aio, aio_rec), (got, rec) = await both(proxy_refuses_tcp, app, f"http://127.0.0.1:{port}")
    assert aio == (True, ("127.0.0.1", port))
    assert got == aio
    assert sequences(aio_rec) == sequences(rec) == [CREATE_FAILS]


def _write_netrc(path: Path, proxy_password: str) -> None:
    path.write_text(
        f"machine 127.0.0.1 login puser password {proxy_password}\n"
        "machine localhost login tuser password tpass\n"
    )
    path.chmod(0o600)


async def env_proxies(
    lib: Any,
    rec: Recorder,
    app: AppServer,
    tls: AppServer,
    proxy: ProxyServer,
    context: ssl.SSLContext,
    netrc: Path,
) -> Any:
    """trust_env=True, the environment and netrc edited between requests (§1 e)."""
    heads = []

    def proxy_saw() -> list[tuple[str, str, str | None, str | None]]:
        seen = [
            (h.method, h.target, h.header("Proxy-Authorization"), h.header("Authorization"))
            for h in proxy.heads[len(heads) :]
        ]
        heads.extend(proxy.heads[len(heads) :])
        return seen

    _write_netrc(netrc, "first")
    os.environ["NETRC"] = str(netrc)
    os.environ["HTTP_PROXY"] = proxy.url
    os.environ.pop("NO_PROXY", None)
    os.environ.pop("HTTPS_PROXY", None)
    target = app.url_for("/whoami", host="localhost")
    steps = []
    async with lib.ClientSession(trace_configs=[rec.config], trust_env=True) as session:
        # via the env proxy; netrc gives Proxy-Authorization (proxy host) and Authorization
        steps.append((await _get(session, target), proxy_saw()))
        os.environ["NO_PROXY"] = "localhost"  # direct now: DNS signals appear
        steps.append((await _get(session, target), proxy_saw()))
        del os.environ["NO_PROXY"]
        _write_netrc(netrc, "second")  # re-read: new proxy credentials, a new connection
        steps.append((await _get(session, target), proxy_saw()))
        os.environ["HTTPS_PROXY"] = proxy.url  # https through a tunnel, netrc on the CONNECT
        steps.append(
            (
                await _get(session, tls.url_for("/whoami", host="localhost"), ssl=context),
                proxy_saw(),
            )
        )
        # an explicit proxy= wins over the environment, without netrc's proxy credentials
        steps.append((await _get(session, target, proxy=proxy.url), proxy_saw()))
    async with lib.ClientSession(trace_configs=[rec.config]) as session:  # trust_env=False
        steps.append((await _get(session, target), proxy_saw()))
    return steps


async def test_trust_env_proxies_and_netrc(
    app: AppServer,
    tls_app: AppServer,
    proxy: ProxyServer,
    client_ssl: ssl.SSLContext,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    clean_env.setenv("HTTP_PROXY", "")  # restored by monkeypatch whatever the scenario sets
    clean_env.setenv("HTTPS_PROXY", "")
    clean_env.setenv("NO_PROXY", "")
    (aio, aio_rec), (got, rec) = await both(
        env_proxies, app, tls_app, proxy, client_ssl, tmp_path / "netrc", before=proxy.reset
    )
    target_auth = compat.BasicAuth("tuser", "tpass").encode()
    first = compat.BasicAuth("puser", "first").encode()
    second = compat.BasicAuth("puser", "second").encode()
    path = app.url_for("/whoami", host="localhost")
    assert [seen for _, seen in aio] == [
        [("GET", path, first, target_auth)],
        [],
        [("GET", path, second, target_auth)],
        [("CONNECT", f"localhost:{tls_app.port}", second, None)],
        [("GET", path, None, target_auth)],
        [],
    ]
    expected_sequences = [CREATE, CREATE_BY_NAME, CREATE, CREATE, CREATE, CREATE_BY_NAME]
    assert sequences(aio_rec) == expected_sequences
    assert sequences(rec) == expected_sequences
    assert got == aio
    # netrc's target entry gives Authorization on direct requests too, and only with trust_env
    whoami = [json.loads(body)["authorization"] for (_, body), _ in got]
    assert whoami == [target_auth] * 5 + [None]


# === 2. UnixConnector ============================================================================


async def over_unix(lib: Any, rec: Recorder, path: str, urls: list[str]) -> Any:
    connector = lib.UnixConnector(path=path)
    async with lib.ClientSession(connector=connector, trace_configs=[rec.config]) as session:
        return [await _get(session, url) for url in urls]


async def test_unix_connector(unix_app: AppServer) -> None:
    urls = [
        "http://localhost/whoami",
        "http://localhost/whoami",
        "https://localhost/whoami",  # plain HTTP over the socket, another pool key
        "http://example.invalid:8080/whoami",  # the host only names Host and the key
    ]
    assert unix_app.unix_path is not None
    (aio, aio_rec), (got, rec) = await both(over_unix, unix_app.unix_path, urls)
    assert sequences(aio_rec) == [CREATE, REUSE, CREATE, CREATE]  # §2: never dns_*
    assert sequences(rec) == sequences(aio_rec)
    assert got == aio
    hosts = [json.loads(body)["host"] for _, body in got]
    assert hosts == ["localhost", "localhost", "localhost", "example.invalid:8080"]


async def test_unix_scheme_url(unix_app: AppServer) -> None:
    """§2: aiohttp's UnixConnector accepts `unix://foo/x` (Host: foo)."""
    assert unix_app.unix_path is not None
    (aio, aio_rec), (got, rec) = await both(
        over_unix, unix_app.unix_path, ["unix://foo/whoami", "unix://foo/whoami"]
    )
    assert sequences(aio_rec) == [CREATE, REUSE]
    assert sequences(rec) == sequences(aio_rec)
    assert got == aio
    assert json.loads(got[0][1])["host"] == "foo"


# === 3. Request bodies ===========================================================================


async def _stream() -> AsyncIterator[bytes]:
    for part in (b"one-", b"two-" * 500, b"three"):
        yield part


def _form(lib: Any, files: Path, *, with_file: bool) -> Any:
    form = lib.FormData()
    form.add_field("name", "Zoë")
    form.add_fields(("tags", "a b"), ("tags", "c&d"))
    if with_file:
        form.add_field("report", open(files / "report.txt", "rb"), filename="report.txt")  # noqa: SIM115
        form.add_field(
            "blob", io.BytesIO(b"\x00\x01" * 1000), filename="blob.bin", content_type="x/y"
        )
    return form


BODIES: dict[str, Callable[[Any, Path], dict[str, Any]]] = {
    "dict": lambda lib, files: {"data": {"a": "1", "b": "two words", "c": "é&="}},
    "bytes": lambda lib, files: {"data": b"x" * 300_000},
    "str": lambda lib, files: {"data": "héllo wörld"},
    "json": lambda lib, files: {"json": {"k": [1, 2, 3], "s": "é"}},
    "nothing": lambda lib, files: {},
    "bytesio": lambda lib, files: {"data": io.BytesIO(BIG)},
    "file": lambda lib, files: {"data": open(files / "big.bin", "rb")},  # noqa: SIM115
    "async-generator": lambda lib, files: {"data": _stream()},
    "formdata-urlencoded": lambda lib, files: {"data": _form(lib, files, with_file=False)},
    "formdata-multipart": lambda lib, files: {"data": _form(lib, files, with_file=True)},
}
NEEDS_PAYLOAD = {"bytesio", "file", "formdata-urlencoded", "formdata-multipart"}


def _normalised(seen: list[Any]) -> list[tuple[Any, ...]]:
    """The requests the server received, multipart boundaries replaced by a placeholder."""
    out = []
    for request in seen:
        content_type = request.header("Content-Type")
        body = request.body
        match = re.search(r"boundary=([^;\s]+)", content_type or "")
        if match:
            boundary = match.group(1).strip('"')
            assert re.fullmatch(r"[0-9a-f]{32}", boundary), boundary  # §3
            content_type = content_type.replace(boundary, "BOUNDARY")
            body = body.replace(boundary.encode(), b"BOUNDARY")
        out.append(
            (
                request.method,
                request.path,
                content_type,
                request.header("Content-Length"),
                request.header("Transfer-Encoding"),
                body,
                len(request.body),
            )
        )
    return out


async def post_body(
    lib: Any, rec: Recorder, app: AppServer, files: Path, case: str, path: str
) -> Any:
    before = len(app.stats.seen)
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        async with session.post(app.url_for(path), **BODIES[case](lib, files)) as resp:
            status, echoed = resp.status, await resp.read()
            method = resp.headers.get("X-Method")
    seen = app.stats.seen[before:]
    # /echo answers with the body it got: compared raw (the boundary is random)
    return (status, method, echoed == seen[-1].body), _normalised(seen), chunk_sizes(rec)


@pytest.mark.parametrize("case", list(BODIES))
async def test_request_body_as_aiohttp(app: AppServer, files: Path, case: str) -> None:
    (aio, aio_rec), (got, rec) = await both(post_body, app, files, case, "/echo")
    (_, aio_seen, aio_chunks), (_, seen, chunks) = aio, got
    assert seen == aio_seen  # Content-Type, Content-Length / Transfer-Encoding, the body
    assert chunks == aio_chunks  # one on_request_chunk_sent per piece aiohttp writes
    assert got == aio
    assert sequences(rec) == sequences(aio_rec) == [CREATE]
    # §3, spelled out
    _, _, content_type, length, chunked, body, size = seen[0]
    expected_type = {
        "dict": "application/x-www-form-urlencoded",
        "bytes": "application/octet-stream",
        "str": "text/plain; charset=utf-8",
        "json": "application/json",
        "nothing": None,
        "bytesio": "application/octet-stream",
        "file": "application/octet-stream",
        "async-generator": "application/octet-stream",
        "formdata-urlencoded": "application/x-www-form-urlencoded",
        "formdata-multipart": "multipart/form-data; boundary=BOUNDARY",
    }[case]
    if case != "nothing":
        assert content_type == expected_type
    if case == "async-generator":
        assert (length, chunked) == (None, "chunked")
        assert chunks == [4, 2000, 5]
    else:
        assert (length, chunked) == (str(size), None)
    if case in ("bytesio", "file"):
        assert chunks == [262144, 262144, 75712] and body == BIG
    if case in ("dict", "bytes", "str", "json", "formdata-urlencoded"):
        assert chunks == [len(body)]


REDIRECTED = ["bytes", "dict", "bytesio", "file", "formdata-multipart"]


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("case", REDIRECTED)
async def test_307_308_resend_the_body(app: AppServer, files: Path, case: str, status: int) -> None:
    path = f"/redirect-to?status={status}&url=/echo"
    (aio, aio_rec), (got, rec) = await both(post_body, app, files, case, path)
    (_, aio_seen, aio_chunks), (echoed, seen, chunks) = aio, got
    assert seen == aio_seen
    assert chunks == aio_chunks
    assert got == aio
    # §3: re-sent whole (chunks repeat; files rewound)
    assert [s[:2] for s in seen] == [("POST", "/redirect-to"), ("POST", "/echo")]
    assert seen[0][2:] == seen[1][2:]
    assert chunks[: len(chunks) // 2] == chunks[len(chunks) // 2 :]
    assert echoed[:2] == (200, "POST")
    assert sequences(rec) == sequences(aio_rec)
    assert "request_redirect" in sequences(rec)[0]


async def stream_then_307(lib: Any, rec: Recorder, app: AppServer) -> Any:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        with pytest.raises(lib.ClientPayloadError) as info:
            await session.post(app.url_for("/redirect-to?status=307&url=/echo"), data=_stream())
    (params,) = rec.params("request_exception")
    assert params.exception is info.value
    return "consumed request body" in str(info.value)


async def test_async_generator_cannot_follow_307(app: AppServer) -> None:
    (aio, aio_rec), (got, rec) = await both(stream_then_307, app)
    assert aio is got is True
    # §3: … request_chunk_sent → request_redirect → request_exception, before a 2nd request
    expected = CREATE[:4] + ["request_chunk_sent"] * 3 + ["request_redirect", "request_exception"]
    assert signal_names(aio_rec) == expected
    assert signal_names(rec) == expected


@pytest.mark.parametrize("case", ["bytes", "async-generator"])
async def test_post_303_becomes_get_without_body(app: AppServer, files: Path, case: str) -> None:
    path = "/redirect-to?status=303&url=/echo"
    (aio, aio_rec), (got, rec) = await both(post_body, app, files, case, path)
    assert got == aio
    echoed, seen, _ = got
    assert echoed == (200, "GET", True)
    assert [s[:2] for s in seen] == [("POST", "/redirect-to"), ("GET", "/echo")]
    assert seen[1][2:] == (None, None, None, b"", 0)  # no Content-Type, -Length, TE, body
    assert sequences(rec) == sequences(aio_rec)


# === 4. Cookie jar ===============================================================================


async def cookies_scenario(lib: Any, rec: Recorder, app: AppServer, dummy: bool) -> Any:
    kwargs = {"cookie_jar": lib.DummyCookieJar()} if dummy else {}
    base = app.url_for("", host="localhost")  # cookies from IP hosts are not stored (§4)
    async with lib.ClientSession(trace_configs=[rec.config], **kwargs) as session:
        jar = session.cookie_jar
        jar_type = type(jar).__name__
        async with session.get(base + "/login?next=/whoami") as resp:
            login = (
                await resp.json(),
                [h.cookies["session"].value for h in resp.history],
                sorted(resp.cookies),
            )
        async with session.get(base + "/set?flavour=ginger&size=large") as resp:
            set_cookies = sorted((k, m.value) for k, m in resp.cookies.items())
        async with session.get(base + "/whoami", cookies={"lang": "en"}) as resp:
            with_request_cookies = (await resp.json())["cookie"]
        stored = sorted((m.key, m.value) for m in jar)
        filtered = sorted(jar.filter_cookies(URL(base)).keys()) if not dummy else []
    return jar_type, login, set_cookies, with_request_cookies, stored, filtered, len(jar)


async def test_cookie_jar(app: AppServer) -> None:
    (aio, aio_rec), (got, rec) = await both(cookies_scenario, app, False)
    assert aio == (
        "CookieJar",
        ({"cookie": "session=s3cr3t", "authorization": None, "host": aio[1][0]["host"],
          "path": "/whoami"}, ["s3cr3t"], []),
        [("flavour", "ginger"), ("size", "large")],
        "flavour=ginger; lang=en; session=s3cr3t; size=large",
        [("flavour", "ginger"), ("session", "s3cr3t"), ("size", "large")],
        ["flavour", "session", "size"],
        3,
    )  # fmt: skip
    assert got == aio
    assert sequences(rec) == sequences(aio_rec)


async def test_session_cookie_jar_is_a_compat_cookie_jar() -> None:
    async with compat.ClientSession() as session:
        assert isinstance(session.cookie_jar, compat.CookieJar)
    jar = compat.CookieJar(unsafe=True)
    async with compat.ClientSession(cookie_jar=jar) as session:
        assert session.cookie_jar is jar


async def test_dummy_cookie_jar_stores_nothing(app: AppServer) -> None:
    (aio, aio_rec), (got, rec) = await both(cookies_scenario, app, True)
    jar_type, login, set_cookies, with_request_cookies, stored, _, size = aio
    assert jar_type == "DummyCookieJar"
    assert login[0]["cookie"] is None and login[1] == ["s3cr3t"]  # resp.cookies still filled
    assert set_cookies == [("flavour", "ginger"), ("size", "large")]
    assert with_request_cookies == "lang=en"  # per-request cookies= are sent
    assert stored == [] and size == 0
    assert got == aio
    assert sequences(rec) == sequences(aio_rec)


# === 5. ssl= per request =========================================================================


async def ssl_per_request(lib: Any, rec: Recorder, tls: TestServer, context: ssl.SSLContext) -> Any:
    tls.reset_stats()
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        for choice in (False, context, False, context, False):
            status, _ = await _get(session, tls.url_for("/ok"), ssl=choice)
            assert status == 200
    return tls.stats.connections


async def test_ssl_false_and_context_never_share_a_connection(
    tls_server: TestServer, client_ssl: ssl.SSLContext
) -> None:
    (aio, aio_rec), (got, rec) = await both(ssl_per_request, tls_server, client_ssl)
    assert aio == got == 2  # each ssl= value reuses its own connection (§5)
    assert sequences(aio_rec) == [CREATE, CREATE, REUSE, REUSE, REUSE]
    assert sequences(rec) == sequences(aio_rec)


async def fingerprints(lib: Any, rec: Recorder, pin: Pinned, host: str) -> Any:
    url = pin.server.url_for("/pinned", host=host)
    good = lib.Fingerprint(pin.digest)
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        results: list[Any] = [
            await _get(session, url, ssl=good),
            await _get(session, url, ssl=good),
        ]
        with pytest.raises(lib.ServerFingerprintMismatch) as mismatch:
            await _get(session, url, ssl=lib.Fingerprint(b"\x00" * 32))
        error = mismatch.value
        results.append((error.expected, error.got, error.host, error.port))
        with pytest.raises(lib.ClientConnectorCertificateError):
            await _get(session, url)  # the default: the chain is verified, and fails
    exceptions = [type(p.exception).__name__ for p in rec.params("request_exception")]
    return results, exceptions


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_fingerprint(pinned: Pinned, host: str) -> None:
    (aio, aio_rec), (got, rec) = await both(fingerprints, pinned, host)
    results, exceptions = got
    assert results[:2] == [(200, b'{"secret": 42}')] * 2  # matches on an untrusted cert
    # aiohttp names the address it connected to, not the URL's host
    assert results[2] == (b"\x00" * 32, pinned.digest, "127.0.0.1", pinned.server.port)
    assert exceptions == ["ServerFingerprintMismatch", "ClientConnectorCertificateError"]
    assert got == aio
    create = CREATE if host == "127.0.0.1" else CREATE_BY_NAME
    dns = [] if host == "127.0.0.1" else ["dns_cache_hit"]
    fails = ["request_start", "connection_create_start", *dns, "request_exception"]
    # §5: a mismatch is not retried; request_start → create_start → [dns] → request_exception
    assert sequences(aio_rec) == [create, REUSE, fails, fails]
    assert sequences(rec) == sequences(aio_rec)


# === 6. response.content =========================================================================


def _body_url(app: AppServer, body: bytes) -> str:
    return app.url_for("/body?b=" + "".join(f"%{b:02X}" for b in body))


async def test_read_n_signals_what_it_returns(app: AppServer, recorder: Recorder) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get(_body_url(app, b"abcdef")) as resp:
            assert await resp.content.read(3) == b"abc"
            assert received_chunks(recorder) == [b"abc"]
            assert await resp.content.read(3) == b"def"
            assert await resp.content.read(3) == b""
            assert resp.content.at_eof()
    assert received_chunks(recorder) == [b"abc", b"def"]


async def chunked_reads(lib: Any, rec: Recorder, app: AppServer) -> Any:
    url = app.url_for("/chunks?b=abc,defgh,ij")
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        async with session.get(url) as resp:
            pieces = []
            while True:
                piece = await resp.content.readchunk()
                pieces.append(piece)
                if piece == (b"", False):
                    break
        async with session.get(url) as resp:
            iterated = [chunk async for chunk in resp.content.iter_chunks()]
    # aiohttp sometimes gives an extra (b"", True) (§6): not part of the contract
    return [p for p in pieces if p != (b"", True)], [p for p in iterated if p != (b"", True)]


async def test_readchunk_and_iter_chunks_give_http_chunks(app: AppServer) -> None:
    (aio, _), (got, rec) = await both(chunked_reads, app)
    expected = [(b"abc", True), (b"defgh", True), (b"ij", True)]
    assert aio == ([*expected, (b"", False)], expected)
    assert got == aio
    assert received_chunks(rec) == [b"abc", b"defgh", b"ij"] * 2


async def delimited_reads(lib: Any, rec: Recorder, app: AppServer) -> Any:
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        async with session.get(_body_url(app, b"alpha|beta||gamma")) as resp:
            until = [await resp.content.readuntil(b"|") for _ in range(5)]
        async with session.get(_body_url(app, b"one\ntwo\nthree")) as resp:
            lines = [line async for line in resp.content]
        async with session.get(_body_url(app, b"abcdef")) as resp:
            with pytest.raises(asyncio.IncompleteReadError) as short:
                await resp.content.readexactly(10)
        async with session.get(_body_url(app, b"0123456789")) as resp:
            exact = [await resp.content.readexactly(4), await resp.content.readexactly(4)]
            exact.append(await resp.content.read())
    return until, lines, (short.value.partial, short.value.expected), exact


async def test_readuntil_readline_readexactly(app: AppServer) -> None:
    (aio, _), (got, rec) = await both(delimited_reads, app)
    assert aio == (
        [b"alpha|", b"beta|", b"|", b"gamma", b""],
        [b"one\n", b"two\n", b"three"],
        (b"abcdef", 10),
        [b"0123", b"4567", b"89"],
    )
    assert got == aio
    # each read signals exactly what it returned
    returned = [*aio[0], *aio[1], b"abcdef", *aio[3]]
    assert received_chunks(rec) == [piece for piece in returned if piece]


async def test_read_nowait_never_waits(server: TestServer, recorder: Recorder) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get(server.url_for("/slow-body?delay=0.5")) as resp:
            # A plain function, not a coroutine: it cannot wait, it returns what is buffered.
            assert not inspect.iscoroutinefunction(resp.content.read_nowait)
            # "sl" comes with the head, "ow" 0.5 s later: poll until "sl" is in (10 s at most)
            for _ in range(1000):
                if first := resp.content.read_nowait():
                    break
                await anyio.sleep(0.01)
            second = resp.content.read_nowait()  # nothing more is in: b"", at once
            assert (first, second) == (b"sl", b"")
            assert await resp.content.read() == b"ow"
            assert resp.content.read_nowait() == b""  # at EOF
    assert b"".join(received_chunks(recorder)) == b"ow"


READERS: dict[str, Callable[[Any], Awaitable[list[bytes]]]] = {}


def _reader(name: str) -> Callable[[Callable[[Any], Awaitable[list[bytes]]]], Any]:
    def register(fn: Callable[[Any], Awaitable[list[bytes]]]) -> Any:
        READERS[name] = fn
        return fn

    return register


@_reader("read(n)")
async def _read_n(content: Any) -> list[bytes]:
    return [piece async for piece in _until_empty(lambda: content.read(1000))]


@_reader("readany")
async def _readany(content: Any) -> list[bytes]:
    return [piece async for piece in _until_empty(content.readany)]


@_reader("iter_any")
async def _iter_any(content: Any) -> list[bytes]:
    return [piece async for piece in content.iter_any()]


@_reader("iter_chunked")
async def _iter_chunked(content: Any) -> list[bytes]:
    return [piece async for piece in content.iter_chunked(777)]


@_reader("readline")
async def _readline(content: Any) -> list[bytes]:
    return [piece async for piece in _until_empty(content.readline)]


@_reader("readchunk")
async def _readchunk(content: Any) -> list[bytes]:
    pieces = []
    while (piece := await content.readchunk()) != (b"", False):
        pieces.append(piece[0])
    return pieces


@_reader("read()")
async def _read_all(content: Any) -> list[bytes]:
    return [await content.read()]


async def _until_empty(read: Callable[[], Awaitable[bytes]]) -> AsyncIterator[bytes]:
    while piece := await read():
        yield piece


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("path", ["/chunked/5/1000", "/bytes/300000"])
async def test_each_read_signals_exactly_its_bytes(
    server: TestServer, recorder: Recorder, reader: str, path: str
) -> None:
    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        async with session.get(server.url_for(path)) as resp:
            pieces = await READERS[reader](resp.content)
            assert resp.content.at_eof()
    size = 5000 if path.startswith("/chunked") else 300_000
    assert sum(map(len, pieces)) == size
    if reader == "read()":  # the whole body: signalled piece by piece as it arrives
        assert b"".join(received_chunks(recorder)) == pieces[0]
    else:
        assert received_chunks(recorder) == [p for p in pieces if p]
    if reader == "iter_chunked":
        assert {len(p) for p in pieces[:-1]} == {777}


# === 7. Session options ==========================================================================


async def session_options(lib: Any, rec: Recorder, app: AppServer) -> Any:
    calls = []

    async def check(response: Any) -> None:
        await anyio.lowlevel.checkpoint()  # awaited, on either library
        calls.append((response.status, response.url.path))
        if response.status >= 500:
            raise RuntimeError(f"bad status {response.status}")

    class MyResponse(lib.ClientResponse):
        marker = "mine"

    async with lib.ClientSession(
        trace_configs=[rec.config],
        auto_decompress=False,
        skip_auto_headers={"User-Agent"},
        raise_for_status=check,
        response_class=MyResponse,
    ) as session:
        async with session.get(app.url_for("/gzip")) as resp:
            compressed = await resp.read()
            gz = (resp.headers["Content-Encoding"], gzip.decompress(compressed)[:22], resp.marker)
        async with session.get(app.url_for("/headers")) as resp:
            sent = sorted(name.lower() for name, _ in await resp.json())
        with pytest.raises(RuntimeError, match="bad status 500"):
            await session.get(app.url_for("/status/500"))
        end = rec.params("request_end")
    return (
        gz,
        sent,
        calls,
        [type(p.response).__name__ for p in end],
        isinstance(end[0].response, MyResponse),
    )


async def test_session_options(app: AppServer) -> None:
    (aio, aio_rec), (got, rec) = await both(session_options, app)
    assert aio == (
        ("gzip", b"compressed compressed ", "mine"),
        ["accept", "accept-encoding", "host"],  # no User-Agent on the wire
        [(200, "/gzip"), (200, "/headers"), (500, "/status/500")],  # awaited, each response
        ["MyResponse", "MyResponse"],
        True,
    )
    assert got == aio
    assert sequences(rec) == sequences(aio_rec)
    assert sequences(rec)[-1][-1] == "request_exception"


# === 8. Migration: programs written once for aiohttp =============================================


class Servers:
    """What the programs talk to."""

    def __init__(
        self,
        app: AppServer,
        unix_app: AppServer,
        pinned: Pinned,
        proxy: ProxyServer,
        files: Path,
    ) -> None:
        self.app, self.unix_app, self.pinned = app, unix_app, pinned
        self.proxy, self.files = proxy, files


async def scraper(lib: Any, rec: Recorder, env: Servers) -> Any:
    """Crawls a site through a proxy: logs in (the cookie comes on a redirect), then pages."""
    base = env.app.url_for("", host="localhost")
    pages = []
    async with lib.ClientSession(
        trace_configs=[rec.config],
        proxy=env.proxy.url,
        proxy_auth=lib.BasicAuth("crawler", PROXY_PASSWORD),
        headers={"Accept-Language": "en"},
        timeout=lib.ClientTimeout(total=10),
    ) as session:
        async with session.get(f"{base}/login", params={"next": "/whoami"}) as resp:
            pages.append((resp.status, len(resp.history), (await resp.json())["cookie"]))
        for path in ("/set?seen=1", "/whoami", "/status/404", "/whoami"):
            async with session.get(base + path, cookies={"page": path.strip("/")[:3]}) as resp:
                text = await resp.text()
                pages.append((resp.status, resp.content_type, text[:80]))
        cookies = sorted((morsel.key, morsel.value) for morsel in session.cookie_jar)
    heads = [(h.method, h.target, h.header("Cookie")) for h in env.proxy.heads]
    return pages, cookies, heads


async def uploader(lib: Any, rec: Recorder, env: Servers) -> Any:
    """Uploads a report and an attachment as multipart, then a form and a JSON document."""
    url = env.app.url_for("/upload")
    results = []
    async with lib.ClientSession(trace_configs=[rec.config], raise_for_status=True) as session:
        with open(env.files / "report.txt", "rb") as report:  # noqa: ASYNC230
            form = lib.FormData()
            form.add_field("title", "Q3 report")
            form.add_field("report", report, filename="report.txt", content_type="text/plain")
            form.add_field("attachment", io.BytesIO(BIG[:70_000]), filename="data.bin")
            async with session.post(url, data=form) as resp:
                results.append((resp.status, await resp.json()))
        async with session.post(url, data={"title": "Q3", "draft": "yes"}) as resp:
            results.append((resp.status, await resp.json()))
        async with session.put(url, json={"title": "Q3", "pages": 12}) as resp:
            results.append((resp.status, await resp.json()))
    return results, chunk_sizes(rec)


async def docker_client(lib: Any, rec: Recorder, env: Servers) -> Any:
    """Talks to a Docker-style API over its Unix socket: list, create, follow the logs."""
    assert env.unix_app.unix_path is not None
    connector = lib.UnixConnector(path=env.unix_app.unix_path)
    async with lib.ClientSession(
        "http://localhost", connector=connector, trace_configs=[rec.config]
    ) as docker:
        async with docker.get("/containers/json", params={"all": "1"}) as resp:
            listed = [c["Names"][0] for c in await resp.json()]
        async with docker.post("/containers/create", json={"Image": "alpine"}) as resp:
            created = (resp.status, await resp.json())
        logs = []
        async with docker.get("/containers/4f1c/logs", params={"follow": "1"}) as resp:
            async for line in resp.content:
                logs.append(line.decode().rstrip("\n"))
        async with docker.get("/containers/nope/json") as resp:
            missing = (resp.status, (await resp.json())["message"])
    return listed, created, logs, missing


async def pinned_client(lib: Any, rec: Recorder, env: Servers) -> Any:
    """Talks to a self-signed service by pinning its certificate's SHA-256."""
    pin = lib.Fingerprint(env.pinned.digest)
    url = env.pinned.server.url_for("/pinned", host="localhost")
    results: list[Any] = []
    async with lib.ClientSession(trace_configs=[rec.config]) as session:
        for _ in range(2):
            async with session.get(url, ssl=pin) as resp:
                results.append(await resp.json())
        for choice in (lib.Fingerprint(hashlib.sha256(b"other").digest()), True):
            try:
                await _get(session, url, ssl=choice)
            except lib.ClientError as exc:
                results.append(type(exc).__name__)
        async with session.get(url, ssl=False) as resp:
            results.append(resp.status)
    return results


PROGRAMS = [scraper, uploader, docker_client, pinned_client]
EXPECTED_SEQUENCES = {
    "scraper": [
        # aiohttp opens a new proxy connection for a redirect hop (see
        # test_redirect_through_proxy_as_aiohttp)
        [*CREATE[:4], "request_redirect", *CREATE[1:]],
        REUSE,
        REUSE,
        REUSE,
        REUSE,
    ],
    "uploader": [CREATE, REUSE, REUSE],
    "docker_client": [CREATE, REUSE, REUSE, REUSE],
    "pinned_client": [
        CREATE_BY_NAME,
        REUSE,
        ["request_start", "connection_create_start", "dns_cache_hit", "request_exception"],
        ["request_start", "connection_create_start", "dns_cache_hit", "request_exception"],
        ["request_start", "connection_create_start", "dns_cache_hit", *CREATE[2:]],
    ],
}


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
async def test_program_runs_unchanged(
    program: Scenario,
    app: AppServer,
    unix_app: AppServer,
    pinned: Pinned,
    proxy: ProxyServer,
    files: Path,
) -> None:
    env = Servers(app, unix_app, pinned, proxy, files)
    (aio, aio_rec), (got, rec) = await both(program, env, before=proxy.reset)
    assert sequences(aio_rec) == EXPECTED_SEQUENCES[program.__name__]
    if program is scraper:
        # The one difference compat keeps on purpose: the redirect hop through the proxy
        # reuses the proxy connection (aiohttp's pool-key quirk opens a second one).
        expected = [[*CREATE[:4], "request_redirect", *REUSE[1:]], REUSE, REUSE, REUSE, REUSE]
        assert sequences(rec) == expected
    else:
        assert sequences(rec) == sequences(aio_rec)
    assert got == aio
    if program is docker_client:
        assert got[0] == [c["Names"][0] for c in CONTAINERS]
        assert got[2] == [f"4f1c log line {i}" for i in range(4)]
