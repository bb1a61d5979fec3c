"""Request bodies (`compat._payload`) against aiohttp 3.x on the wire.

Every case is sent by aiohttp (live, once per module, in a thread of its own running asyncio) to
a raw-socket server that records the body bytes, while a trace records the size of each piece
aiohttp reports through `on_request_chunk_sent`. The same data (built fresh) goes through
`make_body`, and the test compares: the bytes (pieces joined), the piece sizes, the
Content-Type, the Content-Length (None: chunked), the warnings, the errors, which file objects
end up closed, and what a second use gives (307 redirects, reused FormData). Multipart
boundaries are random: both sides' are replaced by the same placeholder before comparing.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import sys
import threading
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.payload
import pytest
from multidict import MultiDict

from compat import FormData
from compat._payload import UNSET, Body, Payload, make_body

pytestmark = pytest.mark.anyio

BIG = os.urandom(600_000)  # 262144 + 262144 + 75712
ACCENTS = "é" * 300_000  # 600000 bytes in UTF-8; read 262144 characters at a time


# -- the recording server -------------------------------------------------------------------


class Recorder:
    """A raw-socket HTTP/1.1 server on 127.0.0.1: records each request's body (de-chunked) and
    framing; answers 307 (to /done) for paths under /307, else 200."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            while line := stream.readline():
                headers: dict[str, str] = {}
                while (header := stream.readline()) not in (b"\r\n", b""):
                    key, _, value = header.decode().rstrip("\r\n").partition(": ")
                    headers[key.lower()] = value
                body = b""
                if "content-length" in headers:
                    body = stream.read(int(headers["content-length"]))
                elif headers.get("transfer-encoding") == "chunked":
                    while size := int(stream.readline(), 16):
                        body += stream.read(size)
                        stream.readline()
                    stream.readline()
                self.requests.append((headers, body))
                if line.startswith(b"POST /307"):
                    conn.sendall(
                        b"HTTP/1.1 307 Again\r\nLocation: /done\r\nContent-Length: 0\r\n\r\n"
                    )
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.sock.close()
        self._accepter.join(5)


# -- the cases ------------------------------------------------------------------------------


@dataclass
class Env:
    """What a case builds its data with: the library's FormData, the test files, and the list
    of file objects it handed over (to see which the library closes)."""

    FormData: Any
    dir: Path
    streams: list[Any] = field(default_factory=list)

    def open(self, name: str, mode: str = "rb", **kwargs: Any) -> Any:
        stream = open(self.dir / name, mode, **kwargs)  # noqa: SIM115
        self.streams.append(stream)
        return stream

    def bytesio(self, data: bytes, position: int = 0) -> io.BytesIO:
        stream = io.BytesIO(data)
        stream.seek(position)
        self.streams.append(stream)
        return stream

    def pipe(self, data: bytes) -> Any:
        read, write = os.pipe()
        os.write(write, data)
        os.close(write)
        stream = open(read, "rb")  # noqa: SIM115
        self.streams.append(stream)
        return stream


async def agen() -> AsyncGenerator[bytes, None]:
    yield b"ab"
    yield b""
    yield b"cde"


def form(env: Env, *fields: tuple[Any, ...], **options: Any) -> Any:
    """A FormData with `add_field(name, value, **kwargs)` for each (name, value[, kwargs])."""
    fd = env.FormData(**options)
    for name, value, *rest in fields:
        fd.add_field(name, value, **(rest[0] if rest else {}))
    return fd


Case = Callable[[Env], dict[str, Any]]

