"""Multipart bodies: `MultipartWriter` for requests, `MultipartReader` for responses.

The writer is a `Payload`: per part it yields its boundary line, its head, the part's own pieces
(through a Content-Encoding / Content-Transfer-Encoding stage when the part asks for one) and a
CRLF, then the closing boundary line; each of those is one `writer.write()` in aiohttp, so one
piece (and one `on_request_chunk_sent`) here. Checked byte for byte against aiohttp 3.14.5 with
fixed boundaries (tests/test_payload_api.py).

The reader works on a small buffer of its own over the response's `content` (anything with
`readany()`): a part's data is handed out up to the next `\r\n--boundary`, holding back only
as many bytes as could be the start of that delimiter, so reading a part with `read_chunk()`
keeps memory bounded by the chunk size plus one network read. Nested multipart parts share the
buffer. Parsing and errors as aiohttp's (tests/test_multipart_reader.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
import warnings
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import parse_qsl, unquote, urlencode

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict

from ._exceptions import BadHttpMessage
from ._payload import (
    _TOKEN_CHARS,
    IOBasePayload,
    JsonPayload,
    Order,
    Payload,
    PayloadLookupError,
    StringPayload,
    _Streamed,
    get_payload,
    payload_type,
)

if TYPE_CHECKING:
    from ._response import ClientResponse

__all__ = [
    "BadContentDispositionHeader",
    "BadContentDispositionParam",
    "BodyPartReader",
    "MultipartReader",
    "MultipartWriter",
    "content_disposition_filename",
    "parse_content_disposition",
]

_TCHAR_BOUNDARY = re.compile(rb"\A[!#$%&'*+\-.^_`|~\w]+\Z")
_BAD_IN_QUOTES = re.compile(rb"[\x00-\x08\x0A-\x1F\x7F]")
_CONTENT_CODINGS: Final = ("deflate", "gzip", "identity")
CHUNK_SIZE: Final = 2**16
_TRANSFER_CODINGS: Final = ("", "base64", "quoted-printable", "binary")


def _quoted_boundary(raw: bytes) -> str:
    """The boundary as the Content-Type parameter: bare when a token, else a quoted-string."""
    if _TCHAR_BOUNDARY.match(raw):
        return raw.decode("ascii")
    if _BAD_IN_QUOTES.search(raw):
        raise ValueError("boundary value contains invalid characters")
    inner = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').decode("ascii")
    return f'"{inner}"'


async def _encoded(
    pieces: AsyncIterator[bytes], coding: str | None, transfer: str | None
) -> AsyncIterator[bytes]:
    """A part's pieces through its Content-Encoding, then its Content-Transfer-Encoding; a
    stage that holds everything back (compression buffering, base64's 3-byte groups) yields
    nothing for that piece, as aiohttp writes nothing."""
    packer = None
    if coding is not None:
        wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else -zlib.MAX_WBITS
        packer = zlib.compressobj(wbits=wbits)
    held = bytearray()

    def transfer_stage(data: bytes) -> list[bytes]:
        if transfer == "base64":
            held.extend(data)
            whole = len(held) - len(held) % 3
            if not whole:
                return []
            ready = bytes(held[:whole])
            del held[:whole]
            return [base64.b64encode(ready)]
        if transfer == "quoted-printable":
            return [binascii.b2a_qp(data)]
        return [data]

    async for piece in pieces:
        if packer is not None and piece:
            piece = packer.compress(piece)
            if not piece:
                continue
        for out in transfer_stage(piece):
            yield out
    if packer is not None:
        tail = packer.flush()
        if tail:
            for out in transfer_stage(tail):
                yield out
    if transfer == "base64" and held:
        yield base64.b64encode(bytes(held))


class MultipartWriter(_Streamed):
    """aiohttp's `MultipartWriter`: `multipart/<subtype>` with parts appended in order.

    A part that is not form data gets a Content-Length header when its size is known and it is
    sent as is; `form-data` parts get `Content-Disposition: form-data; name="section-N"` unless
    they have one."""

    _autoclose = True

    def __init__(self, subtype: str = "mixed", boundary: str | None = None) -> None:
        if boundary is None:
            import uuid  # loads platform and subprocess: not at `import compat`

            boundary = uuid.uuid4().hex
        text = boundary
        try:
            self._boundary = text.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("boundary should contain ASCII only chars") from None
        super().__init__(
            None, content_type=f"multipart/{subtype}; boundary={_quoted_boundary(self._boundary)}"
        )
        self._parts: list[tuple[Payload, str | None, str | None]] = []
        self._form = subtype == "form-data"
        self._closed = False

    def __enter__(self) -> MultipartWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def __iter__(self) -> Iterator[tuple[Payload, str | None, str | None]]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def __bool__(self) -> bool:
        return True

    @property
    def boundary(self) -> str:
        return self._boundary.decode("ascii")

    def append(self, obj: Any, headers: Mapping[str, str] | None = None) -> Payload:
        """Add `obj` (a Payload, or anything the payload registry takes) as the next part."""
        extra: Mapping[str, str] = headers if headers is not None else CIMultiDict()
        if isinstance(obj, Payload):
            obj.headers.update(extra)
            return self.append_payload(obj)
        try:
            part = get_payload(obj, headers=extra)
        except PayloadLookupError:
            raise TypeError(f"Cannot create payload from {obj!r}") from None
        return self.append_payload(part)

    def append_payload(self, payload: Payload) -> Payload:
        headers = payload.headers
        if self._form:
            if "Content-Disposition" not in headers:
                payload.set_content_disposition("form-data", name=f"section-{len(self._parts)}")
            self._parts.append((payload, None, None))
            return payload
        coding = headers.get("Content-Encoding", "").lower()
        if coding and coding not in _CONTENT_CODINGS:
            raise RuntimeError(f"unknown content encoding: {coding}")
        transfer = headers.get("Content-Transfer-Encoding", "").lower()
        if transfer not in _TRANSFER_CODINGS:
            raise RuntimeError(f"unknown content transfer encoding: {transfer}")
        chosen_coding = None if coding in ("", "identity") else coding
        chosen_transfer = None if transfer in ("", "binary") else transfer
        size = payload.size
        if size is not None and chosen_coding is None and chosen_transfer is None:
            headers["Content-Length"] = str(size)
        self._parts.append((payload, chosen_coding, chosen_transfer))
        return payload

    def append_json(self, obj: Any, headers: Mapping[str, str] | None = None) -> Payload:
        return self.append_payload(JsonPayload(obj, headers=headers or CIMultiDict()))

    def append_form(
        self,
        obj: Sequence[tuple[str, str]] | Mapping[str, str],
        headers: Mapping[str, str] | None = None,
    ) -> Payload:
        pairs = list(obj.items()) if isinstance(obj, Mapping) else obj
        return self.append_payload(
            StringPayload(
                urlencode(pairs, doseq=True),
                headers=headers or CIMultiDict(),
                content_type="application/x-www-form-urlencoded",
            )
        )

    @property
    def size(self) -> int | None:
        line = len(self._boundary) + 4  # b"--" boundary b"\r\n"
        total = line + 2  # the closing b"--" boundary b"--\r\n"
        for part, coding, transfer in self._parts:
            part_size = part.size
            if part_size is None or coding or transfer:
                return None
            total += line + len(part._binary_headers) + part_size + 2
        return total

    @property
    def consumed(self) -> bool:
        return self._closed or any(part.consumed for part, _, _ in self._parts)

    @property
    def replayable(self) -> bool:
        return all(part.replayable for part, _, _ in self._parts)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        out = []
        for part, _, _ in self._parts:
            out.append(f"--{self.boundary}\r\n")
            out.append(part._binary_headers.decode(encoding, errors))
            out.append(part.decode())
        return "".join(out)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        out = bytearray()
        for part, _, _ in self._parts:
            out += b"--" + self._boundary + b"\r\n" + part._binary_headers
            out += await part.as_bytes(encoding, errors)
            out += b"\r\n"
        return bytes(out) + b"--" + self._boundary + b"--\r\n"

    def _chunks(self) -> AsyncIterator[bytes]:
        if not self.replayable:
            for part, _, _ in self._parts:
                if isinstance(part, IOBasePayload) and part._value.closed:
                    raise ValueError("I/O operation on closed file.")
            raise RuntimeError("The request body (multipart) was already sent")
        return self._all_pieces()

    async def _all_pieces(self) -> AsyncIterator[bytes]:
        opening = b"--" + self._boundary + b"\r\n"
        for part, coding, transfer in self._parts:
            yield opening
            yield part._binary_headers
            inner = part._chunks()
            source = inner if not (coding or transfer) else _encoded(inner, coding, transfer)
            try:
                async for piece in source:
                    yield piece
            finally:
                for stream in (source, inner):  # a part left unfinished: close it now
                    close = getattr(stream, "aclose", None)
                    if close is not None:
                        await close()
            yield b"\r\n"
        yield b"--" + self._boundary + b"--\r\n"

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for part, _, _ in self._parts:
            if not part.autoclose and not part.consumed:
                await part.close()


# -- Content-Disposition --------------------------------------------------------------------


class BadContentDispositionHeader(RuntimeWarning):
    """A Content-Disposition value that cannot be parsed; it is taken as absent."""


class BadContentDispositionParam(RuntimeWarning):
    """A Content-Disposition parameter that cannot be parsed; it is skipped."""


_ESCAPED = re.compile(r"\\([\x00-\x7f])")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def _quoted(text: str) -> bool:
    return len(text) >= 2 and text[0] == '"' and text[-1] == '"'


def _is_section(key: str) -> bool:
    """`name*0`, `name*1*`: a piece of an RFC 2231 continuation."""
    star = key.find("*")
    if star < 0:
        return False
    return key[star + 1 :].removesuffix("*").isdigit()


def _decode_ext(value: str) -> str | None:
    """`charset'lang'percent-encoded` (RFC 5987) decoded, None when it cannot be."""
    charset, _, rest = value.split("'", 2)
    try:
        return unquote(rest, charset or "utf-8", "strict")
    except (LookupError, UnicodeDecodeError):
        return None


def parse_content_disposition(header: str | None) -> tuple[str | None, dict[str, str]]:
    """The disposition type (lower case) and its parameters (keys lower case), as aiohttp
    parses them: a malformed header gives `(None, {})` with a BadContentDispositionHeader
    warning, a malformed parameter is dropped with a BadContentDispositionParam warning."""
    if not header:
        return None, {}
    kind, *items = header.split(";")
    kind = kind.strip()
    if not _disposition_token(kind):
        warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
        return None, {}
    params: dict[str, str] = {}
    index = 0
    while index < len(items):
        item = items[index]
        index += 1
        if not item:
            warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
            continue
        if "=" not in item:
            warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
            return None, {}
        raw_key, _, value = item.partition("=")
        key, value = raw_key.strip().lower(), value.lstrip()
        if key in params:
            warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
            return None, {}
        bad_param = not _disposition_token(key)
        if not bad_param and _is_section(key):
            if _quoted(value):
                value = _unescape(value[1:-1])
            else:
                bad_param = not _disposition_token(value)
        elif not bad_param and key.endswith("*"):
            decoded = None
            if _disposition_token(value) and value.count("'") == 2:
                decoded = _decode_ext(value)
            bad_param = decoded is None
            value = decoded or ""
        elif not bad_param:
            trimmed = value.rstrip()
            if _quoted(trimmed):
                value = _unescape(trimmed[1:-1].lstrip("\\/"))
            elif not _disposition_token(value):
                joined = value + ";" + items[index] if index < len(items) else ""
                if not _quoted(joined):
                    warnings.warn(BadContentDispositionHeader(header), stacklevel=2)
                    return None, {}
                index += 1  # a quoted value with a ";" inside: the next item is its rest
                value = _unescape(joined[1:-1].lstrip("\\/"))
        if bad_param:
            warnings.warn(BadContentDispositionParam(item), stacklevel=2)
            continue
        params[key] = value
    return kind.lower(), params


def _token_like(text: str) -> bool:
    return bool(text) and set(text) <= _TOKEN_CHARS


_DISPOSITION_TOKEN_CHARS: Final = _TOKEN_CHARS | {"\t"}


def _disposition_token(text: str) -> bool:
    """A token as aiohttp's Content-Disposition parser sees one: its token set admits TAB
    (found by the differential test in tests/test_client_api.py)."""
    return bool(text) and set(text) <= _DISPOSITION_TOKEN_CHARS


def content_disposition_filename(params: Mapping[str, str], name: str = "filename") -> str | None:
    """The value of `name` in parsed Content-Disposition parameters: `name*`, else `name`, else
    the RFC 2231 continuation `name*0`, `name*1`… joined (and percent-decoded if it carries a
    charset)."""
    if not params:
        return None
    extended = name + "*"
    for key in (extended, name):
        if key in params:
            return params[key]
    pieces = []
    sections = sorted((k, v) for k, v in params.items() if k.startswith(extended))
    for expected, (key, value) in enumerate(sections):
        if key.split("*", 1)[1].removesuffix("*") != str(expected):
            break
        pieces.append(value)
    if not pieces:
        return None
    joined = "".join(pieces)
    return _decode_ext(joined) if "'" in joined else joined


# -- reading ---------------------------------------------------------------------------------


def _too_long(start: bytes, limit: int) -> None:
    raise BadHttpMessage(f"Got more than {limit} bytes when reading: {start + b'...'!r}.")


async def _next_or_stop(source: Any) -> Any:
    """`__anext__` for the readers: their `next()` gives None at the end."""
    item = await source.next()
    if item is None:
        raise StopAsyncIteration
    return item


class _Content(Protocol):
    async def readany(self) -> bytes: ...


class _Buffer:
    """The bytes of a multipart body as far as read, shared by a reader and its nested readers;
    what a reader looked at too far is put back in front."""

    def __init__(self, content: _Content) -> None:
        self._content = content
        self.data = bytearray()
        self.eof = False

    async def more(self) -> bool:
        if self.eof:
            return False
        piece = await self._content.readany()
        if not piece:
            self.eof = True
            return False
        self.data += piece
        return True

    def take(self, n: int) -> bytes:
        piece = bytes(self.data[:n])
        del self.data[:n]
        return piece

    def put_back(self, piece: bytes) -> None:
        self.data[0:0] = piece

    async def readline(self, limit: int | None = None) -> bytes:
        """One line with its b"\\n" (what is left at the end of the body)."""
        start = 0
        while True:
            found = self.data.find(b"\n", start)
            if found >= 0:
                if limit is not None and found + 1 > limit:
                    _too_long(bytes(self.data[:100]), limit)
                return self.take(found + 1)
            if limit is not None and len(self.data) > limit:
                _too_long(bytes(self.data[:100]), limit)
            start = len(self.data)
            if not await self.more():
                return self.take(len(self.data))

    async def read(self, n: int) -> bytes:
        while len(self.data) < n and await self.more():
            pass
        return self.take(n)


def _media_type(value: str) -> tuple[str, str, MultiDict[str]]:
    """(type, subtype, parameters) of a media type, lower case, as aiohttp splits it."""
    head, *items = value.split(";")
    params: MultiDict[str] = MultiDict()
    for item in items:
        if item.strip():
            key, _, raw = item.partition("=")
            params.add(key.strip().lower(), raw.strip(' "'))
    full = head.strip().lower()
    main, _, sub = ("*/*" if full == "*" else full).partition("/")
    return main, sub.partition("+")[0], params


class BodyPartReader:
    """One part of a multipart response: its `headers`, its data (`read`, `read_chunk`,
    `readline`), decoded per its Content-Transfer-Encoding and Content-Encoding (`text`,
    `json`, `form`, `read(decode=True)`)."""

    chunk_size = 8192

    def __init__(
        self,
        boundary: bytes,
        headers: CIMultiDictProxy[str],
        content: Any,
        *,
        subtype: str = "mixed",
        default_charset: str | None = None,
        max_decompress_size: int = 2**18,
        client_max_size: int = sys.maxsize,
        max_size_error_cls: type[Exception] = ValueError,
    ) -> None:
        self.headers = headers
        self._boundary = boundary
        self._delimiter = b"\r\n" + boundary
        self._buffer = content if isinstance(content, _Buffer) else _Buffer(content)
        self._form = subtype == "form-data"
        self._default_charset = default_charset
        self._max_size = client_max_size
        self._max_size_error = max_size_error_cls
        self._max_decompress = max_decompress_size
        length = None if self._form else headers.get("Content-Length")
        if length is not None and not (length.isascii() and length.isdigit()):
            raise ValueError(f"invalid Content-Length: {length!r}")
        self._left = None if length is None else int(length)
        self._at_eof = False
        self._carry = b""  # base64 characters held for the next chunk (4-aligned chunks)

    def __aiter__(self) -> BodyPartReader:
        return self

    async def __anext__(self) -> bytes:
        return await _next_or_stop(self)  # type: ignore[no-any-return]

    async def next(self) -> bytes | None:
        return await self.read() or None

    def at_eof(self) -> bool:
        return self._at_eof

    async def read(self, *, decode: bool = False) -> bytes:
        """The rest of the part's data (at most `client_max_size` bytes)."""
        data = bytearray()
        while not self._at_eof:
            data += await self.read_chunk(self.chunk_size)
            if len(data) > self._max_size:
                raise self._max_size_error(self._max_size)
        if not decode:
            return bytes(data)
        decoded = self.decode(bytes(data))
        if len(decoded) > self._max_size:
            raise self._max_size_error(self._max_size)
        return bytes(decoded)

    async def read_chunk(self, size: int = chunk_size) -> bytes:
        """Up to `size` bytes of the part (base64 parts: whole 4-character groups)."""
        if self._at_eof:
            return b""
        piece = self._carry + await self._raw_chunk(size)
        self._carry = b""
        coding = self.headers.get("Content-Transfer-Encoding", "")
        if coding.lower() == "base64" and not self._at_eof:
            piece, self._carry = _split_base64(piece)
        return piece

    async def _raw_chunk(self, size: int) -> bytes:
        buffer = self._buffer
        if self._left is not None:
            piece = await buffer.read(min(size, self._left))
            self._left -= len(piece)
            if self._left == 0 or (buffer.eof and not buffer.data):
                await self._finish()
            return piece
        delimiter = self._delimiter
        while True:
            found = buffer.data.find(delimiter)
            if found >= 0:
                if found > size:
                    return buffer.take(size)
                piece = buffer.take(found)
                buffer.take(2)  # the CRLF before the boundary line belongs to the part
                self._at_eof = True
                return piece
            # Bytes that cannot be the start of the delimiter may go out now.
            safe = len(buffer.data) - len(delimiter) + 1
            if safe >= size:
                return buffer.take(size)
            if not await buffer.more():
                raise ValueError("Reader did not find the part's closing boundary")

    async def _finish(self) -> None:
        self._at_eof = True
        if await self._buffer.readline() != b"\r\n":
            raise ValueError("Reader did not read all the data or it is malformed")

    async def readline(self) -> bytes:
        """The next line of the part's data, with its line end; the last line ends where the
        data does (the CRLF before the boundary is the delimiter's, not the line's)."""
        if self._at_eof:
            return b""
        buffer = self._buffer
        if self._left is not None:
            while b"\n" not in buffer.data[: self._left] and len(buffer.data) < self._left:
                if not await buffer.more():
                    break
            newline = buffer.data.find(b"\n", 0, self._left)
            line = buffer.take(newline + 1 if newline >= 0 else self._left)
            self._left -= len(line)
            if self._left == 0 or not line:
                await self._finish()
            return line
        delimiter = self._delimiter
        while True:
            data = buffer.data
            end = data.find(delimiter)
            newline = data.find(b"\n")
            if end >= 0 and (newline < 0 or newline > end):
                line = buffer.take(end)
                buffer.take(2)
                self._at_eof = True
                return line
            if newline >= 0:
                following = bytes(data[newline + 1 : newline + 1 + len(self._boundary)])
                is_delimiter_start = data[newline - 1 : newline + 1] == b"\r\n" and (
                    self._boundary.startswith(following)
                )
                if not is_delimiter_start or len(following) == len(self._boundary):
                    return buffer.take(newline + 1)
            if not await buffer.more():
                raise ValueError("Reader did not find the part's closing boundary")

    async def release(self) -> None:
        """Read the rest of the part to the void."""
        while not self._at_eof:
            await self.read_chunk(self.chunk_size)

    def decode(self, data: bytes) -> bytes:
        """`data` decoded per the part's Content-Transfer-Encoding, then its Content-Encoding
        (the latter ignored in form-data, as aiohttp)."""
        if "Content-Transfer-Encoding" in self.headers:
            transfer = self.headers["Content-Transfer-Encoding"].lower()
            if transfer == "base64":
                data = base64.b64decode(data)
            elif transfer == "quoted-printable":
                data = binascii.a2b_qp(data)
            elif transfer not in ("binary", "8bit", "7bit"):
                raise RuntimeError(f"unknown content transfer encoding: {transfer}")
        if self._form or "Content-Encoding" not in self.headers:
            return data
        coding = self.headers["Content-Encoding"].lower()
        if coding == "identity":
            return data
        if coding not in ("deflate", "gzip"):
            raise RuntimeError(f"unknown content encoding: {coding}")
        unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS if coding == "gzip" else -zlib.MAX_WBITS)
        out = bytearray(unpacker.decompress(data, self._max_decompress))
        while unpacker.unconsumed_tail:
            out += unpacker.decompress(unpacker.unconsumed_tail, self._max_decompress)
        return bytes(out + unpacker.flush())

    async def decode_iter(self, data: bytes) -> AsyncIterator[bytes]:
        """`decode(data)` as an async iterator (one piece), for code written against aiohttp."""
        yield self.decode(data)

    def get_charset(self, default: str) -> str:
        params = _media_type(self.headers.get("Content-Type", ""))[2]
        return params.get("charset", self._default_charset or default)

    async def text(self, *, encoding: str | None = None) -> str:
        data = await self.read(decode=True)
        return data.decode(encoding or self.get_charset("utf-8"))

    async def json(self, *, encoding: str | None = None) -> Any:
        data = await self.read(decode=True)
        if not data:
            return None
        return json.loads(data.decode(encoding or self.get_charset("utf-8")))

    async def form(self, *, encoding: str | None = None) -> list[tuple[str, str]]:
        data = await self.read(decode=True)
        if not data:
            return []
        charset = encoding if encoding is not None else self.get_charset("utf-8")
        try:
            text = data.rstrip().decode(charset)
        except UnicodeDecodeError:
            raise ValueError(f"data cannot be decoded with {charset} encoding") from None
        return parse_qsl(text, keep_blank_values=True, encoding=charset)

    def _disposition(self, key: str) -> str | None:
        params = parse_content_disposition(self.headers.get("Content-Disposition"))[1]
        return content_disposition_filename(params, key)

    @property
    def name(self) -> str | None:
        """The `name` of the Content-Disposition header (None without one)."""
        return self._disposition("name")

    @property
    def filename(self) -> str | None:
        """The `filename` of the Content-Disposition header (None without one)."""
        return self._disposition("filename")


