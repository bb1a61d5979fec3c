"""Client middlewares (aiohttp 3.12+): `ClientRequest`, the middleware types and the chain.

A middleware is `async def mw(request, handler) -> ClientResponse`: it may change the request
(headers, body), call `handler(request)` once, several times (a retry, a second attempt after a
401) or not at all. The session builds the request of each hop (after redirects are decided,
with every header it will send) and runs the chain around its own sender; each call of the
innermost handler is one attempt on the wire, with its own connection, headers-sent and chunk
signals, while `on_request_start` / `on_request_end` stay once per request, as aiohttp traces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._models import BasicAuth, RequestInfo
from ._payload import BytesPayload, Payload, make_body
from ._response import ClientResponse
from ._transport._decoders import ACCEPT_ENCODING

__all__ = ["ClientHandlerType", "ClientMiddlewareType", "ClientRequest", "run_middlewares"]

_FRAMING: Final = ("Content-Length", "Transfer-Encoding")


class ClientRequest:
    """The request a middleware sees and may change before it goes out: `method`, `url`,
    `headers` (every header that will be sent, mutable), `body` (a Payload, or b"" for none),
    `auth`. `await request.update_body(data)` replaces the body and its framing headers."""

    GET_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
    POST_METHODS: Final = frozenset({"PATCH", "POST", "PUT"})
    ALL_METHODS: Final = GET_METHODS | POST_METHODS | {"DELETE"}
    DEFAULT_HEADERS: Final = {"Accept": "*/*", "Accept-Encoding": ACCEPT_ENCODING}

    def __init__(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        content: bytes | Payload | None,
        *,
        auth: BasicAuth | None = None,
        original_url: URL | None = None,
        chunked: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        self.original_url = original_url if original_url is not None else url
        self.headers = headers
        self.auth = auth
        self.chunked = chunked
        self._content = content

    @property
    def host(self) -> str:
        return self.url.raw_host or ""

    @property
    def port(self) -> int | None:
        return self.url.port

    def is_ssl(self) -> bool:
        return self.url.scheme in ("https", "wss")

    @property
    def body(self) -> Payload | Literal[b""]:
        content = self._content
        if content is None:
            return b""
        if isinstance(content, bytes):
            return BytesPayload(content, content_type=self.headers.get("Content-Type", None))
        return content

    @property
    def request_info(self) -> RequestInfo:
        return RequestInfo(self.url, self.method, CIMultiDictProxy(self.headers), self.original_url)

    async def update_body(self, body: Any) -> None:
        """Send `body` instead (anything `data=` takes): Content-Length or chunked framing
        follow it, and its Content-Type unless the request has one."""
        old = self._content
        if isinstance(old, Payload):
            await old.aclose()
        made = make_body(body)
        for name in _FRAMING:
            self.headers.popall(name, None)
        self._content = made.content
        if made.content is None:
            if self.method not in self.GET_METHODS:
                self.headers["Content-Length"] = "0"
            return
        if made.size is not None and not self.chunked:
            self.headers["Content-Length"] = str(made.size)
        else:
            self.headers["Transfer-Encoding"] = "chunked"
        if made.content_type is not None and "Content-Type" not in self.headers:
            self.headers["Content-Type"] = made.content_type
        for name, value in made.headers:
            if name not in self.headers:
                self.headers[name] = value

    async def close(self) -> None:
        """Close the body (the files it reads)."""
        if isinstance(self._content, Payload):
            await self._content.aclose()

    def __repr__(self) -> str:
        return f"<ClientRequest({self.method} {self.url})>"


ClientHandlerType = Callable[[ClientRequest], Awaitable[ClientResponse]]
ClientMiddlewareType = Callable[[ClientRequest, ClientHandlerType], Awaitable[ClientResponse]]


async def run_middlewares(
    middlewares: Sequence[ClientMiddlewareType],
    request: ClientRequest,
    send: ClientHandlerType,
) -> ClientResponse:
    """Call the first middleware with a handler that calls the next, and so on; the last one's
    handler is `send`. Handlers are made per call (a middleware may keep state of its own)."""

    def handler_at(index: int) -> ClientHandlerType:
        if index == len(middlewares):
            return send
        middleware = middlewares[index]

        async def handle(req: ClientRequest) -> ClientResponse:
            return await middleware(req, handler_at(index + 1))

        return handle

    return await handler_at(0)(request)