CASES: dict[str, Case] = {
    "bytes": lambda env: {"data": b"x" * 300_000},
    "bytes-empty": lambda env: {"data": b""},
    "bytes-large": lambda env: {"data": b"x" * (2**20 + 1)},
    "str-large": lambda env: {"data": "x" * (2**20 + 1)},
    "json-large": lambda env: {"json": "x" * 2**20},
    "form-large": lambda env: {"data": {"a": "x" * 2**20}},
    "form-large-part": lambda env: {
        "data": form(env, ("a", "x" * (2**20 + 1)), ("f", env.open("f.txt")))
    },
    "bytes-at-limit": lambda env: {"data": b"x" * 2**20},
    "bytearray": lambda env: {"data": bytearray(b"xy")},
    "memoryview": lambda env: {"data": memoryview(b"xyz")},
    "str": lambda env: {"data": "héllo"},
    "json": lambda env: {"json": {"a": [1, "é"], "b": None}},
    "json-none": lambda env: {"json": None},
    "dict": lambda env: {"data": {"a": "1", "b": "x y&z", "c": ["1", "2"], "d": 5, "é": "ü"}},
    "list": lambda env: {"data": [("a", "1"), ("a", "2"), ("b", "")]},
    "tuple": lambda env: {"data": (("a", "1"),)},
    "multidict": lambda env: {"data": MultiDict([("a", "1"), ("a", "2")])},
    "dict-with-file": lambda env: {"data": {"a": "1", "f": env.open("f.txt")}},
    "stringio": lambda env: {"data": io.StringIO("x" * 600_000)},
    "bytesio": lambda env: {"data": env.bytesio(BIG)},
    "bytesio-seeked": lambda env: {"data": env.bytesio(b"0123456789", 4)},
    "bytesio-empty": lambda env: {"data": env.bytesio(b"")},
    "file-bin": lambda env: {"data": env.open("big.bin")},
    "file-txt-binary": lambda env: {"data": env.open("f.txt")},
    "file-json-binary": lambda env: {"data": env.open("d.json")},
    "file-text-mode": lambda env: {"data": env.open("accents.txt", "r", encoding="utf-8")},
    "file-unbuffered": lambda env: {"data": env.open("f.txt", buffering=0)},
    "file-empty": lambda env: {"data": env.open("empty.bin")},
    "pipe": lambda env: {"data": env.pipe(b"p" * 1000)},
    "async-generator": lambda env: {"data": agen()},
    "form-urlencoded": lambda env: {"data": env.FormData({"a": "1", "b": "x y"})},
    "form-urlencoded-latin1": lambda env: {
        "data": env.FormData({"a": "é", "b": "x y"}, charset="latin-1")
    },
    "form-empty": lambda env: {"data": env.FormData()},
    "form-empty-multipart": lambda env: {"data": env.FormData(default_to_multipart=True)},
    "form-default-multipart": lambda env: {
        "data": env.FormData({"a": "1"}, default_to_multipart=True)
    },
    "form-file": lambda env: {"data": form(env, ("a", "1"), ("f", env.open("f.txt")))},
    "form-big-file": lambda env: {"data": form(env, ("f", env.open("big.bin")), ("z", "end"))},
    "form-parts": lambda env: {
        "data": form(
            env,
            ("a", "1"),
            ("ü name", "v", {"filename": "f.txt"}),
            ('sp ace"q\\\t', "v", {"filename": 'fé x".txt'}),
            ("b", env.bytesio(b"zz"), {"filename": "x.png"}),
            ("c", "t", {"content_type": "text/html"}),
            ("d", "é", {"content_type": "text/plain; charset=latin-1"}),
            ("e", b"raw", {"filename": "e.bin"}),
            ("g", b"raw", {"content_type": "image/png", "filename": "g"}),
            ("h", ""),
            ("i", io.StringIO("sio")),
            ("j", env.bytesio(b"")),
        )
    },
    "form-bytes-no-filename": lambda env: {"data": form(env, ("e", b"raw"))},
    "form-unquoted": lambda env: {
        "data": form(env, ('ü na"me', "v", {"filename": 'fé x".txt'}), quote_fields=False)
    },
    "form-latin1-multipart": lambda env: {
        "data": form(
            env, ("a", "é"), ("t", env.open("f.txt", "r", encoding="utf-8")), charset="latin-1"
        )
    },
    "form-text-file": lambda env: {"data": form(env, ("t", env.open("accents.txt", "r")))},
    "form-async-part": lambda env: {"data": form(env, ("a", agen(), {"filename": "g.bin"}))},
    "form-transfer-encoding": lambda env: {
        "data": form(env, ("a", "1", {"content_transfer_encoding": "base64"}))
    },
    "form-fields": lambda env: {
        "data": env.FormData([MultiDict([("m", "1"), ("m", "2")]), ("b", "2"), env.open("f.txt")])
    },
    "form-field-named-file": lambda env: {"data": env.FormData([env.bytesio(b"q")])},
    # second uses
    "redirect-file": lambda env: {"data": env.open("big.bin"), "path": "/307"},
    "redirect-bytesio": lambda env: {"data": env.bytesio(b"0123456789", 4), "path": "/307"},
    "redirect-form-file": lambda env: {
        "data": form(env, ("a", "1"), ("f", env.open("f.txt"))),
        "path": "/307",
    },
    "redirect-str": lambda env: {"data": "x", "path": "/307"},
    "reuse-form-file": lambda env: {"data": form(env, ("f", env.open("f.txt"))), "sends": 2},
    "reuse-form-urlencoded": lambda env: {"data": env.FormData({"a": "1"}), "sends": 2},
    "reuse-form-multipart": lambda env: {
        "data": env.FormData({"a": "1"}, default_to_multipart=True),
        "sends": 2,
    },
    # errors
    "bad-int": lambda env: {"data": 5},
    "bad-set": lambda env: {"data": {1, 2}},
    "bad-list": lambda env: {"data": [b"a"]},
    "bad-triple": lambda env: {"data": [("a", 1, 2)]},
    "bad-part": lambda env: {"data": {"a": 5, "f": env.bytesio(b"")}},
    "bad-json-and-data": lambda env: {"data": b"x", "json": {}},
}


