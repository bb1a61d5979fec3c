"""aiohttp's public payload classes and MultipartWriter, side by side with aiohttp 3.14.5.

Each case builds the same value with `aiohttp.X` and `compat.X` and compares what client code
can see (content type, headers, size, encoding, filename, the pieces `write()` produces,
`as_bytes()`), then sends it as `data=` to the same server and compares the request the server
saw and the `on_request_chunk_sent` sizes. aiohttp runs on asyncio in a worker thread, so the
compat side runs on asyncio and trio.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio.to_thread
import pytest

import compat

from .server import TestServer

pytestmark = pytest.mark.anyio

Make = Callable[[Any, Path], Any]


async def _agen() -> AsyncIterator[bytes]:
    for piece in (b"ab", b"", b"cde"):
        yield piece


def _file(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


PAYLOADS: dict[str, Make] = {
    "bytes": lambda lib, tmp: lib.BytesPayload(b"xyz"),
    "bytes-headers": lambda lib, tmp: lib.BytesPayload(
        bytearray(b"q"), headers={"X-Part": "1"}, content_type="image/png"
    ),
    "bytes-filename": lambda lib, tmp: lib.BytesPayload(b"x", filename="a.json"),
    "string": lambda lib, tmp: lib.StringPayload("héllo"),
    "string-encoding": lambda lib, tmp: lib.StringPayload("héllo", encoding="latin-1"),
    "string-charset": lambda lib, tmp: lib.StringPayload(
        "héllo", content_type="text/html; charset=latin-1"
    ),
    "stringio": lambda lib, tmp: lib.StringIOPayload(io.StringIO("abc")),
    "json": lambda lib, tmp: lib.JsonPayload({"a": [1, "é"]}),
    "json-dumps": lambda lib, tmp: lib.JsonPayload([1], dumps=lambda v: json.dumps(v, indent=1)),
    "bytesio": lambda lib, tmp: lib.BytesIOPayload(io.BytesIO(b"0123456789")),
    "bytesio-large": lambda lib, tmp: lib.BytesIOPayload(io.BytesIO(b"z" * 600_000)),
    "file": lambda lib, tmp: lib.BufferedReaderPayload(
        _file(tmp, "data.txt", b"f" * 300_000).open("rb")
    ),
    "file-no-disposition": lambda lib, tmp: lib.IOBasePayload(
        _file(tmp, "pic.png", b"png").open("rb"), disposition=None
    ),
    "text-file": lambda lib, tmp: lib.TextIOPayload(
        _file(tmp, "t.csv", "ä,b\n".encode()).open(encoding="utf-8")
    ),
    "async-iterable": lambda lib, tmp: lib.AsyncIterablePayload(_agen()),
}


class Collect:
    """An AbstractStreamWriter-shaped sink: aiohttp's and ours take the same calls."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    async def write(self, chunk: bytes) -> None:
        self.pieces.append(bytes(chunk))

    async def write_eof(self, chunk: bytes = b"") -> None:
        pass

    async def drain(self) -> None:
        pass


async def _observe(payload: Any) -> dict[str, Any]:
    seen = {
        "content_type": payload.content_type,
        "headers": list(payload.headers.items()),
        "size": payload.size,
        "encoding": payload.encoding,
        "filename": payload.filename,
    }
    sink = Collect()
    await payload.write(sink)
    seen["pieces"] = sink.pieces
    seen["as_bytes"] = await payload.as_bytes()
    await payload.close()
    return seen


def _aiohttp(job: Callable[[], Any]) -> Any:
    """Run an aiohttp coroutine function on its own asyncio loop (from any backend)."""
    return anyio.to_thread.run_sync(lambda: asyncio.run(job()))


@pytest.mark.parametrize("name", list(PAYLOADS))
async def test_payload_as_aiohttp(name: str, tmp_path: Path) -> None:
    make = PAYLOADS[name]
    theirs = await _aiohttp(lambda: _observe(make(aiohttp, tmp_path)))
    ours = await _observe(make(compat, tmp_path))
    assert ours == theirs
    assert ours["pieces"]  # the comparison saw bytes


