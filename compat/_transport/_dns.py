"""The DNS layer: anyio's `getaddrinfo` behind a TTL cache, firing aiohttp's four DNS signals.

Concurrent lookups of one uncached host share a single resolution, as in aiohttp: the first
caller resolves (cache miss, resolvehost start/end) and the others see a cache hit and wait for
its answer. The resolution runs in the first caller's own task, so its signals keep that task's
context; if that caller is cancelled, a waiting caller takes over the lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from time import monotonic

import anyio

from .._params import (
    TraceDnsCacheHitParams,
    TraceDnsCacheMissParams,
    TraceDnsResolveHostEndParams,
    TraceDnsResolveHostStartParams,
)
from .._tracing import RequestTrace

__all__ = ["Resolver", "is_ip_address"]


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _CacheEntry:
    __slots__ = ("addresses", "expires", "next")

    def __init__(self, addresses: list[str], expires: float) -> None:
        self.addresses = addresses
        self.expires = expires
        self.next = 0

    def rotated(self) -> list[str]:
        """The addresses, starting one further on each call (round robin, as aiohttp)."""
        start = self.next
        self.next = (start + 1) % len(self.addresses)
        return self.addresses[start:] + self.addresses[:start]


class _Lookup:
    """One resolution in flight, awaited by the callers that arrived while it ran."""

    __slots__ = ("addresses", "done", "error")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.addresses: list[str] | None = None
        self.error: OSError | None = None


class Resolver:
    """Resolves host names for new connections; `ttl=None` caches forever."""

    def __init__(self, *, use_cache: bool = True, ttl: float | None = 10, family: int = 0) -> None:
        self.use_cache = use_cache
        self.ttl = ttl
        self.family = family
        self._cache: dict[tuple[str, int], _CacheEntry] = {}
        self._lookups: dict[tuple[str, int], _Lookup] = {}

    def clear(self) -> None:
        self._cache.clear()

    def cached_hosts(self) -> dict[tuple[str, int], list[str]]:
        now = monotonic()
        return {key: list(e.addresses) for key, e in self._cache.items() if e.expires > now}

    async def resolve(self, host: str, port: int, trace: RequestTrace) -> list[str]:
        """The addresses to try for `host`, in order; raises `socket.gaierror` on failure."""
        if is_ip_address(host):
            return [host]
        plan = trace.plan
        if not self.use_cache:
            if plan.on_dns_resolvehost_start:
                await trace.send(
                    plan.on_dns_resolvehost_start, TraceDnsResolveHostStartParams(host)
                )
            addresses = await self._getaddrinfo(host, port)
            if plan.on_dns_resolvehost_end:
                await trace.send(plan.on_dns_resolvehost_end, TraceDnsResolveHostEndParams(host))
            return addresses

        key = (host, port)
        while True:
            entry = self._cache.get(key)
            if entry is not None and entry.expires > monotonic():
                addresses = entry.rotated()
                if plan.on_dns_cache_hit:
                    await trace.send(plan.on_dns_cache_hit, TraceDnsCacheHitParams(host))
                return addresses
            lookup = self._lookups.get(key)
            if lookup is None:
                return await self._lead(key, trace)
            if plan.on_dns_cache_hit:
                await trace.send(plan.on_dns_cache_hit, TraceDnsCacheHitParams(host))
            await lookup.done.wait()
            if lookup.error is not None:
                raise socket.gaierror(lookup.error.errno, lookup.error.strerror) from lookup.error
            if lookup.addresses is not None:
                return lookup.addresses
            # The leader was cancelled before it had an answer: look again.

    async def _lead(self, key: tuple[str, int], trace: RequestTrace) -> list[str]:
        host, port = key
        plan = trace.plan
        lookup = self._lookups[key] = _Lookup()
        try:
            if plan.on_dns_cache_miss:
                await trace.send(plan.on_dns_cache_miss, TraceDnsCacheMissParams(host))
            if plan.on_dns_resolvehost_start:
                await trace.send(
                    plan.on_dns_resolvehost_start, TraceDnsResolveHostStartParams(host)
                )
            try:
                addresses = await self._getaddrinfo(host, port)
            except OSError as exc:
                lookup.error = exc
                raise
            expires = float("inf") if self.ttl is None else monotonic() + self.ttl
            self._cache[key] = _CacheEntry(addresses, expires)
            lookup.addresses = addresses
            if plan.on_dns_resolvehost_end:
                await trace.send(plan.on_dns_resolvehost_end, TraceDnsResolveHostEndParams(host))
            return addresses
        finally:
            del self._lookups[key]
            lookup.done.set()

    async def _getaddrinfo(self, host: str, port: int) -> list[str]:
        infos = await anyio.getaddrinfo(host, port, family=self.family, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"No address found for {host}")
        return addresses
