"""Bounded, incremental decoding of HTTP content codings (``Content-Encoding``).

Why this exists: httpx's decoders inflate each network read in one go, so a
1.6 KiB ``br`` body or a 1.8 KiB ``gzip, gzip`` body comes out as a single
1 GiB chunk.  Here decoding is *pulled* instead of pushed: `ContentDecoder.feed`
only queues compressed bytes, and `ContentDecoder.read` asks the codec for at
most the bytes the caller wants.  A stacked coding is a chain of stages, and a
stage asks the stage before it for at most 64 KiB at a time, and only when it
has used up what it had.  So however the input is shaped, a read returns at
most what was asked for, and no buffer of ours holds more than
O(max_bytes + 64 KiB) decoded bytes.  The codecs' own history windows come on
top of that: 32 KiB for gzip/deflate, up to 16 MiB for br (the format's
largest), and at most 8 MiB for zstd (RFC 9659's limit for HTTP, which browsers
enforce too; frames that need a larger window are refused).

Behaviour, as in aiohttp and browsers unless said otherwise:

- An unknown coding means the body passes through undecoded (`make_decoder`
  returns None).  A list of codings is undone in reverse order.
- gzip: several concatenated members are decoded one after another.
- deflate: a zlib-wrapped stream, or raw deflate when the first byte does not
  name zlib's method (aiohttp's test; some servers send raw deflate).
- Bytes after the end of a gzip member, deflate stream or zstd frame start
  another one (as aiohttp 3.14 reads them); anything else there is an error,
  never silently dropped: the body is returned only when every byte of it
  decoded.  br rejects bytes after its end too.
- Integrity first: a body that ends anywhere but at the end of a complete,
  checked stream (checksum trailer included) raises `DecodeError`, and so does
  a checksum that does not match.  (aiohttp accepts a gzip body cut short.)
  An empty body is accepted.
"""

from __future__ import annotations

import functools
import importlib
import zlib
from collections import deque
from collections.abc import Callable
from typing import Protocol

from .._zlib import zlib_backend, zlib_errors

__all__ = ["ACCEPT_ENCODING", "ContentDecoder", "DecodeError", "make_decoder"]

# Most compressed input handed to a codec in one call, and most decoded bytes an
# inner stage asks of the stage before it: the bound on every buffer of ours.
_CHUNK = 64 * 1024
# Input window right after a gzip member or zstd frame ends.  A codec copies all
# unconsumed input on every call, so feeding a fresh member the whole remaining
# chunk would make a run of tiny members quadratic; the window starts small and
# doubles up to _CHUNK.
_MEMBER_WINDOW = 64
# More codings than this in one header are refused (as urllib3 does): each stage
# costs a codec's state, and no real server stacks more than two.
_MAX_CODINGS = 5

_GZIP_WBITS = 16 + zlib.MAX_WBITS
# RFC 9659: decoders must accept and encoders must not exceed an 8 MB window.
_ZSTD_WINDOW_LOG_MAX = 23


class DecodeError(Exception):
    """The compressed body is corrupt or cut short; the message names the coding."""


class _BrotliDecompressor(Protocol):
    def process(self, data: bytes, output_buffer_limit: int = ...) -> bytes: ...
    def can_accept_more_data(self) -> bool: ...
    def is_finished(self) -> bool: ...


class _ZstdDecompressor(Protocol):
    def decompress(self, data: bytes | memoryview, max_length: int = ...) -> bytes: ...
    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...


class _Unavailable(Exception):
    """Stands in for the error type of a codec module that is not installed."""


def _load_brotli() -> tuple[Callable[[], _BrotliDecompressor] | None, type[Exception]]:
    """Find a brotli binding that can cap its output; without a cap br is not offered."""
    for name in ("brotli", "brotlicffi"):
        try:
            module = importlib.import_module(name)
            factory: Callable[[], _BrotliDecompressor] = module.Decompressor
            error: type[Exception] = module.error
            probe = factory()
            # Older bindings (brotli < 1.2, brotlicffi < 1.2, brotlipy) lack these.
            probe.process(b"", output_buffer_limit=1)
            probe.can_accept_more_data()
        except Exception:
            continue
        return factory, error
    return None, _Unavailable


