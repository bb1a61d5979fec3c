"""The DNS layer: a resolver (aiohttp's `AbstractResolver` shape) behind a TTL cache, firing
aiohttp's four DNS signals whichever resolver answers.

`ThreadedResolver` (the default) asks the system's `getaddrinfo` in a worker thread through
anyio, so it works on asyncio and trio alike; `AsyncResolver` asks c-ares through aiodns, which
is driven by asyncio's event loop and so is asyncio-only. A user's own resolver (compat's or
aiohttp's `AbstractResolver`, or any object with `resolve(host, port, family)` and `close()`)
is called the same way.

Concurrent lookups of one uncached host share a single resolution, as in aiohttp: the first
caller resolves (cache miss, resolvehost start/end) and the others see a cache hit and wait for
its answer. The resolution runs in the first caller's own task, so its signals keep that task's
context; if that caller is cancelled, a waiting caller takes over the lookup.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

from .. import _params
from .._tracing import RequestTrace
from ..abc import AbstractResolver, ResolveResult

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "Address",
    "AsyncResolver",
    "DefaultResolver",
    "Resolver",
    "ThreadedResolver",
    "check_resolver",
    "is_ip_address",
]

Address = tuple[str, int, int]
"""One place to connect to: (IP address, port, address family)."""


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _numeric(host: str, port: int, family: int, proto: int, hostname: str) -> ResolveResult:
    return ResolveResult(
        hostname=hostname,
        host=host,
        port=port,
        family=family,
        proto=proto,
        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
    )


class ThreadedResolver(AbstractResolver):
    """The system resolver (`getaddrinfo`, so /etc/hosts and nsswitch apply) in a worker thread,
    through anyio: the same on asyncio and trio. What `TCPConnector` uses unless told."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await anyio.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        results: list[ResolveResult] = []
        for info_family, _, proto, _, sockaddr in infos:
            address = str(sockaddr[0])
            if info_family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
                address = f"{address}%{sockaddr[3]}"  # a link-local address needs its scope
            results.append(_numeric(address, int(sockaddr[1]), int(info_family), proto, host))
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, f"No address found for {host}")
        return results

    async def close(self) -> None:
        """Nothing to release: anyio owns the worker threads."""


DefaultResolver = ThreadedResolver
"""As in aiohttp without aiodns: the system resolver in a thread."""


