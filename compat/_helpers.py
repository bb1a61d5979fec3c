"""Small public helpers of aiohttp's client API: `encode_basic_auth`, `ETag`, `ChainMapProxy`."""

from __future__ import annotations

import base64
from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ChainMapProxy", "ETag", "encode_basic_auth"]


def encode_basic_auth(login: str, password: str = "", encoding: str = "utf-8") -> str:
    """The value of an `Authorization: Basic …` (or `Proxy-Authorization`) header."""
    if ":" in login:
        raise ValueError('A ":" is not allowed in login (RFC 7617#section-2)')
    token = base64.b64encode(f"{login}:{password}".encode(encoding))
    return f"Basic {token.decode(encoding)}"


@dataclass(frozen=True, slots=True)
class ETag:
    """An entity tag: its opaque value and whether it is weak (`W/"…"`)."""

    value: str
    is_weak: bool = False


class ChainMapProxy(Mapping[Any, Any]):
    """A read-only view of several mappings, the first that has a key answering for it.

    Iteration and length follow `collections.ChainMap` (the order aiohttp gives as well).
    """

    __slots__ = ("_chain", "_maps")

    def __init__(self, maps: Iterable[Mapping[Any, Any]]) -> None:
        self._maps = tuple(maps)
        self._chain: ChainMap[Any, Any] = ChainMap(*self._maps)  # type: ignore[arg-type]  # read only

    def __init_subclass__(cls) -> None:
        raise TypeError(f"Inheritance class {cls.__name__} from ChainMapProxy is forbidden")

    def __getitem__(self, key: Any) -> Any:
        return self._chain[key]

    def __len__(self) -> int:
        return len(self._chain)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._chain)

    def __contains__(self, key: object) -> bool:
        return key in self._chain

    def __bool__(self) -> bool:
        return any(self._maps)

    def __repr__(self) -> str:
        return f"ChainMapProxy({', '.join(repr(m) for m in self._maps)})"
