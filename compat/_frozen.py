"""Frozen slotted dataclasses built without `object.__setattr__` per field.

A frozen dataclass's `__init__` sets each field by name through `object.__setattr__`; the
session and the transport build several such objects per request (trace params, the request
info), so they use `positional(...)` instead: the same object, at half the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

__all__ = ["positional"]

_P = TypeVar("_P")


def positional(resolve: Callable[[], type[_P]], arity: int) -> Callable[..., _P]:
    """`make(*values)` for a frozen slotted dataclass of 3 or 4 fields, every field given in
    order: each slot is set through its own descriptor. The class is asked of `resolve` at the
    first call (a params class is made a dataclass only when first used)."""
    new = object.__new__
    cls: Any = None
    set_a: Any = None
    set_b: Any = None
    set_c: Any = None
    set_d: Any = None

    def ready() -> None:
        nonlocal cls, set_a, set_b, set_c, set_d
        made = resolve()
        setters = [made.__dict__[field.name].__set__ for field in fields(made)]  # type: ignore[arg-type]
        assert len(setters) == arity, made
        set_a, set_b, set_c = setters[:3]
        if arity == 4:
            set_d = setters[3]
        cls = made

    if arity == 3:

        def make3(a: Any, b: Any, c: Any) -> _P:
            if cls is None:
                ready()
            obj = new(cls)
            set_a(obj, a)
            set_b(obj, b)
            set_c(obj, c)
            return obj  # type: ignore[no-any-return]

        return make3
    assert arity == 4, arity

    def make4(a: Any, b: Any, c: Any, d: Any) -> _P:
        if cls is None:
            ready()
        obj = new(cls)
        set_a(obj, a)
        set_b(obj, b)
        set_c(obj, c)
        set_d(obj, d)
        return obj  # type: ignore[no-any-return]

    return make4
