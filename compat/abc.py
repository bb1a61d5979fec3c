"""The abstract classes aiohttp client code subclasses: resolvers and cookie jars.

Code written against `aiohttp.abc` imports these from `compat.abc` instead; the method names,
signatures and result shapes are aiohttp's, so an existing subclass works unchanged.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sized
from http.cookies import BaseCookie, Morsel
from typing import Any, TypedDict

from yarl import URL

__all__ = [
    "AbstractCookieJar",
    "AbstractResolver",
    "AbstractStreamWriter",
    "ClearCookiePredicate",
    "ResolveResult",
]


class ResolveResult(TypedDict):
    """One address a resolver found: the dict shape aiohttp's connectors consume."""

    hostname: str
    host: str
    port: int
    family: int
    proto: int
    flags: int


class AbstractResolver(ABC):
    """A name resolver a `TCPConnector(resolver=…)` asks; the DNS cache and signals wrap it."""

    @abstractmethod
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return the addresses of `host`; raise `OSError` when there are none."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the resolver holds (a channel, a thread pool)."""


_NO_URL = URL()

LooseCookie = str | BaseCookie[str] | Morsel[Any]
ClearCookiePredicate = Callable[[Morsel[str]], bool]
"""What `AbstractCookieJar.clear(predicate)` takes: True for each cookie to forget."""
LooseCookies = Mapping[str, LooseCookie] | Iterable[tuple[str, LooseCookie]] | BaseCookie[str]


class AbstractCookieJar(Sized, Iterable[Morsel[str]], ABC):
    """What a session needs of a cookie jar: store what responses set, pick what a URL gets."""

    @property
    @abstractmethod
    def quote_cookie(self) -> bool:
        """Whether values that need it are sent quoted."""

    @abstractmethod
    def clear(self, predicate: ClearCookiePredicate | None = None) -> None:
        """Forget every cookie, or those `predicate` picks."""

    @abstractmethod
    def clear_domain(self, domain: str) -> None:
        """Forget the cookies of `domain` and its subdomains."""

    @abstractmethod
    def update_cookies(self, cookies: LooseCookies, response_url: URL = _NO_URL) -> None:
        """Store cookies, as set by a response from `response_url`."""

    def update_cookies_from_headers(self, headers: Iterable[str], response_url: URL) -> None:
        """Store the cookies of `Set-Cookie` header values."""
        parsed: BaseCookie[str] = BaseCookie()
        for value in headers:
            parsed.load(value)
        self.update_cookies(parsed, response_url)

    @abstractmethod
    def filter_cookies(self, request_url: URL) -> BaseCookie[str]:
        """The cookies a request to `request_url` carries."""


class AbstractStreamWriter(ABC):
    """Where a `Payload` writes its bytes (`await payload.write(writer)`).

    Only `write`, `write_eof` and `drain` matter to a payload; the HTTP-level methods are
    aiohttp's writer interface, kept so a subclass written for aiohttp still instantiates.
    """

    buffer_size: int = 0
    output_size: int = 0
    length: int | None = 0
    on_body_write: Callable[[int, int], None] | None = None

    @property
    def transport(self) -> Any:
        """The transport under the writer, when it has one (None: progress only at the end)."""
        return None

    @abstractmethod
    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Take one piece of the body."""

    @abstractmethod
    async def write_eof(self, chunk: bytes = b"") -> None:
        """Take the last piece; nothing follows."""

    @abstractmethod
    async def drain(self) -> None:
        """Wait until what was written has gone out."""

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        """Compress what follows (aiohttp's writers; payloads never call it)."""
        raise NotImplementedError

    def enable_chunking(self) -> None:
        """Frame what follows as chunks (aiohttp's writers; payloads never call it)."""
        raise NotImplementedError

    async def write_headers(self, status_line: str, headers: Mapping[str, str]) -> None:
        """Write a message head (aiohttp's writers; payloads never call it)."""
        raise NotImplementedError

    def send_headers(self) -> None:  # noqa: B027 - a hook, empty by design
        """Flush a buffered head; nothing to do by default."""
