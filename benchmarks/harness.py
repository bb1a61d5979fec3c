"""Start the server in its own process; drive one variant for a bounded time and count.

`measure()` runs one variant in a fresh event loop (`asyncio.run` or `trio.run`) in this process,
which is the client process: it opens the client, warms it up (so every connection the scenario
needs is open), then times a section bounded both by a number of requests and by seconds, with
`time.perf_counter()` for the rate and `time.process_time()` for the client's CPU. The server
runs in another process, so its CPU is not counted.
"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .clients import OneRequest, Target, Variant

if sys.version_info < (3, 11):  # BaseExceptionGroup is a builtin from 3.11
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

HOST = "127.0.0.1"

Hook = Callable[[], None]


@dataclass(frozen=True)
class Limits:
    seconds: float  # the timed section stops starting requests after this
    max_requests: int  # ... or after this many
    hard_timeout: float  # the whole measurement (open, warm-up, timed, close) fails after this


@dataclass(frozen=True)
class Sample:
    requests: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.requests * 1e6


@dataclass(frozen=True)
class Server:
    port: int
    pid: int


@contextmanager
def local_server(lifetime: float = 1800) -> Iterator[Server]:
    """Run `benchmarks/server.py` in a child process on 127.0.0.1; yield its port and pid."""
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("server.py")), "--lifetime", str(lifetime)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 15)
        line = server.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            raise RuntimeError(f"benchmark server did not start (said {line!r})")
        yield Server(int(line), server.pid)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


class Interference:
    """CPU the rest of the machine used while we measured (Linux /proc; None elsewhere).

    Busy time of all CPUs (/proc/stat: user, nice, system, steal; not irq and softirq, where our
    own loopback traffic may be counted) minus this process's CPU and the server's: what other
    processes (or the hypervisor) took.
    """

    def __init__(self, server_pid: int) -> None:
        self._server_pid = server_pid
        self._start = self._read()
        self._wall = time.monotonic()

    def _read(self) -> tuple[float, float, float] | None:
        try:
            tick = os.sysconf("SC_CLK_TCK")
            with open("/proc/stat") as handle:
                fields = handle.readline().split()
            busy = sum(int(fields[i]) for i in (1, 2, 3, 8)) / tick
            with open(f"/proc/{self._server_pid}/stat") as handle:
                stat = handle.read().rsplit(")", 1)[1].split()
            server = (int(stat[11]) + int(stat[12])) / tick
        except (OSError, ValueError, IndexError):
            return None
        return busy, time.process_time(), server

    def others(self) -> tuple[float, float] | None:
        """(CPU seconds others used, wall seconds) since construction."""
        end = self._read()
        if self._start is None or end is None:
            return None
        busy, client, server = (b - a for a, b in zip(self._start, end, strict=True))
        return max(busy - client - server, 0.0), time.monotonic() - self._wall


def _plan(concurrency: int, limits: Limits) -> tuple[int, int]:
    """(warm-up requests per worker, timed requests in all)."""
    warm_per_worker = 20 if concurrency == 1 else 1
    return warm_per_worker, max(limits.max_requests, concurrency)


async def _drive_asyncio(
    one: OneRequest, concurrency: int, limits: Limits, start: Hook | None, stop: Hook | None
) -> Sample:
    warm, budget = _plan(concurrency, limits)
    remaining = budget

    async def warm_worker() -> None:
        for _ in range(warm):
            await one()

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < stop_at:
            remaining -= 1
            await one()

    await asyncio.gather(*(warm_worker() for _ in range(concurrency)))
    gc.collect()
    if start is not None:
        start()
    cpu_started = time.process_time()
    started = time.perf_counter()
    stop_at = started + limits.seconds
    if concurrency == 1:
        await worker()
    else:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if stop is not None:
        stop()
    return Sample(budget - remaining, elapsed, cpu)


async def _drive_trio(
    one: OneRequest, concurrency: int, limits: Limits, start: Hook | None, stop: Hook | None
) -> Sample:
    import trio

    warm, budget = _plan(concurrency, limits)
    remaining = budget

    async def warm_worker() -> None:
        for _ in range(warm):
            await one()

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < stop_at:
            remaining -= 1
            await one()

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(warm_worker)
    gc.collect()
    if start is not None:
        start()
    cpu_started = time.process_time()
    started = time.perf_counter()
    stop_at = started + limits.seconds
    if concurrency == 1:
        await worker()
    else:
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if stop is not None:
        stop()
    return Sample(budget - remaining, elapsed, cpu)


def measure(
    variant: Variant,
    target: Target,
    concurrency: int,
    limits: Limits,
    start: Hook | None = None,
    stop: Hook | None = None,
) -> Sample:
    """One bounded measurement of `variant`; raises whatever the client raised."""
    if variant.backend == "trio":
        import trio

        async def run_trio() -> Sample:
            with trio.fail_after(limits.hard_timeout):
                async with variant.open(target) as one:
                    return await _drive_trio(one, concurrency, limits, start, stop)

        return trio.run(run_trio)

    async def run_asyncio() -> Sample:
        async def body() -> Sample:
            async with variant.open(target) as one:
                return await _drive_asyncio(one, concurrency, limits, start, stop)

        return await asyncio.wait_for(body(), limits.hard_timeout)

    return asyncio.run(run_asyncio())


def describe_error(exc: BaseException) -> str:
    """One line for a failed measurement (the first leaf of an exception group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:100] if text else type(exc).__name__


def compat_origin() -> str:
    """Which compat is measured: its directory, and the git commit (+dirty) of that tree."""
    try:
        import compat
    except Exception as exc:
        return f"compat does not import: {describe_error(exc)}"
    where = Path(compat.__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", "compat"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", ""
    state = f" at {head}{' + uncommitted changes in compat/' if dirty else ''}" if head else ""
    return f"{where}{state}"


def machine() -> str:
    return f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {sys.platform}"
