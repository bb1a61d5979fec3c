"""Multipart bodies: `MultipartWriter` for requests.

The writer is a `Payload`: per part it yields its boundary line, its head, the part's own pieces
(through a Content-Encoding / Content-Transfer-Encoding stage when the part asks for one) and a
CRLF, then the closing boundary line; each of those is one `writer.write()` in aiohttp, so one
piece (and one `on_request_chunk_sent`) here. Checked byte for byte against aiohttp 3.14.5 with
fixed boundaries (tests/test_multipart.py).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode

from multidict import CIMultiDict

from ._payload import (
    IOBasePayload,
    JsonPayload,
    Payload,
    PayloadLookupError,
    StringPayload,
    _Streamed,
    get_payload,
)

__all__ = ["MultipartWriter"]

_TCHAR_BOUNDARY = re.compile(rb"\A[!#$%&'*+\-.^_`|~\w]+\Z")
_BAD_IN_QUOTES = re.compile(rb"[\x00-\x08\x0A-\x1F\x7F]")
_CONTENT_CODINGS: Final = ("deflate", "gzip", "identity")
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
        text = uuid.uuid4().hex if boundary is None else boundary
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
