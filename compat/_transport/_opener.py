"""Opening one connection: our DNS, TCP to the resolved addresses (Happy Eyeballs), or a Unix
socket, or a proxy (TLS to it first if it is an https proxy) and its CONNECT tunnel; then TLS.

It runs in the requesting task, between the create signals, so they bracket exactly the work
of opening; failures leave here as aiohttp's connector errors. As in aiohttp, a proxy's own
address is resolved without DNS signals, and the tunnel's CONNECT exchange is not traced; the
TLS handshake with an https proxy fires our TLS signals (host: the proxy's).

Several addresses are raced as RFC 8305 says (aiohttp's `happy_eyeballs_delay`, `interleave`):
families alternate, a new attempt starts when the previous one failed or `delay` passed, the
first to connect wins and the others are cancelled, in a task group of this task's own, so
nothing outlives the call, cancelled or not.
"""

from __future__ import annotations

import socket
import ssl
from collections import deque
from dataclasses import dataclass
from functools import cache
from typing import Any

import anyio
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .. import _params
from .._exceptions import (
    ClientConnectorCertificateError,
    ClientConnectorDNSError,
    ClientConnectorError,
    ClientConnectorSSLError,
    ClientHttpProxyError,
    ClientProxyConnectionError,
    ConnectionKey,
    ConnectionTimeoutError,
    ServerFingerprintMismatch,
)
from .._models import USER_AGENT, Fingerprint, RequestInfo
from .._tracing import NO_TRACE, RequestTrace
from ._backends import NetworkStream, open_tcp, open_unix
from ._connection import Exchange, HTTP11Connection, request_head
from ._decoders import ACCEPT_ENCODING
from ._dns import Address, Resolver

__all__ = ["Opener", "Proxy", "Route", "ServerName", "default_ssl_context"]


@dataclass(frozen=True, slots=True)
class Proxy:
    """Where a request goes through: the proxy's URL (no credentials), the Proxy-Authorization
    value, and the headers for its CONNECT."""

    url: URL
    authorization: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ServerName:
    """A TLS choice (as `Route`'s `ssl`) with another name for SNI and the certificate check
    than the URL's host: httpx's `sni_hostname` extension. Part of the pool key with it."""

    name: str
    ssl: Any = True


Route = tuple[str, str, int, Any, "Proxy | None"]
"""A pool key: (scheme, host, port, ssl, proxy). `ssl` is the request's TLS choice: True (the
connector's context), False, an `ssl.SSLContext` or a `Fingerprint`; as in aiohttp, it is part
of the key, so no request reuses a connection made under other TLS settings."""