_BASE64_ALPHABET: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
)


def _split_base64(piece: bytes) -> tuple[bytes, bytes]:
    """(the longest head holding whole 4-character base64 groups, the rest)."""
    extra = sum(1 for byte in piece if byte in _BASE64_ALPHABET) % 4
    cut = len(piece)
    while extra and cut:
        cut -= 1
        if piece[cut] in _BASE64_ALPHABET:
            extra -= 1
    return piece[:cut], piece[cut:]


@payload_type(BodyPartReader, order=Order.try_first)
class BodyPartReaderPayload(Payload):
    """A part read from a response, sent on as a request body (streamed, once)."""

    def __init__(self, value: BodyPartReader, *args: Any, **kwargs: Any) -> None:
        super().__init__(value, *args, **kwargs)
        found = {k: v for k in ("name", "filename") if (v := getattr(value, k)) is not None}
        if found:
            self.set_content_disposition("attachment", True, **found)
        self._started = False

    @property
    def replayable(self) -> bool:
        return not self._started

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("Unable to decode.")

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        raise TypeError("Unable to read body part as bytes. Use write() to consume.")

    async def write(self, writer: Any) -> None:
        part: BodyPartReader = self._value
        self._started = True
        while chunk := await part.read_chunk(2**18):
            await writer.write(part.decode(chunk))