def _load_zstd() -> tuple[Callable[[], _ZstdDecompressor] | None, type[Exception]]:
    """Find zstd: the standard library's from 3.14, else the backports.zstd package."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            module = importlib.import_module(name)
            options = {module.DecompressionParameter.window_log_max: _ZSTD_WINDOW_LOG_MAX}
            factory: Callable[[], _ZstdDecompressor] = functools.partial(
                module.ZstdDecompressor, options=options
            )
            error: type[Exception] = module.ZstdError
            factory()
        except Exception:
            continue
        return factory, error
    return None, _Unavailable


_brotli_decompressor, _BrotliError = _load_brotli()
_zstd_decompressor, _ZstdError = _load_zstd()


class _Source:
    """Where a stage gets its input: the bytes fed in, or the stage before it."""

    __slots__ = ()

    def pull(self, max_bytes: int) -> bytes | memoryview:
        """At most max_bytes of input; b"" when there is none right now."""
        raise NotImplementedError

    @property
    def idle(self) -> bool:
        """Nothing more comes out without more input being fed."""
        raise NotImplementedError

    @property
    def ended(self) -> bool:
        """Input has finished and everything has come out (and been checked)."""
        raise NotImplementedError


class _Input(_Source):
    """The compressed bytes fed in, kept as the caller's own objects (no copies)."""

    __slots__ = ("_chunks", "_pos", "finished")

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._pos = 0
        self.finished = False

    def feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)

    def pull(self, max_bytes: int) -> bytes | memoryview:
        chunks = self._chunks
        if not chunks:
            return b""
        head = chunks[0]
        pos = self._pos
        end = pos + max_bytes
        if end >= len(head):
            chunks.popleft()
            self._pos = 0
            return head if pos == 0 else memoryview(head)[pos:]
        self._pos = end
        return memoryview(head)[pos:end]

    @property
    def idle(self) -> bool:
        return not self._chunks

    @property
    def ended(self) -> bool:
        return self.finished and not self._chunks


class _Stage(_Source):
    """One coding being undone; its output is the next stage's input.

    The input it is working on is ``_buf[_pos:]``, at most one chunk from its
    source; what a codec leaves unconsumed is given back by moving ``_pos``.
    """

    __slots__ = (
        "_buf",
        "_coding",
        "_ended",
        "_fed",
        "_more",
        "_pos",
        "_src",
        "_window",
    )

    def __init__(self, src: _Source, coding: str) -> None:
        self._src = src
        self._coding = coding
        self._buf: bytes | memoryview = b""
        self._pos = 0
        self._window = _CHUNK
        # The codec may hold output it has not returned yet.
        self._more = False
        # The current codec (member, frame) has been given input.
        self._fed = False
        self._ended = False

    def pull(self, max_bytes: int) -> bytes:
        raise NotImplementedError

    @property
    def idle(self) -> bool:
        if self._ended:
            return True
        return not self._more and len(self._buf) - self._pos < 1 and self._src.idle

    @property
    def ended(self) -> bool:
        return self._ended

    def _take(self, limit: int) -> bytes | memoryview:
        """Consume and return at most limit bytes of input; b"" if none is there yet."""
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            buf = self._src.pull(_CHUNK)
            if not buf:
                self._buf = b""
                self._pos = 0
                return b""
            self._buf = buf
            pos = 0
        end = pos + limit
        if end >= len(buf):
            self._pos = len(buf)
            return buf if pos == 0 else memoryview(buf)[pos:]
        self._pos = end
        return memoryview(buf)[pos:end]

    def _peek(self, count: int) -> bytes | None:
        """The next count input bytes, not consumed; fewer once input has ended, None if
        they have not arrived yet."""
        while True:
            have = len(self._buf) - self._pos
            if have >= count:
                return bytes(self._buf[self._pos : self._pos + count])
            more = self._src.pull(_CHUNK)
            if not more:
                if self._src.ended:
                    return bytes(self._buf[self._pos :])
                return None
            # A header split across two chunks (rare, and a few bytes): join them.
            self._buf = bytes(self._buf[self._pos :]) + bytes(more) if have else more
            self._pos = 0

    def _truncated(self) -> DecodeError:
        return DecodeError(f"{self._coding}: compressed body is truncated")

    def _corrupt(self, exc: Exception) -> DecodeError:
        return DecodeError(f"{self._coding}: corrupt compressed body ({exc})")


def _is_raw_deflate(first: int) -> bool:
    """aiohttp's test: a zlib stream's first byte names method 8 in its low bits; a
    body whose first byte does not is raw deflate (some servers send that)."""
    return first & 0x0F != 8


