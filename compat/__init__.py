"""aiohttp's client tracing (`TraceConfig` and its 16 signals) on httpx and anyio.

Replace `aiohttp.` with `compat.` in client and tracing code: the same handlers run, on asyncio
and on trio.
"""

import importlib
from typing import TYPE_CHECKING, Any, Final

from . import _params, abc, hdrs
from ._connector import BaseConnector, TCPConnector, UnixConnector
from ._cookies import CookieJar, DummyCookieJar
from ._exceptions import (
    ClientConnectionError,
    ClientConnectionResetError,
    ClientConnectorCertificateError,
    ClientConnectorDNSError,
    ClientConnectorError,
    ClientConnectorSSLError,
    ClientError,
    ClientHttpProxyError,
    ClientOSError,
    ClientPayloadError,
    ClientProxyConnectionError,
    ClientResponseError,
    ClientSSLError,
    ConnectionTimeoutError,
    ContentTypeError,
    InvalidURL,
    InvalidUrlClientError,
    InvalidUrlRedirectClientError,
    NonHttpUrlClientError,
    NonHttpUrlRedirectClientError,
    RedirectClientError,
    ServerConnectionError,
    ServerDisconnectedError,
    ServerFingerprintMismatch,
    ServerTimeoutError,
    SocketTimeoutError,
    TooManyRedirects,
    WSMessageTypeError,
    WSServerHandshakeError,
)
from ._helpers import ChainMapProxy, ETag, encode_basic_auth
from ._middlewares import ClientHandlerType, ClientMiddlewareType, ClientRequest
from ._models import (
    BasicAuth,
    ClientTimeout,
    Fingerprint,
    HttpVersion,
    HttpVersion10,
    HttpVersion11,
    RequestInfo,
)
from ._payload import (
    PAYLOAD_REGISTRY,
    AsyncIterablePayload,
    BufferedReaderPayload,
    BytesIOPayload,
    BytesPayload,
    IOBasePayload,
    JsonPayload,
    Payload,
    StringIOPayload,
    StringPayload,
    TextIOPayload,
    get_payload,
    payload_type,
)
from ._request import request
from ._response import ClientResponse, StreamReader
from ._session import ClientSession
from ._signals import Signal
from ._tracing import TraceConfig
from ._transport._dns import AsyncResolver, DefaultResolver, ThreadedResolver
from ._transport._pool import HostStats, PoolStats
from ._upload import UploadAbortedError, UploadTracker
from ._zlib import set_zlib_backend

if TYPE_CHECKING:
    from ._digest import DigestAuthMiddleware
    from ._formdata import FormData
    from ._httpx import TracedTransport, traced_client
    from ._multipart import (
        BadContentDispositionHeader,
        BadContentDispositionParam,
        BodyPartReader,
        MultipartReader,
        MultipartWriter,
        content_disposition_filename,
        parse_content_disposition,
    )
    from ._params import (
        ConnectionEstablishedParams,
        RequestSentParams,
        ResponseBodyCompleteParams,
        ResponseHeadersReceivedParams,
        TlsHandshakeEndParams,
        TlsHandshakeStartParams,
        TraceConnectionCreateEndParams,
        TraceConnectionCreateStartParams,
        TraceConnectionQueuedEndParams,
        TraceConnectionQueuedStartParams,
        TraceConnectionReuseconnParams,
        TraceDnsCacheHitParams,
        TraceDnsCacheMissParams,
        TraceDnsResolveHostEndParams,
        TraceDnsResolveHostStartParams,
        TraceRequestChunkSentParams,
        TraceRequestEndParams,
        TraceRequestExceptionParams,
        TraceRequestHeadersSentParams,
        TraceRequestRedirectParams,
        TraceRequestStartParams,
        TraceResponseChunkReceivedParams,
    )
    from ._websocket import (
        ClientWebSocketResponse,
        ClientWSTimeout,
        WebSocketError,
        WSCloseCode,
        WSMessage,
        WSMsgType,
    )