class MultipartResponseWrapper:
    """`MultipartReader.from_response()`: the reader, releasing the response at the end."""

    def __init__(self, resp: ClientResponse, stream: MultipartReader) -> None:
        self.resp, self.stream = resp, stream

    def __aiter__(self) -> MultipartResponseWrapper:
        return self

    async def __anext__(self) -> MultipartReader | BodyPartReader:
        return await _next_or_stop(self)  # type: ignore[no-any-return]

    def at_eof(self) -> bool:
        return self.resp.content.at_eof()

    async def next(self) -> MultipartReader | BodyPartReader | None:
        part = await self.stream.next()
        if self.stream.at_eof():
            await self.release()
        return part

    async def release(self) -> None:
        await self.resp.release()


class MultipartReader:
    """aiohttp's reader of a `multipart/*` body: `await reader.next()` (or `async for`) gives
    each part in turn, a `BodyPartReader`, or a `MultipartReader` for a nested multipart; the
    previous part is read to its end first."""

    response_wrapper_cls = MultipartResponseWrapper
    multipart_reader_cls: type[MultipartReader] | None = None
    part_reader_cls = BodyPartReader

    def __init__(
        self,
        headers: Mapping[str, str],
        content: Any,
        *,
        client_max_size: int = sys.maxsize,
        max_field_size: int = 8190,
        max_headers: int = 128,
        max_size_error_cls: type[Exception] = ValueError,
    ) -> None:
        main, self._subtype, params = _media_type(headers["Content-Type"])
        if main != "multipart":
            raise AssertionError("multipart/* content type expected")
        if "boundary" not in params:
            raise ValueError(f"boundary missed for Content-Type: {headers['Content-Type']}")
        boundary = params["boundary"]
        if len(boundary) > 70:
            raise ValueError(f"boundary {boundary!r} is too long (70 chars max)")
        self.headers = headers
        self._boundary = ("--" + boundary).encode()
        self._buffer = content if isinstance(content, _Buffer) else _Buffer(content)
        self._limits = (client_max_size, max_field_size, max_headers, max_size_error_cls)
        self._default_charset: str | None = None
        self._last: MultipartReader | BodyPartReader | None = None
        self._started = False
        self._at_eof = False

    def __aiter__(self) -> MultipartReader:
        return self

    async def __anext__(self) -> MultipartReader | BodyPartReader:
        return await _next_or_stop(self)  # type: ignore[no-any-return]

    @classmethod
    def from_response(cls, response: ClientResponse) -> MultipartResponseWrapper:
        return cls.response_wrapper_cls(response, cls(response.headers, response.content))

    def at_eof(self) -> bool:
        return self._at_eof

    async def next(self) -> MultipartReader | BodyPartReader | None:
        if self._at_eof:
            return None
        if self._last is not None:
            if not self._last.at_eof():
                await self._last.release()
            self._last = None
        if self._started:
            await self._boundary_line()
        else:
            await self._skip_preamble()
            self._started = True
        if self._at_eof:
            return None
        part = await self.fetch_next_part()
        if (
            self._subtype == "form-data"
            and self._default_charset is None
            and isinstance(part, BodyPartReader)
            and part.name == "_charset_"
        ):
            declared = await part.read_chunk(32)
            if len(declared) > 31:
                raise RuntimeError("Invalid default charset")
            self._default_charset = declared.strip().decode()
            await part.release()
            await self._boundary_line()  # (aiohttp 3.14.5 skips this line and fails here)
            if self._at_eof:
                return None
            part = await self.fetch_next_part()
        self._last = part
        return part

    async def release(self) -> None:
        """Read every remaining part to the void, to the closing boundary."""
        while not self._at_eof:
            part = await self.next()
            if part is None:
                break
            await part.release()

    async def fetch_next_part(self) -> MultipartReader | BodyPartReader:
        headers = await self._read_headers()
        max_size, max_field, max_headers, error_cls = self._limits
        if _media_type(headers.get("Content-Type", ""))[0] == "multipart":
            nested = self.multipart_reader_cls or type(self)
            return nested(
                headers,
                self._buffer,
                client_max_size=max_size,
                max_field_size=max_field,
                max_headers=max_headers,
                max_size_error_cls=error_cls,
            )
        return self.part_reader_cls(
            self._boundary,
            headers,
            self._buffer,
            subtype=self._subtype,
            default_charset=self._default_charset,
            client_max_size=max_size,
            max_size_error_cls=error_cls,
        )

    async def _skip_preamble(self) -> None:
        while True:
            line = await self._buffer.readline()
            if not line:
                raise ValueError(f"Could not find starting boundary {self._boundary!r}")
            bare = line.rstrip()
            if bare == self._boundary:
                return
            if bare == self._boundary + b"--":
                self._at_eof = True
                return

    async def _boundary_line(self) -> None:
        buffer = self._buffer
        bare = (await buffer.readline()).rstrip()
        if bare == self._boundary + b"--":
            self._at_eof = True
            # A nested body ends inside its parent's part: the parent's CRLF and boundary line
            # follow; give the parent its boundary line back, dropping the CRLF.
            epilogue = await buffer.readline()
            following = await buffer.readline()
            buffer.put_back(following if following[:2] == b"--" else epilogue + following)
        elif bare != self._boundary:
            raise ValueError(f"Invalid boundary {bare!r}, expected {self._boundary!r}")

    async def _read_headers(self) -> CIMultiDictProxy[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        max_field, max_headers = self._limits[1], self._limits[2]
        count = 0
        while line := (await self._buffer.readline(max_field)).rstrip(b"\r\n"):
            count += 1
            if count > max_headers:
                raise BadHttpMessage("Too many headers received")
            name, colon, value = line.partition(b":")
            if not colon or not _token_like(name.decode("latin-1")):
                raise BadHttpMessage(f"Invalid header line: {line!r}")
            headers.add(
                name.decode("utf-8", "surrogateescape"),
                value.strip(b" \t").decode("utf-8", "surrogateescape"),
            )
        return CIMultiDictProxy(headers)
