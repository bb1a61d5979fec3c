"""Small value types of aiohttp's client API: `ClientTimeout`, `BasicAuth`, `RequestInfo`,
`Fingerprint`, `HttpVersion`."""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._frozen import positional

__all__ = [
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "BasicAuth",
    "ClientTimeout",
    "Fingerprint",
    "HttpVersion",
    "HttpVersion10",
    "HttpVersion11",
    "RequestInfo",
]


class HttpVersion(NamedTuple):
    """A response's protocol version, as aiohttp's: `resp.version >= (1, 1)` works, and it
    equals aiohttp's own `HttpVersion` of the same numbers."""

    major: int
    minor: int


HttpVersion10 = HttpVersion(1, 0)
HttpVersion11 = HttpVersion(1, 1)
HttpVersion20 = HttpVersion(2, 0)

USER_AGENT = f"Python/{sys.version_info[0]}.{sys.version_info[1]} compat"


@dataclass(frozen=True, slots=True)
class ClientTimeout:
    """aiohttp's timeouts, in seconds; `None` means no limit.

    total: the whole request, redirects and body read included (raises `TimeoutError`).
    connect: getting a connection, pool queueing included (`ConnectionTimeoutError`).
    sock_connect: opening one new connection (`ConnectionTimeoutError`).
    sock_read: the gap between two reads from the socket (`SocketTimeoutError`).
    """

    total: float | None = None
    connect: float | None = None
    sock_read: float | None = None
    sock_connect: float | None = None
    ceil_threshold: float = 5


DEFAULT_TIMEOUT = ClientTimeout(total=5 * 60, sock_connect=30)


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic credentials, sent as the Authorization header."""

    login: str
    password: str = ""
    encoding: str = "latin1"

    def __post_init__(self) -> None:
        if not isinstance(self.login, str) or not isinstance(self.password, str):
            raise TypeError("BasicAuth login and password must be str")
        if ":" in self.login:
            raise ValueError('A ":" is not allowed in a BasicAuth login')

    @classmethod
    def from_url(cls, url: URL, *, encoding: str = "latin1") -> BasicAuth | None:
        """The credentials embedded in `url`, if any."""
        if url.user is None and url.password is None:
            return None
        return cls(url.user or "", url.password or "", encoding=encoding)

    def encode(self) -> str:
        raw = f"{self.login}:{self.password}".encode(self.encoding)
        return "Basic " + base64.b64encode(raw).decode(self.encoding)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What was actually sent for a response: its headers include trace-injected ones."""

    url: URL
    method: str
    headers: CIMultiDictProxy[str]
    real_url: URL = field(default_factory=URL)


_new_request_info: Callable[[URL, str, CIMultiDictProxy[str], URL], RequestInfo] = positional(
    lambda: RequestInfo, 4
)


class PendingRequestInfo:
    """A hop's `RequestInfo`, made the first time it is asked for: most responses never are
    asked, and the multidict and frozen object it takes are ~3% of an untraced request."""

    __slots__ = ("_headers", "_info", "_method", "_url")

    def __init__(self, url: URL, method: str, headers: list[tuple[str, str]]) -> None:
        self._url = url
        self._method = method
        self._headers = headers
        self._info: RequestInfo | None = None

    def get(self) -> RequestInfo:
        info = self._info
        if info is None:
            headers = CIMultiDictProxy(CIMultiDict(self._headers))
            info = self._info = _new_request_info(self._url, self._method, headers, self._url)
        return info


class Fingerprint:
    """A pinned server certificate: its SHA-256 digest. With it, the chain is not verified,
    the certificate must have exactly this digest (`ServerFingerprintMismatch` otherwise).

    Compared by identity, as in aiohttp: connections made under one `Fingerprint` object are
    reused only by requests passing that same object."""

    __slots__ = ("_fingerprint",)

    def __init__(self, fingerprint: bytes) -> None:
        if len(fingerprint) in (16, 20):
            raise ValueError("md5 and sha1 are insecure and not supported. Use sha256.")
        if len(fingerprint) != 32:
            raise ValueError("fingerprint has invalid length")
        self._fingerprint = fingerprint

    @property
    def fingerprint(self) -> bytes:
        return self._fingerprint

    def digest_of(self, certificate: bytes) -> bytes:
        return hashlib.sha256(certificate).digest()
