"""The frozen `Trace*Params` objects handlers receive, one class per signal.

Field names follow aiohttp's code (`response`, `host`); the Tracing Reference's names
(`resp`, `Host`) are read-only aliases so code written against either keeps working.

Each class becomes a frozen slotted dataclass when first used (this module's `__getattr__`):
making a dataclass runs about six generated functions through `exec`, so making all 22 at
import was a quarter of `import compat`, and a program uses the few its handlers listen to.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict
from yarl import URL

from ._frozen import positional

if TYPE_CHECKING:
    from dataclasses import dataclass as _params_class

    from ._response import ClientResponse
else:

    def _params_class(**options: bool) -> Callable[[type], type]:
        def later(cls: type) -> type:
            _UNMADE[cls.__name__] = (cls, options)
            return cls

        return later


_UNMADE: dict[str, tuple[type, dict[str, bool]]] = {}
_MAKING = threading.RLock()

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


@_params_class(frozen=True, slots=True)
class TraceRequestStartParams:
    """What `on_request_start` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]


@_params_class(frozen=True, slots=True)
class TraceRequestHeadersSentParams:
    """What `on_request_headers_sent` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]


@_params_class(frozen=True, slots=True)
class TraceRequestChunkSentParams:
    """What `on_request_chunk_sent` handlers receive."""

    method: str
    url: URL
    chunk: bytes


@_params_class(frozen=True, slots=True)
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


@_params_class(frozen=True, slots=True)
class TraceRequestEndParams(_ResponseAlias):
    """What `on_request_end` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    response: ClientResponse


@_params_class(frozen=True, slots=True)
class TraceRequestRedirectParams(_ResponseAlias):
    """What `on_request_redirect` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    response: ClientResponse


@_params_class(frozen=True, slots=True)
class TraceRequestExceptionParams:
    """What `on_request_exception` handlers receive."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    exception: BaseException


@_params_class(frozen=True, slots=True)
class TraceConnectionQueuedStartParams:
    """What `on_connection_queued_start` handlers receive."""


@_params_class(frozen=True, slots=True)
class TraceConnectionQueuedEndParams:
    """What `on_connection_queued_end` handlers receive."""


@_params_class(frozen=True, slots=True)
class TraceConnectionCreateStartParams:
    """What `on_connection_create_start` handlers receive."""


@_params_class(frozen=True, slots=True)
class TraceConnectionCreateEndParams:
    """What `on_connection_create_end` handlers receive."""


@_params_class(frozen=True, slots=True)
class TraceConnectionReuseconnParams:
    """What `on_connection_reuseconn` handlers receive."""


class _HostAlias:
    __slots__ = ()
    host: str

    @property
    def Host(self) -> str:
        """The Tracing Reference's name for `host`."""
        return self.host


@_params_class(frozen=True, slots=True)
class TraceDnsResolveHostStartParams(_HostAlias):
    """What `on_dns_resolve_host_start` handlers receive."""

    host: str


@_params_class(frozen=True, slots=True)
class TraceDnsResolveHostEndParams(_HostAlias):
    """What `on_dns_resolve_host_end` handlers receive."""

    host: str


@_params_class(frozen=True, slots=True)
class TraceDnsCacheHitParams(_HostAlias):
    """What `on_dns_cache_hit` handlers receive."""

    host: str


@_params_class(frozen=True, slots=True)
class TraceDnsCacheMissParams(_HostAlias):
    """What `on_dns_cache_miss` handlers receive."""

    host: str


# --- compat extensions: signals aiohttp does not have (see EXTENSION_SIGNALS) ---


@_params_class(frozen=True, slots=True)
class TlsHandshakeStartParams:
    """What `on_tls_handshake_start` handlers receive."""

    host: str


@_params_class(frozen=True, slots=True)
class TlsHandshakeEndParams:
    """What `on_tls_handshake_end` handlers receive."""

    host: str
    version: str | None
    cipher: str | None
    alpn_protocol: str | None


