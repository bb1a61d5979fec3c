"""Request bodies: aiohttp's public payload classes, its type registry, and `make_body`.

Two faces, one object. Client code sees aiohttp's API (`Payload.headers`, `size`, `write(writer)`,
`as_bytes()`, `@payload_type` for custom types). The session sees an async iterable of pieces:
the engine writes each item the payload yields and fires one `on_request_chunk_sent` per item,
so a piece here is exactly one `writer.write()` call in aiohttp. Every built-in class produces its
pieces natively (`_chunks`); a user subclass that only overrides `write()` is run once against a
collecting writer and its writes are replayed as pieces.

`make_body(data, json)` turns `data=` / `json=` into a `Body`: in-memory payloads become their
bytes (one piece, no object to iterate), everything else stays a payload. Facts checked against
aiohttp 3.14.5 on the wire (tests/test_payload.py):

- bytes-like: `application/octet-stream`; str and `io.StringIO`: `text/plain; charset=utf-8`;
  `json=`: `application/json`; each one piece, a ResourceWarning above 1 MiB;
- a dict, a list of pairs, a MultiDict: a `FormData` (urlencoded unless a value is a file);
- `io.BytesIO` and files: Content-Length from where the stream stands, pieces of 262144 bytes
  (files read in a worker thread), the Content-Type guessed from the file's name;
- async iterables: no size (chunked), one piece per item, one pass.

Closing, as aiohttp: once a request is over the session awaits `payload.aclose()`, which closes
the files the body reads (the caller's own file objects included; `io.BytesIO` stays open).
"""

from __future__ import annotations

import enum
import io
import json as _json
import mimetypes
import os
import re
import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any, Final, TypeVar
from urllib.parse import quote

import anyio.lowlevel
import anyio.to_thread
from multidict import CIMultiDict

from .abc import AbstractStreamWriter

__all__ = [
    "PAYLOAD_REGISTRY",
    "UNSET",
    "AsyncIterablePayload",
    "Body",
    "BufferedReaderPayload",
    "BytesIOPayload",
    "BytesPayload",
    "IOBasePayload",
    "JsonBytesPayload",
    "JsonPayload",
    "Order",
    "Payload",
    "PayloadRegistry",
    "StringIOPayload",
    "StringPayload",
    "TextIOPayload",
    "get_payload",
    "make_body",
    "payload_type",
]

CHUNK_SIZE: Final = 2**18
"""The piece size for streams and files (aiohttp's DEFAULT_CHUNK_SIZE)."""


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final[Any] = _Unset()
"""`json=` (or a payload's `content_type=`) not given."""

_OCTET: Final = "application/octet-stream"
_TOO_LARGE: Final = 2**20
_BYTES_LIKE: Final = (bytes, bytearray, memoryview)


_LARGE_BODY: Final = (
    "Sending a large body directly with raw bytes might lock the event loop. "
    "You should probably pass an io.BytesIO object instead"
)
_NOT_ASYNC_ITERABLE: Final = (
    "value argument must support collections.abc.AsyncIterable interface, got {!r}"
)


def _warn_large(stacklevel: int) -> None:
    """aiohttp's warning for an in-memory body over 1 MiB (bytes, str, JSON, form, part)."""
    warnings.warn(_LARGE_BODY, ResourceWarning, stacklevel=stacklevel + 1)


# -- header helpers shared by payloads, FormData and multipart -----------------------------

_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN_CHARS: Final = frozenset(chr(c) for c in range(33, 127)) - set('()<>@,;:\\"/[]?={}')
_QUOTABLE: Final = frozenset(chr(c) for c in range(0x20, 0x7F)) | {"\t"}
_NEEDS_BACKSLASH = re.compile(r"[^\041\043-\133\135-\176]")


def _safe_header(value: str) -> str:
    """Refuse a header text with a control character (aiohttp's injection guard)."""
    if _FORBIDDEN.search(value) is not None:
        raise ValueError(
            "Forbidden control character detected in headers. Potential header injection attack."
        )
    return value


def _is_token(text: str) -> bool:
    return bool(text) and set(text) < _TOKEN_CHARS


