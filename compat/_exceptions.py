"""aiohttp's client exceptions, and the one place errors are mapped between them and httpx's.

The engine raises aiohttp's classes (whose names tracing libraries record) with one internal
addition, `BadHttpMessage`, which the session turns into aiohttp's `ClientResponseError`
(status 400) once it knows the request. For a plain `httpx.AsyncClient` over the engine,
`to_httpx_error` gives httpx's classes instead; `to_client_error` maps the other way what
httpx-level code (a respx mock, say) raises. httpx and httpcore are not imported here: an error
of theirs can only exist once they are loaded, and the session's path never loads them.
"""

from __future__ import annotations

import socket
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from multidict import MultiMapping
from yarl import URL

if sys.version_info >= (3, 11):
    TotalTimeoutError = TimeoutError
    """What `ClientTimeout.total` raises: the built-in `TimeoutError`, as aiohttp."""
else:  # pragma: no cover - before 3.11, asyncio's TimeoutError is a class of its own
    import asyncio

    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

    class TotalTimeoutError(TimeoutError, asyncio.TimeoutError):
        """Caught by `except TimeoutError` and by aiohttp users' `except asyncio.TimeoutError`."""

    TotalTimeoutError.__name__ = TotalTimeoutError.__qualname__ = "TimeoutError"

if TYPE_CHECKING:
    import httpx

    from ._models import RequestInfo
    from ._response import ClientResponse

__all__ = [
    "ClientConnectionError",
    "ClientConnectionResetError",
    "ClientConnectorCertificateError",
    "ClientConnectorDNSError",
    "ClientConnectorError",
    "ClientConnectorSSLError",
    "ClientError",
    "ClientHttpProxyError",
    "ClientOSError",
    "ClientPayloadError",
    "ClientProxyConnectionError",
    "ClientResponseError",
    "ClientSSLError",
    "ConnectionKey",
    "ConnectionTimeoutError",
    "ContentTypeError",
    "InvalidURL",
    "InvalidUrlClientError",
    "InvalidUrlRedirectClientError",
    "NonHttpUrlClientError",
    "NonHttpUrlRedirectClientError",
    "RedirectClientError",
    "ServerConnectionError",
    "ServerDisconnectedError",
    "ServerFingerprintMismatch",
    "ServerTimeoutError",
    "SocketTimeoutError",
    "TooManyRedirects",
    "WSMessageTypeError",
    "WSServerHandshakeError",
]


@dataclass(frozen=True, slots=True)
class ConnectionKey:
    """Where a connection goes: what `ClientConnectorError` reports."""

    host: str
    port: int | None
    is_ssl: bool
    ssl: Any = True


def connection_key(url: URL) -> ConnectionKey:
    """The key of a request to `url`, as errors report it (made only when one is raised)."""
    return ConnectionKey(url.host or "", url.port, url.scheme in ("https", "wss"))


class ClientError(Exception):
    """Base class of every error compat raises for a request."""