@dataclass
class Sent:
    """One request as it went out: entity headers, body, piece sizes."""

    content_type: str | None
    content_length: int | None  # None: chunked
    body: bytes
    sizes: list[int]


@dataclass
class Outcome:
    sends: list[Sent | tuple[str, str]]  # a request, or the (type, message) it failed with
    warnings: list[tuple[str, str]]
    closed: list[bool]


_BOUNDARY = re.compile(r"boundary=([0-9a-f]{32})")


def normalise(content_type: str | None, body: bytes) -> tuple[str | None, bytes]:
    """The same placeholder for every multipart boundary."""
    if content_type is None or (match := _BOUNDARY.search(content_type)) is None:
        return content_type, body
    boundary = match.group(1)
    return content_type.replace(boundary, "B" * 32), body.replace(boundary.encode(), b"B" * 32)


@contextmanager
def caught_warnings() -> Iterator[list[tuple[str, str]]]:
    """The warnings a case gives, building its data and sending it."""
    found: list[tuple[str, str]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
    found.extend((w.category.__name__, str(w.message)) for w in caught)


# -- aiohttp's side -------------------------------------------------------------------------


async def _aiohttp_sends(
    session: aiohttp.ClientSession, server: Recorder, kwargs: dict[str, Any], sizes: list[int]
) -> list[Sent | tuple[str, str]]:
    url = f"http://127.0.0.1:{server.port}{kwargs.pop('path', '/')}"
    sends: list[Sent | tuple[str, str]] = []
    for _ in range(kwargs.pop("sends", 1)):
        sizes.clear()
        seen = len(server.requests)
        try:
            async with session.post(url, **kwargs) as response:
                await response.read()
        except Exception as exc:
            sends.append((type(exc).__name__, str(exc)))
            continue
        headers, body = server.requests[-1]
        if len(server.requests) - seen == 2:  # a 307: both bodies the same
            assert server.requests[-2][1] == body
        length = headers.get("content-length")
        content_type = headers.get("content-type")
        sends.append(Sent(content_type, None if length is None else int(length), body, list(sizes)))
        # aiohttp closes files in the executor: let those closes finish
        await asyncio.gather(*list(aiohttp.payload._CLOSE_FUTURES))
    return sends


async def _aiohttp_outcomes(files: Path) -> dict[str, Outcome]:
    server = Recorder()
    sizes: list[int] = []

    async def on_chunk(session: Any, ctx: Any, params: Any) -> None:
        sizes.append(len(params.chunk))

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(on_chunk)
    outcomes: dict[str, Outcome] = {}
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            for name, case in CASES.items():
                env = Env(aiohttp.FormData, files)
                with caught_warnings() as caught:
                    sends = await _aiohttp_sends(session, server, case(env), sizes)
                outcomes[name] = Outcome(sends, caught, [s.closed for s in env.streams])
                for stream in env.streams:
                    stream.close()
    finally:
        server.close()
    return outcomes


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bodies")
    (path / "f.txt").write_bytes(b"hello world")
    (path / "big.bin").write_bytes(BIG)
    (path / "d.json").write_bytes(b"{}")
    (path / "empty.bin").write_bytes(b"")
    (path / "accents.txt").write_text(ACCENTS, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def aiohttp_outcomes(files: Path) -> dict[str, Outcome]:
    """Every case as aiohttp sends it (asyncio in a thread: the test may be running trio)."""
    result: list[dict[str, Outcome]] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(_aiohttp_outcomes(files))))
    thread.start()
    thread.join(60)
    assert result, "aiohttp did not finish"
    return result[0]