@_params_class(frozen=True, slots=True)
class ConnectionEstablishedParams:
    """A new connection is up (after create_end): where it goes and from where."""

    host: str
    port: int
    peer: tuple[str, int] | None
    local: tuple[str, int] | None
    tls: bool
    protocol: str = "HTTP/1.1"
    """"HTTP/1.1" or "HTTP/2" (negotiated by ALPN, or HTTP/2 by prior knowledge)."""


@_params_class(frozen=True, slots=True)
class RequestSentParams:
    """The whole request, head and body, has been written."""

    method: str
    url: URL
    stream_id: int | None = None
    """HTTP/2: the request's stream on its multiplexed connection; None on HTTP/1.1."""


@_params_class(frozen=True, slots=True)
class ResponseHeadersReceivedParams:
    """A response head arrived (every hop, redirects included): time to first byte."""

    method: str
    url: URL
    status: int
    stream_id: int | None = None
    """HTTP/2: the request's stream on its multiplexed connection; None on HTTP/1.1."""


@_params_class(frozen=True, slots=True)
class ResponseBodyCompleteParams:
    """The response body has been read to its end."""

    method: str
    url: URL
    size: int


# --- made on first use (the module's names are looked up here until then) ---

for _name in _UNMADE:
    del globals()[_name]
del _name

# The shared instances of the field-less params (a frozen object with no fields is one value).
_SHARED = {
    "QUEUED_START": "TraceConnectionQueuedStartParams",
    "QUEUED_END": "TraceConnectionQueuedEndParams",
    "CREATE_START": "TraceConnectionCreateStartParams",
    "CREATE_END": "TraceConnectionCreateEndParams",
    "REUSECONN": "TraceConnectionReuseconnParams",
}
if TYPE_CHECKING:
    QUEUED_START: TraceConnectionQueuedStartParams
    QUEUED_END: TraceConnectionQueuedEndParams
    CREATE_START: TraceConnectionCreateStartParams
    CREATE_END: TraceConnectionCreateEndParams
    REUSECONN: TraceConnectionReuseconnParams


def __getattr__(name: str) -> Any:
    """A params class made a dataclass the first time it is asked for, or a shared instance;
    then an ordinary name of the module."""
    with _MAKING:  # one class object per name, whichever thread asks first
        value = globals().get(name)
        if value is not None:
            return value
        unmade = _UNMADE.get(name)
        if unmade is not None:
            cls, options = unmade
            value = dataclasses.dataclass(**options)(cls)
        elif name in _SHARED:
            value = __getattr__(_SHARED[name])()
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value


def _maker(name: str) -> Any:
    """A positional constructor of the params class `name`, made on its first call."""
    return positional(partial(__getattr__, name), len(_UNMADE[name][0].__annotations__))


# --- positional constructors for the transport and the session ---

request_start_params: Callable[[str, URL, CIMultiDict[str]], TraceRequestStartParams] = _maker(
    "TraceRequestStartParams"
)
request_end_params: Callable[
    [str, URL, CIMultiDict[str], ClientResponse], TraceRequestEndParams
] = _maker("TraceRequestEndParams")
request_redirect_params: Callable[
    [str, URL, CIMultiDict[str], ClientResponse], TraceRequestRedirectParams
] = _maker("TraceRequestRedirectParams")
request_exception_params: Callable[
    [str, URL, CIMultiDict[str], BaseException], TraceRequestExceptionParams
] = _maker("TraceRequestExceptionParams")
headers_sent_params: Callable[[str, URL, CIMultiDict[str]], TraceRequestHeadersSentParams] = _maker(
    "TraceRequestHeadersSentParams"
)
chunk_sent_params: Callable[[str, URL, bytes], TraceRequestChunkSentParams] = _maker(
    "TraceRequestChunkSentParams"
)
chunk_received_params: Callable[[str, URL, bytes], TraceResponseChunkReceivedParams] = _maker(
    "TraceResponseChunkReceivedParams"
)
request_sent_params: Callable[[str, URL, int | None], RequestSentParams] = _maker(
    "RequestSentParams"
)
headers_received_params: Callable[[str, URL, int, int | None], ResponseHeadersReceivedParams] = (
    _maker("ResponseHeadersReceivedParams")
)
body_complete_params: Callable[[str, URL, int], ResponseBodyCompleteParams] = _maker(
    "ResponseBodyCompleteParams"
)
