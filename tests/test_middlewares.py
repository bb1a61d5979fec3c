"""Client middlewares and DigestAuthMiddleware, side by side with aiohttp 3.14.5.

A server of ours issues digest challenges and checks the answers (RFC 7616, computed here
independently), and serves a path that fails once then succeeds. aiohttp (asyncio, in a worker
thread) and compat (asyncio and trio) run the same middlewares with the same trace config on
it; the tests compare the status sequences, the Authorization fields and the signal lists.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import anyio
import anyio.to_thread
import pytest

import compat
from compat._tracing import AIOHTTP_SIGNALS

from .conftest import Recorder
from .server import Request, TestServer, _response

pytestmark = pytest.mark.anyio

USER, PASSWORD = "user", "pa:ss wörd"
REALM, NONCE, OPAQUE = "test realm", "n0nce-1", "0paque"
_HASH = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256, "SHA-512-SESS": hashlib.sha512}


def _params(header: str) -> dict[str, str]:
    return {
        k: v1 or v2 for k, v1, v2 in re.findall(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', header)
    }


def _expected(p: dict[str, str], method: str, body: bytes, algorithm: str) -> str:
    fn = _HASH[algorithm]

    def h(text: str | bytes) -> str:
        return fn(text if isinstance(text, bytes) else text.encode()).hexdigest()

    ha1 = h(f"{USER}:{REALM}:{PASSWORD}")
    if algorithm.endswith("-SESS"):
        ha1 = h(f"{ha1}:{p['nonce']}:{p['cnonce']}")
    a2 = f"{method}:{p['uri']}"
    if p.get("qop") == "auth-int":
        a2 += ":" + h(body)
    if "qop" in p:
        return h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{h(a2)}")
    return h(f"{ha1}:{p['nonce']}:{h(a2)}")


class AuthServer(TestServer):
    """/digest/<algorithm>/<qop|none>: 401 + challenge unless the answer checks out.
    /flaky/<key>: 503 the first time a key is seen, then 200."""

    def __init__(self) -> None:
        super().__init__()
        self.flaky: set[str] = set()
        self.answers: list[dict[str, str]] = []

    async def _route(self, request: Request, writer: asyncio.StreamWriter) -> bytes | None:
        parts = request.path.strip("/").split("/")
        if parts[0] == "flaky":
            if parts[1] in self.flaky:
                return _response(200, b"second", [("Content-Type", "text/plain")])
            self.flaky.add(parts[1])
            return _response(503, b"first", [("Content-Type", "text/plain")])
        if parts[0] == "slow-second":  # fast the first time a key is seen, then 5 s
            if parts[1] in self.flaky:
                await asyncio.sleep(5)
            self.flaky.add(parts[1])
            return _response(200, b"fast", [("Content-Type", "text/plain")])
        if parts[0] == "token":
            return _response(200, b"t0ken", [("Content-Type", "text/plain")])
        if parts[0] == "needs-token":
            ok = request.header("Authorization") == "Bearer t0ken"
            return _response(200 if ok else 401, b"ok" if ok else b"no")
        if parts[0] != "digest":
            return await super()._route(request, writer)
        algorithm, qop = parts[1], parts[2]
        given = request.header("Authorization") or ""
        if given.startswith("Digest "):
            p = _params(given[7:])
            self.answers.append(p)
            if p.get("response") == _expected(p, request.method, request.body, algorithm):
                return _response(200, b"welcome " + p.get("nc", "-").encode())
        challenge = f'Digest realm="{REALM}", nonce="{NONCE}", algorithm={algorithm}'
        challenge += f', opaque="{OPAQUE}"'
        if qop != "none":
            challenge += f', qop="{qop}"'
        return _response(401, b"who are you", [("WWW-Authenticate", challenge)])


@pytest.fixture(scope="module")
def auth_server() -> Iterator[AuthServer]:
    srv = AuthServer().start()
    yield srv
    srv.stop()


def _aiohttp(job: Callable[[], Any]) -> Any:
    return anyio.to_thread.run_sync(lambda: asyncio.run(job()))


def _signals(recorder: Recorder) -> list[str]:
    """Every aiohttp signal in order (chunk signals included: one per piece)."""
    return [n[3:] for n, _, _ in recorder.events if n in AIOHTTP_SIGNALS]


Calls = list[tuple[str, str, bytes]] | Callable[[], list[tuple[str, str, bytes]]]


async def _run(
    lib: Any, middlewares: Callable[[Any], tuple[Any, ...]], calls: Calls
) -> tuple[list[Any], list[str]]:
    if callable(calls):
        calls = calls()
    recorder = Recorder(lib=lib)
    seen: list[Any] = []
    async with lib.ClientSession(
        trace_configs=[recorder.config], middlewares=middlewares(lib)
    ) as session:
        for method, url, body in calls:
            async with session.request(method, url, data=body or None) as resp:
                seen.append((resp.status, await resp.read(), len(resp.history)))
    return seen, _signals(recorder)


async def _both(middlewares: Callable[[Any], tuple[Any, ...]], calls: Calls) -> tuple[Any, Any]:
    theirs = await _aiohttp(lambda: _run(aiohttp, middlewares, calls))
    ours = await _run(compat, middlewares, calls)
    return ours, theirs


@pytest.mark.parametrize(
    ("algorithm", "qop", "method"),
    [
        ("MD5", "auth", "GET"),
        ("MD5", "none", "GET"),
        ("SHA-256", "auth", "GET"),
        ("SHA-256", "auth-int", "POST"),
        ("SHA-512-SESS", "auth,auth-int", "PUT"),
    ],
)
async def test_digest_auth_as_aiohttp(
    algorithm: str, qop: str, method: str, auth_server: AuthServer
) -> None:
    url = auth_server.url_for(f"/digest/{algorithm}/{qop}")
    calls = [(method, url, b"payload" if method != "GET" else b"")] * 2

    def digest(lib: Any) -> tuple[Any, ...]:
        return (lib.DigestAuthMiddleware(USER, PASSWORD),)

    auth_server.answers.clear()
    ours, theirs = await _both(digest, calls)
    their_answers = auth_server.answers[: len(auth_server.answers) // 2]
    our_answers = auth_server.answers[len(auth_server.answers) // 2 :]
    assert ours == theirs
    seen, signals = ours
    first, second = ("00000001", "00000002") if qop != "none" else ("-", "-")
    assert seen == [(200, b"welcome " + first.encode(), 0), (200, b"welcome " + second.encode(), 0)]
    # 401 then the answer; then the second request answered up front (preemptive)
    assert signals.count("request_headers_sent") == 3 and signals.count("request_start") == 2

    def fixed(p: dict[str, str]) -> list[tuple[str, str]]:
        return [(k, v) for k, v in p.items() if k not in ("cnonce", "response")]

    assert [fixed(p) for p in our_answers] == [fixed(p) for p in their_answers]
    assert [list(p) for p in our_answers] == [list(p) for p in their_answers]


async def test_digest_header_fields_as_aiohttp(auth_server: AuthServer) -> None:
    """The Authorization value's field order and quoting (random cnonce and response aside)."""
    url = auth_server.url_for("/digest/MD5/auth")
    headers: dict[str, list[str]] = {"aiohttp": [], "compat": []}

    def capture(lib: Any) -> tuple[Any, ...]:
        async def record(request: Any, handler: Any) -> Any:
            response = await handler(request)
            headers[lib.__name__].append(request.headers.get("Authorization", ""))
            return response

        return (lib.DigestAuthMiddleware(USER, PASSWORD), record)

    await _both(capture, [("GET", url, b"")])

    def shape(value: str) -> str:
        return re.sub(r'(cnonce|response)="[0-9a-f]+"', r'\1="*"', value)

    assert [shape(v) for v in headers["compat"]] == [shape(v) for v in headers["aiohttp"]]
    assert headers["compat"][-1].startswith('Digest username="user", realm="test realm"')