# -- compat's side --------------------------------------------------------------------------


async def pieces(body: Body) -> list[bytes]:
    if body.content is None:
        return []
    if isinstance(body.content, bytes):
        return [body.content]
    return [piece async for piece in body.content]


async def compat_outcome(case: Case, files: Path) -> Outcome:
    """The case through make_body, used as the session uses it: each send iterates the body
    (twice on a 307, if replayable) and closes it when the request is over."""
    env = Env(FormData, files)
    with caught_warnings() as caught:
        sends = await _compat_sends(case(env))
    outcome = Outcome(sends, caught, [s.closed for s in env.streams])
    for stream in env.streams:
        stream.close()
    return outcome


async def _compat_sends(kwargs: dict[str, Any]) -> list[Sent | tuple[str, str]]:
    redirect = kwargs.pop("path", "/") == "/307"
    sends: list[Sent | tuple[str, str]] = []
    for _ in range(kwargs.pop("sends", 1)):
        sizes = None
        try:
            body = make_body(kwargs.get("data"), kwargs.get("json", UNSET))
        except Exception as exc:
            sends.append((type(exc).__name__, str(exc)))
            continue
        sent = await pieces(body)
        if redirect:
            assert isinstance(body.content, (bytes, Payload))
            if isinstance(body.content, Payload):
                assert body.content.replayable
            again = await pieces(body)
            assert again == sent
            sizes = [len(p) for p in sent + again]
        if isinstance(body.content, Payload):
            await body.content.aclose()
        content_type, joined = normalise(body.content_type, b"".join(sent))
        size = body.size
        if body.content is None:  # the session's part, as Body documents it, for a POST
            content_type, size = "application/octet-stream", 0
        sends.append(Sent(content_type, size, joined, sizes or [len(p) for p in sent]))
    return sends


@pytest.mark.parametrize("name", list(CASES))
async def test_body_as_aiohttp_sends_it(
    name: str, files: Path, aiohttp_outcomes: dict[str, Outcome]
) -> None:
    theirs = aiohttp_outcomes[name]
    for i, sent in enumerate(theirs.sends):
        if isinstance(sent, Sent):
            content_type, body = normalise(sent.content_type, sent.body)
            theirs.sends[i] = Sent(content_type, sent.content_length, body, sent.sizes)
    ours = await compat_outcome(CASES[name], files)
    assert ours == theirs


