"""Connectors: aiohttp's arguments; each owns an engine (pool, resolver, opener).

`BaseConnector` holds the pool settings every connector shares; `TCPConnector` (and
`UnixConnector` on it) add where connections go. Connections are opened by compat's own
transport, so a subclass that overrides one of aiohttp's internal connection hooks (as SOCKS
connectors override `_wrap_create_connection`) is refused by name rather than silently bypassed.
"""

from __future__ import annotations

import socket
import ssl as ssl_module
from typing import TYPE_CHECKING, Any, TypeVar

from ._transport._dns import Resolver, check_resolver
from ._transport._engine import Engine
from ._transport._opener import default_ssl_context
from ._transport._pool import ConnectionListener, ConnectionPool, PoolStats

if TYPE_CHECKING:
    import httpx

__all__ = ["BaseConnector", "TCPConnector", "UnixConnector"]

_UNSET: Any = object()
_C = TypeVar("_C", bound="BaseConnector")
_SCHEMES = frozenset({"", "http", "https", "ws", "wss"})
_AIOHTTP_HOOKS = (
    "_create_connection",
    "_create_direct_connection",
    "_create_proxy_connection",
    "_wrap_create_connection",
    "_wrap_existing_connection",
    "_resolve_host",
    "_get_ssl_context",
    "_get_fingerprint",
)


def _ssl_context(ssl: bool | ssl_module.SSLContext, http2: bool) -> ssl_module.SSLContext:
    """aiohttp's `ssl=`: True verifies certificates (the default), False does not. A context
    of the user's is never changed: with HTTP/2 on, a copy of it offers ALPN `h2, http/1.1`."""
    if isinstance(ssl, ssl_module.SSLContext):
        return _with_h2(ssl) if http2 else ssl
    if not isinstance(ssl, bool):
        raise TypeError(f"ssl must be a bool or an ssl.SSLContext, not {type(ssl).__name__}")
    return default_ssl_context(ssl, http2)


def _with_h2(source: ssl_module.SSLContext) -> ssl_module.SSLContext:
    """A new context with `source`'s settings and ALPN `h2, http/1.1`: ALPN is a property of a
    context, and setting it on the caller's would change their object under them.

    Python has no way to copy a context, so this one is built from what can be read back:
    protocol, verification (mode, hostname check, flags, the CA certificates loaded), options,
    version bounds, ciphers, post-handshake auth, key log. What Python cannot read back is not
    carried: a client certificate (`load_cert_chain`) and CA directories loaded lazily
    (`capath`); the README says so (mutual TLS keeps working with HTTP/1.1)."""
    context = ssl_module.SSLContext(source.protocol)
    context.check_hostname = False  # verify_mode may only drop to CERT_NONE without it
    context.verify_mode = source.verify_mode
    context.check_hostname = source.check_hostname
    context.verify_flags = source.verify_flags
    context.options = source.options
    context.minimum_version = source.minimum_version
    context.maximum_version = source.maximum_version
    context.set_ciphers(":".join(c["name"] for c in source.get_ciphers()))
    context.post_handshake_auth = source.post_handshake_auth
    context.hostname_checks_common_name = source.hostname_checks_common_name
    if source.keylog_filename:
        context.keylog_filename = source.keylog_filename
    authorities = source.get_ca_certs(binary_form=True)
    if authorities:
        context.load_verify_locations(cadata=b"".join(authorities))
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


