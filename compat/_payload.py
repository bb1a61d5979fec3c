"""Request bodies as aiohttp builds them: `data=` / `json=` turned into what the engine writes.

`make_body(data, json)` gives a `Body`: the content (bytes, written in one piece, or a `Payload`,
written one piece per item it yields), the Content-Type aiohttp would set and the size
(Content-Length; None means the body goes out with `Transfer-Encoding: chunked`). Each kind is
checked against aiohttp 3.14.5 on the wire (tests/test_payload.py):

- bytes / bytearray / memoryview: `application/octet-stream`, one piece; str (and `io.StringIO`,
  read whole): `text/plain; charset=utf-8`, one piece; `json=`: `application/json`, one piece;
- a dict, a list of pairs, a MultiDict: urlencoded, one piece, unless a value is a file (then
  multipart, as aiohttp's `FormData`);
- `io.BytesIO` and files (binary or text): Content-Length from where the stream stands, pieces
  of 262144 bytes (files read in a worker thread); the Content-Type is guessed from the file's
  name (`text/plain; charset=utf-8` for text files);
- async iterables: no size (chunked), `application/octet-stream`, one piece per item, and only
  one pass;
- `FormData`: urlencoded without files, else `multipart/form-data; boundary=<32 hex>` with a
  Content-Length (unless a part has no size), one piece per part element.

Closing, as aiohttp: when the request is over (answered, failed or given up), the session awaits
`payload.aclose()`, which closes the files the body reads (the caller's own file objects
included, as aiohttp does; `io.BytesIO` is left open). A multipart `FormData` keeps its built
body, so using it again after that fails as in aiohttp: `ValueError: I/O operation on closed
file`.
"""

from __future__ import annotations

import io
import json as _json
import mimetypes
import os
import re
import sys
import uuid
import warnings
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any, Final
from urllib.parse import quote, urlencode

import anyio.lowlevel
import anyio.to_thread
from multidict import MultiDict, MultiDictProxy

__all__ = ["UNSET", "Body", "FormData", "Payload", "make_body"]

CHUNK_SIZE: Final = 2**18
"""The piece size for streams and files (aiohttp's DEFAULT_CHUNK_SIZE)."""


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final[Any] = _Unset()
"""`json=` not given."""

_OCTET: Final = "application/octet-stream"
_TEXT: Final = "text/plain; charset=utf-8"
_FORM: Final = "application/x-www-form-urlencoded"
_JSON: Final = "application/json"


@dataclass(slots=True)
class Body:
    """What the engine writes and the entity headers aiohttp sets for it. Read-only by
    convention (not frozen: that would triple the cost of making one; `make_body(None)`
    returns a shared instance).

    `content` None: no body (aiohttp then sends `Content-Length: 0` for methods other than
    GET/HEAD/OPTIONS/TRACE, and `Content-Type: application/octet-stream` for POST/PUT/PATCH
    without one: the session's part). `size` None with content: `Transfer-Encoding: chunked`.
    """

    content: bytes | Payload | None
    content_type: str | None
    size: int | None


_NO_BODY: Final = Body(None, None, None)

_TOO_LARGE: Final = 2**20


def _warn_large() -> None:
    """aiohttp's warning for an in-memory body over 1 MiB (bytes, str, JSON, form, part)."""
    warnings.warn(
        "Sending a large body directly with raw bytes might lock the event loop. "
        "You should probably pass an io.BytesIO object instead",
        ResourceWarning,
        stacklevel=4,
    )


def _in_memory(content: bytes, content_type: str) -> Body:
    if len(content) > _TOO_LARGE:
        _warn_large()
    return Body(content, content_type, len(content))


class Payload(AsyncIterable[bytes]):
    """A body written in pieces: one write (and one `on_request_chunk_sent`) per item.

    `replayable`: whether iterating (again) sends the whole body from its start, as aiohttp's
    `not payload.consumed`: always for in-memory content and open seekable files; for an async
    iterable only until its one pass has begun. A 307/308 redirect or a retry resends the body
    only if it is replayable; iterating a payload that is not raises RuntimeError.
    Pieces may be empty (an empty form value): aiohttp reports those with a 0-byte
    `on_request_chunk_sent` and writes nothing.
    """

    content_type: str | None = None

    @property
    def size(self) -> int | None:
        """The byte count, or None when unknown (chunked)."""
        return None

    @property
    def replayable(self) -> bool:
        return True

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]:
        """The pieces, from the start of the body."""

    async def aclose(self) -> None:
        """Release what the payload holds: closes the files it reads, as aiohttp."""