class ClientResponseError(ClientError):
    """An error about a response that did arrive: bad status, too many redirects."""

    def __init__(
        self,
        request_info: RequestInfo,
        history: tuple[ClientResponse, ...],
        *,
        status: int | None = None,
        message: str = "",
        headers: MultiMapping[str] | None = None,
    ) -> None:
        self.args = (request_info, history)  # what aiohttp's pickles and reprs carry
        self.request_info, self.history = request_info, history
        self.status, self.message = status or 0, message
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status}, message={self.message!r}, url={str(self.request_info.real_url)!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class ClientHttpProxyError(ClientResponseError):
    """The proxy refused the CONNECT tunnel (its status, e.g. 407, is `status`)."""


class ContentTypeError(ClientResponseError):
    """The response's Content-Type is not the one asked for (`json()`)."""


class TooManyRedirects(ClientResponseError):
    """The server redirected more than `max_redirects` times."""


class WSServerHandshakeError(ClientResponseError):
    """The server did not accept the websocket upgrade (status, headers or accept key)."""


class WSMessageTypeError(TypeError):
    """`receive_str`/`receive_bytes`/`receive_json` got a message of another type."""


class ClientConnectionError(ClientError):
    """Base class of socket-level errors."""


class ClientConnectionResetError(ClientConnectionError, ConnectionResetError):
    """The peer reset the connection while the request was being written."""


class ClientOSError(ClientConnectionError, OSError):
    """An OSError on the connection."""


class ClientConnectorError(ClientOSError):
    """A connection could not be established."""

    def __init__(self, connection_key: ConnectionKey, os_error: OSError) -> None:
        # errno and strerror come from the cause; args are (key, cause) as in aiohttp
        super().__init__(os_error.errno, os_error.strerror)
        self._target, self._cause = self.args = (connection_key, os_error)

    @property
    def os_error(self) -> OSError:
        return self._cause

    @property
    def host(self) -> str:
        return self._target.host

    @property
    def port(self) -> int | None:
        return self._target.port

    @property
    def ssl(self) -> Any:
        return self._target.ssl

    def __str__(self) -> str:
        ssl_text = "default" if self.ssl is True else self.ssl
        reason = self.strerror or str(self._cause) or type(self._cause).__name__
        return f"Cannot connect to host {self.host}:{self.port} ssl:{ssl_text} [{reason}]"

    __reduce__ = BaseException.__reduce__


class ClientConnectorDNSError(ClientConnectorError):
    """The host name could not be resolved."""


class ClientProxyConnectionError(ClientConnectorError):
    """The proxy could not be reached."""


class ClientSSLError(ClientConnectorError):
    """Base class of TLS errors while connecting."""


class ClientConnectorSSLError(ClientSSLError, ssl.SSLError):
    """The TLS handshake failed."""


class ClientConnectorCertificateError(ClientSSLError, ssl.CertificateError):
    """The server's certificate did not verify."""

    def __init__(self, connection_key: ConnectionKey, certificate_error: Exception) -> None:
        os_error = certificate_error if isinstance(certificate_error, OSError) else OSError()
        super().__init__(connection_key, os_error)
        self.args = (connection_key, certificate_error)

    @property
    def certificate_error(self) -> Exception:
        error: Exception = self.args[1]
        return error

    def __str__(self) -> str:
        error = self.certificate_error
        return (
            f"Cannot connect to host {self.host}:{self.port} ssl:{self._target.is_ssl} "
            f"[{type(error).__name__}: {error.args}]"
        )


class ServerConnectionError(ClientConnectionError):
    """Base class of errors the server side of a connection caused."""


class ServerFingerprintMismatch(ServerConnectionError):
    """The server's certificate does not have the pinned fingerprint (`compat.Fingerprint`)."""

    def __init__(self, expected: bytes, got: bytes, host: str, port: int) -> None:
        self.args = (expected, got, host, port)
        self.expected, self.got, self.host, self.port = self.args

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} expected={self.expected!r} got={self.got!r} "
            f"host={self.host!r} port={self.port!r}>"
        )


class ServerDisconnectedError(ServerConnectionError):
    """The server closed the connection before a complete response."""

    def __init__(self, message: str | None = None) -> None:
        self.message = "Server disconnected" if message is None else message
        self.args = (self.message,)


class ServerTimeoutError(ServerConnectionError, TotalTimeoutError):
    """A socket-level timeout."""


class ConnectionTimeoutError(ServerTimeoutError):
    """`ClientTimeout.connect` or `sock_connect` expired."""


class SocketTimeoutError(ServerTimeoutError):
    """`ClientTimeout.sock_read` expired."""


class PoolTimeoutError(ConnectionTimeoutError):
    """No connection slot became free in time (httpx's pool timeout). Internal."""


class WriteTimeoutError(SocketTimeoutError):
    """A write stalled past httpx's `write` timeout (aiohttp has none). Internal."""


class ClientPayloadError(ClientError):
    """The response body was broken: truncated, badly framed or badly encoded."""


class BadHttpMessage(ClientError):
    """The server's bytes are not a valid HTTP/1.1 response (a parse or framing error).

    Internal: a session reports it as `ClientResponseError` with status 400, as aiohttp."""


