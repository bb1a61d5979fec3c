"""Requests/second and client CPU per request of compat, aiohttp, httpx and a floor, in one run.

    python -m benchmarks.run [--rounds N] [--quick] [--json FILE] [--only NAME ...]

Starts `benchmarks/server.py` in its own process on 127.0.0.1 (a keep-alive HTTP/1.1 server, fixed
13-byte or 64 KiB bodies), then, in each round, runs every variant (see `benchmarks.clients`) once
per scenario (one at a time / 50 in flight, 13 B / 64 KiB; and 50 in flight, 13 B under a typical
12-header head, which carries no target), the variants' order rotated each round
so machine drift hits all alike. One measurement: a fresh event loop and client, a warm-up that opens
the connections the scenario needs (20 requests one at a time; 50 at once at 50 in flight), then a
timed section that stops starting requests after `--seconds` or `--max-requests`, whichever first.
Client CPU is `time.process_time()` of this process over the timed section; the server's is not in it.

Reported per scenario and variant: median client CPU per request and req/s over the rounds, and
ratios of those medians. The headline is the ratio by CPU (the other's CPU us/request over this
one's): on a shared 2-core machine req/s swing by half between rounds, CPU per request far less.
`/ aiohttp` is against untraced aiohttp (the reference, 1.00x); `/ httpx` against bare httpx on the
same backend (compat and traced_client rows); `traced/untraced` for compat and aiohttp. Then the
speed issue's targets, each printed as met or NOT met by CPU (facts, not assertions) with the
req/s ratio beside it, the cost of `import` (compat, aiohttp, httpx; `benchmarks.memory`), and
the Signal.send micro-benchmark (compat.Signal against aiosignal). It also prints how much CPU
other processes took during the measurements (/proc).

Bounds: every measurement is bounded in requests and seconds, and fails after `--seconds` + 10 s
whatever happens; a variant that fails is reported and not retried in later rounds; no measurement
starts after `--max-seconds`. Default: 5 rounds of 0.8 s measurements (about 5 minutes on 2 cores);
`--quick`: 3 rounds of 0.15 s (under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .clients import VARIANTS, Target, Variant, noop_handler
from .harness import (
    HOST,
    Interference,
    Limits,
    Sample,
    compat_origin,
    describe_error,
    local_server,
    machine,
    measure,
)
from .memory import measure_imports


@dataclass(frozen=True)
class Scenario:
    title: str
    path: str
    body_size: int
    concurrency: int
    targeted: bool = True  # the speed issue's targets are set on it


SCENARIOS = [
    Scenario("one at a time, 13 B", "/small", 13, 1),
    Scenario("50 in flight, 13 B", "/small", 13, 50),
    Scenario("one at a time, 64 KiB", "/big", 64 * 1024, 1),
    Scenario("50 in flight, 64 KiB", "/big", 64 * 1024, 50),
    # The others answer with 2 headers; real servers send a dozen, and a header costs a
    # Python client more than aiohttp's C parser: this one says how much (no target on it).
    Scenario("50 in flight, 13 B, 12 headers", "/headers", 13, 50, targeted=False),
]

REFERENCE = "aiohttp (asyncio)"


@dataclass
class Cell:
    """One variant in one scenario: a sample per round (None where it was not measured)."""

    samples: list[Sample | None] = field(default_factory=list)
    error: str | None = None

    def rates(self) -> list[float]:
        return [s.rate for s in self.samples if s is not None]

    def cpu(self) -> list[float]:
        return [s.cpu_us for s in self.samples if s is not None]


Results = dict[str, dict[str, Cell]]  # scenario title -> variant key -> cell


@dataclass(frozen=True)
class Ratio:
    median: float
    low: float
    high: float
    rounds: int

    def __str__(self) -> str:
        return f"{self.median:.2f}x"

    def detail(self) -> str:
        return f"{self.median:.2f}x [{self.low:.2f}-{self.high:.2f}, {self.rounds} rounds]"


def ratio(cells: dict[str, Cell], key: str, against: str) -> Ratio | None:
    """median rate(key) / median rate(against); low and high: the extremes of the per-round ratios."""
    if key not in cells or against not in cells:
        return None
    mine, theirs = cells[key].rates(), cells[against].rates()
    if not mine or not theirs:
        return None
    pairs = [
        a.rate / b.rate
        for a, b in zip(cells[key].samples, cells[against].samples, strict=False)
        if a is not None and b is not None
    ] or [statistics.median(mine) / statistics.median(theirs)]
    value = statistics.median(mine) / statistics.median(theirs)
    return Ratio(value, min(pairs), max(pairs), len(pairs))


def cpu_ratio(cells: dict[str, Cell], key: str, against: str) -> float | None:
    """median CPU per request of `against` / that of `key`: above 1, `key` costs less CPU."""
    if key not in cells or against not in cells or not cells[key].cpu() or not cells[against].cpu():
        return None
    return statistics.median(cells[against].cpu()) / statistics.median(cells[key].cpu())


def untraced_key(variant: Variant) -> str | None:
    if variant.traced and variant.client in ("compat", "aiohttp"):
        return f"{variant.client} ({variant.backend})"
    return None


def httpx_key(variant: Variant) -> str | None:
    if variant.client in ("compat", "traced_client"):
        return f"httpx ({variant.backend})"
    return None


def run_rounds(
    variants: list[Variant],
    rounds: int,
    limits: Limits,
    deadline: float,
    log: Callable[[str], None],
) -> tuple[Results, int, str | None, tuple[float, float] | None]:
    """All measurements: the results, the rounds completed, why it stopped early if it did, and
    the CPU seconds other processes used meanwhile (with the wall seconds)."""
    results: Results = {s.title: {v.key: Cell() for v in variants} for s in SCENARIOS}
    completed = 0
    stopped: str | None = None
    round_seconds = 0.0
    with local_server() as server:
        port = server.port
        interference = Interference(server.pid)
        # Priming, discarded: every variant briefly, one at a time (imports, first connections,
        # the server's own warm-up); a variant that fails here is not run again.
        priming = Limits(0.05, limits.max_requests, limits.hard_timeout)
        first = SCENARIOS[0]
        target = Target(HOST, port, first.path, first.body_size)
        for variant in variants:
            try:
                measure(variant, target, first.concurrency, priming)
            except Exception as exc:
                error = describe_error(exc)
                for cells in results.values():
                    cells[variant.key].error = error
                log(f"  {variant.key}: failed: {error}")
        log("priming done")
        for number in range(rounds):
            now = time.monotonic()
            if number and now + round_seconds > deadline:
                stopped = f"--max-seconds: no time for round {number + 1} (rounds take ~{round_seconds:.0f} s)"
                break
            shift = number % len(variants)
            order = variants[shift:] + variants[:shift]
            round_started = now
            for scenario in SCENARIOS:
                target = Target(HOST, port, scenario.path, scenario.body_size)
                for variant in order:
                    cell = results[scenario.title][variant.key]
                    if cell.error is not None:
                        cell.samples.append(None)
                        continue
                    if time.monotonic() > deadline:
                        stopped = f"--max-seconds reached in round {number + 1}"
                        break
                    try:
                        sample: Sample | None = measure(
                            variant, target, scenario.concurrency, limits
                        )
                    except Exception as exc:
                        cell.error = describe_error(exc)
                        sample = None
                        log(f"  {scenario.title}, {variant.key}: failed: {cell.error}")
                    cell.samples.append(sample)
                if stopped:
                    break
            if stopped:
                break
            completed += 1
            round_seconds = time.monotonic() - round_started
            log(f"round {number + 1}/{rounds} done in {round_seconds:.1f} s")
        others = interference.others()
    return results, completed, stopped, others


def print_table(results: Results, variants: list[Variant]) -> None:
    by_key = {v.key: v for v in variants}
    print(
        "\nMedians over rounds. CPU: client process CPU time per request (lower is better);"
        "\nratios by CPU: the other's CPU per request over this one's (higher is better);"
        "\n/ aiohttp: against untraced aiohttp (asyncio); / httpx: against bare httpx on the same"
        "\nbackend; traced/untraced: +16 handlers against none; req/s and its ratio beside."
    )
    header = (
        f"  {'variant':<28}{'CPU us/req':>11}{'/ aiohttp':>11}{'/ httpx':>9}{'traced/untr.':>14}"
        f"{'req/s':>9}{'/ aiohttp':>11}"
    )
    for title, cells in results.items():
        print(f"\n{title}")
        print(header)
        print("  " + "-" * (len(header) - 2))
        for key, cell in cells.items():
            variant = by_key[key]
            rates = cell.rates()
            if not rates:
                print(f"  {key:<28}  {cell.error or 'not measured'}")
                continue
            hx = httpx_key(variant)
            un = untraced_key(variant)
            vs_ref = ratio(cells, key, REFERENCE)
            print(
                f"  {key:<28}{statistics.median(cell.cpu()):11.1f}"
                f"{_x(cpu_ratio(cells, key, REFERENCE)):>11}"
                f"{_x(cpu_ratio(cells, key, hx) if hx else None):>9}"
                f"{_x(cpu_ratio(cells, key, un) if un else None):>14}"
                f"{statistics.median(rates):9.0f}{_cell(vs_ref):>11}"
                + (f"   (failed later: {cell.error})" if cell.error else "")
            )


def _x(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else ""


def _cell(value: Ratio | None) -> str:
    return str(value) if value is not None else ""


@dataclass(frozen=True)
class Goal:
    what: str
    key: str
    against: str
    scenario: str
    threshold: float


def goals() -> list[Goal]:
    """The speed issue's targets (by CPU per request), one check per scenario and backend."""
    checks: list[Goal] = []
    one = [s.title for s in SCENARIOS if s.concurrency == 1 and s.targeted]
    many = [s.title for s in SCENARIOS if s.concurrency > 1 and s.targeted]
    for backend in ("asyncio", "trio"):
        for title in one:
            checks.append(
                Goal(
                    "ClientSession+16 vs aiohttp", f"compat+16 ({backend})", REFERENCE, title, 1.25
                )
            )
        for title in many:
            checks.append(
                Goal("ClientSession+16 vs aiohttp", f"compat+16 ({backend})", REFERENCE, title, 1.5)
            )
    for title in many:
        checks.append(Goal("ClientSession vs aiohttp", "compat (asyncio)", REFERENCE, title, 2.0))
    for backend in ("asyncio", "trio"):
        for title in one:
            checks.append(
                Goal(
                    "traced_client+16 vs httpx",
                    f"traced_client+16 ({backend})",
                    f"httpx ({backend})",
                    title,
                    1.5,
                )
            )
    return checks


