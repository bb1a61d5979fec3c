"""A realistic aiohttp program migrated by the README's recipe (issue 22): an SDK class with
pagination through `response.links`, retries on 503 with the attempt in `trace_request_ctx`,
and a streaming download named by `response.content_disposition`, written once against `lib`
and run on aiohttp 3.14 and on compat against the same server. Results, signals (per request,
in order) and what the handlers saw must be equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from .app_server import AppServer
from .conftest import Recorder
from .test_migration import both, sequences

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:.*deprecated.*:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def app() -> Iterator[AppServer]:
    srv = AppServer().start()
    yield srv
    srv.stop()


class ItemsClient:
    """What an SDK built on aiohttp looks like: one session, JSON pages, retries, downloads."""

    def __init__(self, lib: Any, base_url: str, trace_configs: list[Any]) -> None:
        self._lib = lib
        self._session = lib.ClientSession(
            base_url,
            trace_configs=trace_configs,
            timeout=lib.ClientTimeout(total=10),
            headers={lib.hdrs.ACCEPT: "application/json"},
            connector=lib.TCPConnector(limit=2),
        )

    async def __aenter__(self) -> ItemsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._session.close()

    async def get_json(self, url: Any, *, attempts: int = 3) -> tuple[Any, Any]:
        for attempt in range(1, attempts + 1):
            async with self._session.get(url, trace_request_ctx={"attempt": attempt}) as resp:
                if resp.status == 503 and attempt < attempts:
                    await resp.read()
                    continue
                resp.raise_for_status()
                return await resp.json(), resp.links
        raise AssertionError("unreachable")

    async def all_items(self) -> list[str]:
        items: list[str] = []
        url: Any = "/items?per=2"
        while url is not None:
            page, links = await self.get_json(url)
            items.extend(page["items"])
            url = links["next"]["url"] if "next" in links else None
        return items

    async def download(self) -> tuple[Any, ...]:
        async with self._session.get("/download?kib=32") as resp:
            digest, size = hashlib.sha256(), 0
            async for chunk in resp.content.iter_chunked(8192):
                digest.update(chunk)
                size += len(chunk)
            disposition = resp.content_disposition
            return (
                disposition.type,
                disposition.filename,
                resp.headers[self._lib.hdrs.ETAG],
                size,
                digest.hexdigest(),
                resp.content.total_bytes,
            )


async def sdk_program(lib: Any, rec: Recorder, app: AppServer) -> Any:
    seen: list[tuple[int, int]] = []

    @rec.config.on_request_end
    async def on_end(session: Any, ctx: Any, params: Any) -> None:
        attempt = (ctx.trace_request_ctx or {"attempt": 0})["attempt"]
        seen.append((attempt, params.response.status))

    async with ItemsClient(lib, app.url, [rec.config]) as client:
        items = await client.all_items()
        flaky, _ = await client.get_json("/flaky/job?fail=2")
        download = await client.download()
        with pytest.raises(lib.ClientResponseError) as failed:
            await client.get_json("/flaky/gone?fail=9")
    return items, flaky, download, failed.value.status, seen


async def test_sdk_with_pagination_retries_and_download_runs_as_on_aiohttp(app: AppServer) -> None:
    (aio, aio_rec), (got, rec) = await both(sdk_program, app, before=app.calls.clear)
    assert got == aio
    items, flaky, download, status, seen = got
    assert items == [f"item-{page}-{i}" for page in (1, 2, 3) for i in range(2)]
    assert flaky == {"key": "job", "calls": 3} and status == 503
    assert download[:3] == ("attachment", "résumé.bin", 'W/"v1"')
    assert download[3] == download[5] == 32 * 1024
    assert seen == [
        *[(1, 200)] * 3,  # the pages
        (1, 503), (2, 503), (3, 200),  # retried
        (0, 200),  # the download
        (1, 503), (2, 503), (3, 503),  # given up: ClientResponseError
    ]  # fmt: skip
    assert sequences(rec) == sequences(aio_rec)
    assert len(sequences(rec)) == 10
