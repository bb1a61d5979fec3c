"""The frozen `Trace*Params` objects handlers receive, one class per signal.

Field names follow aiohttp's code (`response`, `host`); the Tracing Reference's names
(`resp`, `Host`) are read-only aliases so code written against either keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from multidict import CIMultiDict
from yarl import URL

from ._frozen import positional

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
    """What `on_request_start` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]


@dataclass(frozen=True, slots=True)
class TraceRequestHeadersSentParams:
    """What `on_request_headers_sent` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]


@dataclass(frozen=True, slots=True)
class TraceRequestChunkSentParams:
    """What `on_request_chunk_sent` handlers receive."""

    method: str
    url: URL
    chunk: bytes


@dataclass(frozen=True, slots=True)
class TraceResponseChunkReceivedParams:
    """What `on_response_chunk_received` handlers receive."""

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
    """What `on_request_end` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    response: ClientResponse


@dataclass(frozen=True, slots=True)
class TraceRequestRedirectParams(_ResponseAlias):
    """What `on_request_redirect` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    response: ClientResponse


@dataclass(frozen=True, slots=True)
class TraceRequestExceptionParams:
    """What `on_request_exception` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    exception: BaseException


@dataclass(frozen=True, slots=True)
class TraceConnectionQueuedStartParams:
    """What `on_connection_queued_start` handlers receive."""


@dataclass(frozen=True, slots=True)
class TraceConnectionQueuedEndParams:
    """What `on_connection_queued_end` handlers receive."""


@dataclass(frozen=True, slots=True)
class TraceConnectionCreateStartParams:
    """What `on_connection_create_start` handlers receive."""


@dataclass(frozen=True, slots=True)
class TraceConnectionCreateEndParams:
    """What `on_connection_create_end` handlers receive."""


@dataclass(frozen=True, slots=True)
class TraceConnectionReuseconnParams:
    """What `on_connection_reuseconn` handlers receive."""


class _HostAlias:
    __slots__ = ()
    host: str

    @property
    def Host(self) -> str:
        """The Tracing Reference's name for `host`."""
        return self.host


@dataclass(frozen=True, slots=True)
class TraceDnsResolveHostStartParams(_HostAlias):
    """What `on_dns_resolve_host_start` handlers receive."""

    host: str


@dataclass(frozen=True, slots=True)
class TraceDnsResolveHostEndParams(_HostAlias):
    """What `on_dns_resolve_host_end` handlers receive."""

    host: str


@dataclass(frozen=True, slots=True)
class TraceDnsCacheHitParams(_HostAlias):
    """What `on_dns_cache_hit` handlers receive."""

    host: str


@dataclass(frozen=True, slots=True)
class TraceDnsCacheMissParams(_HostAlias):
    """What `on_dns_cache_miss` handlers receive."""

    host: str


# --- compat extensions: signals aiohttp does not have (see EXTENSION_SIGNALS) ---


@dataclass(frozen=True, slots=True)
class TlsHandshakeStartParams:
    """What `on_tls_handshake_start` handlers receive."""

    host: str


@dataclass(frozen=True, slots=True)
class TlsHandshakeEndParams:
    """What `on_tls_handshake_end` handlers receive."""

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


# --- positional constructors for the transport and the session ---

request_start_params: Callable[[str, URL, CIMultiDict[str]], TraceRequestStartParams] = positional(
    TraceRequestStartParams
)
request_end_params: Callable[
    [str, URL, CIMultiDict[str], ClientResponse], TraceRequestEndParams
] = positional(TraceRequestEndParams)
request_redirect_params: Callable[
    [str, URL, CIMultiDict[str], ClientResponse], TraceRequestRedirectParams
] = positional(TraceRequestRedirectParams)
request_exception_params: Callable[
    [str, URL, CIMultiDict[str], BaseException], TraceRequestExceptionParams
] = positional(TraceRequestExceptionParams)
headers_sent_params: Callable[[str, URL, CIMultiDict[str]], TraceRequestHeadersSentParams] = (
    positional(TraceRequestHeadersSentParams)
)
chunk_sent_params: Callable[[str, URL, bytes], TraceRequestChunkSentParams] = positional(
    TraceRequestChunkSentParams
)
chunk_received_params: Callable[[str, URL, bytes], TraceResponseChunkReceivedParams] = positional(
    TraceResponseChunkReceivedParams
)
request_sent_params: Callable[[str, URL, int | None], RequestSentParams] = positional(
    RequestSentParams
)
headers_received_params: Callable[[str, URL, int, int | None], ResponseHeadersReceivedParams] = (
    positional(ResponseHeadersReceivedParams)
)
body_complete_params: Callable[[str, URL, int], ResponseBodyCompleteParams] = positional(
    ResponseBodyCompleteParams
)
