"""Requests while a mocking library has patched httpx or httpcore, or over a foreign transport.

respx intercepts at httpx's `AsyncClient._transport_for_url` (`using="httpx"`) or at httpcore's
connection classes (its default); pytest-httpx replaces `httpx.AsyncHTTPTransport`'s
`handle_async_request`. The engine uses none of them, so while one is patched a session's
request takes this slower path instead: the session sends through an httpx client over the
engine's httpx transport, which hands it to the patched method (`EngineTransport`) or through
httpcore's patched connection (`via_httpcore`). `ClientSession(transport=…)` takes the same
path over the transport it was given. Such a request fires the request-level signals only:
nothing reaches the engine's pool or a socket. Neither httpx nor httpcore is imported here: a
package that is not loaded is not patched.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from yarl import URL

from .._tracing import RequestTrace
from ._connection import Exchange

if TYPE_CHECKING:
    import httpcore
    import httpx

    _Handler = Callable[[httpx.AsyncHTTPTransport, httpx.Request], Awaitable[httpx.Response]]

__all__ = ["MockedSender", "httpcore_mocked", "httpx_class_patch", "mocked", "via_httpcore"]

_OWN: dict[str, Any] = {}  # what -> the package's own function, last seen unpatched


def _package(function: object) -> str:
    return str(getattr(function, "__module__", "")).partition(".")[0]


def _replaced(owner: Any, name: str, package: str) -> bool:
    """True while something (respx) has replaced `owner.name` with a function not `package`'s.
    A release without `owner.name` (a private name of httpx's) has nothing to replace: False."""
    function = getattr(owner, name, None)
    if function is None:
        return False
    key = f"{package}.{name}"
    if function is _OWN.get(key):
        return False
    if _package(function) == package:
        _OWN[key] = function
        return False
    return True


def httpx_class_patch() -> _Handler | None:
    """Whatever has replaced `httpx.AsyncHTTPTransport.handle_async_request`, if anything
    (an instrumentation's wrapper or a mocker's function). httpx's own function is found by
    unwrapping the first time httpx is seen (wrappers keep `__wrapped__`; a mocker's plain
    replacement, which hides it, is a patch whatever it is)."""
    import httpx

    current: _Handler | None = vars(httpx.AsyncHTTPTransport).get("handle_async_request")
    own = _OWN.get("httpx.handle_async_request")
    if own is None:
        candidate = inspect.unwrap(current) if current is not None else None
        if _package(candidate) != "httpx":
            return current
        own = _OWN["httpx.handle_async_request"] = candidate
    return None if current is own else current


def _pytest_httpx_mocking() -> bool:
    """pytest-httpx's fixture is active (instrumentation wrappers keep httpx's module name)."""
    patch = httpx_class_patch()
    return patch is not None and getattr(patch, "__module__", "").startswith("pytest_httpx")


def httpcore_mocked() -> bool:
    httpcore = sys.modules.get("httpcore")
    return httpcore is not None and _replaced(
        httpcore.AsyncHTTPConnection, "handle_async_request", "httpcore"
    )


_unpatched: tuple[object, object, object] | None = None
"""The three hooks a mocker replaces, as last found unpatched: while they are still those very
objects, the answer is the same without asking again (httpx is loaded in most processes that
use compat, and the full check costs a request ~3%)."""


def mocked() -> bool:
    """Asked on every session request: two dict lookups while neither package is loaded,
    three attribute reads and three identity checks while nothing has changed since."""
    global _unpatched
    modules = sys.modules
    httpcore = modules.get("httpcore")
    httpx = modules.get("httpx")
    if httpcore is None and httpx is None:
        return False
    hooks = (
        None
        if httpcore is None
        else getattr(httpcore.AsyncHTTPConnection, "handle_async_request", None),
        None if httpx is None else getattr(httpx.AsyncClient, "_transport_for_url", None),
        None if httpx is None else vars(httpx.AsyncHTTPTransport).get("handle_async_request"),
    )
    last = _unpatched
    if last is not None and hooks[0] is last[0] and hooks[1] is last[1] and hooks[2] is last[2]:
        return False
    if (
        httpcore is not None
        and _replaced(httpcore.AsyncHTTPConnection, "handle_async_request", "httpcore")
    ) or (
        httpx is not None
        and (_replaced(httpx.AsyncClient, "_transport_for_url", "httpx") or _pytest_httpx_mocking())
    ):
        return True
    _unpatched = hooks
    return False


class MockedSender:
    """The session's way through httpx while httpx or httpcore is patched."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            transport=transport, follow_redirects=False, trust_env=False, timeout=None
        )

    async def send(
        self,
        method: str,
        url: URL,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterable[bytes] | None,
        trace: RequestTrace,
    ) -> Exchange:
        import httpx

        from ._httpx import EXCHANGE_EXTENSION, TRACE_EXTENSION

        request = httpx.Request(
            method,
            str(url),
            headers=[(k.encode(), v.encode()) for k, v in headers],
            content=body,
            extensions={TRACE_EXTENSION: trace},
        )
        response = await self._client.send(request, stream=True)
        exchange = response.extensions.get(EXCHANGE_EXTENSION)
        if isinstance(exchange, Exchange):
            return exchange  # passed through to the engine
        return Exchange.from_source(
            method,
            trace,
            status=response.status_code,
            reason=response.extensions.get("reason_phrase", b""),
            raw_headers=list(response.headers.raw),
            source=_once(response.content) if response.is_stream_consumed else response.aiter_raw(),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


async def via_httpcore(request: httpcore.Request, port: int) -> httpcore.Response:
    """Send `request` through httpcore's (patched) connection class."""
    import httpcore

    url = request.url
    conn = httpcore.AsyncHTTPConnection(httpcore.Origin(url.scheme, url.host, port))
    try:
        response = await conn.handle_async_request(request)
    except BaseException:
        await conn.aclose()
        raise
    return httpcore.Response(
        status=response.status,
        headers=response.headers,
        content=_CoreStream(response, conn),
        extensions=response.extensions,
    )


class _CoreStream:
    def __init__(self, response: httpcore.Response, conn: httpcore.AsyncHTTPConnection) -> None:
        self._response = response
        self._conn = conn

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream: Any = self._response.stream
        async for chunk in stream:
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()
        await self._conn.aclose()


async def _once(content: bytes) -> AsyncIterator[bytes]:
    """A body the mock already read (respx reads responses it builds)."""
    if content:
        yield content
