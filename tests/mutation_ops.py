"""The mutants of one module, made with `ast` (stdlib only), for tests/mutation.py.

A mutant changes one node that sits on one source line: its source segment (ast's columns are
UTF-8 byte offsets) is replaced by `ast.unparse` of the changed node, so every other byte of the
file, and every line number, stays as it was. What is left alone: docstrings, `if TYPE_CHECKING`
blocks, annotations, `__all__`, `typing.overload` bodies, logging calls, f-strings (3.11's ast
has no positions inside them) and the message strings of `raise` (texts, not behaviour).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from dataclasses import dataclass

COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.LtE: ast.Gt,
    ast.Gt: ast.LtE,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
LOGGERS = {"logging", "logger", "log", "_log", "_logger"}


@dataclass(frozen=True)
class Mutant:
    module: str
    line: int
    col: int
    operator: str
    original: str
    mutated: str

    @property
    def key(self) -> str:
        return f"{self.module}:{self.line}:{self.col}+{len(self.original)}:{self.operator}"

    def apply(self, source: str) -> str:
        """`source` with this mutant's segment replaced (the rest byte for byte)."""
        lines = source.splitlines(keepends=True)
        raw = lines[self.line - 1].encode()
        end = self.col + len(self.original.encode())
        assert raw[self.col : end].decode() == self.original, self.key
        lines[self.line - 1] = (raw[: self.col] + self.mutated.encode() + raw[end:]).decode()
        return "".join(lines)


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    body = getattr(parent, "body", None)
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and isinstance(parent, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and isinstance(body, list)
        and body[:1] == [node]
    )


def _skipped(node: ast.AST, parent: ast.AST | None) -> bool:
    """Whether `node` and everything under it is left unmutated."""
    if _is_docstring(node, parent) or isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        return True
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return any("overload" in ast.unparse(d) for d in node.decorator_list)
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        root = node.value.func
        while isinstance(root, ast.Attribute | ast.Call):
            root = root.value if isinstance(root, ast.Attribute) else root.func
        return isinstance(root, ast.Name) and root.id in LOGGERS
    return False


def _children(node: ast.AST) -> Iterator[ast.AST]:
    """The children of `node`, annotations left out."""
    for field, value in ast.iter_fields(node):
        if field in ("annotation", "returns", "type_comment"):
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, ast.AST):
                yield item


def _variants(node: ast.AST, in_raise: bool) -> Iterator[tuple[str, ast.AST | str]]:
    """(operator name, replacement node or text) for each way to mutate `node`."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in COMPARE_SWAP:
                new = copy.deepcopy(node)
                new.ops[i] = COMPARE_SWAP[type(op)]()
                yield f"compare{i}", new
    elif isinstance(node, ast.BoolOp):
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield "boolop", new
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop_not", node.operand
    elif isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAP:
        new = copy.deepcopy(node)
        new.op = BINOP_SWAP[type(node.op)]()
        yield "binop", new
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP_SWAP:
        new = copy.deepcopy(node)
        new.op = BINOP_SWAP[type(node.op)]()
        yield "augassign", new
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            yield "bool", ast.Constant(not node.value)
        elif isinstance(node.value, int):
            yield "int", ast.Constant(node.value + 1)
        elif isinstance(node.value, str) and not in_raise:
            yield "string", ast.Constant("XX" + node.value + "XX")
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield "return_none", "return None"
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
        yield "call_to_pass", "pass"
    elif isinstance(node, ast.Break):
        yield "break", "continue"
    elif isinstance(node, ast.Continue):
        yield "continue", "break"


def mutants(module: str, source: str) -> list[Mutant]:
    """Every mutant of `source` (the text of `module`) that still compiles."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    found: list[Mutant] = []

    def visit(node: ast.AST, parent: ast.AST | None, in_raise: bool) -> None:
        if _skipped(node, parent):
            return
        in_raise = in_raise or isinstance(node, ast.Raise)
        line, end_line = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        if line is not None and line == end_line:
            raw = lines[line - 1].encode()
            original = raw[node.col_offset : node.end_col_offset].decode()  # type: ignore[attr-defined]
            for name, replacement in _variants(node, in_raise):
                text = replacement if isinstance(replacement, str) else ast.unparse(replacement)
                if isinstance(node, ast.expr) and not isinstance(node, ast.Constant):
                    text = f"({text})"  # keeps its precedence wherever it sits
                mutant = Mutant(module, line, node.col_offset, name, original, text)  # type: ignore[attr-defined]
                try:
                    compile(mutant.apply(source), module, "exec")
                except SyntaxError:
                    continue
                found.append(mutant)
        for child in _children(node):
            visit(child, node, in_raise)

    visit(tree, None, False)
    return found