class _ZlibStage(_Stage):
    """gzip and deflate (zlib-wrapped or raw), each stream followed by any number more."""

    __slots__ = ("_d", "_wbits")

    def __init__(self, src: _Source, coding: str) -> None:
        super().__init__(src, coding)
        # gzip starts at once (zlib checks the header); deflate first looks at
        # its first byte to tell a zlib header from raw deflate.
        self._wbits: int | None = _GZIP_WBITS if coding == "gzip" else None
        self._d: zlib._Decompress | None = None
        if self._wbits is not None:
            self._d = zlib_backend().decompressobj(self._wbits)

    def pull(self, max_bytes: int) -> bytes:
        while True:
            d = self._d
            if d is None:
                if not self._open():
                    return b""
                continue
            data: bytes | memoryview
            if self._more and self._pos >= len(self._buf):
                data = b""
            else:
                data = self._take(self._window)
                if not data:
                    self._input_gone()
                    return b""
                self._fed = True
            try:
                out = d.decompress(data, max_bytes)
            except zlib_errors() as exc:
                raise self._corrupt(exc) from exc
            if d.eof:
                # What follows the stream; zlib may also leave it in unconsumed_tail.
                self._pos -= len(d.unused_data)
                self._d = None
                self._more = False
                self._fed = False
                self._window = _MEMBER_WINDOW  # another stream may follow
            else:
                tail = len(d.unconsumed_tail)
                self._pos -= tail
                self._more = len(out) >= max_bytes
                if not tail and self._window < _CHUNK:
                    self._window *= 2
            if out:
                return out

    def _open(self) -> bool:
        """Start the next stream once a byte of it is in; False to return b""."""
        head = self._peek(1)
        if head is None:
            return False
        if not head:  # input ended where a stream did (or the body is empty)
            self._ended = True
            return False
        if self._wbits is None:
            self._wbits = -zlib.MAX_WBITS if _is_raw_deflate(head[0]) else zlib.MAX_WBITS
        self._d = zlib_backend().decompressobj(self._wbits)
        return True

    def _input_gone(self) -> None:
        if self._ended or not self._src.ended:
            return
        if self._fed:  # inside a stream: its data or its checksum trailer is missing
            raise self._truncated()
        self._ended = True


class _BrotliStage(_Stage):
    """br.  The binding may return a block more than the limit; the rest waits here."""

    __slots__ = ("_d", "_spill", "_spill_pos")

    def __init__(self, src: _Source, coding: str) -> None:
        super().__init__(src, coding)
        if _brotli_decompressor is None:  # make_decoder never gets here then
            raise RuntimeError("no brotli module with output limits")
        self._d: _BrotliDecompressor | None = _brotli_decompressor()
        self._spill = b""
        self._spill_pos = 0

    def pull(self, max_bytes: int) -> bytes:
        spill = self._spill
        if spill:
            start = self._spill_pos
            end = start + max_bytes
            if end < len(spill):
                self._spill_pos = end
                return spill[start:end]
            self._spill = b""
            return spill[start:]
        d = self._d
        if d is None:
            return b""
        while True:
            data: bytes | memoryview
            if self._more:
                data = b""
            else:
                data = self._take(_CHUNK)
                if not data:
                    self._input_gone(d)
                    return b""
                self._fed = True
            try:
                # brotlicffi accepts only bytes.
                out = d.process(bytes(data), output_buffer_limit=max_bytes)
                self._more = len(out) >= max_bytes or not d.can_accept_more_data()
            except _BrotliError as exc:
                raise DecodeError(
                    f"br: corrupt compressed body, or bytes after its end ({exc})"
                ) from exc
            if len(out) > max_bytes:
                self._spill = out
                self._spill_pos = max_bytes
                return out[:max_bytes]
            if out:
                return out

    @property
    def idle(self) -> bool:
        return not self._spill and super().idle

    def _input_gone(self, d: _BrotliDecompressor) -> None:
        if self._ended or not self._src.ended:
            return
        if self._fed and not d.is_finished():
            raise self._truncated()
        self._ended = True


