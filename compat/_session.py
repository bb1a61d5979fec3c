"""`ClientSession`: aiohttp's session API over the engine, with the request signals.

The session builds each hop's wire head itself and hands it to the connector's engine: no
httpx object is made on its path. It follows redirects itself and sends all request-level
signals from the caller's own task: OpenTelemetry attaches a context in `on_request_start`
and detaches it in `on_request_end`, which only works there.
"""

from __future__ import annotations

import json as json_module
import math
import os
import warnings
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Sequence,
)
from contextlib import nullcontext
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

import anyio
from multidict import CIMultiDict, istr
from yarl import URL

if TYPE_CHECKING:
    import httpx

    from ._websocket import WSRequestContextManager

from ._connector import BaseConnector, TCPConnector, UnixConnector
from ._cookies import CookieJar, DummyCookieJar
from ._exceptions import (
    ClientConnectorError,
    ClientOSError,
    ClientPayloadError,
    InvalidUrlClientError,
    InvalidUrlRedirectClientError,
    NonHttpUrlClientError,
    NonHttpUrlRedirectClientError,
    ServerDisconnectedError,
    TooManyRedirects,
    TotalTimeoutError,
    connection_key,
    to_client_error,
)
from ._middlewares import ClientMiddlewareType, ClientRequest, run_middlewares
from ._models import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    BasicAuth,
    ClientTimeout,
    Fingerprint,
    HttpVersion,
    HttpVersion11,
    PendingRequestInfo,
)
from ._params import request_redirect_params
from ._payload import Payload, make_body
from ._response import ClientResponse
from ._tracing import NO_TRACE, RequestTrace, Tracer
from ._transport._backends import WATCHED, Deadline
from ._transport._connection import Exchange, is_token
from ._transport._decoders import ACCEPT_ENCODING
from ._transport._mocked import MockedSender, mocked
from ._transport._opener import Proxy
from ._upload import UploadTracker

__all__ = ["ClientSession"]

