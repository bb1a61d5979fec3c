"""Does any file of compat/ repeat the code of the libraries it learned from? (not a test)

    python -m tests.similarity [--run 8] [--share-run 4] [--names] [--show]

Every `compat/` file is compared line by line with the installed sources of aiohttp,
aiosignal, httpx, httpcore, h11, yarl and multidict. Before comparing, each line is reduced to
its tokens: whitespace and comments go, every string literal becomes `S`, and lines that only
declare an API are left out: `def`/`class` headers to their colon, decorators, imports,
`__all__`, `name: type [= default]` fields, `...`/`pass` stubs, docstrings (prose: once reduced to `S`
every docstring would match every other), lines of a bare list or table of names and
constants, and lines holding no code of their own (only strings and brackets: the `)` closing
a call, the second line of a long message). `--names` also replaces every
identifier by `N`, which finds a port whose variables were renamed (noisier: short idioms
such as `x = y` then match everywhere, so it reports but does not fail).

A "shared run" is a stretch of consecutive reduced lines found in the same order in one
reference file. The script prints every run of at least `--run` lines (8) and, per compat
file, its share: the fraction of its reduced lines inside runs of at least `--share-run` (4).
It exits 1 when a run of `--run` lines exists or a file's share is above 5% (without
`--names`), so it can gate a review; it takes a few seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import keyword
import sys
import tokenize
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCES = ("aiohttp", "aiosignal", "httpx", "httpcore", "h11", "yarl", "multidict")
MAX_SHARE = 0.05
_OPEN, _CLOSE = {"(", "[", "{"}, {")", "]", "}"}
_PUNCTUATION = _OPEN | _CLOSE | {",", ":", ".", "-"}
_SKIP_TYPES = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, in the original file
    text: str  # the reduced form


def _statements(source: str, names: bool) -> list[list[tuple[int, str]]]:
    """The file's logical lines, each a list of (physical line, reduced token)."""
    statements: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    fstring_depth = 0  # 3.12+ splits an f-string into tokens: it is one S all the same
    fstring_start = getattr(tokenize, "FSTRING_START", None)
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for tok in tokens:
        if tok.type == fstring_start:
            if not fstring_depth:
                current.append((tok.start[0], "S"))
            fstring_depth += 1
            continue
        if tok.type == fstring_end:
            fstring_depth -= 1
            continue
        if fstring_depth:
            continue
        if tok.type == tokenize.NEWLINE:
            if current:
                statements.append(current)
            current = []
            continue
        if tok.type in _SKIP_TYPES:
            continue
        if tok.type == tokenize.STRING:
            current.append((tok.start[0], "S"))
            continue
        text = tok.string
        if names and tok.type == tokenize.NAME and not keyword.iskeyword(text):
            text = "N"
        current.append((tok.start[0], text))
    if current:
        statements.append(current)
    return statements


def _is_declaration(statement: list[tuple[int, str]]) -> bool:
    texts = [text for _, text in statement]
    if texts in (["S"], ["..."], ["pass"]):  # a docstring (prose: its S would match any), a stub
        return True
    if len(texts) > 2 and texts[1] == ":":  # a field: `name: type` or `name: type = default`
        return True
    head = texts[:3]
    if head[:1] in (["def"], ["class"], ["@"], ["import"], ["from"]) or head[:2] == [
        "async",
        "def",
    ]:
        return True
    return head[:1] == ["__all__"]


def reduce(source: str, names: bool = False) -> list[Line]:
    """The lines of `source` that are compared, in order."""
    lines: list[Line] = []
    for statement in _statements(source, names):
        if _is_declaration(statement):
            if statement[0][1] in ("def", "class", "async"):
                # a one-line body after the colon still counts
                depth, cut = 0, len(statement)
                for index, (_, text) in enumerate(statement):
                    depth += text in _OPEN
                    depth -= text in _CLOSE
                    if text == ":" and depth == 0:
                        cut = index + 1
                        break
                statement = statement[cut:]
                if [text for _, text in statement] in ([], ["..."]):
                    continue
            else:
                continue
        by_line: dict[int, list[str]] = defaultdict(list)
        for number, text in statement:
            by_line[number].append(text)
        for number, texts in sorted(by_line.items()):
            text = " ".join(texts)
            if _is_name_list(texts) or all(t == "S" or t in _PUNCTUATION for t in texts):
                continue
            lines.append(Line(number, text))
    return lines