def check_targets(results: Results) -> list[dict[str, Any]]:
    report = []
    for goal in goals():
        value = ratio(results[goal.scenario], goal.key, goal.against)
        by_cpu = cpu_ratio(results[goal.scenario], goal.key, goal.against)
        report.append(
            {
                "target": f"{goal.what} >= {goal.threshold:g}x",
                "variant": goal.key,
                "against": goal.against,
                "scenario": goal.scenario,
                "threshold": goal.threshold,
                "ratio": None if value is None else value.median,
                "ratio_low": None if value is None else value.low,
                "ratio_high": None if value is None else value.high,
                "met": None if by_cpu is None else by_cpu >= goal.threshold,
                "cpu_ratio": by_cpu,
            }
        )
    return report


def print_targets(report: list[dict[str, Any]], results: Results) -> None:
    print(
        "\nTargets (speed issue), by CPU: the other's CPU us/request over this one's; req/s beside:"
        "\nratio of the medians [lowest-highest per-round ratio]"
    )
    met = 0
    for row in report:
        backend = row["variant"].split("(")[1].rstrip(")")
        label = f"{row['target']:<40}{row['scenario']:<23}{backend:<8}"
        if row["met"] is None:
            print(f"  {label}  not measured")
            continue
        met += row["met"]
        verdict = "met" if row["met"] else "NOT met"
        spread = f"[{row['ratio_low']:.2f}-{row['ratio_high']:.2f}]"
        print(f"  {label}{row['cpu_ratio']:6.2f}x {verdict:<8} req/s {row['ratio']:.2f}x {spread}")
    print(f"  {met} of {len(report)} met")
    _httpx_pool_note(results)