class _BytesPart(Payload):
    """In-memory content, one piece (a multipart part's value)."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes, content_type: str) -> None:
        if len(value) > _TOO_LARGE:
            _warn_large()
        self._value = value
        self.content_type = content_type

    @property
    def size(self) -> int:
        return len(self._value)

    async def _pieces(self) -> AsyncGenerator[bytes, None]:
        yield self._value

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()


class _BytesIOPayload(Payload):
    """An `io.BytesIO` from where it stands, in CHUNK_SIZE pieces; left open, as aiohttp."""

    __slots__ = ("_size", "_start", "_value")

    def __init__(self, value: io.BytesIO, content_type: str) -> None:
        self._value = value
        self.content_type = content_type
        self._start = value.tell()
        with value.getbuffer() as buffer:
            self._size = len(buffer) - self._start

    @property
    def size(self) -> int:
        return self._size

    async def _pieces(self) -> AsyncGenerator[bytes, None]:
        value = self._value
        value.seek(self._start)
        first = True
        while chunk := value.read(CHUNK_SIZE):
            if not first:
                await anyio.lowlevel.checkpoint()  # a large buffer does not hog the loop
            first = False
            yield chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()


class _FilePayload(Payload):
    """A file object (binary, or text encoded to `encoding`) from where it stood when the body
    was made, read in CHUNK_SIZE pieces in a worker thread. Its size is the file's size on disk
    from that position (None when it has none: chunked). `aclose()` closes the file."""

    __slots__ = ("_encoding", "_file", "_start", "_started")

    def __init__(self, value: IO[Any], content_type: str, encoding: str | None) -> None:
        self._file = value
        self.content_type = content_type
        self._encoding = encoding  # set for text files
        self._started = False
        try:
            self._start: int | None = value.tell()
        except (OSError, AttributeError):
            self._start = None  # not seekable: one pass, size unknown

    @property
    def size(self) -> int | None:
        if self._start is None:
            return None
        try:
            return os.fstat(self._file.fileno()).st_size - self._start
        except (OSError, AttributeError):
            return None  # ValueError (a closed file) goes through, as aiohttp

    @property
    def replayable(self) -> bool:
        if self._file.closed:
            return False
        return self._start is not None or not self._started

    def _read(self, n: int) -> bytes:
        chunk = self._file.read(n)
        if self._encoding is not None:
            return str(chunk).encode(self._encoding)
        return bytes(chunk)

    def _first(self) -> tuple[int | None, bytes]:
        if self._start is not None:
            self._file.seek(self._start)
        size = self.size
        return size, self._read(min(CHUNK_SIZE, size or CHUNK_SIZE))

    async def _pieces(self) -> AsyncGenerator[bytes, None]:
        size, chunk = await anyio.to_thread.run_sync(self._first)
        written = 0
        while chunk:
            yield chunk
            written += len(chunk)
            if size is not None and written >= size:
                return
            chunk = await anyio.to_thread.run_sync(self._read, CHUNK_SIZE)

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started and self._start is None:
            raise RuntimeError("The request body (an unseekable file) was already sent")
        self._started = True
        return self._pieces()

    async def aclose(self) -> None:
        if self._start is None and self._started:
            return  # aiohttp leaves an unseekable file it has read open (it is "consumed")
        self._file.close()


class _AsyncIterablePayload(Payload):
    """An async iterable: one piece per item, one pass (aiohttp takes its iterator at once)."""

    __slots__ = ("_iterator", "_started")

    def __init__(self, value: AsyncIterable[bytes], content_type: str) -> None:
        self._iterator = value.__aiter__()
        self.content_type = content_type
        self._started = False

    @property
    def replayable(self) -> bool:
        return not self._started

    async def _pieces(self) -> AsyncGenerator[bytes, None]:
        iterator = self._iterator
        try:
            async for chunk in iterator:
                yield chunk
        finally:
            # A send cut short: close the source now (asyncio would finalize it later; trio
            # warns about an async generator collected unfinished).
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError(
                "The request body (an async iterable) was already sent and cannot be sent again"
            )
        self._started = True
        return self._pieces()


class _MultipartPayload(Payload):
    """`multipart/form-data`: per part its boundary line, its headers, its value's pieces and a
    CRLF, then the closing boundary line, each a piece of its own, as aiohttp writes them."""

    __slots__ = ("_boundary", "_parts")

    def __init__(self, boundary: str) -> None:
        self._boundary = boundary.encode("ascii")
        self.content_type = "multipart/form-data; boundary=" + boundary
        self._parts: list[tuple[bytes, Payload]] = []

    @property
    def size(self) -> int | None:
        overhead = len(self._boundary) + 6  # b"--" boundary b"\r\n" ... b"\r\n"
        total = len(self._boundary) + 6  # b"--" boundary b"--\r\n"
        for head, part in self._parts:
            part_size = part.size
            if part_size is None:
                return None
            total += overhead + len(head) + part_size
        return total

    @property
    def replayable(self) -> bool:
        return all(part.replayable for _, part in self._parts)

    async def _pieces(self) -> AsyncGenerator[bytes, None]:
        line = b"--" + self._boundary + b"\r\n"
        for head, part in self._parts:
            yield line
            yield head
            pieces = part.__aiter__()
            try:
                async for chunk in pieces:
                    yield chunk
            finally:
                close = getattr(pieces, "aclose", None)
                if close is not None:  # a part left unfinished (a failed write): close it now
                    await close()
            yield b"\r\n"
        yield b"--" + self._boundary + b"--\r\n"

    def __aiter__(self) -> AsyncIterator[bytes]:
        if not self.replayable:
            for _, part in self._parts:
                if isinstance(part, _FilePayload) and part._file.closed:
                    raise ValueError("I/O operation on closed file.")
            raise RuntimeError("The request body (multipart) was already sent")
        return self._pieces()

    async def aclose(self) -> None:
        for _, part in self._parts:
            await part.aclose()


# -- make_body ----------------------------------------------------------------------------


def make_body(
    data: object,
    json: object = UNSET,
    *,
    json_serialize: Callable[[Any], str] = _json.dumps,
    json_serialize_bytes: Callable[[Any], bytes] | None = None,
) -> Body:
    """The body aiohttp builds for a request's `data=` / `json=` (json None or UNSET: none)."""
    if json is UNSET or json is None:
        if data is None:
            return _NO_BODY
        if type(data) is bytes:
            size = len(data)
            if size > _TOO_LARGE:
                _warn_large()
            return Body(data, _OCTET, size)
        return _from_data(data)
    if data is not None:
        raise ValueError("data and json parameters can not be used at the same time")
    if json_serialize_bytes is not None:
        encoded = json_serialize_bytes(json)
    else:
        encoded = json_serialize(json).encode("utf-8")
    return _in_memory(encoded, _JSON)