def test_registry_picks_as_aiohttp(tmp_path: Path) -> None:
    path = _file(tmp_path, "r.bin", b"r")
    values: list[Callable[[], Any]] = [
        lambda: b"b",
        lambda: bytearray(b"b"),
        lambda: memoryview(b"b"),
        lambda: "s",
        lambda: io.StringIO("s"),
        lambda: io.BytesIO(b"b"),
        lambda: path.open("rb"),
        lambda: path.open("r"),
        lambda: path.open("r+b"),
        _agen,
    ]
    for value in values:
        ours, theirs = compat.get_payload(value()), aiohttp.get_payload(value())
        assert type(ours).__name__ == type(theirs).__name__
        assert ours.content_type == theirs.content_type
        for payload in (ours, theirs):
            if isinstance(payload._value, io.IOBase):
                payload._value.close()
    payload = compat.BytesPayload(b"x")
    assert compat.get_payload(payload) is payload  # a payload is its own
    with pytest.raises(Exception) as ours_error:
        compat.get_payload(object())
    assert type(ours_error.value).__name__ == "PayloadLookupError"
    assert compat.PAYLOAD_REGISTRY is compat.PAYLOAD_REGISTRY  # one registry
    for bad in (lambda lib: lib.BytesPayload("text"), lambda lib: lib.AsyncIterablePayload(b"")):
        with pytest.raises(TypeError) as theirs_error:
            bad(aiohttp)
        with pytest.raises(TypeError) as ours_error2:
            bad(compat)
        assert str(ours_error2.value) == str(theirs_error.value)


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


@compat.payload_type(Point)
class PointPayload(compat.Payload):
    """A custom type, registered as aiohttp users do; written in two pieces."""

    def __init__(self, value: Point, *args: Any, **kwargs: Any) -> None:
        super().__init__(value, *args, content_type="text/x-point", **kwargs)

    async def write(self, writer: Any) -> None:
        await writer.write(str(self._value.x).encode())
        await writer.write(b"," + str(self._value.y).encode())

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return f"{self._value.x},{self._value.y}"


async def _compat_send(server: TestServer, data: Any, **kwargs: Any) -> tuple[Any, list[int]]:
    sizes: list[int] = []
    config = compat.TraceConfig()

    async def chunk(session: Any, ctx: Any, params: Any) -> None:
        sizes.append(len(params.chunk))

    config.on_request_chunk_sent.append(chunk)
    server.reset_stats()
    async with (
        compat.ClientSession(trace_configs=[config]) as session,
        session.post(server.url_for("/echo"), data=data, **kwargs) as resp,
    ):
        assert await resp.read() == server.stats.seen[-1].body
    return server.stats.seen[-1], sizes


def _aiohttp_send(server: TestServer, make: Callable[[], Any], **kwargs: Any) -> Any:
    async def job() -> tuple[Any, list[int]]:
        sizes: list[int] = []
        config = aiohttp.TraceConfig()

        async def chunk(session: Any, ctx: Any, params: Any) -> None:
            sizes.append(len(params.chunk))

        config.on_request_chunk_sent.append(chunk)
        server.reset_stats()
        async with (
            aiohttp.ClientSession(trace_configs=[config]) as session,
            session.post(server.url_for("/echo"), data=make(), **kwargs) as resp,
        ):
            await resp.read()
        return server.stats.seen[-1], sizes

    return _aiohttp(job)


def _wire(request: Any) -> tuple[list[tuple[str, str]], bytes]:
    """Headers (as a sorted list: the session orders Content-Type before Content-Length,
    aiohttp after, for every body) and the body."""
    drop = {"user-agent", "host"}
    return sorted((k, v) for k, v in request.headers if k.lower() not in drop), request.body


@pytest.mark.parametrize("name", ["bytes-headers", "json", "bytesio", "file", "async-iterable"])
async def test_payload_as_data_as_aiohttp(name: str, server: TestServer, tmp_path: Path) -> None:
    make = PAYLOADS[name]
    theirs, their_sizes = await _aiohttp_send(server, lambda: make(aiohttp, tmp_path))
    ours, our_sizes = await _compat_send(server, make(compat, tmp_path))
    assert _wire(ours) == _wire(theirs)
    assert our_sizes == their_sizes and our_sizes


async def test_custom_payload_type(server: TestServer) -> None:
    """`data=Point(…)` goes through the registry; each write() is one chunk signal."""

    @aiohttp.payload_type(Point)
    class TheirPoint(aiohttp.Payload):
        def __init__(self, value: Point, *args: Any, **kwargs: Any) -> None:
            super().__init__(value, *args, content_type="text/x-point", **kwargs)

        async def write(self, writer: Any) -> None:
            await writer.write(str(self._value.x).encode())
            await writer.write(b"," + str(self._value.y).encode())

        def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
            return ""

    theirs, their_sizes = await _aiohttp_send(server, lambda: Point(12, 3))
    ours, our_sizes = await _compat_send(server, Point(12, 3))
    assert _wire(ours) == _wire(theirs)
    assert ours.body == b"12,3" and our_sizes == their_sizes == [2, 2]
    assert isinstance(compat.get_payload(Point(1, 2)), PointPayload)


