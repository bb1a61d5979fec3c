"""The clients the benchmarks compare, each opened the same way and asked the same request.

A variant opens its client as an async context manager that yields `one()`: one GET of the
target, whole body read, status and body length checked. Nothing else is timed.

| variant            | backends      | what                                                        |
|--------------------|---------------|-------------------------------------------------------------|
| `aiohttp`          | asyncio       | `aiohttp.ClientSession`, no trace config (the reference)    |
| `aiohttp+16`       | asyncio       | the same with 16 no-op handlers on an `aiohttp.TraceConfig` |
| `compat`           | asyncio, trio | `compat.ClientSession`, no trace config                     |
| `compat+16`        | asyncio, trio | the same with 16 no-op handlers on a `compat.TraceConfig`   |
| `traced_client+16` | asyncio, trio | `compat.traced_client` (an `httpx.AsyncClient`), 16 handlers |
| `httpx`            | asyncio, trio | bare `httpx.AsyncClient`, 100 connections kept alive        |
| `floor`            | asyncio, trio | `benchmarks.floor`: httptools on a Protocol / trio stream   |

`compat` is imported lazily: if it does not import, only its rows fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from compat._tracing import AIOHTTP_SIGNALS

#: aiohttp's 16 `TraceConfig` signals; "+16" variants put one no-op handler on each.
SIGNALS = AIOHTTP_SIGNALS

OneRequest = Callable[[], Awaitable[None]]


class BadResponse(Exception):
    pass


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    body_size: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"


Opener = Callable[[Target], AbstractAsyncContextManager[OneRequest]]


@dataclass(frozen=True)
class Variant:
    name: str  # e.g. "compat+16"
    backend: str  # "asyncio" or "trio"
    client: str  # "aiohttp", "compat", "traced_client", "httpx", "floor"
    traced: bool
    open: Opener

    @property
    def key(self) -> str:
        return f"{self.name} ({self.backend})"


async def noop_handler(*_: Any) -> None:
    pass


def _fill(config: Any) -> Any:
    for name in SIGNALS:
        getattr(config, name).append(noop_handler)
    return config


def _check(status: int, body: bytes, target: Target) -> None:
    if status != 200 or len(body) != target.body_size:
        raise BadResponse(f"{target.url}: status {status}, {len(body)} body bytes")


@asynccontextmanager
async def open_aiohttp(target: Target, traced: bool) -> AsyncIterator[OneRequest]:
    import aiohttp

    configs = [_fill(aiohttp.TraceConfig())] if traced else []
    async with aiohttp.ClientSession(trace_configs=configs) as session:
        url = target.url

        async def one() -> None:
            async with session.get(url) as response:
                body = await response.read()
                _check(response.status, body, target)

        yield one


@asynccontextmanager
async def open_compat(target: Target, traced: bool) -> AsyncIterator[OneRequest]:
    import compat

    configs = [_fill(compat.TraceConfig())] if traced else []
    async with compat.ClientSession(trace_configs=configs) as session:
        url = target.url

        async def one() -> None:
            async with session.get(url) as response:
                body = await response.read()
                _check(response.status, body, target)

        yield one


@asynccontextmanager
async def open_traced_client(target: Target, traced: bool) -> AsyncIterator[OneRequest]:
    import compat

    configs = [_fill(compat.TraceConfig())] if traced else []
    async with compat.traced_client(trace_configs=configs) as client:
        url = target.url

        async def one() -> None:
            response = await client.get(url)
            _check(response.status_code, response.content, target)

        yield one


@asynccontextmanager
async def open_httpx(target: Target, traced: bool) -> AsyncIterator[OneRequest]:
    import httpx

    if traced:
        raise ValueError("bare httpx has no trace configs")
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits) as client:
        url = target.url

        async def one() -> None:
            response = await client.get(url)
            _check(response.status_code, response.content, target)

        yield one


@asynccontextmanager
async def open_floor_asyncio(target: Target, traced: bool) -> AsyncIterator[OneRequest]:
    from .floor import AsyncioFloor

    if traced:
        raise ValueError("the floor has no tracing")
    floor = AsyncioFloor(target.host, target.port)
    path = target.path

    async def one() -> None:
        status, _, body = await floor.get(path)
        _check(status, body, target)

    try:
        yield one
    finally:
        await floor.aclose()


@asynccontextmanager
async def open_floor_trio(target: Target, traced: bool) -> AsyncIterator[OneRequest]:
    from .floor import TrioFloor

    if traced:
        raise ValueError("the floor has no tracing")
    floor = TrioFloor(target.host, target.port)
    path = target.path

    async def one() -> None:
        status, _, body = await floor.get(path)
        _check(status, body, target)

    try:
        yield one
    finally:
        await floor.aclose()


_OPENERS: dict[tuple[str, str], Callable[[Target, bool], AbstractAsyncContextManager[OneRequest]]]
_OPENERS = {
    ("aiohttp", "asyncio"): open_aiohttp,
    ("compat", "asyncio"): open_compat,
    ("compat", "trio"): open_compat,
    ("traced_client", "asyncio"): open_traced_client,
    ("traced_client", "trio"): open_traced_client,
    ("httpx", "asyncio"): open_httpx,
    ("httpx", "trio"): open_httpx,
    ("floor", "asyncio"): open_floor_asyncio,
    ("floor", "trio"): open_floor_trio,
}

CLIENTS = sorted({client for client, _ in _OPENERS})


def make_variant(client: str, backend: str, traced: bool) -> Variant:
    """A variant by client, backend and tracing, as `benchmarks.profile` takes them."""
    try:
        opener = _OPENERS[client, backend]
    except KeyError:
        raise ValueError(f"no {client} client on {backend}") from None
    if traced and client in ("httpx", "floor"):
        raise ValueError(f"{client} has no tracing")
    name = f"{client}+16" if traced else client

    def open_(target: Target) -> AbstractAsyncContextManager[OneRequest]:
        return opener(target, traced)

    return Variant(name, backend, client, traced, open_)


#: What `benchmarks.run` measures, in this order within a round (rotated each round).
VARIANTS = [
    make_variant("aiohttp", "asyncio", traced=False),
    make_variant("aiohttp", "asyncio", traced=True),
    make_variant("compat", "asyncio", traced=False),
    make_variant("compat", "asyncio", traced=True),
    make_variant("compat", "trio", traced=False),
    make_variant("compat", "trio", traced=True),
    make_variant("traced_client", "asyncio", traced=True),
    make_variant("traced_client", "trio", traced=True),
    make_variant("httpx", "asyncio", traced=False),
    make_variant("httpx", "trio", traced=False),
    make_variant("floor", "asyncio", traced=False),
    make_variant("floor", "trio", traced=False),
]
