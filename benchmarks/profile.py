"""Profile one client variant under cProfile and say which package the time goes to.

    python -m benchmarks.profile --client compat --backend asyncio --inflight 50 --traced
    python -m benchmarks.profile --client traced_client --backend trio --body big --requests 3000
    python -m benchmarks.profile --client aiohttp --inflight 1 --dump aiohttp.pstats

Starts the benchmark server in its own process, opens the client, warms it up like
`benchmarks.run` does, then profiles `--requests` requests (bounded by `--max-seconds` too).

Reported: tottime shares by package, and calls per request. A C function's time (socket calls,
`epoll`, `bytes.join`, ...) counts for the package that called it, split over its callers as
cProfile measured them; the parser's own methods (`httptools`) and asyncio's C `Future`/`Task`
count for their package. httptools is Cython, invisible to cProfile: unless `--hide-parser`, its
parser class and `parse_url` are swapped for thin Python wrappers (`benchmarks/_httptools_shim.py`)
before compat is imported, so its time shows. Then the top functions by tottime. cProfile inflates the cost of each
Python call, so shares are what to read, not times; `benchmarks.run` measures speed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .clients import CLIENTS, Target, make_variant
from .harness import HOST, Limits, compat_origin, local_server, measure

# Packages reported on their own, in this order; everything else is "other".
PACKAGES = (
    "compat",
    "httptools",
    "anyio",
    "asyncio",
    "trio",
    "httpx",
    "httpcore",
    "h11",
    "aiohttp",
    "yarl",
    "multidict",
    "benchmarks",
    "other",
)

FuncKey = tuple[str, int, str]  # cProfile's (filename, line, name)
Edge = tuple[int, int, float, float]  # primitive calls, calls, tottime, cumtime
Entry = tuple[int, int, float, float, dict[FuncKey, Edge]]


def raw_stats(stats: pstats.Stats) -> dict[FuncKey, Entry]:
    table: dict[FuncKey, Entry] = stats.stats  # type: ignore[attr-defined]
    return table


def expose_httptools() -> None:
    """Make httptools' time visible to cProfile (call before compat is imported).

    httptools is Cython: cProfile sees neither `feed_data` nor `parse_url`, and their time would
    land in whatever Python function called them. Replace the class and the function, wherever
    httptools exports them, with thin Python wrappers defined in `_httptools_shim` below; their
    tottime is the parser's own time (callbacks are Python functions, counted apart), plus the
    cost of one wrapper call.
    """
    import httptools
    import httptools.parser
    import httptools.parser.parser
    import httptools.parser.url_parser

    from . import _httptools_shim as shim

    swaps = (
        ("HttpResponseParser", shim.ORIGINAL_PARSER, shim.HttpResponseParser),
        ("parse_url", shim.ORIGINAL_PARSE_URL, shim.parse_url),
    )
    modules = (
        httptools,
        httptools.parser,
        httptools.parser.parser,
        httptools.parser.url_parser,
    )
    for module in modules:
        for name, original, wrapper in swaps:
            if getattr(module, name, None) is original:
                setattr(module, name, wrapper)


def _compat_dir() -> Path | None:
    try:
        import compat
    except Exception:
        return None
    return Path(compat.__file__).resolve().parent


class Classifier:
    def __init__(self) -> None:
        self._compat = _compat_dir()
        self._benchmarks = Path(__file__).resolve().parent
        self._cache: dict[str, str] = {}

    def python(self, filename: str) -> str:
        """The package of a Python function, by its file."""
        known = self._cache.get(filename)
        if known is not None:
            return known
        package = self._classify(filename)
        self._cache[filename] = package
        return package

    def _classify(self, filename: str) -> str:
        if filename.startswith("<"):
            return "other"
        path = Path(filename).resolve()
        if self._compat is not None and path.is_relative_to(self._compat):
            return "compat"
        if path.name == "_httptools_shim.py":
            return "httptools"
        if path.is_relative_to(self._benchmarks):
            return "benchmarks"
        parts = path.parts
        if "site-packages" in parts:
            top = parts[parts.index("site-packages") + 1]
            top = top.removesuffix(".py")
            return top if top in PACKAGES else "other"
        if "asyncio" in parts or path.name == "selectors.py":  # the stdlib event loop
            return "asyncio"
        if self._compat is None and "compat" in parts:
            return "compat"
        return "other"

    @staticmethod
    def module(filename: str) -> str:
        """A short name for where a function of "other" lives: its module or C function."""
        if filename.startswith("<"):
            return filename
        parts = Path(filename).parts
        if "site-packages" in parts:
            return parts[parts.index("site-packages") + 1].removesuffix(".py")
        for index, part in enumerate(parts):
            if part.startswith("python3") and index + 1 < len(parts):
                return parts[index + 1].removesuffix(".py")
        return Path(filename).stem

    @staticmethod
    def builtin(name: str) -> str | None:
        """The package of a C function when its name says it, else None (its callers pay)."""
        if "httptools" in name:
            return "httptools"
        if "_asyncio." in name:
            return "asyncio"
        if "multidict" in name:
            return "multidict"
        if "yarl" in name:
            return "yarl"
        return None


@dataclass
class Share:
    python_time: float = 0.0
    c_time: float = 0.0
    calls: float = 0.0
    parts: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def time(self) -> float:
        return self.python_time + self.c_time


def attribute(stats: pstats.Stats) -> dict[str, Share]:
    """Per-package tottime (Python / C) and call counts."""
    classify = Classifier()
    shares: dict[str, Share] = defaultdict(Share)
    for key, (_, calls, tottime, _, callers) in raw_stats(stats).items():
        filename, _, name = key
        if filename != "~":
            package = classify.python(filename)
            share = shares[package]
            share.python_time += tottime
            share.calls += calls
            if package == "other":
                share.parts[classify.module(filename)] += tottime
            continue
        owner = classify.builtin(name)
        if owner is not None or not callers:
            share = shares[owner or "other"]
            share.c_time += tottime
            share.calls += calls
            if owner is None:
                share.parts[name] += tottime
            continue
        # Split a C function over its callers' packages, by the time spent under each caller.
        edges = [(caller, edge[2], edge[1]) for caller, edge in callers.items()]
        edge_time = sum(t for _, t, _ in edges) or 1.0
        for caller, time_, calls_ in edges:
            package = classify.python(caller[0]) if caller[0] != "~" else "other"
            part = tottime * time_ / edge_time
            shares[package].c_time += part
            shares[package].calls += calls_
            if package == "other":
                shares[package].parts[f"C called from {classify.module(caller[0])}"] += part
    return shares


def report(stats: pstats.Stats, requests: int, top: int) -> None:
    shares = attribute(stats)
    total_time = sum(s.time for s in shares.values()) or 1.0
    total_calls = sum(s.calls for s in shares.values())
    print(
        f"\n{'package':<12}{'share':>8}{'Python':>9}{'C':>7}{'calls/req':>11}   (share of tottime;"
        " C: C functions it called)"
    )
    print("-" * 47)
    for package in PACKAGES:
        share = shares.get(package)
        if share is None or (share.time == 0 and share.calls == 0):
            continue
        print(
            f"{package:<12}{share.time / total_time:8.1%}{share.python_time / total_time:9.1%}"
            f"{share.c_time / total_time:7.1%}{share.calls / requests:11.1f}"
        )
    print("-" * 47)
    print(f"{'all':<12}{1:8.1%}{'':>16}{total_calls / requests:11.1f}")
    other = shares.get("other")
    if other is not None and other.parts:
        biggest = sorted(other.parts.items(), key=lambda item: item[1], reverse=True)[:8]
        print("other: " + ", ".join(f"{name} {t / total_time:.1%}" for name, t in biggest))
    python_calls = sum(entry[1] for key, entry in raw_stats(stats).items() if key[0] != "~")
    print(
        f"\n{total_calls / requests:.0f} function calls per request, {python_calls / requests:.0f}"
        f" of them Python functions; profiled tottime {total_time / requests * 1e6:.0f} us per"
        " request (inflated by cProfile)"
    )
    if top > 0:
        classify = Classifier()
        print(f"\nTop {top} functions by tottime")
        print(f"{'tottime':>8}{'calls/req':>10}  {'package':<11}function")
        rows = sorted(raw_stats(stats).items(), key=lambda item: item[1][2], reverse=True)
        for (filename, line, name), (_, calls, tottime, _, _) in rows[:top]:
            if filename == "~":
                package, where = Classifier.builtin(name) or "(C)", name
            else:
                package = classify.python(filename)
                where = f"{name}  {_short(filename)}:{line}"
            print(f"{tottime / total_time:8.1%}{calls / requests:10.1f}  {package:<11}{where}")


def _short(filename: str) -> str:
    parts = Path(filename).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1 :])
    return "/".join(parts[-2:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--client", choices=CLIENTS, default="compat")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--inflight", type=int, default=1, help="requests in flight")
    parser.add_argument("--traced", action="store_true", help="16 no-op trace handlers")
    parser.add_argument("--body", choices=("small", "big"), default="small", help="13 B / 64 KiB")
    parser.add_argument("--requests", type=int, default=2000, help="requests profiled")
    parser.add_argument("--max-seconds", type=float, default=60, help="bound on the profiled part")
    parser.add_argument("--top", type=int, default=25, help="functions listed by tottime")
    parser.add_argument(
        "--hide-parser",
        action="store_true",
        help="do not wrap httptools (its time then counts for the package calling it)",
    )
    parser.add_argument("--dump", metavar="FILE", help="also write the pstats file (snakeviz...)")
    args = parser.parse_args(argv)
    if args.inflight < 1 or args.requests < 1:
        parser.error("--inflight and --requests must be positive")
    try:
        variant = make_variant(args.client, args.backend, args.traced)
    except ValueError as exc:
        parser.error(str(exc))

    if not args.hide_parser:
        expose_httptools()
    profiler = cProfile.Profile()
    limits = Limits(args.max_seconds, args.requests, args.max_seconds + 30)
    path, size = ("/big", 64 * 1024) if args.body == "big" else ("/small", 13)
    if args.client.startswith(("compat", "traced_client")):
        print(f"compat: {compat_origin()}")
    with local_server() as server:
        sample = measure(
            variant,
            Target(HOST, server.port, path, size),
            args.inflight,
            limits,
            start=profiler.enable,
            stop=profiler.disable,
        )
    print(
        f"{variant.key}, {args.inflight} in flight, {size} B bodies: {sample.requests} requests"
        f" profiled in {sample.seconds:.2f} s ({sample.rate:.0f} req/s under cProfile,"
        f" {sample.cpu_us:.0f} us CPU per request)"
    )
    stats = pstats.Stats(profiler)
    if args.dump:
        stats.dump_stats(args.dump)
        print(f"pstats written to {args.dump}")
    report(stats, sample.requests, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