class InvalidURL(ClientError, ValueError):
    """A URL that cannot be requested."""

    def __init__(self, url: str | URL, description: str | None = None) -> None:
        super().__init__(*(url, description)[: 2 if description else 1])
        self._url_and_why = (url, description)

    @property
    def url(self) -> str | URL:
        return self._url_and_why[0]

    @property
    def description(self) -> str | None:
        return self._url_and_why[1]

    def __str__(self) -> str:
        url, why = self._url_and_why
        return f"{url} - {why}" if why else str(url)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


class InvalidUrlClientError(InvalidURL):
    """The request URL is malformed."""


class RedirectClientError(ClientError):
    """A redirect that cannot be followed."""


class NonHttpUrlClientError(ClientError):
    """The URL's scheme is not http or https."""


class InvalidUrlRedirectClientError(InvalidUrlClientError, RedirectClientError):
    """The server redirected to a malformed URL."""


class NonHttpUrlRedirectClientError(NonHttpUrlClientError, RedirectClientError):
    """The server redirected to a URL whose scheme is not http or https."""


# --- httpcore -> httpx (what the transport raises, as httpx's own transport would) ---


@cache
def _httpcore_to_httpx() -> tuple[tuple[type[Exception], type[httpx.HTTPError]], ...]:
    import httpcore
    import httpx

    return (
        (httpcore.TimeoutException, httpx.TimeoutException),
        (httpcore.ConnectTimeout, httpx.ConnectTimeout),
        (httpcore.ReadTimeout, httpx.ReadTimeout),
        (httpcore.WriteTimeout, httpx.WriteTimeout),
        (httpcore.PoolTimeout, httpx.PoolTimeout),
        (httpcore.NetworkError, httpx.NetworkError),
        (httpcore.ConnectError, httpx.ConnectError),
        (httpcore.ReadError, httpx.ReadError),
        (httpcore.WriteError, httpx.WriteError),
        (httpcore.ProxyError, httpx.ProxyError),
        (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
        (httpcore.ProtocolError, httpx.ProtocolError),
        (httpcore.LocalProtocolError, httpx.LocalProtocolError),
        (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    )


def _from_httpcore(exc: BaseException) -> bool:
    """An httpcore exception (only possible once httpcore is loaded)."""
    return "httpcore" in sys.modules and isinstance(exc, _httpcore_errors())


@cache
def _httpcore_errors() -> tuple[type[Exception], ...]:
    return tuple(core_class for core_class, _ in _httpcore_to_httpx())


def _from_httpx(exc: BaseException) -> bool:
    """An httpx exception (only possible once httpx is loaded)."""
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(
        exc, (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL)
    )


def to_httpx_error(exc: BaseException, request: httpx.Request | None = None) -> BaseException:
    """The httpx exception an httpx user expects for `exc` (the engine's or httpcore's)."""
    import httpx

    if _from_httpcore(exc):
        mapped: type[httpx.HTTPError] | None = None
        for core_class, httpx_class in _httpcore_to_httpx():
            if isinstance(exc, core_class):
                mapped = httpx_class
        assert mapped is not None
        error: httpx.HTTPError = mapped(str(exc))
    elif isinstance(exc, ClientError):
        error = _CLIENT_TO_HTTPX_CLASS(exc)(str(exc) or type(exc).__name__)
    elif isinstance(exc, ValueError) and request is not None:
        error = httpx.LocalProtocolError(str(exc))
    else:
        return exc
    if request is not None:
        error.request = request
    return error


def _CLIENT_TO_HTTPX_CLASS(exc: ClientError) -> type[httpx.HTTPError]:
    import httpx

    if isinstance(exc, PoolTimeoutError):
        return httpx.PoolTimeout
    if isinstance(exc, WriteTimeoutError):
        return httpx.WriteTimeout
    if isinstance(exc, ConnectionTimeoutError):
        return httpx.ConnectTimeout
    if isinstance(exc, SocketTimeoutError):
        return httpx.ReadTimeout
    if isinstance(exc, ClientConnectorError):
        return httpx.ConnectError
    if isinstance(exc, (ServerDisconnectedError, ClientPayloadError, ClientConnectionError)) and (
        isinstance(exc.__cause__, OSError)
    ):
        return httpx.ReadError  # a reset or broken socket, as httpx reports it
    if isinstance(exc, (ServerDisconnectedError, BadHttpMessage, ClientPayloadError)):
        return httpx.RemoteProtocolError
    if isinstance(exc, ClientOSError):
        return httpx.WriteError
    if isinstance(exc, InvalidURL):
        return httpx.InvalidURL  # type: ignore[return-value]
    return httpx.TransportError


# --- anything -> aiohttp's names (what the session raises) ---


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, its causes and contexts, and the members of exception groups among them."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        following = current.__cause__ or current.__context__
        if following is not None:
            todo.append(following)


def _root_os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc`: one with an errno (ECONNREFUSED...) if there is one."""
    found: OSError | None = None
    for cause in _causes(exc):
        if isinstance(cause, OSError) and not isinstance(cause, TimeoutError):
            if cause.errno is not None:
                return cause
            found = found or cause
    return found


def to_client_error(
    exc: BaseException,
    key: ConnectionKey,
    request_info: RequestInfo | None = None,
    *,
    reading_body: bool = False,
) -> BaseException:
    """The aiohttp-named exception for `exc`; cancellation and compat's own errors pass through."""
    if isinstance(exc, BadHttpMessage):
        if reading_body:
            return ClientPayloadError(f"Response payload is not completed: {exc}")
        if request_info is not None:
            return ClientResponseError(request_info, (), status=400, message=str(exc))
        return exc
    if isinstance(exc, ClientError) or not isinstance(exc, Exception):
        return exc
    if not (_from_httpcore(exc) or _from_httpx(exc)):
        return exc  # nothing below would match: no need to load httpx
    import httpx

    mapped = to_httpx_error(exc)
    assert isinstance(mapped, Exception)
    exc = mapped
    message = str(exc)
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return ConnectionTimeoutError(f"Connection timeout to host {key.host}:{key.port}")
    if isinstance(exc, httpx.TimeoutException):
        return SocketTimeoutError(f"Timeout on reading data from socket ({key.host}:{key.port})")
    if isinstance(exc, httpx.ProxyError):
        return ClientProxyConnectionError(key, _root_os_error(exc) or OSError(message))
    if isinstance(exc, httpx.ConnectError):
        for cause in _causes(exc):
            if isinstance(cause, socket.gaierror):
                return ClientConnectorDNSError(key, cause)
            if isinstance(cause, ssl.CertificateError):
                return ClientConnectorCertificateError(key, cause)
            if isinstance(cause, ssl.SSLError):
                return ClientConnectorSSLError(key, cause)
        return ClientConnectorError(key, _root_os_error(exc) or OSError(message))
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.DecodingError)):
        if reading_body:
            return ClientPayloadError(f"Response payload is not completed: {message}")
        if "without sending" in message or isinstance(exc, httpx.ReadError):
            return ServerDisconnectedError(f"Server disconnected ({key.host}:{key.port})")
        if request_info is not None:
            return ClientResponseError(
                request_info, (), status=400, message=f"Invalid HTTP response: {message}"
            )
        return ServerDisconnectedError(message)
    if isinstance(exc, httpx.WriteError):
        os_error = _root_os_error(exc)
        if isinstance(os_error, ConnectionResetError):
            return ClientConnectionResetError(*os_error.args)
        return ClientOSError(*(os_error.args if os_error else (message,)))
    if isinstance(exc, httpx.UnsupportedProtocol):
        return NonHttpUrlClientError(message)
    if isinstance(exc, httpx.InvalidURL):
        return InvalidUrlClientError(message)
    if isinstance(exc, httpx.LocalProtocolError):
        return ValueError(f"Invalid request: {message}")
    if isinstance(exc, httpx.StreamError):
        return ClientConnectionError(f"Connection closed: {message}")
    if isinstance(exc, httpx.TransportError):
        return ClientConnectionError(message)
    if isinstance(exc, httpx.HTTPError):
        return ClientError(message)
    return exc
