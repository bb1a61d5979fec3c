"""Frozen slotted dataclasses built without `object.__setattr__` per field.

A frozen dataclass's `__init__` sets each field by name through `object.__setattr__`; the
session and the transport build several such objects per request (trace params, the request
info), so they use `positional(cls)` instead: the same object, at half the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

__all__ = ["positional"]

_P = TypeVar("_P")


def positional(cls: type[_P]) -> Callable[..., _P]:
    """`cls(*values)` for a frozen slotted dataclass of 3 or 4 fields, every field given in
    order: each slot is set through its own descriptor."""
    new = object.__new__
    setters = tuple(cls.__dict__[field.name].__set__ for field in fields(cls))  # type: ignore[arg-type]
    if len(setters) == 3:
        set_a, set_b, set_c = setters

        def make3(a: Any, b: Any, c: Any) -> _P:
            obj = new(cls)
            set_a(obj, a)
            set_b(obj, b)
            set_c(obj, c)
            return obj

        return make3
    assert len(setters) == 4, cls
    set_a, set_b, set_c, set_d = setters

    def make4(a: Any, b: Any, c: Any, d: Any) -> _P:
        obj = new(cls)
        set_a(obj, a)
        set_b(obj, b)
        set_c(obj, c)
        set_d(obj, d)
        return obj

    return make4