def disposition_header(
    disptype: str, quote_fields: bool = True, charset: str = "utf-8", **params: str
) -> str:
    """A MIME `Content-Disposition` value (RFC 2183, RFC 7578 4.2), quoted as aiohttp does:
    filenames percent-encoded in quotes, other values as a quoted-string, or RFC 2231's
    `key*=charset''…` when they hold a character a quoted-string cannot."""
    if not _is_token(disptype):
        raise ValueError(f"bad content disposition type {disptype!r}")
    pieces = [disptype]
    for key, value in params.items():
        if not _is_token(key):
            raise ValueError(f"bad content disposition parameter {key!r}={value!r}")
        if not quote_fields:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            pieces.append(f'{key}="{escaped}"')
        elif key.lower() == "filename":
            pieces.append(f'{key}="{quote(value, "", encoding=charset)}"')
        elif set(value) <= _QUOTABLE:
            escaped = _NEEDS_BACKSLASH.sub(lambda m: "\\" + m.group(0), value)
            pieces.append(f'{key}="{escaped}"')
        else:
            pieces.append(f"{key}*={charset}''{quote(value, '', encoding=charset)}")
    return "; ".join(pieces)


def _file_name(obj: object) -> str | None:
    """The base name of a file object's `name`, unless it is a pseudo-name like `<stdin>`."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return None
    if name.startswith("<") or name.endswith(">"):
        return None
    return PurePath(name).name


if sys.version_info >= (3, 13):
    _guess = mimetypes.guess_file_type
else:
    _guess = mimetypes.guess_type


def _charset_of(content_type: str) -> str:
    """The `charset` parameter of a media type, utf-8 when it has none."""
    for item in content_type.split(";")[1:]:
        key, _, value = item.partition("=")
        if key.strip().lower() == "charset":
            return value.strip(' "')
    return "utf-8"


def _text_type(content_type: str | None, encoding: str | None) -> tuple[str, str]:
    """(Content-Type, encoding) of a text value: each defaults from the other, then utf-8."""
    if encoding is not None:
        return content_type or f"text/plain; charset={encoding}", encoding
    if content_type is None:
        return "text/plain; charset=utf-8", "utf-8"
    return content_type, _charset_of(content_type)


# -- the public classes ----------------------------------------------------------------------


class _Gather(AbstractStreamWriter):
    """A writer that keeps each write: runs a user payload's `write()` to get its pieces."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self.pieces.append(bytes(chunk))

    async def write_eof(self, chunk: bytes = b"") -> None:
        if chunk:
            self.pieces.append(chunk)

    async def drain(self) -> None:
        pass


class _Truncate(AbstractStreamWriter):
    """Passes on at most `limit` bytes (`write_with_length`)."""

    def __init__(self, target: AbstractStreamWriter, limit: int) -> None:
        self._target, self._left = target, limit

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._left > 0:
            piece = bytes(chunk[: self._left])
            self._left -= len(chunk)
            await self._target.write(piece)

    async def write_eof(self, chunk: bytes = b"") -> None:
        await self.write(chunk)

    async def drain(self) -> None:
        await self._target.drain()