def _is_name_list(texts: list[str]) -> bool:
    """A line of only names, strings, numbers and punctuation, ending in a comma: one entry of
    a list or table of API names or constants (`"on_request_start",`, `"ok": 200,`)."""
    if texts[-1] != ",":
        return False
    return all(t in _PUNCTUATION or t.isidentifier() or t[0].isdigit() for t in texts)


@dataclass
class Run:
    ours: str
    ours_start: int
    ours_end: int
    theirs: str
    theirs_start: int
    theirs_end: int
    length: int


def _reference_files() -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for package in REFERENCES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            print(f"note: {package} is not installed; not compared", file=sys.stderr)
            continue
        for location in spec.submodule_search_locations:
            root = Path(location)
            for path in sorted(root.rglob("*.py")):
                found.append((f"{package}/{path.relative_to(root)}", path))
    return found


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def shared_runs(ours: list[Line], theirs: list[Line], minimum: int) -> list[tuple[int, int, int]]:
    """Maximal common stretches (start in ours, start in theirs, length) of >= `minimum`."""
    where: dict[str, list[int]] = defaultdict(list)
    for index, line in enumerate(theirs):
        where[line.text].append(index)
    runs: list[tuple[int, int, int]] = []
    previous: dict[int, int] = {}  # index in theirs -> length of the run ending there
    for i, line in enumerate(ours):
        current: dict[int, int] = {}
        for j in where.get(line.text, ()):
            current[j] = previous.get(j - 1, 0) + 1
        for j, length in previous.items():  # runs that stop here
            if current.get(j + 1, 0) == 0 and length >= minimum:
                runs.append((i - length, j - length + 1, length))
        previous = current
    for j, length in previous.items():
        if length >= minimum:
            runs.append((len(ours) - length, j - length + 1, length))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=int, default=8, help="report runs of this many lines")
    parser.add_argument("--share-run", type=int, default=4, help="runs counted in the share")
    parser.add_argument("--names", action="store_true", help="also replace identifiers")
    parser.add_argument("--show", action="store_true", help="print the lines of each run")
    args = parser.parse_args(argv)

    references = [(name, reduce(_read(path), args.names)) for name, path in _reference_files()]
    ours_files = sorted((REPO / "compat").rglob("*.py"))
    failed = False
    print(f"{len(ours_files)} compat files against {len(references)} reference files")
    print(f"{'file':42} {'lines':>6} {'shared':>7} {'share':>6}  longest")
    for path in ours_files:
        name = str(path.relative_to(REPO))
        ours = reduce(_read(path), args.names)
        covered: set[int] = set()
        long_runs: list[Run] = []
        longest = (0, "")
        for ref_name, theirs in references:
            for start, ref_start, length in shared_runs(ours, theirs, args.share_run):
                covered.update(range(start, start + length))
                if length > longest[0]:
                    longest = (length, ref_name)
                if length >= args.run:
                    long_runs.append(
                        Run(
                            name,
                            ours[start].number,
                            ours[start + length - 1].number,
                            ref_name,
                            theirs[ref_start].number,
                            theirs[ref_start + length - 1].number,
                            length,
                        )
                    )
        share = len(covered) / len(ours) if ours else 0.0
        flag = ""
        if long_runs or share > MAX_SHARE:
            flag = "  <--"
            failed = True
        where = f"{longest[0]} ({longest[1]})" if longest[0] else "-"
        print(f"{name:42} {len(ours):6} {len(covered):7} {share:6.1%}  {where}{flag}")
        for run in long_runs:
            print(
                f"    {run.length} lines: {run.ours}:{run.ours_start}-{run.ours_end}"
                f" = {run.theirs}:{run.theirs_start}-{run.theirs_end}"
            )
            if args.show:
                source = path.read_text(encoding="utf-8").splitlines()
                for number in range(run.ours_start, run.ours_end + 1):
                    print(f"      | {source[number - 1]}")
    if args.names:
        return 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