async def test_retrying_middleware_signals_as_aiohttp(auth_server: AuthServer) -> None:
    """A middleware that retries on 503: each attempt has its own signals, as in aiohttp."""

    def retry(lib: Any) -> tuple[Any, ...]:
        async def again_on_503(request: Any, handler: Any) -> Any:
            response = await handler(request)
            if response.status == 503:
                await response.read()
                response.release()
                response = await handler(request)
            return response

        return (again_on_503,)

    def calls() -> list[tuple[str, str, bytes]]:
        return [("GET", auth_server.url_for(f"/flaky/{uuid.uuid4().hex}"), b"")]

    ours, theirs = await _both(retry, calls)
    assert ours == theirs
    assert ours[0] == [(200, b"second", 0)]
    assert ours[1].count("request_headers_sent") == 2 and ours[1].count("request_start") == 1


async def test_middleware_issuing_a_second_request_as_aiohttp(auth_server: AuthServer) -> None:
    """A middleware fetching a token with its own request (middlewares=() to avoid looping):
    that request is traced as a request of its own, nested, as in aiohttp."""
    token_url = auth_server.url_for("/token")

    def token(lib: Any) -> tuple[Any, ...]:
        async def add_token(request: Any, handler: Any) -> Any:
            session = add_token.session  # type: ignore[attr-defined]
            async with session.get(token_url, middlewares=()) as resp:
                value = (await resp.read()).decode()
            request.headers["Authorization"] = "Bearer " + value
            return await handler(request)

        return (add_token,)

    async def run(lib: Any) -> tuple[list[Any], list[str]]:
        recorder = Recorder(lib=lib)
        middlewares = token(lib)
        async with lib.ClientSession(
            trace_configs=[recorder.config], middlewares=middlewares
        ) as session:
            middlewares[0].session = session
            async with session.get(auth_server.url_for("/needs-token")) as resp:
                seen = [(resp.status, await resp.read())]
            async with session.get(auth_server.url_for("/needs-token"), middlewares=()) as resp:
                seen.append((resp.status, await resp.read()))
        return seen, _signals(recorder)

    theirs = await _aiohttp(lambda: run(aiohttp))
    ours = await run(compat)
    assert ours == theirs
    assert ours[0] == [(200, b"ok"), (401, b"no")]  # per-request middlewares=() overrides
    assert ours[1].count("request_start") == 3