async def test_observed_numbers(aiohttp_outcomes: dict[str, Outcome]) -> None:
    """The facts file's numbers (observed on aiohttp 3.14.5), so a change in aiohttp shows."""
    sent = aiohttp_outcomes["form-file"].sends[0]
    assert isinstance(sent, Sent)
    assert sent.sizes == [36, 85, 1, 2, 36, 88, 11, 2, 38]
    assert sent.content_length == len(sent.body) == 299
    sent = aiohttp_outcomes["file-bin"].sends[0]
    assert isinstance(sent, Sent) and sent.sizes == [262144, 262144, 75712]
    sent = aiohttp_outcomes["async-generator"].sends[0]
    assert isinstance(sent, Sent) and sent.content_length is None and sent.sizes == [2, 0, 3]
    for name in ("bytes-large", "str-large", "json-large", "form-large", "form-large-part"):
        assert [w[0] for w in aiohttp_outcomes[name].warnings] == ["ResourceWarning"], name
    assert aiohttp_outcomes["bytes-at-limit"].warnings == []
    assert [w[0] for w in aiohttp_outcomes["form-bytes-no-filename"].warnings] == [
        "DeprecationWarning"
    ]
    assert aiohttp_outcomes["reuse-form-file"].sends[1] == (
        "ValueError",
        "I/O operation on closed file",
    )


# -- what the wire comparison does not show -------------------------------------------------


async def test_no_body() -> None:
    assert make_body(None, UNSET) == Body(None, None, None)
    assert make_body(None, None) == Body(None, None, None)


def _calls_made(call: Callable[[], object]) -> int:
    """How many functions (Python or C) `call` runs, itself included: a count, not a clock."""
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        count += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return count - 1  # the setprofile(None) call


def test_hot_path_is_cheap() -> None:
    """Every request without a body, or with bytes, goes through make_body: it stays a few
    calls (counted, so the test holds on a loaded machine), without copying the bytes."""
    data = b"x" * 100
    assert _calls_made(lambda: make_body(None, UNSET)) <= 3
    assert _calls_made(lambda: make_body(data, UNSET)) <= 6
    assert make_body(data, UNSET).content is data  # bytes are not copied


async def test_json_serializers() -> None:
    body = make_body(None, {"a": 1}, json_serialize=lambda obj: "é")
    assert body == Body("é".encode(), "application/json", 2)
    body = make_body(None, [1], json_serialize_bytes=lambda obj: b"[1]")
    assert body == Body(b"[1]", "application/json", 3)


async def test_async_iterable_is_one_pass() -> None:
    body = make_body(agen(), UNSET)
    assert isinstance(body.content, Payload)
    assert body.content.replayable  # not yet sent
    assert [p async for p in body.content] == [b"ab", b"", b"cde"]
    assert not body.content.replayable
    with pytest.raises(RuntimeError, match="already sent"):
        body.content.__aiter__()


async def test_async_iterable_class_and_partial_send() -> None:
    """An async iterable (not a generator) is iterated once; a send cut short leaves it spent
    and closes what it was iterating."""
    source = agen()

    class Chunks:
        def __aiter__(self) -> AsyncIterator[bytes]:
            return source

    body = make_body(Chunks(), UNSET)
    assert isinstance(body.content, Payload) and body.size is None
    iterator = body.content.__aiter__()
    assert await iterator.__anext__() == b"ab"
    await iterator.aclose()  # type: ignore[attr-defined]  # as the engine does on a failure
    assert not body.content.replayable
    with pytest.raises(StopAsyncIteration):  # the source is closed too, not left to the GC
        await source.__anext__()


def _open(path: Path) -> io.BufferedReader:
    return open(path, "rb")


