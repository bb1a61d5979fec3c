"""Requests while a mocking library has patched httpx or httpcore, or over a foreign transport.

respx intercepts at httpx's `AsyncClient._transport_for_url` (`using="httpx"`) or at httpcore's
connection classes (its default); pytest-httpx replaces `httpx.AsyncHTTPTransport`'s
`handle_async_request`. The engine uses none of them, so while one is patched a session's
request takes this slower path instead: the session sends through an httpx client over the
engine's httpx transport, which hands it to the patched method (`EngineTransport`) or through
httpcore's patched connection (`via_httpcore`). `ClientSession(transport=…)` takes the same
path over the transport it was given. Such a request fires the request-level signals only:
nothing reaches the engine's pool or a socket.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

import httpcore
import httpx
from yarl import URL

from .._tracing import RequestTrace
from ._connection import Exchange

__all__ = ["MockedSender", "httpcore_mocked", "httpx_class_patch", "mocked", "via_httpcore"]

_HTTPCORE_HANDLE = httpcore.AsyncHTTPConnection.handle_async_request
_HTTPX_TRANSPORT_FOR_URL = httpx.AsyncClient._transport_for_url
_Handler = Callable[[httpx.AsyncHTTPTransport, httpx.Request], Awaitable[httpx.Response]]
_HTTPX_HANDLE: _Handler = inspect.unwrap(httpx.AsyncHTTPTransport.handle_async_request)


def httpx_class_patch() -> _Handler | None:
    """Whatever has replaced `httpx.AsyncHTTPTransport.handle_async_request`, if anything
    (an instrumentation's wrapper or a mocker's function)."""
    current: _Handler | None = vars(httpx.AsyncHTTPTransport).get("handle_async_request")
    return None if current is _HTTPX_HANDLE else current


def _pytest_httpx_mocking() -> bool:
    """pytest-httpx's fixture is active (instrumentation wrappers keep httpx's module name)."""
    patch = httpx_class_patch()
    return patch is not None and getattr(patch, "__module__", "").startswith("pytest_httpx")


def httpcore_mocked() -> bool:
    return httpcore.AsyncHTTPConnection.handle_async_request is not _HTTPCORE_HANDLE


def mocked() -> bool:
    return (
        httpcore.AsyncHTTPConnection.handle_async_request is not _HTTPCORE_HANDLE
        or httpx.AsyncClient._transport_for_url is not _HTTPX_TRANSPORT_FOR_URL
        or _pytest_httpx_mocking()
    )


class MockedSender:
    """The session's way through httpx while httpx or httpcore is patched."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
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