def _httpx_pool_note(results: Results) -> None:
    """Say so when bare httpx's CPU per request grows with the requests in flight."""
    found = []
    for backend in ("asyncio", "trio"):
        key = f"httpx ({backend})"
        if any(key not in results[s.title] for s in SCENARIOS):
            continue
        one = [x for s in SCENARIOS if s.concurrency == 1 for x in results[s.title][key].cpu()]
        many = [x for s in SCENARIOS if s.concurrency > 1 for x in results[s.title][key].cpu()]
        if one and many and statistics.median(many) > 3 * statistics.median(one):
            found.append(
                f"{statistics.median(many):.0f} us on {backend}"
                f" ({statistics.median(one):.0f} us one at a time)"
            )
    if found:
        print(
            "  note: bare httpx's CPU per request at 50 in flight: " + ", ".join(found) + "."
            "\n  After the warm-up its pool holds 50 connections, and httpcore scans (and polls)"
            "\n  every one of them for each request. A long-lived httpx client settles on fewer"
            "\n  connections (unused ones expire after 5 s) and then runs several times faster:"
            "\n  the ratios to httpx at 50 in flight are against the 50-connection state."
        )


def bench_signal_send(repeat: int) -> dict[str, float]:
    """Microseconds per `send` with no handler and with one, compat against aiosignal."""
    import aiosignal

    async def timed(make: Callable[[], Any], handlers: int) -> float:
        signal = make()
        for _ in range(handlers):
            signal.append(noop_handler)
        signal.freeze()
        send: Callable[..., Awaitable[None]] = signal.send
        started = time.perf_counter()
        for _ in range(repeat):
            await send(None, None, None)
        return (time.perf_counter() - started) / repeat * 1e6

    async def run() -> dict[str, float]:
        import compat

        results = {}
        for label, make in (
            ("compat", lambda: compat.Signal(None)),
            ("aiosignal", lambda: aiosignal.Signal(None)),
        ):
            for handlers in (0, 1):
                results[f"{label} send, {handlers} handler(s) (us)"] = await timed(make, handlers)
        return results

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="rounds (default 5, --quick 3)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 0.15 s measurements")
    parser.add_argument("--seconds", type=float, help="per measurement (default 0.8, --quick 0.15)")
    parser.add_argument(
        "--max-requests", type=int, default=100_000, help="per measurement (default 100000)"
    )
    parser.add_argument(
        "--max-seconds", type=float, help="no measurement starts after (default 285, --quick 55)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run only these variants (client names or keys, e.g. compat+16 'httpx (trio)');"
        " aiohttp (asyncio) and the bare httpx rows are always kept for the ratios",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 5)
    seconds = args.seconds if args.seconds is not None else (0.15 if args.quick else 0.8)
    max_seconds = args.max_seconds if args.max_seconds is not None else (55 if args.quick else 285)
    if rounds < 1 or seconds <= 0 or args.max_requests < 1:
        parser.error("--rounds, --seconds and --max-requests must be positive")
    variants = VARIANTS
    if args.only:
        wanted = set(args.only)
        variants = [
            v
            for v in VARIANTS
            if {v.key, v.name, v.client} & wanted or v.key == REFERENCE or v.client == "httpx"
        ]

    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {message}", file=sys.stderr, flush=True)

    origin = compat_origin()
    log(f"compat: {origin}")
    limits = Limits(seconds=seconds, max_requests=args.max_requests, hard_timeout=seconds + 10)
    results, completed, stopped, others = run_rounds(
        variants, rounds, limits, started + max_seconds, log
    )

    print(f"\ncompat: {origin}")
    print(
        f"{machine()}; {completed} of {rounds} rounds of {seconds:g} s (or {args.max_requests}"
        f" requests) per measurement; server: benchmarks/server.py in its own process"
    )
    print(
        "floor: benchmarks/floor.py, httptools on an asyncio Protocol / a trio SocketStream;"
        " one connection per request in flight (1 or 50)"
    )
    if stopped:
        print(f"stopped early: {stopped}")
    if others is not None:
        used, wall = others
        print(
            f"other processes used {used:.0f} CPU-seconds in the {wall:.0f} s of measurements"
            f" ({used / wall:.2f} CPUs on average)"
            + (
                ": the machine was not quiet; req/s suffer more from that than CPU us/request"
                if used / wall > 0.1
                else ""
            )
        )
    print_table(results, variants)
    report = check_targets(results)
    print_targets(report, results)

    try:
        imports: dict[str, Any] | str = measure_imports(["httpx", "aiohttp", "compat"], 5)
    except Exception as exc:
        imports = describe_error(exc)
    print("\nimport in a fresh process (median of 5, process CPU time; benchmarks.memory)")
    if isinstance(imports, str):
        print(f"  failed: {imports}")
    else:
        for module, row in imports.items():
            print(f"  import {module:<10}{row['cpu_ms']:8.1f} ms {row['modules']:6d} modules")

    try:
        signal: dict[str, float] | str = bench_signal_send(50_000 if args.quick else 200_000)
    except Exception as exc:
        signal = describe_error(exc)
    print("\nSignal.send micro-benchmark (lower is better)")
    if isinstance(signal, str):
        print(f"  failed: {signal}")
    else:
        for label, micros in signal.items():
            print(f"  {label:<36} {micros:6.3f}")
    log("done")

    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    **_as_json(
                        results,
                        variants,
                        report,
                        signal,
                        origin,
                        completed,
                        stopped,
                        limits,
                        others,
                    ),
                    "imports": imports,
                },
                handle,
                indent=2,
            )
    return 0