class AsyncResolver(AbstractResolver):
    """DNS through c-ares (the aiodns package, extra `aiodns`), as aiohttp's `AsyncResolver`:
    no thread per lookup. aiodns runs its sockets on asyncio's event loop, so this resolver
    works on asyncio only; on trio it raises `RuntimeError` saying so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _not_on_trio()
        try:
            import aiodns
        except ImportError as exc:
            raise RuntimeError(
                "AsyncResolver needs the aiodns package: pip install 'httpx-trace-compat[aiodns]'"
            ) from exc
        self._aiodns: Any = aiodns
        self._args = args
        self._kwargs = kwargs
        self._channel: Any = None  # made on the first lookup, on the loop that runs it
        self._loop: asyncio.AbstractEventLoop | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        _not_on_trio()
        import asyncio  # not at import time: `import compat` leaves asyncio to the app

        loop = asyncio.get_running_loop()
        if self._channel is None or self._loop is not loop:
            self._channel = self._aiodns.DNSResolver(*self._args, loop=loop, **self._kwargs)
            self._loop = loop
        try:
            answer = await self._channel.getaddrinfo(
                host, family=family, port=port, type=socket.SOCK_STREAM
            )
        except self._aiodns.error.DNSError as exc:
            message = exc.args[1] if len(exc.args) > 1 else "DNS lookup failed"
            raise socket.gaierror(socket.EAI_NONAME, f"{message}: {host}") from exc
        results: list[ResolveResult] = []
        for node in answer.nodes:
            address = node.addr[0].decode("ascii")
            if node.family == socket.AF_INET6 and len(node.addr) >= 4 and node.addr[3]:
                address = f"{address}%{node.addr[3]}"
            results.append(_numeric(address, int(node.addr[1]), int(node.family), 0, host))
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, f"No address found for {host}")
        return results

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            closing = channel.close()
            if closing is not None:  # aiodns 4: a coroutine; older: a plain call
                await closing


def _not_on_trio() -> None:
    trio = sys.modules.get("trio")
    if trio is None:
        return
    try:
        trio.lowlevel.current_task()
    except RuntimeError:  # not inside trio.run
        return
    raise RuntimeError(
        "AsyncResolver cannot run on trio: aiodns (c-ares) is driven by asyncio's event "
        "loop. Use compat.ThreadedResolver (the default) on trio."
    )


def check_resolver(resolver: object) -> None:
    """A `resolver=` must look like aiohttp's `AbstractResolver`: compat's, aiohttp's own
    subclasses, or any object with `resolve(host, port, family)` and `close()`."""
    for method in ("resolve", "close"):
        if not callable(getattr(resolver, method, None)):
            raise TypeError(
                f"resolver must be an AbstractResolver (with async resolve() and close()), "
                f"not {type(resolver).__name__}"
            )


class _CacheEntry:
    __slots__ = ("addresses", "expires", "next")

    def __init__(self, addresses: list[Address], expires: float) -> None:
        self.addresses = addresses
        self.expires = expires
        self.next = 0

    def rotated(self) -> list[Address]:
        """The addresses, starting one further on each call (round robin, as aiohttp)."""
        start = self.next
        self.next = (start + 1) % len(self.addresses)
        return self.addresses[start:] + self.addresses[:start]


class _Lookup:
    """One resolution in flight, awaited by the callers that arrived while it ran."""

    __slots__ = ("addresses", "done", "error")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.addresses: list[Address] | None = None
        self.error: OSError | None = None


class Resolver:
    """Resolves host names for new connections through `backend`, with the cache and the
    signals; `ttl=None` caches forever. It closes the backend only if it made it."""

    def __init__(
        self,
        backend: Any = None,
        *,
        use_cache: bool = True,
        ttl: float | None = 10,
        family: int = 0,
    ) -> None:
        self.owns_backend = backend is None
        self.backend: Any = ThreadedResolver() if backend is None else backend
        self.use_cache = use_cache
        self.ttl = ttl
        self.family = family
        self._cache: dict[tuple[str, int], _CacheEntry] = {}
        self._lookups: dict[tuple[str, int], _Lookup] = {}

    def clear(self) -> None:
        self._cache.clear()

    async def aclose(self) -> None:
        if self.owns_backend:
            await self.backend.close()

    def cached_hosts(self) -> dict[tuple[str, int], list[str]]:
        now = monotonic()
        return {
            key: [a[0] for a in e.addresses] for key, e in self._cache.items() if e.expires > now
        }

    async def resolve(self, host: str, port: int, trace: RequestTrace) -> list[Address]:
        """The addresses to try for `host`, in order; raises `socket.gaierror` on failure."""
        if is_ip_address(host):
            return [(host, port, socket.AF_INET6 if ":" in host else socket.AF_INET)]
        plan = trace.plan
        if not self.use_cache:
            if plan.on_dns_resolvehost_start:
                await trace.send(
                    plan.on_dns_resolvehost_start, _params.TraceDnsResolveHostStartParams(host)
                )
            addresses = await self._ask(host, port)
            if plan.on_dns_resolvehost_end:
                await trace.send(
                    plan.on_dns_resolvehost_end, _params.TraceDnsResolveHostEndParams(host)
                )
            return addresses

        key = (host, port)
        while True:
            entry = self._cache.get(key)
            if entry is not None and entry.expires > monotonic():
                addresses = entry.rotated()
                if plan.on_dns_cache_hit:
                    await trace.send(plan.on_dns_cache_hit, _params.TraceDnsCacheHitParams(host))
                return addresses
            lookup = self._lookups.get(key)
            if lookup is None:
                return await self._lead(key, trace)
            if plan.on_dns_cache_hit:
                await trace.send(plan.on_dns_cache_hit, _params.TraceDnsCacheHitParams(host))
            await lookup.done.wait()
            if lookup.error is not None:
                raise socket.gaierror(lookup.error.errno, lookup.error.strerror) from lookup.error
            if lookup.addresses is not None:
                return lookup.addresses
            # The leader was cancelled before it had an answer: look again.

    async def _lead(self, key: tuple[str, int], trace: RequestTrace) -> list[Address]:
        host, port = key
        plan = trace.plan
        lookup = self._lookups[key] = _Lookup()
        try:
            if plan.on_dns_cache_miss:
                await trace.send(plan.on_dns_cache_miss, _params.TraceDnsCacheMissParams(host))
            if plan.on_dns_resolvehost_start:
                await trace.send(
                    plan.on_dns_resolvehost_start, _params.TraceDnsResolveHostStartParams(host)
                )
            try:
                addresses = await self._ask(host, port)
            except OSError as exc:
                lookup.error = exc
                raise
            expires = float("inf") if self.ttl is None else monotonic() + self.ttl
            self._cache[key] = _CacheEntry(addresses, expires)
            lookup.addresses = addresses
            if plan.on_dns_resolvehost_end:
                await trace.send(
                    plan.on_dns_resolvehost_end, _params.TraceDnsResolveHostEndParams(host)
                )
            return addresses
        finally:
            del self._lookups[key]
            lookup.done.set()

    async def _ask(self, host: str, port: int) -> list[Address]:
        """The backend's answer as addresses to connect to, in its order, without repeats and
        without other families than the connector's; any failure as `socket.gaierror`."""
        try:
            results = await self.backend.resolve(host, port, family=self.family)
        except socket.gaierror:
            raise
        except OSError as exc:
            raise socket.gaierror(exc.errno or socket.EAI_FAIL, exc.strerror or str(exc)) from exc
        addresses: dict[Address, None] = {}
        for result in results:
            family = int(result["family"])
            if self.family and family != self.family:
                continue
            addresses[(str(result["host"]), int(result["port"]), family)] = None
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"No address found for {host}")
        return list(addresses)