def _from_data(data: object) -> Body:
    """make_body for any `data=`, in aiohttp's payload-registry order."""
    if isinstance(data, FormData):
        return data._build()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _in_memory(bytes(data), _OCTET)
    if isinstance(data, str):
        return _in_memory(data.encode("utf-8"), _TEXT)
    if isinstance(data, io.StringIO):
        return _in_memory(data.read().encode("utf-8"), _TEXT)
    if isinstance(data, io.IOBase):
        payload = _io_payload(data, None, None)
        return Body(payload, payload.content_type, payload.size)
    if isinstance(data, Payload):
        return Body(data, data.content_type, data.size)
    if isinstance(data, AsyncIterable):
        payload = _AsyncIterablePayload(_async_source(data), _OCTET)
        return Body(payload, _OCTET, None)
    return FormData(data)._build()  # type: ignore[arg-type]


def _async_source(data: AsyncIterable[Any]) -> AsyncIterable[bytes]:
    """What aiohttp iterates for an async iterable: `iter_any()` of a response's content."""
    from ._response import StreamReader  # here: the rare case, and no import cycle

    if isinstance(data, StreamReader):
        return data.iter_any()
    return data


def _io_payload(value: io.IOBase, content_type: str | None, encoding: str | None) -> Payload:
    """A stream's payload as aiohttp's registry picks it (StringIO is read whole)."""
    if isinstance(value, io.TextIOBase):
        if isinstance(value, io.StringIO):
            text, real_encoding = _text_type(content_type, encoding)
            return _BytesPart(value.read().encode(real_encoding), text)
        text, real_encoding = _text_type(content_type, encoding)
        return _FilePayload(value, text, real_encoding)  # type: ignore[arg-type]
    if content_type is None:
        filename = _guess_filename(value)
        content_type = _guess_type(filename) if filename is not None else _OCTET
    if isinstance(value, io.BytesIO):
        return _BytesIOPayload(value, content_type)
    return _FilePayload(value, content_type, None)  # type: ignore[arg-type]