class Payload(ABC):
    """aiohttp's request body base class: a value plus its part headers.

    `content_type` is always a header (given, guessed from `filename`, else the class default);
    `headers=` is merged over it. Subclass and implement `write()` and `decode()` for a body
    type of your own, and register it with `@payload_type(YourType)`.
    """

    _default_content_type: str = _OCTET
    _size: int | None = None
    _autoclose: bool = False

    def __init__(
        self,
        value: Any,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = UNSET,
        filename: str | None = None,
        encoding: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._value = value
        self._filename = filename
        self._encoding = encoding
        if content_type is UNSET or content_type is None:
            guessed = _guess(filename)[0] if filename is not None else None
            content_type = guessed or self._default_content_type
        self._headers: CIMultiDict[str] = CIMultiDict({"Content-Type": content_type})
        self._headers.update(headers or ())

    # aiohttp's read-only view
    @property
    def size(self) -> int | None:
        """Bytes `write()` produces, or None when unknown (the request goes chunked)."""
        return self._size

    @property
    def filename(self) -> str | None:
        return self._filename

    @property
    def headers(self) -> CIMultiDict[str]:
        """The part headers (a multipart part's head; a request takes those it lacks)."""
        return self._headers

    @property
    def encoding(self) -> str | None:
        return self._encoding

    @property
    def content_type(self) -> str:
        return self._headers["Content-Type"]

    @property
    def consumed(self) -> bool:
        """Whether writing again would not give the whole body (a one-pass source)."""
        return not self.replayable

    @property
    def autoclose(self) -> bool:
        """True when there is nothing to close (no file behind the payload)."""
        return self._autoclose

    @property
    def _binary_headers(self) -> bytes:
        """The part's head as a multipart body carries it."""
        lines = [
            _safe_header(k) + ": " + _safe_header(v) + "\r\n" for k, v in self._headers.items()
        ]
        return "".join(lines).encode("utf-8") + b"\r\n"

    def set_content_disposition(
        self, disptype: str, quote_fields: bool = True, _charset: str = "utf-8", **params: Any
    ) -> None:
        self._headers["Content-Disposition"] = disposition_header(
            disptype, quote_fields, _charset, **params
        )

    @abstractmethod
    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The value as text."""

    @abstractmethod
    async def write(self, writer: AbstractStreamWriter) -> None:
        """Write the body to `writer`, one `writer.write()` per piece."""

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        """`write()`, stopping after `content_length` bytes when it is given."""
        await self.write(writer if content_length is None else _Truncate(writer, content_length))

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        codec = self._encoding or encoding
        return self.decode(codec, errors).encode(codec)

    def _close(self) -> None:  # noqa: B027 - a hook, empty by design
        """Synchronous release (aiohttp keeps it for old callers)."""

    async def close(self) -> None:
        """Release what the payload holds: the file it reads, for file payloads."""
        self._close()

    # the session's face
    @property
    def replayable(self) -> bool:
        """Whether iterating (again) gives the whole body: a 307/308 or a retry resends it only
        then."""
        return True

    def _chunks(self) -> AsyncIterator[bytes]:
        """The pieces; a subclass that only has `write()` is run against a collector."""
        return self._collected()

    async def _collected(self) -> AsyncIterator[bytes]:
        sink = _Gather()
        await self.write(sink)
        for piece in sink.pieces:
            yield piece

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def aclose(self) -> None:
        await self.close()


class _Streamed(Payload):
    """The built-in payloads: `write()` is writing the pieces `_chunks()` yields."""

    @abstractmethod
    def _chunks(self) -> AsyncIterator[bytes]: ...

    async def write(self, writer: AbstractStreamWriter) -> None:
        async for piece in self._chunks():
            await writer.write(piece)


class BytesPayload(_Streamed):
    """Bytes-like content, written as one piece."""

    _autoclose = True

    def __init__(self, value: bytes | bytearray | memoryview, *args: Any, **kwargs: Any) -> None:
        if not isinstance(value, _BYTES_LIKE):
            raise TypeError(f"value argument must be byte-ish, not {type(value)!r}")
        kwargs.setdefault("content_type", _OCTET)
        super().__init__(value, *args, **kwargs)
        self._size = value.nbytes if isinstance(value, memoryview) else len(value)
        if self._size > _TOO_LARGE:
            _warn_large(3)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self._value  # type: ignore[no-any-return]

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield self._value


class StringPayload(BytesPayload):
    """Text, encoded by `encoding` or the charset of `content_type` (utf-8 by default)."""

    def __init__(
        self,
        value: str,
        *args: Any,
        encoding: str | None = None,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        content_type, codec = _text_type(content_type, encoding)
        super().__init__(
            value.encode(codec), *args, encoding=codec, content_type=content_type, **kwargs
        )


class StringIOPayload(StringPayload):
    """An `io.StringIO`, read whole from where it stands."""

    def __init__(self, value: IO[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(value.read(), *args, **kwargs)


class IOBasePayload(_Streamed):
    """A file object from where it stood when the payload was made, read in CHUNK_SIZE pieces in
    a worker thread; its size is the file's size on disk from there (None for a pipe: chunked).
    With a name, it carries `Content-Disposition: <disposition>; filename=…` (None: none)."""

    def __init__(
        self, value: IO[Any], disposition: str | None = "attachment", *args: Any, **kwargs: Any
    ) -> None:
        if "filename" not in kwargs:
            kwargs["filename"] = _file_name(value)
        super().__init__(value, *args, **kwargs)
        self._started = False
        try:
            self._start: int | None = value.tell()
        except (OSError, AttributeError):
            self._start = None  # not seekable: one pass, size unknown
        if (
            self._filename is not None
            and disposition is not None
            and "Content-Disposition" not in self._headers
        ):
            self.set_content_disposition(disposition, filename=self._filename)

    @property
    def size(self) -> int | None:
        if self._start is None:
            return None
        try:
            return os.fstat(self._value.fileno()).st_size - self._start
        except (OSError, AttributeError):
            return None  # ValueError (a closed file) goes through, as aiohttp

    @property
    def replayable(self) -> bool:
        if self._value.closed:
            return False
        return self._start is not None or not self._started

    def _rewind(self) -> None:
        if self._start is not None:
            self._value.seek(self._start)

    def _encode(self, chunk: Any) -> bytes:
        return bytes(chunk)

    def _opening(self) -> tuple[int | None, bytes]:
        """In the worker: rewind, measure, read the first piece (one thread hop)."""
        self._rewind()
        size = self.size
        return size, self._encode(self._value.read(min(CHUNK_SIZE, size or CHUNK_SIZE)))

    def _next(self) -> bytes:
        return self._encode(self._value.read(CHUNK_SIZE))

    def _chunks(self) -> AsyncIterator[bytes]:
        if self._started and self._start is None:
            raise RuntimeError("The request body (an unseekable file) was already sent")
        self._started = True
        return self._read_pieces()

    async def _read_pieces(self) -> AsyncIterator[bytes]:
        size, chunk = await anyio.to_thread.run_sync(self._opening)
        sent = 0
        while chunk:
            yield chunk
            sent += len(chunk)
            if size is not None and sent >= size:
                return
            chunk = await anyio.to_thread.run_sync(self._next)

    def _whole(self) -> bytes:
        self._rewind()
        return self._encode(self._value.read())

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._whole().decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return await anyio.to_thread.run_sync(self._whole)

    def _close(self) -> None:
        if self._start is None and self._started:
            return  # aiohttp leaves an unseekable file it has read open (it is "consumed")
        self._value.close()


class BufferedReaderPayload(IOBasePayload):
    """A binary file opened for reading (`open(path, "rb")`)."""


class TextIOPayload(IOBasePayload):
    """A text file, encoded as it is read."""

    def __init__(
        self,
        value: IO[str],
        *args: Any,
        encoding: str | None = None,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        content_type, codec = _text_type(content_type, encoding)
        super().__init__(value, *args, content_type=content_type, encoding=codec, **kwargs)

    def _encode(self, chunk: Any) -> bytes:
        return str(chunk).encode(self._encoding or "utf-8")

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        self._rewind()
        return str(self._value.read())


class BytesIOPayload(IOBasePayload):
    """An `io.BytesIO` from where it stands, in CHUNK_SIZE pieces; never closed by us."""

    _autoclose = True

    def __init__(self, value: io.BytesIO, *args: Any, **kwargs: Any) -> None:
        super().__init__(value, *args, **kwargs)
        with value.getbuffer() as view:
            self._fixed_size = len(view) - value.tell()

    @property
    def size(self) -> int:
        return self._fixed_size

    async def _read_pieces(self) -> AsyncIterator[bytes]:
        self._rewind()
        first = True
        while chunk := self._value.read(CHUNK_SIZE):
            if not first:
                await anyio.lowlevel.checkpoint()  # a large buffer does not hog the loop
            first = False
            yield chunk

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self._whole()

    def _close(self) -> None:
        pass


class JsonPayload(BytesPayload):
    """A value serialized by `dumps` (json.dumps), encoded by `encoding`."""

    def __init__(
        self,
        value: Any,
        encoding: str = "utf-8",
        content_type: str = "application/json",
        dumps: Callable[[Any], str] = _json.dumps,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        text = dumps(value)
        super().__init__(
            text.encode(encoding), *args, content_type=content_type, encoding=encoding, **kwargs
        )


class JsonBytesPayload(BytesPayload):
    """A value serialized by a `dumps` that returns bytes (orjson and the like)."""

    def __init__(
        self,
        value: Any,
        dumps: Callable[[Any], bytes],
        content_type: str = "application/json",
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(dumps(value), *args, content_type=content_type, **kwargs)


class AsyncIterablePayload(_Streamed):
    """An async iterable of bytes: one piece per item, one pass (its iterator is taken at
    once), unless `as_bytes()` has gathered it, which makes it replayable."""

    _autoclose = True

    def __init__(self, value: AsyncIterable[bytes], *args: Any, **kwargs: Any) -> None:
        if not isinstance(value, AsyncIterable):
            raise TypeError(_NOT_ASYNC_ITERABLE.format(type(value)))
        kwargs.setdefault("content_type", _OCTET)
        super().__init__(value, *args, **kwargs)
        self._iterator: AsyncIterator[bytes] = _async_source(value).__aiter__()
        self._started = False
        self._gathered: list[bytes] | None = None

    @property
    def replayable(self) -> bool:
        return self._gathered is not None or not self._started

    def _chunks(self) -> AsyncIterator[bytes]:
        if self._gathered is not None:
            return self._replay(self._gathered)
        if self._started:
            raise RuntimeError(
                "The request body (an async iterable) was already sent and cannot be sent again"
            )
        self._started = True
        return self._drain()

    @staticmethod
    async def _replay(pieces: list[bytes]) -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async def _drain(self) -> AsyncIterator[bytes]:
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

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        if self._gathered is None:
            raise TypeError("Unable to decode - content not cached. Call as_bytes() first.")
        return b"".join(self._gathered).decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        if self._gathered is None:
            if self._started:
                return b""
            self._gathered = [piece async for piece in self._drain()]
            self._started = True
        return b"".join(self._gathered)


def _async_source(data: AsyncIterable[Any]) -> AsyncIterable[bytes]:
    """What aiohttp iterates for an async iterable: `iter_any()` of a response's content."""
    from ._response import StreamReader  # here: the rare case, and no import cycle

    if isinstance(data, StreamReader):
        return data.iter_any()
    return data


# -- the registry ------------------------------------------------------------------------------


class Order(str, enum.Enum):
    """Where a registration is tried: before the built-ins, among them, or after them."""

    normal = "normal"
    try_first = "try_first"
    try_last = "try_last"


class PayloadLookupError(Exception):
    """No payload class is registered for a value's type."""


_P = TypeVar("_P", bound=type[Payload])


def _may_take(types: Any, kind: type) -> bool:
    """Whether a registration for `types` could match a `kind` value (unsure: yes)."""
    try:
        return issubclass(kind, types)
    except TypeError:
        return True


class PayloadRegistry:
    """Value type -> payload class. Lookup: `try_first` registrations (isinstance), then the
    exact type among `normal` ones, then a Payload as itself, then isinstance over `normal` and
    `try_last`, each in registration order."""

    def __init__(self) -> None:
        self._by_order: dict[Order, list[tuple[type[Payload], Any]]] = {o: [] for o in Order}
        self._exact: dict[type, type[Payload]] = {}
        self._plain = False  # bytes and str get the built-in payloads (make_body's shortcut)
        self._unknown: set[type] = set()  # types no registration takes (forms, mostly)

    def register(self, factory: type[Payload], type: Any, *, order: Order = Order.normal) -> None:
        if not isinstance(order, Order):
            raise ValueError(f"Unsupported order {order!r}")
        self._by_order[order].append((factory, type))
        self._unknown.clear()
        if order is Order.normal:
            for one in type if isinstance(type, Iterable) else (type,):
                self._exact[one] = factory
        first = [types for _, types in self._by_order[Order.try_first]]
        self._plain = (
            self._exact.get(bytes) is BytesPayload
            and self._exact.get(str) is StringPayload
            and not any(_may_take(t, bytes) or _may_take(t, str) for t in first)
        )

    def _factory(self, data: Any) -> type[Payload] | None:
        for factory, types in self._by_order[Order.try_first]:
            if isinstance(data, types):
                return factory
        return self._exact.get(type(data))

    def get(self, data: Any, *args: Any, **kwargs: Any) -> Payload:
        found = self._find(data, args, kwargs)
        if found is None:
            raise PayloadLookupError(type(data))
        return found

    def _find(self, data: Any, args: Any, kwargs: dict[str, Any]) -> Payload | None:
        """`get`, with None for a value no registration takes."""
        factory = self._factory(data)
        if factory is None:
            if isinstance(data, Payload):
                return data
            if type(data) in self._unknown:
                return None
            candidates = self._by_order[Order.normal] + self._by_order[Order.try_last]
            factory = next((f for f, types in candidates if isinstance(data, types)), None)
            if factory is None:
                self._unknown.add(type(data))
                return None
        return factory(data, *args, **kwargs)


PAYLOAD_REGISTRY: Final = PayloadRegistry()


def get_payload(data: Any, *args: Any, **kwargs: Any) -> Payload:
    """The payload the registry makes for `data` (a Payload is returned as it is)."""
    return PAYLOAD_REGISTRY.get(data, *args, **kwargs)


class payload_type:
    """`@payload_type(SomeType)` on a Payload subclass registers it for `SomeType` values."""

    def __init__(self, type: Any, *, order: Order = Order.normal) -> None:
        self.type, self.order = type, order

    def __call__(self, factory: _P) -> _P:
        PAYLOAD_REGISTRY.register(factory, self.type, order=self.order)
        return factory


for _factory, _types in (
    (BytesPayload, _BYTES_LIKE),
    (StringPayload, str),
    (StringIOPayload, io.StringIO),
    (TextIOPayload, io.TextIOBase),
    (BytesIOPayload, io.BytesIO),
    (BufferedReaderPayload, (io.BufferedReader, io.BufferedRandom)),
    (IOBasePayload, io.IOBase),
):
    PAYLOAD_REGISTRY.register(_factory, _types)
PAYLOAD_REGISTRY.register(AsyncIterablePayload, AsyncIterable, order=Order.try_last)


# -- make_body ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Body:
    """What the engine writes and the entity headers aiohttp sets for it. Read-only by
    convention (not frozen: that would triple the cost of making one; `make_body(None)`
    returns a shared instance).

    `content` None: no body (aiohttp then sends `Content-Length: 0` for methods other than
    GET/HEAD/OPTIONS/TRACE, and `Content-Type: application/octet-stream` for POST/PUT/PATCH
    without one: the session's part). `size` None with content: `Transfer-Encoding: chunked`.
    `headers`: the payload's other headers, which the request takes unless it has them.
    """

    content: bytes | Payload | None
    content_type: str | None
    size: int | None
    headers: tuple[tuple[str, str], ...] = ()


_NO_BODY: Final = Body(None, None, None)


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
        kind = type(data)
        if (kind is bytes or kind is str) and PAYLOAD_REGISTRY._plain:
            # the common cases, without a payload object (what BytesPayload and StringPayload
            # would give: the same bytes, type and size)
            content = data if isinstance(data, bytes) else str(data).encode("utf-8")
            if len(content) > _TOO_LARGE:
                _warn_large(3)
            return Body(content, _OCTET if kind is bytes else _TEXT, len(content))
        return _as_body(_from_data(data))
    if data is not None:
        raise ValueError("data and json parameters can not be used at the same time")
    if json_serialize_bytes is not None:
        encoded = json_serialize_bytes(json)
    else:
        encoded = json_serialize(json).encode("utf-8")
    if len(encoded) > _TOO_LARGE:
        _warn_large(3)
    return Body(encoded, "application/json", len(encoded))


def _from_data(data: object) -> Payload:
    """The payload aiohttp makes of any `data=`: the registry's, else a form of it."""
    from ._formdata import FormData  # builds on this module; loaded on first use

    if isinstance(data, FormData):
        return data()
    found = PAYLOAD_REGISTRY._find(data, (), {"disposition": None})
    return found if found is not None else FormData(data)()  # type: ignore[arg-type]


def _as_body(payload: Payload) -> Body:
    extra = tuple((k, v) for k, v in payload.headers.items() if k.lower() != "content-type")
    content: bytes | Payload = payload
    if type(payload) in _IN_MEMORY:
        content = bytes(payload._value)  # one piece, nothing to iterate or close
    return Body(content, payload.content_type, payload.size, extra)


_IN_MEMORY: Final = frozenset({BytesPayload, StringPayload, StringIOPayload, JsonPayload})
_TEXT: Final = "text/plain; charset=utf-8"