class _ZstdStage(_Stage):
    """zstd, with any number of frames (RFC 8878 allows several)."""

    __slots__ = ("_d",)

    def __init__(self, src: _Source, coding: str) -> None:
        super().__init__(src, coding)
        self._d: _ZstdDecompressor | None = self._new()

    @staticmethod
    def _new() -> _ZstdDecompressor:
        if _zstd_decompressor is None:  # make_decoder never gets here then
            raise RuntimeError("no zstd module")
        return _zstd_decompressor()

    def pull(self, max_bytes: int) -> bytes:
        while True:
            d = self._d
            if d is None:
                if not self._open():
                    return b""
                continue
            data: bytes | memoryview
            if self._more:
                data = b""
            else:
                data = self._take(self._window)
                if not data:
                    self._input_gone()
                    return b""
                self._fed = True
            try:
                out = d.decompress(data, max_bytes)
            except _ZstdError as exc:
                raise self._corrupt(exc) from exc
            if d.eof:
                # The unconsumed rest is a suffix of the last input taken.
                self._pos -= len(d.unused_data)
                self._d = None
                self._more = False
                self._fed = False
                self._window = _MEMBER_WINDOW
            else:
                self._more = not d.needs_input
                if self._window < _CHUNK:
                    self._window *= 2
            if out:
                return out

    def _open(self) -> bool:
        """Start the next frame once a byte of it is in (zstd checks its magic)."""
        head = self._peek(1)
        if head is None:
            return False
        if not head:
            self._ended = True
            return False
        self._d = self._new()
        return True

    def _input_gone(self) -> None:
        if self._ended or not self._src.ended:
            return
        if self._fed:
            raise self._truncated()
        self._ended = True


_STAGES: dict[str, Callable[[_Source, str], _Stage]] = {
    "gzip": _ZlibStage,
    "deflate": _ZlibStage,
}
if _brotli_decompressor is not None:
    _STAGES["br"] = _BrotliStage
if _zstd_decompressor is not None:
    _STAGES["zstd"] = _ZstdStage

_ALIASES = {"x-gzip": "gzip"}

ACCEPT_ENCODING: str = ", ".join(
    name for name in ("gzip", "deflate", "br", "zstd") if name in _STAGES
)


class ContentDecoder:
    """Decodes one response body; made by `make_decoder`.

    Feed compressed bytes as they arrive and read decoded bytes until read()
    returns b"" (it wants more input), then call finish() at the end of the
    body and read until b"" again.  Reads are bounded; feed() does no work.
    After a DecodeError the decoder is spent.
    """

    __slots__ = ("_input", "_last", "_stash")

    def __init__(self, codings: list[str]) -> None:
        """codings: supported names, in the order the server applied them."""
        if not codings:
            raise ValueError("no content coding to decode")
        self._input = _Input()
        src: _Source = self._input
        stage: _Stage | None = None
        for coding in reversed(codings):
            stage = _STAGES[coding](src, coding)
            src = stage
        assert stage is not None
        self._last: _Stage = stage
        self._stash = b""

    def feed(self, data: bytes) -> None:
        """Queue compressed input; it is decoded only as read() asks for output."""
        if self._input.finished:
            raise RuntimeError("feed() after finish()")
        self._input.feed(data)

    def read(self, max_bytes: int) -> bytes:
        """Up to max_bytes of decoded output; b"" when more input is needed, or at the end.

        Raises DecodeError for corrupt input, and, after finish(), when the
        read that reaches the end of the input finds the body truncated.
        """
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if self._stash:
            out, self._stash = self._stash, b""
            return out
        return self._last.pull(max_bytes)

    def finish(self) -> None:
        """The body has ended.

        If everything fed has already been read, this checks now that the
        compressed stream was complete and raises DecodeError if not;
        otherwise that check happens in the read() that reaches the end.
        """
        self._input.finished = True
        if self.needs_input:
            # Runs the end-of-input checks.  An idle chain has no output left;
            # asking for one byte keeps even the impossible case within bounds.
            self._stash = self._last.pull(1)

    @property
    def needs_input(self) -> bool:
        """True when everything fed has been decoded and handed out."""
        return not self._stash and self._last.idle


def make_decoder(content_encoding: str | None) -> ContentDecoder | None:
    """A decoder for a Content-Encoding header value, or None to pass the body through.

    None for no header, "identity", or any coding not supported here (as
    aiohttp passes unknown codings through).  Raises DecodeError for more
    than five codings.
    """
    if not content_encoding or not content_encoding.isascii():
        return None
    codings: list[str] = []
    for token in content_encoding.lower().split(","):
        name = token.strip(" \t")
        if not name or name == "identity":
            continue
        name = _ALIASES.get(name, name)
        if name not in _STAGES:
            return None
        codings.append(name)
    if not codings:
        return None
    if len(codings) > _MAX_CODINGS:
        raise DecodeError(f"too many content codings: {len(codings)}, at most {_MAX_CODINGS}")
    return ContentDecoder(codings)