def _text_type(content_type: str | None, encoding: str | None) -> tuple[str, str]:
    """The Content-Type and encoding of a text value (aiohttp's StringPayload rules)."""
    if encoding is None:
        if content_type is None:
            return _TEXT, "utf-8"
        return content_type, _charset(content_type)
    if content_type is None:
        return "text/plain; charset=" + encoding, encoding
    return content_type, encoding


def _charset(content_type: str) -> str:
    for item in content_type.split(";")[1:]:
        key, _, value = item.partition("=")
        if key.strip().lower() == "charset":
            return value.strip(' "')
    return "utf-8"


def _guess_filename(value: object, default: str | None = None) -> str | None:
    name = getattr(value, "name", None)
    if name and isinstance(name, str) and name[0] != "<" and name[-1] != ">":
        return PurePath(name).name
    return default


if sys.version_info >= (3, 13):
    _guess = mimetypes.guess_file_type
else:
    _guess = mimetypes.guess_type


def _guess_type(filename: str) -> str:
    return _guess(filename)[0] or _OCTET


# -- FormData -----------------------------------------------------------------------------

_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_QCONTENT = frozenset(chr(i) for i in range(0x20, 0x7F)) | {"\t"}
_NOT_QTEXT = re.compile(r"[^\041\043-\133\135-\176]")


def _safe_header(value: str) -> str:
    if _FORBIDDEN.search(value) is not None:
        raise ValueError(
            "Forbidden control character detected in headers. Potential header injection attack."
        )
    return value


