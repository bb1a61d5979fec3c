"""`set_zlib_backend`: the zlib-compatible module that inflates gzip and deflate bodies.

As in aiohttp, a faster drop-in (`isal.isal_zlib`, `zlib_ng.zlib_ng`) can replace the standard
library's `zlib` process-wide; decoders made after the call use it.
"""

from __future__ import annotations

import zlib
from typing import Any

__all__ = ["set_zlib_backend", "zlib_backend", "zlib_errors"]

_NEEDED = ("decompressobj", "compressobj", "error", "MAX_WBITS")
_backend: Any = zlib


def set_zlib_backend(new_zlib_backend: Any) -> None:
    """Inflate with `new_zlib_backend` (a module with zlib's API) from now on."""
    global _backend
    missing = [name for name in _NEEDED if not hasattr(new_zlib_backend, name)]
    if missing:
        raise TypeError(
            f"{getattr(new_zlib_backend, '__name__', new_zlib_backend)!r} is not a zlib-compatible "
            f"module: it has no {', '.join(missing)}"
        )
    _backend = new_zlib_backend


def zlib_backend() -> Any:
    return _backend


def zlib_errors() -> tuple[type[Exception], ...]:
    """What a decompressor may raise: zlib's error and the backend's own."""
    return (zlib.error, _backend.error)
