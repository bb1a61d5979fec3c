"""The frozen `Trace*Params` objects handlers receive, one class per signal.

Field names follow aiohttp's code (`response`, `host`); the Tracing Reference's names
(`resp`, `Host`) are read-only aliases so code written against either keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from multidict import CIMultiDict
from yarl import URL

if TYPE_CHECKING:
    from ._response import ClientResponse

__all__ = [
    "ConnectionEstablishedParams",
    "RequestSentParams",
    "ResponseBodyCompleteParams",
    "ResponseHeadersReceivedParams",
    "TlsHandshakeEndParams",
    "TlsHandshakeStartParams",
    "TraceConnectionCreateEndParams",
    "TraceConnectionCreateStartParams",
    "TraceConnectionQueuedEndParams",
    "TraceConnectionQueuedStartParams",
    "TraceConnectionReuseconnParams",
    "TraceDnsCacheHitParams",
    "TraceDnsCacheMissParams",
    "TraceDnsResolveHostEndParams",
    "TraceDnsResolveHostStartParams",
    "TraceRequestChunkSentParams",
    "TraceRequestEndParams",
    "TraceRequestExceptionParams",
    "TraceRequestHeadersSentParams",
    "TraceRequestRedirectParams",
    "TraceRequestStartParams",
    "TraceResponseChunkReceivedParams",
]


@dataclass(frozen=True, slots=True)
class TraceRequestStartParams:
    method: str
    url: URL
    headers: CIMultiDict[str]


@dataclass(frozen=True, slots=True)
class TraceRequestHeadersSentParams:
    method: str
    url: URL
    headers: CIMultiDict[str]


@dataclass(frozen=True, slots=True)
class TraceRequestChunkSentParams:
    method: str
    url: URL
    chunk: bytes


@dataclass(frozen=True, slots=True)
class TraceResponseChunkReceivedParams:
    method: str
    url: URL
    chunk: bytes


class _ResponseAlias:
    __slots__ = ()
    response: ClientResponse

    @property
    def resp(self) -> ClientResponse:
        """The Tracing Reference's name for `response`."""
        return self.response


@dataclass(frozen=True, slots=True)
class TraceRequestEndParams(_ResponseAlias):
    method: str
    url: URL
    headers: CIMultiDict[str]
    response: ClientResponse


@dataclass(frozen=True, slots=True)
class TraceRequestRedirectParams(_ResponseAlias):
    method: str
    url: URL
    headers: CIMultiDict[str]
    response: ClientResponse


@dataclass(frozen=True, slots=True)
class TraceRequestExceptionParams:
    method: str
    url: URL
    headers: CIMultiDict[str]
    exception: BaseException


@dataclass(frozen=True, slots=True)
class TraceConnectionQueuedStartParams:
    pass


@dataclass(frozen=True, slots=True)
class TraceConnectionQueuedEndParams:
    pass


@dataclass(frozen=True, slots=True)
class TraceConnectionCreateStartParams:
    pass


@dataclass(frozen=True, slots=True)
class TraceConnectionCreateEndParams:
    pass


@dataclass(frozen=True, slots=True)
class TraceConnectionReuseconnParams:
    pass


class _HostAlias:
    __slots__ = ()
    host: str

    @property
    def Host(self) -> str:
        """The Tracing Reference's name for `host`."""
        return self.host


@dataclass(frozen=True, slots=True)
class TraceDnsResolveHostStartParams(_HostAlias):
    host: str


@dataclass(frozen=True, slots=True)
class TraceDnsResolveHostEndParams(_HostAlias):
    host: str


@dataclass(frozen=True, slots=True)
class TraceDnsCacheHitParams(_HostAlias):
    host: str


@dataclass(frozen=True, slots=True)
class TraceDnsCacheMissParams(_HostAlias):
    host: str


# --- compat extensions: signals aiohttp does not have (see EXTENSION_SIGNALS) ---


@dataclass(frozen=True, slots=True)
class TlsHandshakeStartParams:
    host: str


@dataclass(frozen=True, slots=True)
class TlsHandshakeEndParams:
    host: str
    version: str | None
    cipher: str | None
    alpn_protocol: str | None


@dataclass(frozen=True, slots=True)
class ConnectionEstablishedParams:
    """A new connection is up (after create_end): where it goes and from where."""

    host: str
    port: int
    peer: tuple[str, int] | None
    local: tuple[str, int] | None
    tls: bool
    protocol: str = "HTTP/1.1"
    """"HTTP/1.1" or "HTTP/2" (negotiated by ALPN, or HTTP/2 by prior knowledge)."""


@dataclass(frozen=True, slots=True)
class RequestSentParams:
    """The whole request, head and body, has been written."""

    method: str
    url: URL
    stream_id: int | None = None
    """HTTP/2: the request's stream on its multiplexed connection; None on HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class ResponseHeadersReceivedParams:
    """A response head arrived (every hop, redirects included): time to first byte."""

    method: str
    url: URL
    status: int
    stream_id: int | None = None
    """HTTP/2: the request's stream on its multiplexed connection; None on HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class ResponseBodyCompleteParams:
    """The response body has been read to its end."""

    method: str
    url: URL
    size: int
