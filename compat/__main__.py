"""`python -m compat [URL ...]` (also `compat-trace`): trace requests and print their timelines.

With no URL it starts a demo server on 127.0.0.1 and traces a few requests to it through
`localhost`, so the DNS, connection, redirect and timing signals all show.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import ssl
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from ._connector import TCPConnector
from ._exceptions import ClientError
from ._models import ClientTimeout
from ._session import ClientSession
from ._tracing import AIOHTTP_SIGNALS
from .har import HarRecorder
from .timings import PHASES, Timings, timing_trace_config

_BAR_WIDTH = 40


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compat-trace",
        description="Trace HTTP requests with compat's aiohttp-style signals and print timelines.",
    )
    parser.add_argument(
        "urls", nargs="*", metavar="URL", help="no URL: run the local demo; ws:// opens a websocket"
    )
    parser.add_argument("-X", "--method", default="GET")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'")
    parser.add_argument("-d", "--data", help="request body (sent as given)")
    parser.add_argument("--repeat", type=int, default=1, help="send each request N times")
    parser.add_argument("--concurrency", type=int, default=1, help="N copies at once")
    parser.add_argument("--limit", type=int, default=100, help="connector limit (0: none)")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--json", action="store_true", help="one JSON object per request")
    parser.add_argument("--no-redirects", action="store_true")
    parser.add_argument("--timeout", type=float, default=30.0, help="total seconds per request")
    parser.add_argument("--insecure", action="store_true", help="do not verify certificates")
    parser.add_argument(
        "--http2", action="store_true", help="offer HTTP/2 (ALPN); needs the http2 extra"
    )
    parser.add_argument(
        "--har", metavar="FILE", help="also write the requests as a HAR 1.2 file (secrets redacted)"
    )
    return parser


def _describe(params: Any) -> dict[str, Any]:
    """The params' fields worth printing: objects reduced to what a person reads."""
    shown: dict[str, Any] = {}
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if field.name == "headers":
            continue
        if field.name == "response":
            shown["status"] = value.status
        elif field.name == "chunk":
            shown["bytes"] = len(value)
        elif field.name == "exception":
            shown["exception"] = f"{type(value).__name__}: {value}"
        elif field.name == "url":
            shown["url"] = str(value)
        elif isinstance(value, tuple):
            shown[field.name] = list(value)
        else:
            shown[field.name] = value
    return shown


@dataclasses.dataclass
class _Outcome:
    method: str
    url: str
    timings: Timings
    status: int | None = None
    reason: str = ""
    size: int = 0
    error: BaseException | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "bytes": self.size,
            "error": None if self.error is None else type(self.error).__name__,
            "message": None if self.error is None else str(self.error),
            "events": [
                {"t_ms": round(t * 1000, 3), "signal": name[3:], **_describe(params)}
                for t, name, params in self.timings.events
            ],
            "phases_ms": self.timings.as_dict(),
        }

    def render(self) -> str:
        if self.error is None:
            head = f"{self.method} {self.url} -> {self.status} {self.reason}, {self.size} bytes"
        else:
            head = f"{self.method} {self.url} -> {type(self.error).__name__}: {self.error}"
        lines = [head]
        for t, name, params in self.timings.events:
            if name in ("on_response_chunk_received", "on_request_chunk_sent"):
                continue
            marker = " " if name in AIOHTTP_SIGNALS else "+"  # + marks compat extensions
            details = " ".join(f"{k}={v}" for k, v in _describe(params).items())
            lines.append(f"  {t * 1000:9.3f} ms {marker} {name[3:]:<28} {details}".rstrip())
        chunks = sum(1 for _, n, _ in self.timings.events if n == "on_response_chunk_received")
        if chunks:
            lines.append(f"  ({chunks} response_chunk_received events not shown)")
        total = self.timings.total
        for phase in PHASES:
            seconds = self.timings.phases[phase]
            bar = "#" * round(_BAR_WIDTH * seconds / total) if total else ""
            lines.append(f"  {phase:<8} {seconds * 1000:9.3f} ms |{bar}")
        lines.append(f"  {'total':<8} {total * 1000:9.3f} ms")
        return "\n".join(lines)