def _as_json(
    results: Results,
    variants: list[Variant],
    report: list[dict[str, Any]],
    signal: dict[str, float] | str,
    origin: str,
    completed: int,
    stopped: str | None,
    limits: Limits,
    others: tuple[float, float] | None,
) -> dict[str, Any]:
    by_key = {v.key: v for v in variants}
    scenarios: dict[str, Any] = {}
    for title, cells in results.items():
        rows: dict[str, Any] = {}
        for key, cell in cells.items():
            variant = by_key[key]
            hx, un = httpx_key(variant), untraced_key(variant)
            ratios = {
                "vs_aiohttp": ratio(cells, key, REFERENCE),
                "vs_httpx": ratio(cells, key, hx) if hx else None,
                "traced_vs_untraced": ratio(cells, key, un) if un else None,
            }
            rows[key] = {
                "req_per_s": statistics.median(cell.rates()) if cell.rates() else None,
                "cpu_us_per_req": statistics.median(cell.cpu()) if cell.cpu() else None,
                **{name: r.median if r else None for name, r in ratios.items()},
                "rounds": [
                    None
                    if s is None
                    else {
                        "requests": s.requests,
                        "seconds": s.seconds,
                        "cpu_seconds": s.cpu_seconds,
                    }
                    for s in cell.samples
                ],
                "error": cell.error,
            }
        scenarios[title] = rows
    return {
        "compat": origin,
        "machine": machine(),
        "rounds_completed": completed,
        "stopped_early": stopped,
        "other_processes_cpu_seconds": None if others is None else others[0],
        "measurement_wall_seconds": None if others is None else others[1],
        "seconds_per_measurement": limits.seconds,
        "max_requests_per_measurement": limits.max_requests,
        "scenarios": scenarios,
        "targets": report,
        "signal_send_us": signal,
    }


if __name__ == "__main__":
    sys.exit(main())