def _disposition(name: str, filename: str | None, quote_fields: bool) -> str:
    """`form-data; name=...; filename=...` as aiohttp quotes it (RFC 7578, 2231)."""
    params = [("name", name)] if filename is None else [("name", name), ("filename", filename)]
    out = ["form-data"]
    for key, value in params:
        if not quote_fields:
            out.append(key + '="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif key == "filename":
            out.append(key + '="' + quote(value, "", encoding="utf-8") + '"')
        elif set(value) < _QCONTENT:
            out.append(key + '="' + _NOT_QTEXT.sub(lambda m: "\\" + m.group(0), value) + '"')
        else:
            out.append(key + "*=utf-8''" + quote(value, "", encoding="utf-8"))
    return "; ".join(out)


class FormData:
    """aiohttp's `FormData`: urlencoded fields, or `multipart/form-data` once a field is a file
    or has a filename or a content type (or with `default_to_multipart=True`)."""

    def __init__(
        self,
        fields: Iterable[Any] = (),
        quote_fields: bool = True,
        charset: str | None = None,
        *,
        default_to_multipart: bool = False,
    ) -> None:
        self._fields: list[tuple[str, str | None, str | None, Any]] = []
        self._is_multipart = default_to_multipart
        self._quote_fields = quote_fields
        self._charset = charset
        self._multipart: _MultipartPayload | None = None
        if isinstance(fields, dict):
            fields = list(fields.items())
        elif not isinstance(fields, (list, tuple)):
            fields = (fields,)
        self.add_fields(*fields)

    @property
    def is_multipart(self) -> bool:
        return self._is_multipart

    def add_field(
        self,
        name: str,
        value: Any,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        content_transfer_encoding: str | None = None,
    ) -> None:
        if isinstance(value, io.IOBase):
            self._is_multipart = True
        elif (
            isinstance(value, (bytes, bytearray, memoryview))
            and filename is None
            and content_transfer_encoding is None
        ):
            warnings.warn(
                "In v4, passing bytes will no longer create a file field. "
                "Please explicitly use the filename parameter or pass a BytesIO object.",
                DeprecationWarning,
                stacklevel=2,
            )
            filename = name
        _safe_header(name)
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"filename must be an instance of str. Got: {filename}")
        if filename is None and isinstance(value, io.IOBase):
            filename = _guess_filename(value, name)
        if filename is not None:
            _safe_header(filename)
            self._is_multipart = True
        if content_type is not None:
            if not isinstance(content_type, str):
                raise TypeError(f"content_type must be an instance of str. Got: {content_type}")
            _safe_header(content_type)
            self._is_multipart = True
        if content_transfer_encoding is not None:
            if not isinstance(content_transfer_encoding, str):
                raise TypeError(
                    "content_transfer_encoding must be an instance of str. "
                    f"Got: {content_transfer_encoding}"
                )
            warnings.warn(
                "content_transfer_encoding is deprecated. "
                "To maintain compatibility with v4 please pass a BytesPayload.",
                DeprecationWarning,
                stacklevel=2,
            )
            self._is_multipart = True
        self._fields.append((name, filename, content_type, value))

    def add_fields(self, *fields: Any) -> None:
        to_add = list(fields)
        while to_add:
            rec = to_add.pop(0)
            if isinstance(rec, io.IOBase):
                self.add_field(_guess_filename(rec, "unknown"), rec)  # type: ignore[arg-type]
            elif isinstance(rec, (MultiDictProxy, MultiDict)):
                to_add.extend(rec.items())
            elif isinstance(rec, (list, tuple)) and len(rec) == 2:
                key, value = rec
                self.add_field(key, value)
            else:
                raise TypeError(
                    "Only io.IOBase, multidict and (name, file) pairs allowed, "
                    "use .add_field() for passing more complex parameters, "
                    f"got {rec!r}"
                )

    def _build(self) -> Body:
        """The body for a request (aiohttp's `FormData.__call__`)."""
        if not self._is_multipart:
            charset = self._charset if self._charset is not None else "utf-8"
            content_type = _FORM if charset == "utf-8" else f"{_FORM}; charset={charset}"
            pairs = [(name, value) for name, _, _, value in self._fields]
            content = urlencode(pairs, doseq=True, encoding=charset).encode()
            return _in_memory(content, content_type)
        # The parts are built once and kept, with one boundary: as aiohttp, fields added later
        # are appended, and a body whose files were closed cannot go out again.
        writer = self._multipart
        if writer is None:
            writer = self._multipart = _MultipartPayload(uuid.uuid4().hex)
        for name, filename, part_type, value in self._fields:
            writer._parts.append(self._part(name, filename, part_type, value))
        self._fields.clear()
        return Body(writer, writer.content_type, writer.size)

    def _part(
        self, name: str, filename: str | None, content_type: str | None, value: Any
    ) -> tuple[bytes, Payload]:
        charset = self._charset
        part: Payload
        if isinstance(value, (bytes, bytearray, memoryview)):
            part = _BytesPart(bytes(value), content_type or _OCTET)
        elif isinstance(value, str):
            text, encoding = _text_type(content_type, charset)
            part = _BytesPart(value.encode(encoding), text)
        elif isinstance(value, io.IOBase):
            part = _io_payload(value, content_type, charset)
        elif isinstance(value, Payload):
            part = value
        elif isinstance(value, AsyncIterable):
            part = _AsyncIterablePayload(_async_source(value), content_type or _OCTET)
        else:
            headers = {} if content_type is None else {"Content-Type": content_type}
            raise TypeError(
                f"Can not serialize value type: {type(value)!r}\n "
                f"headers: {headers!r}\n value: {value!r}"
            )
        head = (
            "Content-Type: "
            + _safe_header(part.content_type or _OCTET)
            + "\r\nContent-Disposition: "
            + _safe_header(_disposition(name, filename, self._quote_fields))
            + "\r\n\r\n"
        )
        return head.encode("utf-8"), part