_UNSET: Any = object()
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_DEFAULT_HEADERS = (
    ("Accept", "*/*"),
    ("Accept-Encoding", ACCEPT_ENCODING),
    ("User-Agent", USER_AGENT),
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Data = bytes | bytearray | str | dict[str, Any] | Iterable[tuple[str, Any]] | AsyncIterable[bytes]
RaiseForStatus = bool | Callable[[ClientResponse], Awaitable[None]]


_WIRE_SCHEME = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
"""What a URL's scheme is on the wire: websocket URLs are HTTP(S) until the upgrade."""


class ClientSession:
    """An HTTP client session with aiohttp's calling conventions and tracing."""

    def __init__(
        self,
        base_url: str | URL | None = None,
        *,
        connector: BaseConnector | None = None,
        connector_owner: bool = True,
        cookies: Any = None,
        headers: dict[str, str] | Iterable[tuple[str, str]] | None = None,
        auth: BasicAuth | None = None,
        timeout: ClientTimeout = DEFAULT_TIMEOUT,
        cookie_jar: CookieJar | DummyCookieJar | None = None,
        raise_for_status: RaiseForStatus = False,
        trace_configs: Iterable[Any] | None = None,
        proxy: str | URL | None = None,
        proxy_auth: BasicAuth | None = None,
        trust_env: bool = False,
        auto_decompress: bool = True,
        read_bufsize: int = 2**18,
        skip_auto_headers: Iterable[str] | None = None,
        requote_redirect_url: bool = True,
        json_serialize: Callable[[Any], str] = json_module.dumps,
        response_class: type[ClientResponse] | None = None,
        max_line_size: int = 8190,
        max_field_size: int = 8190,
        max_headers: int = 128,
        transport: httpx.AsyncBaseTransport | None = None,
        middlewares: Sequence[ClientMiddlewareType] = (),
    ) -> None:
        if response_class is not None and not issubclass(response_class, ClientResponse):
            raise TypeError("response_class must be a subclass of compat.ClientResponse")
        if timeout is not None and not isinstance(timeout, ClientTimeout):
            raise TypeError(f"timeout must be a ClientTimeout, not {type(timeout).__name__}")
        if auth is not None and not isinstance(auth, BasicAuth):
            raise TypeError("auth must be a compat.BasicAuth")
        if connector is not None and not isinstance(connector, BaseConnector):
            kind = f"{type(connector).__module__}.{type(connector).__qualname__}"
            raise TypeError(
                f"connector must be a compat connector (TCPConnector, UnixConnector or a "
                f"subclass), not {kind}: an aiohttp connector cannot drive compat's transport"
            )
        if connector is not None and not hasattr(connector, "_engine"):
            raise TypeError(
                f"{type(connector).__name__} opens no connections: a BaseConnector subclass "
                "must build on TCPConnector or UnixConnector"
            )
        self._base_url = None if base_url is None else URL(base_url)
        if self._base_url is not None and not self._base_url.absolute:
            raise ValueError("base_url must be an absolute URL")
        self._connector = connector if connector is not None else TCPConnector()
        self._connector_owner = connector_owner if connector is not None else True
        self._default_headers: CIMultiDict[str] = CIMultiDict(headers or {})
        self._auth = auth
        self._timeout = timeout or ClientTimeout()
        self._raise_for_status = raise_for_status
        self._tracer = Tracer(self, tuple(trace_configs or ()))
        self._cookie_jar = CookieJar() if cookie_jar is None else cookie_jar
        if cookies:
            # Quoted as aiohttp's jar does: a value never splits into two cookies on the wire.
            self._cookie_jar.update_cookies(cookies)
        self._proxy = None if proxy is None else URL(proxy)
        self._proxy_auth = proxy_auth
        self._trust_env = trust_env
        self._auto_decompress = auto_decompress
        self._read_bufsize = read_bufsize
        self._limits = (max_line_size, max_field_size, max_headers)  # the response head's
        self._skip_auto_headers = frozenset(h.lower() for h in skip_auto_headers or ())
        self._skip_auto_header_names = frozenset(istr(h) for h in skip_auto_headers or ())
        self._requote_redirect_url = requote_redirect_url
        self._json_serialize = json_serialize
        self._response_class = response_class or ClientResponse
        self._middlewares = tuple(middlewares)
        self._to_release: list[Exchange] = []
        if transport is not None and not _is_httpx_transport(transport):
            raise TypeError("transport must be an httpx.AsyncBaseTransport")
        # A foreign httpx transport (ASGI, mock, …) carries every request: the session owns it
        self._mocked: MockedSender | None = None if transport is None else MockedSender(transport)
        self._foreign = transport is not None
        self._closed = False
        self._detached = False

    @property
    def trust_env(self) -> bool:
        return self._trust_env

    @property
    def auto_decompress(self) -> bool:
        return self._auto_decompress

    @property
    def requote_redirect_url(self) -> bool:
        return self._requote_redirect_url

    # --- public surface ---

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connector(self) -> BaseConnector | None:
        """None once `detach()`ed, as in aiohttp."""
        return None if self._detached else self._connector

    @property
    def connector_owner(self) -> bool:
        return self._connector_owner

    @property
    def auth(self) -> BasicAuth | None:
        return self._auth

    @property
    def raise_for_status(self) -> RaiseForStatus:
        return self._raise_for_status

    @property
    def json_serialize(self) -> Callable[[Any], str]:
        return self._json_serialize

    @property
    def version(self) -> HttpVersion:
        """The HTTP version requests are made with (aiohttp's `version=`; 1.1 only here)."""
        return HttpVersion11

    @property
    def skip_auto_headers(self) -> frozenset[istr]:
        return self._skip_auto_header_names

    def detach(self) -> None:
        """Leave the connector open and to its other users; this session is closed."""
        self._detached = True
        self._closed = True
        self._release_pending()

    @property
    def trace_configs(self) -> list[Any]:
        """A list, as aiohttp's; the configs are fixed when the session is made."""
        return list(self._tracer.configs)

    @property
    def headers(self) -> CIMultiDict[str]:
        return self._default_headers

    @property
    def timeout(self) -> ClientTimeout:
        return self._timeout

    @property
    def cookie_jar(self) -> CookieJar | DummyCookieJar:
        return self._cookie_jar

    def _cookie_header(self, url: URL, cookies: Any) -> str | None:
        """The Cookie header: the jar's cookies for `url`, and the request's own `cookies=`
        (in a jar of their own with the session jar's quoting, overriding by name)."""
        jar_header = self._cookie_jar.cookie_header(url)
        if not cookies:
            return jar_header
        own = CookieJar(quote_cookie=self._cookie_jar.quote_cookie)
        own.update_cookies(cookies)
        merged = {m.key: m.coded_value for m in self._cookie_jar.filter_cookies(url).values()}
        merged.update({m.key: m.coded_value for m in own.filter_cookies(url).values()})
        if not merged:
            return None
        return "; ".join(f"{name}={merged[name]}" for name in sorted(merged))

    def request(self, method: str, url: str | URL, **kwargs: Any) -> _RequestContextManager:
        return _RequestContextManager(self._request(method, url, **kwargs))

    def get(self, url: str | URL, **kwargs: Any) -> _RequestContextManager:
        return _RequestContextManager(self._request("GET", url, **kwargs))

    def options(self, url: str | URL, **kwargs: Any) -> _RequestContextManager:
        return _RequestContextManager(self._request("OPTIONS", url, **kwargs))

    def head(self, url: str | URL, **kwargs: Any) -> _RequestContextManager:
        kwargs.setdefault("allow_redirects", False)
        return _RequestContextManager(self._request("HEAD", url, **kwargs))

    def post(self, url: str | URL, **kwargs: Any) -> _RequestContextManager:
        return _RequestContextManager(self._request("POST", url, **kwargs))

    def put(self, url: str | URL, **kwargs: Any) -> _RequestContextManager:
        return _RequestContextManager(self._request("PUT", url, **kwargs))

    def patch(self, url: str | URL, **kwargs: Any) -> _RequestContextManager:
        return _RequestContextManager(self._request("PATCH", url, **kwargs))

    def delete(self, url: str | URL, **kwargs: Any) -> _RequestContextManager:
        return _RequestContextManager(self._request("DELETE", url, **kwargs))

    def ws_connect(self, url: str | URL, **kwargs: Any) -> WSRequestContextManager:
        """A websocket: aiohttp's `ws_connect`, its arguments and defaults (see
        `_websocket.connect`); `trace_request_ctx=` is a compat extension."""
        from ._websocket import WSRequestContextManager, connect  # loaded on first use

        return WSRequestContextManager(connect(self, url, **kwargs))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._release_pending()
        if self._mocked is not None:
            await self._mocked.aclose()
        if self._connector_owner:
            await self._connector.close()

    async def __aenter__(self) -> ClientSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __del__(self) -> None:
        if not self.__dict__.get("_closed", True):
            warnings.warn(
                f"Unclosed client session {self!r}", ResourceWarning, stacklevel=2, source=self
            )

    # --- the request ---

    def _defer_release(self, exchange: Exchange) -> None:
        """A response dropped unreleased: closed before the next request."""
        self._to_release.append(exchange)

    def _release_pending(self) -> None:
        while self._to_release:
            self._to_release.pop().close()

    def _build_url(self, str_or_url: str | URL) -> URL:
        if not isinstance(str_or_url, (str, URL)):
            raise TypeError(f"url must be a str or yarl.URL, not {type(str_or_url).__name__}")
        try:
            url = URL(str_or_url)
        except (ValueError, TypeError) as exc:
            raise InvalidUrlClientError(str_or_url, str(exc)) from exc
        if self._base_url is not None and not url.absolute:
            url = self._base_url.join(url)
        return url

    async def _request(
        self,
        method: str,
        str_or_url: str | URL,
        *,
        params: Any = None,
        data: Data | None = None,
        json: Any = None,
        headers: dict[str, str] | Iterable[tuple[str, str]] | None = None,
        auth: BasicAuth | None = None,
        allow_redirects: bool = True,
        max_redirects: int = 10,
        trace_request_ctx: Any = None,
        timeout: ClientTimeout | None = _UNSET,
        raise_for_status: RaiseForStatus | None = None,
        ssl: bool | SSLContext | Fingerprint = True,
        proxy: str | URL | None = None,
        proxy_auth: BasicAuth | None = None,
        proxy_headers: dict[str, str] | Iterable[tuple[str, str]] | None = None,
        skip_auto_headers: Iterable[str] | None = None,
        auto_decompress: bool | None = None,
        read_bufsize: int | None = None,
        chunked: bool | None = None,
        cookies: Any = None,
        max_line_size: int | None = None,
        max_field_size: int | None = None,
        max_headers: int | None = None,
        middlewares: Sequence[ClientMiddlewareType] | None = None,
        upload_tracker: UploadTracker | None = None,
    ) -> ClientResponse:
        if self._closed:
            raise RuntimeError("Session is closed")
        if upload_tracker is not None:
            upload_tracker._bind()
        if self._to_release:
            self._release_pending()
        if not isinstance(method, str):
            raise TypeError(f"method must be a str, not {type(method).__name__}")
        if data is not None and json is not None:
            raise ValueError("data and json parameters can not be used at the same time")
        if auth is not None and not isinstance(auth, BasicAuth):
            raise TypeError("auth must be a compat.BasicAuth")
        method = method.upper()
        url = self._build_url(str_or_url)
        if url.scheme == "unix" and isinstance(self._connector, UnixConnector):
            url = url.with_scheme("http")  # aiohttp: the host only names Host and the key
        if url.scheme and url.scheme not in _WIRE_SCHEME:
            raise NonHttpUrlClientError(url)
        url_auth = (
            None if url.raw_user is None and url.raw_password is None else BasicAuth.from_url(url)
        )
        if url_auth is not None:
            if auth is not None:
                raise ValueError("Cannot combine AUTH argument with credentials encoded in URL")
            auth, url = url_auth, url.with_user(None)
        if params:
            url = url.extend_query(params)
        if timeout is _UNSET:
            timeout = self._timeout
        elif timeout is None:
            timeout = ClientTimeout()
        elif not isinstance(timeout, ClientTimeout):
            raise TypeError(f"timeout must be a ClientTimeout, not {type(timeout).__name__}")
        if not isinstance(ssl, (bool, SSLContext, Fingerprint)):
            raise TypeError(f"ssl should be SSLContext, Fingerprint, or bool, got {ssl!r} instead.")
        headers_md = CIMultiDict(self._default_headers)
        if headers:
            headers_md.update(headers)
        options = _Options(
            ssl,
            None if proxy is None else URL(proxy),
            proxy_auth,
            tuple(CIMultiDict(proxy_headers).items()) if proxy_headers else (),
            self._skip_auto_headers
            if skip_auto_headers is None
            else frozenset(h.lower() for h in skip_auto_headers),
            self._auto_decompress if auto_decompress is None else auto_decompress,
            self._read_bufsize if read_bufsize is None else read_bufsize,
            bool(chunked),
            timeout,
            math.inf,
            self._limits
            if max_line_size is None and max_field_size is None and max_headers is None
            else _limits(self._limits, max_line_size, max_field_size, max_headers),
        )
        options.middlewares = self._middlewares if middlewares is None else tuple(middlewares)
        options.upload_tracker = upload_tracker

        tracer = self._tracer
        trace = tracer.start(trace_request_ctx) if tracer.configs else NO_TRACE
        if tracer.on_request_start:
            await trace.request_start(method, url, headers_md)

        # From here on, every failure reaches on_request_exception.
        response: ClientResponse | None = None
        history: list[ClientResponse] = []
        body: bytes | Payload | None = None
        try:
            if not is_token(method):
                raise ValueError(f"Method cannot contain non-token characters: {method!r}")
            if not url.host or not url.scheme:
                raise InvalidUrlClientError(url)
            body_headers: tuple[tuple[str, str], ...] = ()
            if data is None and json is None:  # (what make_body gives for it, without a call)
                body, content_type, size = None, None, None
            else:
                payload = make_body(data, json, json_serialize=self._json_serialize)
                body, content_type, size = payload.content, payload.content_type, payload.size
                body_headers = payload.headers
            # No code but ours runs in the block (no middlewares, body iterators or mocks; trace
            # handlers run guarded): on trio its deadline needs no cancel scope (see `Deadline`).
            watched = (body is None or type(body) is bytes) and not (
                options.middlewares or upload_tracker is not None
            )
            with Deadline(math.inf, timeout.total, watched) as scope:
                if tracer.configs and scope.watching:
                    trace.guard = scope  # (taken back below, and in the except clause)
                options.deadline = scope.when
                auth = auth or self._auth
                if auth is None and self._trust_env:
                    auth = _netrc_auth(url.raw_host or "")  # aiohttp: netrc for the target
                retry = method in _IDEMPOTENT  # once, on a dropped connection, as aiohttp
                while True:
                    try:
                        items, target, via = self._hop(
                            method,
                            url,
                            headers_md,
                            body,
                            content_type,
                            size,
                            auth,
                            options,
                            cookies,
                            body_headers,
                        )
                        if options.middlewares:
                            response = await self._via_middlewares(
                                method, url, items, body, auth, via, trace, options
                            )
                        else:
                            response = await self._exchange(
                                method, url, items, body, target, via, trace, options
                            )
                    except ClientConnectorError:
                        raise
                    except (ClientOSError, ServerDisconnectedError):
                        if not retry or not _replayable(body):
                            raise
                        retry = False
                        continue
                    if not allow_redirects or response.status not in _REDIRECTS:
                        break
                    location = response.headers.get("Location") or response.headers.get("URI")
                    if tracer.on_request_redirect:
                        await trace.send(
                            tracer.on_request_redirect,
                            request_redirect_params(method, url, headers_md, response),
                        )
                    history.append(response)
                    if max_redirects and len(history) >= max_redirects:
                        response.release()
                        raise TooManyRedirects(
                            history[0].request_info,
                            tuple(history),
                            message=f"Exceeded {max_redirects} redirects",
                        )
                    if location is None:
                        break
                    if (response.status == 303 and method != "HEAD") or (
                        response.status in (301, 302) and method == "POST"
                    ):
                        if isinstance(body, Payload):
                            await body.aclose()
                        method, body, content_type, size = "GET", None, None, None
                        body_headers = ()
                        headers_md.popall("Content-Length", None)
                    elif not _replayable(body):
                        raise ClientPayloadError(
                            "Cannot follow redirect with a consumed request body. "
                            "Use bytes or set allow_redirects=False."
                        )
                    response.release()  # a redirect's body is never decoded, only dropped
                    next_url = _redirect_target(url, location, self._requote_redirect_url)
                    if next_url.origin() != url.origin():
                        auth = None
                        for name in ("Authorization", "Cookie", "Proxy-Authorization"):
                            headers_md.popall(name, None)
                    redirect_auth = BasicAuth.from_url(next_url)
                    if redirect_auth is not None:  # as in the start URL: a header, never shown
                        auth, next_url = redirect_auth, next_url.with_user(None)
                    url = next_url
            trace.guard = None
            if scope.expired:
                raise TotalTimeoutError(f"Request timed out after {timeout.total}s: {method} {url}")
            assert response is not None
            response.history = tuple(history)
            check = self._raise_for_status if raise_for_status is None else raise_for_status
            if callable(check):
                await check(response)
            elif check:
                response.raise_for_status()
            if tracer.on_request_end:
                await trace.request_end(method, url, headers_md, response)
            if body is not None and isinstance(body, Payload):
                await body.aclose()  # as aiohttp: the files it read are closed once sent
            if upload_tracker is not None:
                upload_tracker._finish()
            return response
        except BaseException as exc:
            trace.guard = None
            error = to_client_error(
                exc, connection_key(url), response.request_info if response else None
            )
            if response is not None:
                await response._aclose()  # shielded inside
            if isinstance(body, Payload):
                with anyio.CancelScope(shield=True):
                    await body.aclose()
            if upload_tracker is not None:
                upload_tracker._finish()
            if tracer.on_request_exception:
                await trace.request_exception(method, url, headers_md, error)
            if error is exc:
                raise
            raise error from exc

    def _hop(
        self,
        method: str,
        url: URL,
        headers_md: CIMultiDict[str],
        body: bytes | Payload | None,
        content_type: str | None,
        size: int | None,
        auth: BasicAuth | None,
        options: _Options,
        cookies: Any,
        body_headers: tuple[tuple[str, str], ...],
    ) -> tuple[list[tuple[str, str]], str, Proxy | None]:
        """One hop's wire headers, request target and proxy (a plain function: no await)."""
        skip = options.skip_auto_headers
        if not headers_md and not skip:  # (the usual case: no header of the caller's)
            items = [("Host", url.host_port_subcomponent or ""), *_DEFAULT_HEADERS]
        else:
            items = [("Host", url.host_port_subcomponent or "")] if "Host" not in headers_md else []
            items.extend(headers_md.items())
            for name, value in _DEFAULT_HEADERS:
                if name not in headers_md and (not skip or name.lower() not in skip):
                    items.append((name, value))
        if auth is not None and "Authorization" not in headers_md:
            items.append(("Authorization", auth.encode()))
        if content_type is not None and "Content-Type" not in headers_md:
            items.append(("Content-Type", content_type))
        for name, value in body_headers:  # a payload's own headers, as aiohttp takes them
            if name not in headers_md and (not skip or name.lower() not in skip):
                items.append((name, value))
        if body is None and method in _BODY_METHODS and "Content-Type" not in headers_md:
            items.append(("Content-Type", "application/octet-stream"))  # as aiohttp
        if "Content-Length" in headers_md:
            if size is not None and headers_md["Content-Length"] != str(size):
                raise ClientPayloadError(
                    f"Content-Length {headers_md['Content-Length']!r} does not match the "
                    f"{size} bytes of the request body"
                )
        elif body is not None and size is not None and not options.chunked:
            items.append(("Content-Length", str(size)))
        elif body is not None or options.chunked:
            if "Transfer-Encoding" not in headers_md:
                items.append(("Transfer-Encoding", "chunked"))
        elif method in _BODY_METHODS:
            items.append(("Content-Length", "0"))
        cookie = (
            self._cookie_header(url, cookies) if cookies else self._cookie_jar.cookie_header(url)
        )
        if cookie is not None:
            user = headers_md.get("Cookie")
            if user is None:
                items.append(("Cookie", cookie))
            else:  # aiohttp merges a Cookie header of the caller's with the jar's cookies
                items = [(k, v) for k, v in items if k.lower() != "cookie"]
                items.append(("Cookie", f"{user}; {cookie}"))
        target = url.raw_path_qs or "/"
        if options.proxy is None and self._proxy is None and not self._trust_env:
            proxy = None  # the common case, without a call
        else:
            proxy = self._proxy_for(url, options)
        if proxy is not None and _WIRE_SCHEME[url.scheme] == "http":
            target = str(url.with_fragment(None))  # absolute form, to a forwarding proxy
            if proxy.authorization is not None and "Proxy-Authorization" not in headers_md:
                items.append(("Proxy-Authorization", proxy.authorization))
        return items, target, proxy

    async def _via_middlewares(
        self,
        method: str,
        url: URL,
        items: list[tuple[str, str]],
        body: bytes | Payload | None,
        auth: BasicAuth | None,
        proxy: Proxy | None,
        trace: RequestTrace,
        options: _Options,
    ) -> ClientResponse:
        """The hop through the session's or the request's middlewares."""

        async def send(request: ClientRequest) -> ClientResponse:
            """The innermost handler: one attempt on the wire, as the middlewares left it."""
            hop = request.url
            hop_proxy = self._proxy_for(hop, options) if hop != url else proxy
            hop_target = hop.raw_path_qs or "/"
            if hop_proxy is not None and _WIRE_SCHEME.get(hop.scheme) == "http":
                hop_target = str(hop.with_fragment(None))
            hop_items = list(request.headers.items())
            content = request._content
            return await self._exchange(
                request.method, hop, hop_items, content, hop_target, hop_proxy, trace, options
            )

        request = ClientRequest(
            method, url, CIMultiDict(items), body, auth=auth, chunked=options.chunked
        )
        return await run_middlewares(options.middlewares, request, send)

    async def _exchange(
        self,
        method: str,
        url: URL,
        items: list[tuple[str, str]],
        body: bytes | Payload | None,
        target: str,
        proxy: Proxy | None,
        trace: RequestTrace,
        options: _Options,
    ) -> ClientResponse:
        """Send one request as it stands and read the response head."""
        trace.method, trace.url, trace.wire = method, url, items
        request_info = PendingRequestInfo(url, method, items)
        scheme = _WIRE_SCHEME.get(url.scheme, url.scheme)  # ws(s): HTTP(S) until the upgrade
        tracker = options.upload_tracker
        sent: bytes | AsyncIterable[bytes] | None = body
        if tracker is not None:
            sent = tracker._attempt(body)
        try:
            if self._foreign or mocked():
                if self._mocked is None:
                    self._mocked = MockedSender(self._connector.transport())
                watched = WATCHED.get()  # httpx's (or a mock's) waits: not ours to watch
                with nullcontext() if watched is None else watched.covering():
                    exchange = await self._mocked.send(method, url, items, sent, trace)
            else:
                timeout = options.timeout
                exchange = await self._connector._engine.send(
                    (scheme, url.raw_host or "", url.port or 0, options.ssl, proxy),
                    method,
                    target,
                    items,
                    sent,
                    trace,
                    read_timeout=timeout.sock_read,
                    connect_timeout=timeout.sock_connect,
                    connect_budget=timeout.connect,
                    read_bufsize=options.read_bufsize,
                    limits=options.limits,
                )
        except Exception as exc:
            error = to_client_error(exc, connection_key(url), request_info.get())
            if tracker is not None:
                tracker._failed(error)
            if error is exc:
                raise
            raise error from exc
        if exchange.header(b"set-cookie") is not None:
            self._cookie_jar.update_cookies_from_headers(_set_cookies(exchange), url)
        return self._response_class(
            method,
            url,
            exchange,
            request_info,
            trace,
            None,  # the connection key: made if a body error needs it
            options.deadline,
            self._defer_release,
            decompress=options.decompress,
        )

    def _proxy_for(self, url: URL, options: _Options) -> Proxy | None:
        """The proxy of this hop: the request's, the session's, or (trust_env) the
        environment's, re-read for every hop as aiohttp does; NO_PROXY and netrc honoured."""
        proxy_url = options.proxy or self._proxy
        auth = options.proxy_auth or self._proxy_auth
        if proxy_url is None and self._trust_env:
            proxy_url, auth = _env_proxy(url)
        if proxy_url is None:
            return None
        if proxy_url.scheme not in ("http", "https"):
            raise ValueError(f"Only http proxies are supported, not {proxy_url.scheme!r}")
        url_auth = BasicAuth.from_url(proxy_url)
        if url_auth is not None:
            auth, proxy_url = url_auth, proxy_url.with_user(None)
        return Proxy(proxy_url, None if auth is None else auth.encode(), options.proxy_headers)


class _Options:
    """A request's settings that every hop uses."""

    __slots__ = (
        "chunked",
        "deadline",
        "decompress",
        "limits",
        "middlewares",
        "proxy",
        "proxy_auth",
        "proxy_headers",
        "read_bufsize",
        "skip_auto_headers",
        "ssl",
        "timeout",
        "upload_tracker",
    )

    def __init__(
        self,
        ssl: bool | SSLContext | Fingerprint,
        proxy: URL | None,
        proxy_auth: BasicAuth | None,
        proxy_headers: tuple[tuple[str, str], ...],
        skip_auto_headers: frozenset[str],
        decompress: bool,
        read_bufsize: int,
        chunked: bool,
        timeout: ClientTimeout,
        deadline: float,
        limits: tuple[int, int, int],
    ) -> None:
        self.ssl = ssl
        self.proxy = proxy
        self.proxy_auth = proxy_auth
        self.proxy_headers = proxy_headers
        self.skip_auto_headers = skip_auto_headers
        self.decompress = decompress
        self.read_bufsize = read_bufsize
        self.chunked = chunked
        self.timeout = timeout
        self.deadline = deadline
        self.limits = limits
        self.middlewares: tuple[ClientMiddlewareType, ...] = ()
        self.upload_tracker: UploadTracker | None = None


def _limits(
    default: tuple[int, int, int],
    max_line_size: int | None,
    max_field_size: int | None,
    max_headers: int | None,
) -> tuple[int, int, int]:
    """A request's response head limits: its own where given, else the session's."""
    if max_line_size is None and max_field_size is None and max_headers is None:
        return default
    line, field, count = default
    return (
        line if max_line_size is None else max_line_size,
        field if max_field_size is None else max_field_size,
        count if max_headers is None else max_headers,
    )


def _env_proxy(url: URL) -> tuple[URL | None, BasicAuth | None]:
    """HTTP(S)_PROXY / NO_PROXY for `url`, with netrc credentials for the proxy's host."""
    import urllib.request  # loads http.client and email: only with trust_env

    host = url.raw_host or ""
    if urllib.request.proxy_bypass(host):
        return None, None
    value = urllib.request.getproxies().get(url.scheme)
    if not value:
        return None, None
    proxy_url = URL(value if "://" in value else f"http://{value}")
    return proxy_url, _netrc_auth(proxy_url.raw_host or "")


def _netrc_auth(host: str) -> BasicAuth | None:
    import netrc  # only with trust_env and a proxy or host to look up

    try:
        entry = netrc.netrc(os.environ.get("NETRC")).authenticators(host)
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return None
    if entry is None:
        return None
    login, _, password = entry
    return BasicAuth(login or "", password or "")


def _set_cookies(exchange: Exchange) -> list[str]:
    return [v.decode("latin-1") for k, v in exchange.raw_headers if k.lower() == b"set-cookie"]


def _replayable(body: bytes | Payload | None) -> bool:
    """Whether a body can be sent again (a retry, a 307/308 redirect)."""
    return not isinstance(body, Payload) or body.replayable


def _redirect_target(url: URL, location: str, requote: bool = True) -> URL:
    """Where a Location header points, resolved against the hop's URL, as aiohttp does."""
    try:
        target = URL(location, encoded=not requote)
    except ValueError as exc:
        raise InvalidUrlRedirectClientError(
            location, "Server attempted redirecting to a location that does not look like a URL"
        ) from exc
    scheme = target.scheme
    if scheme and scheme not in ("http", "https"):
        raise NonHttpUrlRedirectClientError(location)
    # "http:/path" or "http:path" refers to the current origin, as browsers read it.
    has_authority = location[len(scheme) + 1 :].startswith("//")
    if not scheme or (scheme == url.scheme and not has_authority):
        target = url.join(target)
    if not target.host:
        raise InvalidUrlRedirectClientError(location, "Invalid redirect URL origin")
    return target


class _RequestContextManager:
    """What `session.get(...)` returns: awaitable, or used as `async with`."""

    __slots__ = ("_coro", "_response")

    def __init__(self, coro: Coroutine[Any, Any, ClientResponse]) -> None:
        self._coro = coro
        self._response: ClientResponse | None = None

    def __await__(self) -> Generator[Any, None, ClientResponse]:
        return self._coro.__await__()

    async def __aenter__(self) -> ClientResponse:
        self._response = await self._coro
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.release()


def _is_httpx_transport(transport: object) -> bool:
    import httpx  # only for transport=: the session's own path never loads httpx

    return isinstance(transport, httpx.AsyncBaseTransport)