async def test_request_changes_reach_the_wire(auth_server: AuthServer) -> None:
    seen: list[Any] = []

    async def rewrite(request: compat.ClientRequest, handler: compat.ClientHandlerType) -> Any:
        assert request.method == "POST" and request.body != b""
        assert isinstance(request.body, compat.Payload)
        seen.append(await request.body.as_bytes())
        request.headers["X-Added"] = "1"
        await request.update_body(b"replaced body")
        return await handler(request)

    auth_server.reset_stats()
    async with (
        compat.ClientSession(middlewares=(rewrite,)) as session,
        session.post(auth_server.url_for("/echo"), data="original") as resp,
    ):
        assert await resp.read() == b"replaced body"
        assert resp.request_info.headers["X-Added"] == "1"
    request = auth_server.stats.seen[-1]
    assert request.header("X-Added") == "1" and request.header("Content-Length") == "13"
    assert seen == [b"original"]


async def test_middleware_error_reaches_request_exception(auth_server: AuthServer) -> None:
    recorder = Recorder()

    async def broken(request: Any, handler: Any) -> Any:
        raise compat.ClientError("middleware says no")

    async with compat.ClientSession(trace_configs=[recorder.config]) as session:
        with pytest.raises(compat.ClientError, match="middleware says no"):
            await session.get(auth_server.url_for("/ok"), middlewares=(broken,))
    assert recorder.names() == ["request_start", "request_exception"]


async def test_digest_errors_as_aiohttp(auth_server: AuthServer) -> None:
    for args in ((None, "p"), ("u", None), ("a:b", "p")):
        outcomes = []
        for lib in (aiohttp, compat):
            with pytest.raises(ValueError) as caught:
                lib.DigestAuthMiddleware(*args)
            outcomes.append(str(caught.value))
        assert outcomes[0] == outcomes[1]

    async def unsupported(lib: Any) -> str:
        async with lib.ClientSession(middlewares=(lib.DigestAuthMiddleware("u", "p"),)) as s:
            try:
                await s.get(auth_server.url_for("/digest/MD4/auth"))
            except lib.ClientError as exc:
                return f"{type(exc).__name__}: {exc}"
        return "no error"

    theirs = await _aiohttp(lambda: unsupported(aiohttp))
    assert theirs.startswith("ClientError: Digest auth error: Unsupported hash algorithm: MD4")
    assert await unsupported(compat) == theirs


async def test_cancelled_middleware_retry_leaks_nothing(auth_server: AuthServer) -> None:
    """Cancelled while a middleware's second attempt waits for its answer: the first response
    (dropped unreleased) and the second attempt's connection are both given back, and the
    request ends with on_request_exception."""
    recorder = Recorder()
    second_sent = anyio.Event()
    attempts = 0

    async def on_headers_sent(session: Any, ctx: Any, params: Any) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 2:
            second_sent.set()

    config = compat.TraceConfig()
    config.on_request_headers_sent.append(on_headers_sent)

    async def twice(request: Any, handler: Any) -> Any:
        await handler(request)  # dropped without release
        return await handler(request)

    url = auth_server.url_for(f"/slow-second/{uuid.uuid4().hex}")
    async with compat.ClientSession(
        trace_configs=[config, recorder.config], middlewares=(twice,)
    ) as session:
        async with anyio.create_task_group() as tg:

            async def request() -> None:
                await session.get(url)

            tg.start_soon(request)
            await second_sent.wait()
            tg.cancel_scope.cancel()
        assert session.connector.stats().in_use == 0
    assert recorder.names()[0] == "request_start"
    assert recorder.names()[-1] == "request_exception"
    assert recorder.names().count("request_headers_sent") == 2