@cache
def default_ssl_context(verify: bool = True, http2: bool = False) -> ssl.SSLContext:
    """Built once per process, as aiohttp does: each costs ~30 ms and ~0.8 MiB of C memory."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    return context


class Opener:
    """Opens connections for one connector: its resolver, TLS context and local address, or
    its Unix socket path."""

    def __init__(
        self,
        resolver: Resolver,
        ssl_context: ssl.SSLContext,
        local_host: str | None,
        unix_path: str | None = None,
        *,
        proxy_ssl_context: ssl.SSLContext | None = None,
        happy_eyeballs_delay: float | None = 0.25,
        interleave: int | None = None,
    ) -> None:
        self._resolver = resolver
        self._ssl_context = ssl_context
        # TLS to an https proxy: HTTP/1.1 only (we speak HTTP/1.1 to proxies), verified
        self._proxy_ssl_context = proxy_ssl_context or ssl_context
        self._local_host = local_host
        self._unix_path = unix_path
        self._delay = happy_eyeballs_delay
        # RFC 8305's "First Address Family Count"; racing implies 1 when not given
        self._interleave = interleave if interleave or happy_eyeballs_delay is None else 1
        self.h2_prior_knowledge = False  # the engine's: http2 and not http1 on http://

    async def open(self, route: Route, trace: RequestTrace, timeout: float | None) -> NetworkStream:
        """A connected (and for https, TLS-wrapped) stream; fires the create signals."""
        scheme, host, port, ssl_choice, proxy = route
        plan = trace.plan
        tls = scheme == "https" and self._unix_path is None  # aiohttp: no TLS over Unix
        if plan.on_connection_create_start:
            await trace.send(plan.on_connection_create_start, _params.CREATE_START)
        key = ConnectionKey(host, port, tls, ssl_choice)
        try:
            with anyio.fail_after(timeout):
                if self._unix_path is not None:
                    stream = await self._connect_unix(self._unix_path, key)
                elif proxy is None:
                    addresses = await self._resolver.resolve(host, port, trace)
                    stream = await self._connect_first(addresses, key)
                else:
                    stream = await self._connect_proxy(proxy, ssl_choice, trace, timeout)
                try:
                    if proxy is not None and tls:
                        await _tunnel(stream, host, port, proxy)
                    if tls:
                        stream = await self._start_tls(stream, key, trace, timeout)
                except BaseException:
                    stream.close()
                    raise
        except TimeoutError as exc:
            raise ConnectionTimeoutError(f"Connection timeout to host {host}:{port}") from exc
        except socket.gaierror as exc:
            raise ClientConnectorDNSError(key, exc) from exc
        try:
            if plan.on_connection_create_end:
                await trace.send(plan.on_connection_create_end, _params.CREATE_END)
            if plan.on_connection_established:
                await trace.send(
                    plan.on_connection_established,
                    _params.ConnectionEstablishedParams(
                        host=host,
                        port=port,
                        peer=_address(stream.get_extra_info("peername")),
                        local=_address(stream.get_extra_info("sockname")),
                        tls=tls,
                        protocol=self._protocol(stream, scheme),
                    ),
                )
        except BaseException:  # a raising handler: nobody else will close this stream
            stream.close()
            raise
        return stream

    async def _connect_first(self, addresses: list[Address], key: ConnectionKey) -> NetworkStream:
        """The first of `addresses` to answer; the last error if none does."""
        if self._interleave:
            addresses = _interleaved(addresses, self._interleave)
        if self._delay is None or len(addresses) == 1:
            error: OSError | None = None
            for address, port, _ in addresses:  # one at a time, each to its end
                try:
                    return await open_tcp(address, port, local_host=self._local_host)
                except OSError as exc:
                    error = exc
            assert error is not None
            raise ClientConnectorError(key, error) from error
        return await self._race(addresses, self._delay, key)

    async def _race(
        self, addresses: list[Address], delay: float, key: ConnectionKey
    ) -> NetworkStream:
        """Happy Eyeballs: start an attempt every `delay` s (sooner when the last one failed);
        the first connected stream wins, the other attempts are cancelled (a stream that
        connects after the winner is closed at once)."""
        won: list[NetworkStream] = []
        errors: list[Exception] = []

        async def attempt(address: str, port: int, failed: anyio.Event) -> None:
            try:
                stream = await open_tcp(address, port, local_host=self._local_host)
            except Exception as exc:  # recorded; the race goes on
                errors.append(exc)
                failed.set()
                return
            if won:
                stream.close()
                return
            won.append(stream)
            group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for address, port, _ in addresses:
                failed = anyio.Event()
                group.start_soon(attempt, address, port, failed)
                with anyio.move_on_after(delay):
                    await failed.wait()
        if won:
            return won[0]
        error = errors[-1]
        if not isinstance(error, OSError):
            raise error
        raise ClientConnectorError(key, error) from error

    async def _connect_unix(self, path: str, key: ConnectionKey) -> NetworkStream:
        try:
            return await open_unix(path)
        except OSError as exc:
            raise ClientConnectorError(key, exc) from exc

    async def _connect_proxy(
        self, proxy: Proxy, ssl_choice: Any, trace: RequestTrace, timeout: float | None
    ) -> NetworkStream:
        """A stream to the proxy; for an https proxy, TLS to it first, so that nothing (the
        CONNECT, a forwarded request, Proxy-Authorization) ever crosses in clear."""
        url = proxy.url
        host, port = url.raw_host or "", url.port or 80
        tls = url.scheme == "https"
        # the key names the request's ssl= as aiohttp's does; a Fingerprint is the target's
        key = ConnectionKey(
            host, port, tls, True if isinstance(ssl_choice, Fingerprint) else ssl_choice
        )
        try:
            addresses = await self._resolver.resolve(host, port, NO_TRACE)
            stream = await self._connect_first(addresses, key)
        except (OSError, ClientConnectorError) as exc:
            os_error = exc.os_error if isinstance(exc, ClientConnectorError) else exc
            raise ClientProxyConnectionError(key, os_error) from exc
        if tls:
            try:
                stream = await self._start_tls(
                    stream,
                    key,
                    trace,
                    timeout,
                    error=ClientProxyConnectionError,
                    context=self._proxy_context(ssl_choice),
                )
            except BaseException:
                stream.close()
                raise
        return stream

    def _proxy_context(self, ssl_choice: Any) -> ssl.SSLContext:
        """The TLS settings for an https proxy, from the request's `ssl=` as aiohttp takes
        them: a context is used as given, False does not verify; True and a Fingerprint (which
        pins the target's certificate, not the proxy's) verify with the connector's settings."""
        if isinstance(ssl_choice, ssl.SSLContext):
            return ssl_choice
        if ssl_choice is False:
            return default_ssl_context(False)
        return self._proxy_ssl_context

    def _protocol(self, stream: NetworkStream, scheme: str) -> str:
        ssl_object = stream.get_extra_info("ssl_object")
        if ssl_object is not None:
            return "HTTP/2" if ssl_object.selected_alpn_protocol() == "h2" else "HTTP/1.1"
        return "HTTP/2" if self.h2_prior_knowledge and scheme == "http" else "HTTP/1.1"

    def _context(self, ssl_choice: Any) -> ssl.SSLContext:
        if ssl_choice is True:
            return self._ssl_context
        if isinstance(ssl_choice, ssl.SSLContext):
            return ssl_choice
        return default_ssl_context(False)  # ssl=False, or a Fingerprint (checked after)

    async def _start_tls(
        self,
        stream: NetworkStream,
        key: ConnectionKey,
        trace: RequestTrace,
        timeout: float | None,
        error: type[ClientConnectorError] = ClientConnectorError,
        context: ssl.SSLContext | None = None,
    ) -> NetworkStream:
        plan = trace.plan
        host = key.host
        choice, server_name = key.ssl, host
        if isinstance(choice, ServerName) and context is None:  # not for TLS to a proxy
            choice, server_name = choice.ssl, choice.name
        if plan.on_tls_handshake_start:
            await trace.send(
                plan.on_tls_handshake_start, _params.TlsHandshakeStartParams(host=host)
            )
        try:
            stream = await stream.start_tls(context or self._context(choice), server_name, timeout)
        except ssl.CertificateError as exc:
            raise ClientConnectorCertificateError(key, exc) from exc
        except ssl.SSLError as exc:
            raise ClientConnectorSSLError(key, exc) from exc
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            raise error(key, _os_error(exc)) from exc
        ssl_object = stream.get_extra_info("ssl_object")
        if isinstance(key.ssl, Fingerprint):
            certificate = ssl_object.getpeercert(binary_form=True) if ssl_object else b""
            got = key.ssl.digest_of(certificate or b"")
            if got != key.ssl.fingerprint:
                peer = stream.get_extra_info("peername") or (host, key.port or 0)
                stream.close()
                raise ServerFingerprintMismatch(key.ssl.fingerprint, got, peer[0], peer[1])
        if plan.on_tls_handshake_end:
            cipher = ssl_object.cipher() if ssl_object is not None else None
            await trace.send(
                plan.on_tls_handshake_end,
                _params.TlsHandshakeEndParams(
                    host=host,
                    version=ssl_object.version() if ssl_object is not None else None,
                    cipher=cipher[0] if cipher else None,
                    alpn_protocol=(
                        ssl_object.selected_alpn_protocol() if ssl_object is not None else None
                    ),
                ),
            )
        return stream