async def test_files_rewind_and_close(files: Path) -> None:
    with _open(files / "big.bin") as stream:
        stream.seek(100)
        body = make_body(stream, UNSET)
        assert body.size == len(BIG) - 100
        assert isinstance(body.content, Payload)
        first = b"".join([p async for p in body.content])
        assert b"".join([p async for p in body.content]) == first == BIG[100:]
        assert body.content.replayable
        await body.content.aclose()
        assert stream.closed and not body.content.replayable
        with pytest.raises(ValueError, match="closed file"):
            make_body(stream, UNSET)


async def test_multipart_left_unfinished_closes_its_part(files: Path) -> None:
    """A send that fails mid-part closes the part's own iteration (the file stays open until
    aclose, as aiohttp)."""
    fd = FormData()
    fd.add_field("f", _open(files / "big.bin"))
    body = make_body(fd, UNSET)
    assert isinstance(body.content, Payload)
    iterator = body.content.__aiter__()
    assert len(await iterator.__anext__()) == 36
    await iterator.__anext__()
    assert len(await iterator.__anext__()) == 262144
    await iterator.aclose()  # type: ignore[attr-defined]
    assert body.content.replayable
    assert b"".join([p async for p in body.content]).count(BIG) == 1
    await body.content.aclose()
    assert not body.content.replayable


async def test_payload_as_data_and_as_part() -> None:
    inner = make_body(agen(), UNSET).content
    assert isinstance(inner, Payload)
    assert make_body(inner, UNSET) == Body(inner, "application/octet-stream", None)
    fd = FormData(default_to_multipart=True)
    fd.add_field("p", make_body(io.BytesIO(b"xy"), UNSET).content)
    body = make_body(fd, UNSET)
    assert isinstance(body.content, Payload)
    joined = b"".join([p async for p in body.content])
    assert b'Content-Disposition: form-data; name="p"\r\n\r\nxy\r\n' in joined
    assert body.size == len(joined)


async def test_non_ascii_name_without_filename() -> None:
    """aiohttp 3.14.5 fails this request (an assert looks for `name=` in the header and finds
    `name*=`); compat sends it, with the RFC 5987 form aiohttp writes when a filename is set."""
    fd = FormData(default_to_multipart=True)
    fd.add_field("ü name", "v")
    body = make_body(fd, UNSET)
    assert isinstance(body.content, Payload)
    joined = b"".join([p async for p in body.content])
    assert b"Content-Disposition: form-data; name*=utf-8''%C3%BC%20name\r\n" in joined
    assert body.size == len(joined)


FORM_ERRORS: list[Callable[[Any], Any]] = [
    lambda fd: fd.add_field("a", "1", filename=5),
    lambda fd: fd.add_field("a", "1", content_type=5),
    lambda fd: fd.add_field("a\n", "1"),
    lambda fd: fd.add_field("a", "1", filename="x\r"),
    lambda fd: fd.add_field("a", "1", content_type="text/plain\n"),
    lambda fd: fd.add_fields("a"),
    lambda fd: fd.add_fields(("a", "b", "c")),
    lambda fd: fd.add_field("a", "1", content_transfer_encoding=5),
    lambda fd: fd.add_field(5, "1"),
]


def _error(call: Callable[[], Any]) -> tuple[str, str] | None:
    try:
        call()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return None


@pytest.mark.parametrize("index", range(len(FORM_ERRORS)))
def test_form_data_errors_as_aiohttp(index: int) -> None:
    call = FORM_ERRORS[index]
    expected = _error(lambda: call(aiohttp.FormData()))
    assert expected is not None
    assert _error(lambda: call(FormData())) == expected


def test_form_data_is_multipart() -> None:
    for make in (aiohttp.FormData, FormData):
        fd = make({"a": "1"})
        assert not fd.is_multipart
        fd.add_field("b", "2", content_type="text/plain")
        assert fd.is_multipart
        assert make(default_to_multipart=True).is_multipart
