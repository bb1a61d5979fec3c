from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

import compat
from compat._tracing import AIOHTTP_SIGNALS, SIGNAL_NAMES

from .server import TestServer

try:
    import pytest_httpx  # noqa: F401  (its plugin provides the `httpx_mock` fixture)
except ImportError:  # pytest-httpx pins one httpx minor: on another httpx it is not installed

    @pytest.fixture
    def httpx_mock() -> Any:
        pytest.skip("pytest-httpx is not installed (it supports one httpx minor at a time)")


@pytest.fixture(autouse=True, scope="session")
def aiohttp_resolves_as_compat() -> Iterator[None]:
    """aiohttp, the reference these tests compare with, resolves through the system's
    getaddrinfo as compat's default resolver does. With aiodns installed (the test extra has it)
    aiohttp's default becomes c-ares, which answers ::1 as well as 127.0.0.1 for `localhost`
    whatever /etc/hosts says, and the comparison would be between two resolvers."""
    import aiohttp.connector

    default = aiohttp.connector.DefaultResolver
    aiohttp.connector.DefaultResolver = aiohttp.ThreadedResolver  # type: ignore[misc]
    yield
    aiohttp.connector.DefaultResolver = default  # type: ignore[misc]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def server() -> Iterator[TestServer]:
    srv = TestServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server(ca: trustme.CA) -> Iterator[TestServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    srv = TestServer(context).start()
    yield srv
    srv.stop()


@pytest.fixture
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


class Recorder:
    """A TraceConfig with a handler on every signal, recording (name, params, ctx)."""

    def __init__(self, factory: Any = None, lib: Any = compat) -> None:
        self.events: list[tuple[str, Any, Any]] = []
        self.sessions: list[Any] = []
        self.config = lib.TraceConfig(factory) if factory else lib.TraceConfig()
        for name in SIGNAL_NAMES:
            signal = getattr(self.config, name, None)
            if signal is not None:
                signal.append(self._handler(name))

    def _handler(self, name: str) -> Any:
        async def handler(session: Any, ctx: Any, params: Any) -> None:
            self.events.append((name, params, ctx))
            self.sessions.append(session)

        return handler

    def names(self, *, all_signals: bool = False) -> list[str]:
        """Signal names in order, without the chunk signals and (unless asked) extensions."""
        keep = SIGNAL_NAMES if all_signals else AIOHTTP_SIGNALS
        return [
            n[3:]
            for n, _, _ in self.events
            if n in keep and n not in ("on_request_chunk_sent", "on_response_chunk_received")
        ]

    def per_request(self) -> list[list[str]]:
        """names() split by request (by trace context), sorted: for concurrent requests."""
        groups: dict[int, list[str]] = {}
        keep = set(AIOHTTP_SIGNALS) - {"on_request_chunk_sent", "on_response_chunk_received"}
        for name, _, ctx in self.events:
            if name in keep:
                groups.setdefault(id(ctx), []).append(name[3:])
        return sorted(groups.values())

    def params(self, name: str) -> list[Any]:
        return [p for n, p, _ in self.events if n == "on_" + name]

    def clear(self) -> None:
        self.events.clear()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
