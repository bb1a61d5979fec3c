"""`FormData`: the form a request sends, urlencoded or `multipart/form-data`.

Fields are recorded as they come; the body is made when the request (or `form()`) asks for it.
A form goes multipart once a field is a file, or names a filename, a content type or a transfer
encoding (or with `default_to_multipart=True`); then every field becomes a part made by the
payload registry, given `Content-Disposition: form-data; name=…[; filename=…]`. The multipart
body is one `MultipartWriter` kept across calls, as in aiohttp: fields added later are appended
to it, and once the request closed its files it cannot be sent again.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from multidict import MultiDict, MultiDictProxy

from ._multipart import MultipartWriter
from ._payload import BytesPayload, Payload, _file_name, _safe_header, get_payload

__all__ = ["FormData"]

_BYTES_LIKE: Final = (bytes, bytearray, memoryview)
_URLENCODED: Final = "application/x-www-form-urlencoded"


_BYTES_FIELD: Final = (
    "In v4, passing bytes will no longer create a file field. "
    "Please explicitly use the filename parameter or pass a BytesIO object."
)
_TRANSFER_ENCODING: Final = (
    "content_transfer_encoding is deprecated. "
    "To maintain compatibility with v4 please pass a BytesPayload."
)
_UNSERIALIZABLE: Final = "Can not serialize value type: {!r}\n headers: {!r}\n value: {!r}"
_BAD_ENTRY: Final = (
    "Only io.IOBase, multidict and (name, file) pairs allowed, "
    "use .add_field() for passing more complex parameters, got "
)


def _deprecated(message: str) -> None:
    """aiohttp's DeprecationWarning, pointing at the caller of add_field()."""
    warnings.warn(message, DeprecationWarning, stacklevel=3)


@dataclass(slots=True)
class _Field:
    name: str
    value: Any
    filename: str | None
    content_type: str | None


def _str_or_none(value: object, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be an instance of str. Got: {value}")
    return value


class FormData:
    """aiohttp's `FormData`; calling it gives the body's `Payload`."""

    def __init__(
        self,
        fields: Iterable[Any] = (),
        quote_fields: bool = True,
        charset: str | None = None,
        *,
        default_to_multipart: bool = False,
    ) -> None:
        self._pending: list[_Field] = []
        self._is_multipart = default_to_multipart
        self._quote_fields = quote_fields
        self._charset = charset
        self._writer: MultipartWriter | None = None  # made by the first multipart build
        if isinstance(fields, dict):
            self.add_fields(*fields.items())
        elif isinstance(fields, (list, tuple)):
            self.add_fields(*fields)
        else:
            self.add_fields(fields)

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
        is_file = isinstance(value, io.IOBase)
        if (
            isinstance(value, _BYTES_LIKE)
            and filename is None
            and content_transfer_encoding is None
        ):
            _deprecated(_BYTES_FIELD)  # bytes still make a file part named after the field
            filename = name
        _safe_header(name)
        if _str_or_none(filename, "filename") is None and is_file:
            found = _file_name(value)
            filename = name if found is None else found
        for given in (filename, _str_or_none(content_type, "content_type")):
            if given is not None:
                _safe_header(given)
        if _str_or_none(content_transfer_encoding, "content_transfer_encoding") is not None:
            _deprecated(_TRANSFER_ENCODING)
        if is_file or any(
            x is not None for x in (filename, content_type, content_transfer_encoding)
        ):
            self._is_multipart = True
        self._pending.append(_Field(name, value, filename, content_type))

    def add_fields(self, *fields: Any) -> None:
        """Add files, (name, value) pairs and multidicts; a multidict's items come after the
        other arguments, in the order the multidicts were given (aiohttp's order)."""
        later: list[Any] = []
        for entry in fields:
            if isinstance(entry, (MultiDict, MultiDictProxy)):
                later.extend(entry.items())
            else:
                self._add_entry(entry)
        for entry in later:
            self._add_entry(entry)

    def _add_entry(self, entry: Any) -> None:
        if isinstance(entry, io.IOBase):
            found = _file_name(entry)
            self.add_field("unknown" if found is None else found, entry)
        elif isinstance(entry, (list, tuple)) and len(entry) == 2:
            self.add_field(entry[0], entry[1])
        else:
            raise TypeError(_BAD_ENTRY + repr(entry))

    def __call__(self) -> Payload:
        if self._is_multipart:
            return self._multipart()
        charset = self._charset if self._charset is not None else "utf-8"
        pairs = [(f.name, f.value) for f in self._pending]
        encoded = urlencode(pairs, doseq=True, encoding=charset).encode()
        content_type = _URLENCODED if charset == "utf-8" else f"{_URLENCODED}; charset={charset}"
        return BytesPayload(encoded, content_type=content_type)

    def _multipart(self) -> MultipartWriter:
        writer = self._writer
        if writer is None:
            writer = self._writer = MultipartWriter("form-data")
        for field in self._pending:
            headers = {} if field.content_type is None else {"Content-Type": field.content_type}
            try:
                part = get_payload(
                    field.value,
                    headers=headers,
                    encoding=self._charset,
                    **({} if field.content_type is None else {"content_type": field.content_type}),
                )
            except Exception as exc:
                described = (type(field.value), headers, field.value)
                raise TypeError(_UNSERIALIZABLE.format(*described)) from exc
            params = {"name": field.name}
            if field.filename is not None:
                params["filename"] = field.filename
            part.set_content_disposition("form-data", quote_fields=self._quote_fields, **params)
            part.headers.popall("Content-Length", None)
            writer.append_payload(part)
        self._pending.clear()
        return writer
