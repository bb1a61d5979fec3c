"""`Signal`: aiosignal 1.4's list of async handlers, frozen before use.

aiosignal builds on frozenlist: the errors a frozen (or not yet frozen) signal raises carry
frozenlist's words, and a signal is also a decorator that appends the function it decorates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableSequence
from typing import Any, TypeVar, overload

Handler = Callable[..., Awaitable[object]]
_H = TypeVar("_H", bound=Handler)

__all__ = ["Handler", "Signal"]

_FROZEN = "Cannot modify frozen list."


class Signal(MutableSequence[Handler]):
    """Handlers awaited in order by `send`; mutable until `freeze()`, sendable only after."""

    __slots__ = ("_frozen", "_handlers", "_owner")

    def __init__(self, owner: object) -> None:
        self._owner = owner
        self._handlers: list[Handler] = []
        self._frozen = False

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        self._frozen = True

    async def send(self, *args: Any, **kwargs: Any) -> None:
        if not self._frozen:
            raise RuntimeError("Cannot send non-frozen signal.")
        for handler in self._handlers:
            await handler(*args, **kwargs)

    def __call__(self, handler: _H) -> _H:
        """`@config.on_request_start` appends the handler and hands it back (aiosignal 1.4)."""
        self.append(handler)
        return handler

    def _check_mutable(self) -> None:
        if self._frozen:
            raise RuntimeError(_FROZEN)

    @overload
    def __getitem__(self, index: int) -> Handler: ...
    @overload
    def __getitem__(self, index: slice) -> list[Handler]: ...
    def __getitem__(self, index: int | slice) -> Handler | list[Handler]:
        return self._handlers[index]

    @overload
    def __setitem__(self, index: int, value: Handler) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[Handler]) -> None: ...
    def __setitem__(self, index: int | slice, value: Any) -> None:
        self._check_mutable()
        self._handlers[index] = value

    def __delitem__(self, index: int | slice) -> None:
        self._check_mutable()
        del self._handlers[index]

    def insert(self, index: int, value: Handler) -> None:
        self._check_mutable()
        self._handlers.insert(index, value)

    def __len__(self) -> int:
        return len(self._handlers)

    def __iter__(self) -> Iterator[Handler]:
        return iter(self._handlers)

    def __reversed__(self) -> Iterator[Handler]:
        return reversed(self._handlers)

    def __eq__(self, other: object) -> bool:
        return list(self) == other

    def __hash__(self) -> int:
        if not self._frozen:
            raise RuntimeError("Cannot hash unfrozen list.")
        return hash(tuple(self._handlers))

    def __repr__(self) -> str:
        return f"<Signal owner={self._owner}, frozen={self._frozen}, {self._handlers!r}>"