class BaseConnector:
    """The pool settings every connector has: `limit` counts connections in use (0: no
    limit), `limit_per_host` the same per (scheme, host, port); keep-alive and force-close.

    Several sessions may share one connector (`connector_owner=False`). Subclasses set
    `_engine` (what opens connections); a plain `BaseConnector` opens none, as in aiohttp.
    `enable_cleanup_closed` is accepted for compatibility: closed TLS sockets are closed at once.
    """

    allowed_protocol_schema_set: frozenset[str] = _SCHEMES
    _engine: Engine

    def __init__(
        self,
        *,
        keepalive_timeout: float | None = _UNSET,
        force_close: bool = False,
        limit: int = 100,
        limit_per_host: int = 0,
        enable_cleanup_closed: bool = False,
        timeout_ceil_threshold: float = 5,
        http2: bool = False,
    ) -> None:
        for hook in _AIOHTTP_HOOKS:
            if hasattr(type(self), hook):
                raise TypeError(
                    f"{type(self).__name__} overrides {hook}(), an aiohttp-internal connector "
                    "hook compat never calls: connections are opened by compat's own transport "
                    "(pool, DNS, TLS on anyio). Configure it with TCPConnector's arguments "
                    "(resolver=, ssl=, local_addr=) instead; SOCKS proxies are not built."
                )
        if not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative int, got {limit!r}")
        if not isinstance(limit_per_host, int) or limit_per_host < 0:
            raise ValueError(f"limit_per_host must be a non-negative int, got {limit_per_host!r}")
        if force_close and keepalive_timeout is not _UNSET and keepalive_timeout is not None:
            raise ValueError("keepalive_timeout cannot be set if force_close is True")
        if keepalive_timeout is _UNSET:
            keepalive_timeout = None if force_close else 15.0
        self.limit = limit
        self.limit_per_host = limit_per_host
        self.force_close = force_close
        self.keepalive_timeout: float | None = keepalive_timeout
        self._pool = ConnectionPool(
            limit=limit,
            limit_per_host=limit_per_host,
            keepalive_timeout=keepalive_timeout,
            force_close=force_close,
            http2=http2,
        )

    def transport(self) -> httpx.AsyncHTTPTransport:
        """An httpx transport over this connector's engine; closing it leaves the pool open."""
        from ._transport._httpx import EnginePool, EngineTransport  # httpx loads on first use

        return EngineTransport(EnginePool(self._engine))

    def _add_connection_listener(self, listener: ConnectionListener) -> None:
        """`listener(origin, protocol, peer, seconds)` as each connection closes (metrics)."""
        self._pool.listeners.append(listener)

    def stats(self) -> PoolStats:
        """Connections in use, idle and waiting, in all and per origin (a compat extension)."""
        return self._pool.stats()

    @property
    def closed(self) -> bool:
        return self._pool.closed

    async def close(self) -> None:
        """Close every connection, idle and in use (reads in flight fail), as aiohttp does."""
        await self._pool.aclose()

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class TCPConnector(BaseConnector):
    """Connection limits, keep-alive, DNS cache and TLS settings, as aiohttp's `TCPConnector`.

    `resolver` is any `compat.abc.AbstractResolver` (aiohttp's own subclasses too), wrapped by
    the DNS cache and signals; `happy_eyeballs_delay` (None: one address after the other) and
    `interleave` are RFC 8305's, as in aiohttp.
    """

    allowed_protocol_schema_set = _SCHEMES | {"tcp"}
    _unix_path: str | None = None  # UnixConnector's socket

    def __init__(
        self,
        *,
        limit: int = 100,
        limit_per_host: int = 0,
        use_dns_cache: bool = True,
        ttl_dns_cache: float | None = 10,
        keepalive_timeout: float | None = _UNSET,
        force_close: bool = False,
        ssl: bool | ssl_module.SSLContext = True,
        local_addr: tuple[str, int] | None = None,
        family: int = socket.AF_UNSPEC,
        resolver: Any = None,
        happy_eyeballs_delay: float | None = 0.25,
        interleave: int | None = None,
        enable_cleanup_closed: bool = False,
        timeout_ceil_threshold: float = 5,
        http2: bool = False,
        http1: bool = True,
    ) -> None:
        if not http1 and not http2:
            raise ValueError("At least one of http1 and http2 must be True")
        if http2:
            try:
                import h2  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    "HTTP/2 needs the h2 package: pip install 'httpx-trace-compat[http2]'"
                ) from exc
        super().__init__(
            http2=http2,
            limit=limit,
            limit_per_host=limit_per_host,
            force_close=force_close,
            keepalive_timeout=keepalive_timeout,
            timeout_ceil_threshold=timeout_ceil_threshold,
            enable_cleanup_closed=enable_cleanup_closed,
        )
        if resolver is not None:
            check_resolver(resolver)
        self.use_dns_cache = use_dns_cache
        self.family = family
        self._resolver = Resolver(
            resolver, use_cache=use_dns_cache, ttl=ttl_dns_cache, family=family
        )
        self._engine = Engine(
            pool=self._pool,
            resolver=self._resolver,
            ssl_context=_ssl_context(ssl, http2),
            local_host=local_addr[0] if local_addr else None,
            unix_path=self._unix_path,
            http2=http2,
            http1=http1,
            # an https proxy speaks HTTP/1.1 to us: our default context without h2 in ALPN
            proxy_ssl_context=_ssl_context(ssl, False),
            happy_eyeballs_delay=happy_eyeballs_delay,
            interleave=interleave,
        )

    def cached_hosts(self) -> dict[tuple[str, int], list[str]]:
        """The unexpired DNS cache: (host, port) -> addresses (a compat extension)."""
        return self._resolver.cached_hosts()

    def clear_dns_cache(self) -> None:
        self._resolver.clear()

    async def close(self) -> None:
        """Close every connection, idle and in use (reads in flight fail), as aiohttp does,
        and the resolver if the connector made it (a resolver passed in is the caller's)."""
        await super().close()
        await self._resolver.aclose()


class UnixConnector(TCPConnector):
    """Requests over a Unix domain socket (Docker's API, say), as aiohttp's `UnixConnector`.

    The URL's host only names the `Host` header and the pool key; no DNS is asked (no DNS
    signals), and `https://` URLs get plain HTTP over the socket, as in aiohttp. (A subclass of
    `TCPConnector` here, of `BaseConnector` in aiohttp.)"""

    allowed_protocol_schema_set = _SCHEMES | {"unix"}

    def __init__(
        self,
        path: str,
        *,
        limit: int = 100,
        limit_per_host: int = 0,
        keepalive_timeout: float | None = _UNSET,
        force_close: bool = False,
    ) -> None:
        self._unix_path = path
        super().__init__(
            limit=limit,
            limit_per_host=limit_per_host,
            keepalive_timeout=keepalive_timeout,
            force_close=force_close,
        )

    @property
    def path(self) -> str:
        return self._unix_path or ""
