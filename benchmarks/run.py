"""Requests/second of compat against bare httpx and aiohttp, on one local server, in one run.

    python -m benchmarks.run [--rounds 5] [--quick] [--json results.json]

Starts `benchmarks.server` in a separate process on 127.0.0.1, then for each round runs every
variant once per scenario (one at a time / 50 in flight, 13-byte / 64 KiB bodies), interleaved
so machine drift hits all alike. Reports medians of the rounds and the ratios. Bounded: a fixed
number of requests per measurement, and --max-seconds for the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

import compat
from compat._tracing import AIOHTTP_SIGNALS


async def _noop(*_: Any) -> None:
    pass


def compat_config() -> compat.TraceConfig:
    config = compat.TraceConfig()
    for name in AIOHTTP_SIGNALS:
        getattr(config, name).append(_noop)
    return config


def aiohttp_config() -> Any:
    import aiohttp

    config = aiohttp.TraceConfig()
    for name in AIOHTTP_SIGNALS:
        getattr(config, name).append(_noop)
    return config


async def _drive(one: Callable[[], Awaitable[None]], total: int, concurrency: int) -> float:
    """Requests/second for `total` requests, `concurrency` at a time."""
    for _ in range(min(concurrency, 20)):  # warm the pool
        await one()
    started = time.perf_counter()
    if concurrency == 1:
        for _ in range(total):
            await one()
    else:
        per_worker = total // concurrency

        async def worker() -> None:
            for _ in range(per_worker):
                await one()

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
        total = per_worker * concurrency
    return total / (time.perf_counter() - started)


async def _asyncio_drive(one: Callable[[], Awaitable[None]], total: int, concurrency: int) -> float:
    for _ in range(min(concurrency, 20)):
        await one()
    started = time.perf_counter()
    per_worker = total // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await one()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return per_worker * concurrency / (time.perf_counter() - started)


async def bench_httpx(url: str, total: int, concurrency: int) -> float:
    import httpx

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one() -> None:
            response = await client.get(url)
            assert response.status_code == 200

        return await _drive(one, total, concurrency)


async def bench_compat(url: str, total: int, concurrency: int, traced: bool) -> float:
    configs = [compat_config()] if traced else []
    async with compat.ClientSession(trace_configs=configs) as session:

        async def one() -> None:
            async with session.get(url) as response:
                await response.read()
                assert response.status == 200

        return await _drive(one, total, concurrency)


async def bench_aiohttp(url: str, total: int, concurrency: int, traced: bool) -> float:
    import aiohttp

    configs = [aiohttp_config()] if traced else []
    async with aiohttp.ClientSession(trace_configs=configs) as session:

        async def one() -> None:
            async with session.get(url) as response:
                await response.read()
                assert response.status == 200

        return await _asyncio_drive(one, total, concurrency)


@dataclass(frozen=True)
class Variant:
    name: str
    backend: str
    run: Callable[[str, int, int], Awaitable[float]]


VARIANTS = [
    Variant("httpx", "asyncio", bench_httpx),
    Variant("httpx", "trio", bench_httpx),
    Variant("compat", "asyncio", lambda u, t, c: bench_compat(u, t, c, traced=False)),
    Variant("compat+16", "asyncio", lambda u, t, c: bench_compat(u, t, c, traced=True)),
    Variant("compat", "trio", lambda u, t, c: bench_compat(u, t, c, traced=False)),
    Variant("compat+16", "trio", lambda u, t, c: bench_compat(u, t, c, traced=True)),
    Variant("aiohttp", "asyncio", lambda u, t, c: bench_aiohttp(u, t, c, traced=False)),
    Variant("aiohttp+16", "asyncio", lambda u, t, c: bench_aiohttp(u, t, c, traced=True)),
]


def _measure(variant: Variant, url: str, total: int, concurrency: int) -> float:
    if variant.backend == "trio":
        return anyio.run(variant.run, url, total, concurrency, backend="trio")
    if variant.name.startswith("aiohttp"):
        return asyncio.run(variant.run(url, total, concurrency))  # type: ignore[arg-type]
    return anyio.run(variant.run, url, total, concurrency, backend="asyncio")


def bench_signal_send(repeat: int = 200_000) -> dict[str, float]:
    """Microseconds per `send` with no handler and with one, compat against aiosignal."""
    import aiosignal

    async def timed(make: Callable[[], Any], handlers: int) -> float:
        signal = make()
        for _ in range(handlers):
            signal.append(_noop)
        signal.freeze()
        started = time.perf_counter()
        for _ in range(repeat):
            await signal.send(None, None, None)
        return (time.perf_counter() - started) / repeat * 1e6

    async def run() -> dict[str, float]:
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer requests per measurement")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args(argv)

    scale = 1 if args.quick else 3
    scenarios = [
        ("one at a time, 13 B", "/small", 200 * scale, 1),
        ("50 in flight, 13 B", "/small", 500 * scale, 50),
        ("one at a time, 64 KiB", "/big", 100 * scale, 1),
        ("50 in flight, 64 KiB", "/big", 250 * scale, 50),
    ]
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server"], stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + args.max_seconds
    results: dict[str, dict[str, list[float]]] = {s[0]: {} for s in scenarios}
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        for round_number in range(args.rounds):
            for title, path, total, concurrency in scenarios:
                for variant in VARIANTS:
                    if time.monotonic() > deadline:
                        raise TimeoutError("--max-seconds reached")
                    rate = _measure(variant, base + path, total, concurrency)
                    key = f"{variant.name} ({variant.backend})"
                    results[title].setdefault(key, []).append(rate)
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    except TimeoutError as exc:
        print(f"stopped early: {exc}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(10)

    medians = {
        title: {key: statistics.median(rates) for key, rates in by_variant.items()}
        for title, by_variant in results.items()
    }
    _print_table(medians)
    signal = bench_signal_send()
    print("\nSignal.send micro-benchmark (lower is better)")
    for label, micros in signal.items():
        print(f"  {label:<36} {micros:6.3f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"requests_per_second": medians, "signal_send_us": signal}, handle, indent=2)
    return 0


def _print_table(medians: dict[str, dict[str, float]]) -> None:
    print("\nMedian requests/second, and ratios (higher is better)\n")
    header = (
        f"{'scenario':<24}{'variant':<22}{'req/s':>9}"
        f"{'/ httpx':>10}{'/ untraced':>12}{'/ aiohttp+16':>14}"
    )
    print(header)
    print("-" * len(header))
    for title, by_variant in medians.items():
        for key, rate in by_variant.items():
            name, backend = key.split(" (")
            backend = backend.rstrip(")")
            httpx_rate = by_variant.get(f"httpx ({backend})") or by_variant.get("httpx (asyncio)")
            untraced = by_variant.get(f"{name.removesuffix('+16')} ({backend})")
            aiohttp_traced = by_variant.get("aiohttp+16 (asyncio)")
            cells = [
                f"{rate / httpx_rate:9.2f}x" if httpx_rate else "",
                f"{rate / untraced:11.2f}x" if untraced and name.endswith("+16") else "",
                f"{rate / aiohttp_traced:13.2f}x" if aiohttp_traced else "",
            ]
            print(f"{title:<24}{key:<22}{rate:9.0f}{cells[0]:>10}{cells[1]:>12}{cells[2]:>14}")
        print()


if __name__ == "__main__":
    sys.exit(main())
