"""`compat.request()`: aiohttp's one-off request, a session of its own closed with the response."""

from __future__ import annotations

from typing import Any

from yarl import URL

from ._connector import BaseConnector, TCPConnector
from ._response import ClientResponse
from ._session import ClientSession

__all__ = ["request"]

_UNSET: Any = object()


class _SessionRequestContextManager:
    """`async with compat.request(...) as resp:` — the session goes when the block ends."""

    __slots__ = ("_coro", "_response", "_session")

    def __init__(self, session: ClientSession, method: str, url: str | URL, **kwargs: Any) -> None:
        self._session = session
        self._coro = session._request(method, url, **kwargs)
        self._response: ClientResponse | None = None

    async def __aenter__(self) -> ClientResponse:
        try:
            self._response = await self._coro
        except BaseException:
            await self._session.close()
            raise
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            self._response.close()
        await self._session.close()


def request(
    method: str,
    url: str | URL,
    *,
    version: Any = None,
    connector: BaseConnector | None = None,
    loop: None = None,
    **kwargs: Any,
) -> _SessionRequestContextManager:
    """One request on a session of its own, as `aiohttp.request`: `async with` it.

    Without `connector=`, a `TCPConnector(force_close=True)` is made and closed with the
    session; a connector that is passed stays open. `cookies=` and `timeout=` go to the session,
    the rest to the request. No trace configs (aiohttp's `request()` takes none either).
    """
    if version is not None and tuple(version) != (1, 1):
        raise ValueError(f"version={tuple(version)!r} is not built: compat speaks HTTP/1.1")
    if loop is not None:
        raise TypeError("loop= is not supported: compat runs on the current anyio event loop")
    session_options: dict[str, Any] = {"cookies": kwargs.pop("cookies", None)}
    timeout = kwargs.pop("timeout", _UNSET)
    if timeout is not _UNSET:
        session_options["timeout"] = timeout
    session = ClientSession(
        connector=connector if connector is not None else TCPConnector(force_close=True),
        connector_owner=connector is None,
        **session_options,
    )
    return _SessionRequestContextManager(session, method, url, **kwargs)
