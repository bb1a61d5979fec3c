"""Opening one connection: our DNS, TCP to each resolved address in turn, then TLS.

httpcore's `AsyncHTTPConnection` calls `connect_tcp` (and `start_tls` for https) the first time
it is used, in the requesting task; an `Opener` made for that one connection carries the
request's trace, so the create signals bracket exactly the work of opening it. A connection
that is never opened (respx mocks `handle_async_request`) fires no create or DNS signal at all.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.abc
import anyio.streams.tls
import httpcore

from ._dns import Resolver
from ._params import (
    ConnectionEstablishedParams,
    TlsHandshakeEndParams,
    TlsHandshakeStartParams,
    TraceConnectionCreateEndParams,
    TraceConnectionCreateStartParams,
)
from ._tracing import RequestTrace

__all__ = ["Opener"]

_CREATE_START = TraceConnectionCreateStartParams()
_CREATE_END = TraceConnectionCreateEndParams()

SocketOption = Any


class Opener(httpcore.AsyncNetworkBackend):
    """The network backend of a single new connection, bound to the request that opens it."""

    def __init__(
        self,
        resolver: Resolver,
        trace: RequestTrace,
        *,
        tls: bool,
    ) -> None:
        self._resolver = resolver
        self._trace: RequestTrace | None = trace
        self._tls = tls
        self._port = 0

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        trace = self._trace
        assert trace is not None, "an Opener opens one connection"
        plan = trace.plan
        self._port = port
        if plan.on_connection_create_start:
            await trace.send(plan.on_connection_create_start, _CREATE_START)
        try:
            with anyio.fail_after(timeout):
                addresses = await self._resolver.resolve(host, port, trace)
                stream = await self._connect_first(addresses, port, local_address, socket_options)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"Timed out connecting to {host}:{port}") from exc
        except OSError as exc:  # DNS failure: socket.gaierror
            raise httpcore.ConnectError(f"Cannot resolve {host}: {exc}") from exc
        if self._tls:
            stream.opener = self  # its start_tls comes back here, for the TLS signals
            return stream
        try:
            await self._established(stream, host, None)
        except BaseException:  # a raising handler: httpcore never gets the stream, so close it
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise
        return stream

    async def _connect_first(
        self,
        addresses: list[str],
        port: int,
        local_address: str | None,
        socket_options: Iterable[SocketOption] | None,
    ) -> SocketStream:
        """Each address in turn, as aiohttp does; the last error if none answers."""
        error: OSError | None = None
        for address in addresses:
            try:
                stream = await anyio.connect_tcp(address, port, local_host=local_address)
            except OSError as exc:
                error = exc
                continue
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            for option in socket_options or ():
                raw.setsockopt(*option)
            return SocketStream(stream, raw)
        assert error is not None
        raise httpcore.ConnectError(str(error)) from error

    async def _established(
        self,
        stream: httpcore.AsyncNetworkStream,
        host: str,
        ssl_object: ssl.SSLObject | None,
    ) -> None:
        """TCP (and TLS) is up: end the create pair, then our connection-established signal."""
        trace = self._trace
        assert trace is not None
        self._trace = None  # the connection outlives its first request
        plan = trace.plan
        if plan.on_connection_create_end:
            await trace.send(plan.on_connection_create_end, _CREATE_END)
        if plan.on_connection_established:
            await trace.send(
                plan.on_connection_established,
                ConnectionEstablishedParams(
                    host=host,
                    port=self._port,
                    peer=_address(stream, "server_addr"),
                    local=_address(stream, "client_addr"),
                    tls=ssl_object is not None,
                ),
            )

    async def start_tls(
        self,
        stream: SocketStream,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> httpcore.AsyncNetworkStream:
        trace = self._trace
        assert trace is not None
        plan = trace.plan
        host = server_hostname or ""
        current: httpcore.AsyncNetworkStream = stream
        try:
            if plan.on_tls_handshake_start:
                await trace.send(plan.on_tls_handshake_start, TlsHandshakeStartParams(host=host))
            current = await stream.handshake(ssl_context, server_hostname, timeout)
            ssl_object = current.get_extra_info("ssl_object")
            if plan.on_tls_handshake_end:
                cipher = ssl_object.cipher() if ssl_object is not None else None
                await trace.send(
                    plan.on_tls_handshake_end,
                    TlsHandshakeEndParams(
                        host=host,
                        version=ssl_object.version() if ssl_object is not None else None,
                        cipher=cipher[0] if cipher else None,
                        alpn_protocol=(
                            ssl_object.selected_alpn_protocol() if ssl_object is not None else None
                        ),
                    ),
                )
            await self._established(current, host, ssl_object)
        except BaseException:  # httpcore never gets the stream: close it
            with anyio.CancelScope(shield=True):
                await current.aclose()
            raise
        return current

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("compat's TCPConnector does not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def _address(stream: httpcore.AsyncNetworkStream, name: str) -> tuple[str, int] | None:
    address = stream.get_extra_info(name)
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None


def _is_readable(sock: socket.socket) -> bool:
    """An idle keep-alive socket with something to read was closed (or broken) by the peer."""
    fd = sock.fileno()
    if fd < 0:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


class SocketStream(httpcore.AsyncNetworkStream):
    """httpcore's view of an anyio stream. Unlike httpcore's own, it opens no cancel scope
    for a read or write without a timeout, and keeps its socket at hand: every request
    crosses it several times."""

    __slots__ = ("_socket", "_stream", "opener")

    def __init__(self, stream: anyio.abc.ByteStream, raw_socket: socket.socket) -> None:
        self._stream = stream
        self._socket = raw_socket
        self.opener: Opener | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._stream.receive(max_bytes)
            with anyio.fail_after(timeout):
                return await self._stream.receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(f"No data for {timeout}s") from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            if timeout is None:
                await self._stream.send(buffer)
            else:
                with anyio.fail_after(timeout):
                    await self._stream.send(buffer)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(f"Could not write for {timeout}s") from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        opener, self.opener = self.opener, None
        if opener is not None:
            return await opener.start_tls(self, ssl_context, server_hostname, timeout)
        return await self.handshake(ssl_context, server_hostname, timeout)

    async def handshake(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> SocketStream:
        try:
            with anyio.fail_after(timeout):
                tls = await anyio.streams.tls.TLSStream.wrap(
                    self._stream,
                    ssl_context=ssl_context,
                    hostname=server_hostname,
                    standard_compatible=False,
                    server_side=False,
                )
        except TimeoutError as exc:
            await self.aclose()
            raise httpcore.ConnectTimeout(f"TLS handshake took over {timeout}s") from exc
        except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return _TlsSocketStream(tls, self._socket)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _is_readable(self._socket)
        if info == "socket":
            return self._socket
        try:
            if info == "server_addr":
                return self._socket.getpeername()
            if info == "client_addr":
                return self._socket.getsockname()
        except OSError:  # already closed
            return None
        return None


class _TlsSocketStream(SocketStream):
    __slots__ = ()

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._stream.extra(anyio.streams.tls.TLSAttribute.ssl_object, None)
        return super().get_extra_info(info)
