"""UploadTracker / UploadAbortedError side by side with aiohttp 3.14.5 on the same server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anyio.to_thread
import pytest

import compat

from .server import TestServer

pytestmark = pytest.mark.anyio


async def _pieces() -> AsyncIterator[bytes]:
    for piece in (b"abc", b"defg", b"h"):
        yield piece


async def _broken() -> AsyncIterator[bytes]:
    yield b"abc"
    raise ValueError("the source broke")


def _aiohttp(job: Callable[[], Any]) -> Any:
    return anyio.to_thread.run_sync(lambda: asyncio.run(job()))


async def _upload(lib: Any, url: str, data: Callable[[], Any]) -> tuple[Any, ...]:
    tracker = lib.UploadTracker()
    async with lib.ClientSession() as session:
        try:
            async with session.post(url, data=data(), upload_tracker=tracker) as resp:
                outcome: Any = (resp.status, await resp.read())
        except Exception as exc:
            outcome = type(exc).__name__
        try:
            await tracker.upload_complete
            settled: Any = "complete"
        except Exception as exc:
            settled = (type(exc).__name__, str(exc))
        try:
            async with session.post(url, upload_tracker=tracker):  # it observes one request
                again: Any = "no error"
        except RuntimeError as exc:
            again = str(exc)
    return outcome, settled, tracker.attempts, tracker.bytes_written, again


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/echo", lambda: b"0123456789"),
        ("/echo", _pieces),
        ("/redirect-to?url=/echo&status=307", lambda: b"resent"),
        ("/echo", _broken),
        ("/echo", lambda: None),
    ],
)
async def test_upload_tracker_as_aiohttp(path: str, data: Any, server: TestServer) -> None:
    url = server.url_for(path)
    theirs = await _aiohttp(lambda: _upload(aiohttp, url, data))
    ours = await _upload(compat, url, data)
    if data is _broken:
        # Both settle upload_complete with the request's own error. The error differs, and not
        # by the tracker: aiohttp wraps a failing body source in ClientConnectionError ("Failed
        # to send bytes into the underlying connection …"), the session raises the source's
        # ValueError as it is (left for the session's error mapping).
        assert theirs[0] == theirs[1][0] == "ClientConnectionError"
        assert ours[0] == ours[1][0] == "ValueError"
        ours, theirs = ours[2:], theirs[2:]
    assert ours == theirs
    assert ours[-3] >= 1  # attempts
