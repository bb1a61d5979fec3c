"""`UploadTracker` (aiohttp 3.14): how much of a request body went out, and whether all of it did.

`session.post(url, data=…, upload_tracker=tracker)`: every attempt on the wire (a retry on a
dropped connection, a 307/308, a middleware's resend) counts in `attempts` and starts
`bytes_written` again from 0. `bytes_written` counts the body pieces the connection has sent
(a piece counts once the engine asks for the next one, i.e. after its send returned).
`await tracker.upload_complete` settles when the request is over: None when the last attempt's
body went out whole, its error when that attempt failed writing, else `UploadAbortedError`.
Works on asyncio and trio (the awaitable is an anyio event, not an asyncio future).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

import anyio

from ._exceptions import ClientError
from ._payload import Payload

__all__ = ["UploadAbortedError", "UploadTracker"]


class UploadAbortedError(ClientError):
    """The request body was never fully sent."""


class _Completion:
    """An awaitable outcome with the `done()` / `result()` / `exception()` an asyncio future
    offers, on any anyio backend."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._error: BaseException | None = None

    def _set(self, error: BaseException | None) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    def done(self) -> bool:
        return self._event.is_set()

    def exception(self) -> BaseException | None:
        if not self.done():
            raise anyio.WouldBlock("upload_complete is not settled yet")
        return self._error

    def result(self) -> None:
        error = self.exception()
        if error is not None:
            raise error

    async def _wait(self) -> None:
        await self._event.wait()
        self.result()

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()


class UploadTracker:
    """Upload progress of one request; create it inside a running event loop."""

    def __init__(self) -> None:
        self.attempts = 0
        self.upload_complete = _Completion()
        self._bound = False
        self._written = 0
        self._whole = False  # the current attempt's body went out in full
        self._error: BaseException | None = None
        self._writing = False
        self._over = False

    @property
    def bytes_written(self) -> int:
        """Body bytes of the current attempt sent on the connection."""
        return self._written

    def _bind(self) -> None:
        already, self._bound = self._bound, True
        if already:
            raise RuntimeError("UploadTracker is already bound to a request")

    def _attempt(self, body: bytes | Payload | None) -> bytes | AsyncIterator[bytes] | None:
        """A new attempt: the body to send in its place, counting what goes out."""
        self.attempts += 1
        self._written, self._whole, self._error = 0, body is None, None
        if body is None:
            return None
        return self._count(body, self.attempts)

    async def _count(self, body: bytes | Payload, attempt: int) -> AsyncIterator[bytes]:
        pieces = [body] if isinstance(body, bytes) else body
        self._writing = True
        try:
            async for piece in _iterate(pieces):
                yield piece
                if attempt == self.attempts:  # a superseded attempt no longer counts
                    self._written += len(piece)
            if attempt == self.attempts:
                self._whole = True
        finally:
            if attempt == self.attempts:
                self._writing = False
                if self._over:
                    self._settle()

    def _failed(self, error: BaseException) -> None:
        if (
            not self._whole
            and self._error is None
            and not isinstance(error, anyio.get_cancelled_exc_class())
        ):
            self._error = error

    def _finish(self) -> None:
        """The request is over: no attempt follows. Settle now unless a body is still going out."""
        self._over = True
        if not self._writing:
            self._settle()

    def _settle(self) -> None:
        if self._whole:
            self.upload_complete._set(None)
        elif self._error is not None:
            self.upload_complete._set(self._error)
        else:
            self.upload_complete._set(UploadAbortedError("The request body was not fully sent"))


async def _iterate(pieces: Any) -> AsyncIterator[bytes]:
    if isinstance(pieces, list):
        for piece in pieces:
            yield piece
        return
    iterator = pieces.__aiter__()
    try:
        async for piece in iterator:
            yield piece
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