# -- MultipartWriter ------------------------------------------------------------------------


def _mixed(lib: Any, tmp: Path) -> Any:
    writer = lib.MultipartWriter("mixed", boundary="b0und4ry")
    writer.append("text part")
    writer.append(b"\x00bin", {"Content-Type": "application/x-bin"})
    writer.append_json({"k": "v"})
    writer.append_form([("a", "1"), ("b", "two words")])
    writer.append(io.BytesIO(b"stream"), {"X-Id": "7"})
    writer.append(_file(tmp, "m.txt", b"file body").open("rb"))
    return writer


def _nested(lib: Any, tmp: Path) -> Any:
    outer = lib.MultipartWriter("mixed", boundary="outer")
    inner = lib.MultipartWriter("related", boundary="in ner")  # quoted in the header
    inner.append("one")
    inner.append_json([1, 2])
    outer.append(inner)
    outer.append("after")
    return outer


def _encoded(lib: Any, tmp: Path) -> Any:
    writer = lib.MultipartWriter("mixed", boundary="enc")
    writer.append(b"0123456789" * 30, {"Content-Transfer-Encoding": "base64"})
    writer.append("caf\xe9 = qp\n" * 3, {"Content-Transfer-Encoding": "quoted-printable"})
    writer.append(b"squash " * 200, {"Content-Encoding": "gzip"})
    writer.append(b"deflate me " * 50, {"Content-Encoding": "deflate"})
    writer.append(b"as is", {"Content-Encoding": "identity", "Content-Transfer-Encoding": "binary"})
    return writer


def _form(lib: Any, tmp: Path) -> Any:
    writer = lib.MultipartWriter("form-data", boundary="formb")
    writer.append("v1")
    part = writer.append(b"v2")
    part.set_content_disposition("form-data", name="named", filename="f é.txt")
    return writer


def _streamed(lib: Any, tmp: Path) -> Any:
    writer = lib.MultipartWriter("mixed", boundary="s")
    writer.append("known")
    writer.append(lib.AsyncIterablePayload(_agen()))
    return writer


WRITERS: dict[str, Make] = {
    "mixed": _mixed,
    "nested": _nested,
    "encoded": _encoded,
    "form": _form,
    "streamed": _streamed,
}


@pytest.mark.parametrize("name", list(WRITERS))
async def test_multipart_writer_as_aiohttp(name: str, server: TestServer, tmp_path: Path) -> None:
    make = WRITERS[name]
    theirs, their_sizes = await _aiohttp_send(server, lambda: make(aiohttp, tmp_path))
    ours, our_sizes = await _compat_send(server, make(compat, tmp_path))
    assert _wire(ours) == _wire(theirs)
    assert our_sizes == their_sizes


@pytest.mark.parametrize("name", ["mixed", "nested", "form"])
async def test_multipart_writer_object_as_aiohttp(name: str, tmp_path: Path) -> None:
    make = WRITERS[name]

    async def look(writer: Any) -> dict[str, Any]:
        seen = await _observe(writer)
        seen["boundary"] = writer.boundary
        seen["parts"] = [list(part.headers.items()) for part, _, _ in writer]
        seen["len"] = len(writer)
        return seen

    theirs = await _aiohttp(lambda: look(make(aiohttp, tmp_path)))
    ours = await look(make(compat, tmp_path))
    assert ours == theirs


def test_multipart_writer_errors_as_aiohttp() -> None:
    calls: list[Callable[[Any], Any]] = [
        lambda lib: lib.MultipartWriter(boundary="é"),
        lambda lib: lib.MultipartWriter(boundary="a\nb"),
        lambda lib: lib.MultipartWriter().append(b"x", {"Content-Encoding": "br"}),
        lambda lib: lib.MultipartWriter().append(b"x", {"Content-Transfer-Encoding": "7bit"}),
        lambda lib: lib.MultipartWriter().append(object()),
    ]
    for call in calls:
        outcomes = []
        for lib in (aiohttp, compat):
            with pytest.raises(Exception) as caught:
                call(lib)
            outcomes.append((type(caught.value).__name__, str(caught.value)))
        assert outcomes[0] == outcomes[1]