async def _tunnel(stream: NetworkStream, host: str, port: int, proxy: Proxy) -> None:
    """Ask the proxy for a tunnel to host:port (HTTP CONNECT); untraced, as in aiohttp."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    headers = [
        ("Host", authority),
        ("Accept", "*/*"),
        ("Accept-Encoding", ACCEPT_ENCODING),
        ("User-Agent", USER_AGENT),
        *proxy.headers,
    ]
    if proxy.authorization is not None:
        headers.append(("Proxy-Authorization", proxy.authorization))
    conn = HTTP11Connection(stream, None, _ignore)
    exchange = Exchange("CONNECT", NO_TRACE, None)
    try:
        await conn.request(exchange, request_head("CONNECT", authority, headers), None)
    finally:
        stream.receiver = None  # the stream now carries the tunnel, not HTTP
    if exchange.status != 200:
        url = URL.build(scheme="http", host=host, port=port)
        raise ClientHttpProxyError(
            RequestInfo(url, "CONNECT", CIMultiDictProxy(CIMultiDict(headers)), url),
            (),
            status=exchange.status,
            message=exchange.reason.decode("latin-1"),
        )


def _interleaved(addresses: list[Address], first_count: int) -> list[Address]:
    """RFC 8305's order: `first_count` addresses of the first family, then the families in
    turn, one address each, keeping each family's own order."""
    families: dict[int, deque[Address]] = {}
    for address in addresses:
        families.setdefault(address[2], deque()).append(address)
    if len(families) < 2:
        return addresses
    queues = list(families.values())
    ordered = [queues[0].popleft() for _ in range(min(first_count - 1, len(queues[0])))]
    while any(queues):
        ordered.extend(queue.popleft() for queue in queues if queue)
    return ordered


def _ignore(_: object) -> None:
    """The tunnel's one exchange needs no pool."""


def _os_error(exc: BaseException) -> OSError:
    if isinstance(exc, OSError):
        return exc
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError):
        return cause
    return ConnectionResetError(str(exc) or type(exc).__name__)


def _address(address: object) -> tuple[str, int] | None:
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None