__version__ = "0.1.0"


# Loaded on first use, so that `import compat` does not pay for them: the httpx entry point
# (httpx, httpcore), websockets, multipart and forms, digest auth, the params classes.
_LAZY: Final = {
    **dict.fromkeys(("TracedTransport", "traced_client"), "_httpx"),
    **dict.fromkeys(
        (
            "ClientWebSocketResponse",
            "ClientWSTimeout",
            "WebSocketError",
            "WSCloseCode",
            "WSMessage",
            "WSMsgType",
        ),
        "_websocket",
    ),
    **dict.fromkeys(
        (
            "BadContentDispositionHeader",
            "BadContentDispositionParam",
            "BodyPartReader",
            "MultipartReader",
            "MultipartWriter",
            "content_disposition_filename",
            "parse_content_disposition",
        ),
        "_multipart",
    ),
    "FormData": "_formdata",
    "DigestAuthMiddleware": "_digest",
    **dict.fromkeys(_params.__all__, "_params"),  # made dataclasses on first use
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'compat' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "PAYLOAD_REGISTRY",
    "AsyncIterablePayload",
    "AsyncResolver",
    "BadContentDispositionHeader",
    "BadContentDispositionParam",
    "BaseConnector",
    "BasicAuth",
    "BodyPartReader",
    "BufferedReaderPayload",
    "BytesIOPayload",
    "BytesPayload",
    "ChainMapProxy",
    "ClientConnectionError",
    "ClientConnectionResetError",
    "ClientConnectorCertificateError",
    "ClientConnectorDNSError",
    "ClientConnectorError",
    "ClientConnectorSSLError",
    "ClientError",
    "ClientHandlerType",
    "ClientHttpProxyError",
    "ClientMiddlewareType",
    "ClientOSError",
    "ClientPayloadError",
    "ClientProxyConnectionError",
    "ClientRequest",
    "ClientResponse",
    "ClientResponseError",
    "ClientSSLError",
    "ClientSession",
    "ClientTimeout",
    "ClientWSTimeout",
    "ClientWebSocketResponse",
    "ConnectionEstablishedParams",
    "ConnectionTimeoutError",
    "ContentTypeError",
    "CookieJar",
    "DefaultResolver",
    "DigestAuthMiddleware",
    "DummyCookieJar",
    "ETag",
    "Fingerprint",
    "FormData",
    "HostStats",
    "HttpVersion",
    "HttpVersion10",
    "HttpVersion11",
    "IOBasePayload",
    "InvalidURL",
    "InvalidUrlClientError",
    "InvalidUrlRedirectClientError",
    "JsonPayload",
    "MultipartReader",
    "MultipartWriter",
    "NonHttpUrlClientError",
    "NonHttpUrlRedirectClientError",
    "Payload",
    "PoolStats",
    "RedirectClientError",
    "RequestInfo",
    "RequestSentParams",
    "ResponseBodyCompleteParams",
    "ResponseHeadersReceivedParams",
    "ServerConnectionError",
    "ServerDisconnectedError",
    "ServerFingerprintMismatch",
    "ServerTimeoutError",
    "Signal",
    "SocketTimeoutError",
    "StreamReader",
    "StringIOPayload",
    "StringPayload",
    "TCPConnector",
    "TextIOPayload",
    "ThreadedResolver",
    "TlsHandshakeEndParams",
    "TlsHandshakeStartParams",
    "TooManyRedirects",
    "TraceConfig",
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
    "TracedTransport",
    "UnixConnector",
    "UploadAbortedError",
    "UploadTracker",
    "WSCloseCode",
    "WSMessage",
    "WSMessageTypeError",
    "WSMsgType",
    "WSServerHandshakeError",
    "WebSocketError",
    "__version__",
    "abc",
    "content_disposition_filename",
    "encode_basic_auth",
    "get_payload",
    "hdrs",
    "parse_content_disposition",
    "payload_type",
    "request",
    "set_zlib_backend",
    "traced_client",
]