async def _one(session: ClientSession, method: str, url: str, args: argparse.Namespace) -> _Outcome:
    ctx_holder: dict[str, Any] = {}
    outcome = _Outcome(method, url, Timings())
    headers = [
        (name.strip(), value.strip()) for name, _, value in (h.partition(":") for h in args.header)
    ]
    try:
        if url.startswith(("ws://", "wss://")):  # the handshake, traced; then closed
            async with session.ws_connect(
                url, method=method, headers=headers, trace_request_ctx=ctx_holder
            ):
                outcome.status, outcome.reason = 101, "Switching Protocols (websocket open)"
        else:
            await _request(session, method, url, headers, args, outcome, ctx_holder)
    except (ClientError, TimeoutError, ValueError) as exc:
        outcome.error = exc
    timings = ctx_holder.get("timings")
    if isinstance(timings, Timings):
        outcome.timings = timings
    return outcome


async def _request(
    session: ClientSession,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    args: argparse.Namespace,
    outcome: _Outcome,
    ctx_holder: dict[str, Any],
) -> None:
    async with session.request(
        method,
        url,
        headers=headers,
        data=args.data,
        allow_redirects=not args.no_redirects,
        trace_request_ctx=ctx_holder,
    ) as resp:
        outcome.status, outcome.reason = resp.status, resp.reason
        outcome.size = len(await resp.read())


async def _run(
    urls: Sequence[str], args: argparse.Namespace, har: HarRecorder | None
) -> list[_Outcome]:
    ssl_arg: bool | ssl.SSLContext = not args.insecure
    connector = TCPConnector(limit=args.limit, ssl=ssl_arg, http2=args.http2)
    config = timing_trace_config()

    async def keep_timings(session: Any, ctx: Any, params: Any) -> None:
        ctx.trace_request_ctx["timings"] = ctx.timings

    config.on_request_start.insert(0, keep_timings)
    configs = [config]
    if har is not None:
        configs.append(har.trace_config())
    outcomes: list[_Outcome] = []
    async with ClientSession(
        connector=connector,
        trace_configs=configs,
        timeout=ClientTimeout(total=args.timeout),
    ) as session:
        for url in urls:
            for _ in range(args.repeat):
                batch: list[_Outcome] = []

                async def run_one(url: str = url, batch: list[_Outcome] = batch) -> None:
                    batch.append(await _one(session, args.method.upper(), url, args))

                async with anyio.create_task_group() as tg:
                    for _ in range(args.concurrency):
                        tg.start_soon(run_one)
                outcomes.extend(batch)
    return outcomes


async def _main(args: argparse.Namespace) -> int:
    har = HarRecorder() if args.har else None
    if args.urls:
        outcomes = await _run(args.urls, args, har)
    else:
        from ._demo import demo_server

        async with demo_server() as port:
            base = f"http://localhost:{port}"
            if not args.json:
                print(
                    f"compat demo: a local server on 127.0.0.1:{port}, reached as localhost.\n"
                    "Each line: time since request start, signal ('+': a compat extension).\n"
                    "Add --har FILE to save the requests for a browser's network panel.\n"
                )
            outcomes = await _run([f"{base}/redirect", f"{base}/slow", f"{base}/big"], args, har)
    for outcome in outcomes:
        if args.json:
            print(json.dumps(outcome.as_json()))
        else:
            print(outcome.render(), end="\n\n")
    if har is not None:
        har.save(args.har)
        print(f"HAR: {len(har.entries())} entries written to {args.har}", file=sys.stderr)
    return 1 if any(o.error is not None for o in outcomes) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.repeat < 1 or args.concurrency < 1 or args.limit < 0:
        _parser().error("--repeat and --concurrency must be >= 1, --limit >= 0")
    try:
        return anyio.run(_main, args, backend=args.backend)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
