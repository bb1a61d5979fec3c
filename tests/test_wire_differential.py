"""compat against aiohttp 3.14 on generated raw responses (issue 18), on asyncio and trio.

Hypothesis builds responses the way a fuzzer would: odd status lines, header forms (spaces
before the colon, trailing whitespace, obs-folds, bare LF), every framing (Content-Length short,
exact or long, chunked with odd chunk-size spellings, Transfer-Encoding other than `chunked`,
to the close), compressed bodies (valid, a byte flipped, cut short, junk after), stray bytes
after the response, HEAD. `tests.hostile.HostileServer` sends the exact bytes; aiohttp and
`compat.ClientSession` each make the request, then a second one on the same session (which
must get its own response, never the stray bytes). Each side's outcome is reduced to what a
caller sees: status, version, raw headers and body, or which error (a 400
`ClientResponseError` before the response, a `ClientPayloadError` while reading it), and the
request signals fired.

The responses arrive in one write (aiohttp's outcome can depend on packet boundaries; the
issue picks its one-piece behaviour), and split at random points: then compat must still give
the one-piece outcome, or an error, never other bytes. The outcomes must be equal except for
compat's documented, safer choices (README "Choices"), each named in `_allowed`. A failure
prints the raw bytes of the response.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import compat

from .hostile import CLOSE, Action, HostileServer, Pause, Request

Outcome = tuple[Any, ...]


@dataclass(frozen=True)
class Case:
    """One generated response and what it is made of (the tolerated differences key on it)."""

    method: str
    raw: bytes
    close: bool  # the server closes the connection after the response
    coding: str  # "", "gzip", "deflate", "raw-deflate", "x-gzip"
    damage: str  # "", "flip", "cut", "junk"
    framing: str  # "length", "chunked", "close", "te-other"
    te: bytes  # the Transfer-Encoding value, for "te-other"
    stray: bytes  # bytes after the response
    extra: bool = False  # bytes follow the framed response (stray, or a Content-Length short)

    def __repr__(self) -> str:
        return f"Case({self.method} close={self.close} raw={self.raw!r})"


def _encode(coding: str, body: bytes) -> bytes:
    if coding in ("gzip", "x-gzip"):
        return gzip.compress(body, mtime=0)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "raw-deflate":
        c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return c.compress(body) + c.flush()
    return body


@st.composite
def cases(draw: st.DrawFn) -> Case:
    method = draw(st.sampled_from(["GET"] * 6 + ["HEAD"]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    status = draw(st.sampled_from([b"200", b"200", b"200", b"404", b"204", b"304", b"099"]))
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    plain = draw(st.binary(max_size=60) | st.just(b"hello world " * 20))
    coding = draw(st.sampled_from(["", "", "gzip", "deflate", "raw-deflate", "x-gzip"]))
    payload = _encode(coding, plain)
    damage = ""
    if coding and payload:
        damage = draw(st.sampled_from(["", "", "flip", "cut", "junk"]))
        if damage == "flip":
            spot = draw(st.integers(0, len(payload) - 1))
            payload = payload[:spot] + bytes([payload[spot] ^ 0x20]) + payload[spot + 1 :]
        elif damage == "cut":
            payload = payload[: draw(st.integers(1, len(payload) - 1))] if len(payload) > 1 else b""
        elif damage == "junk":
            payload += draw(st.sampled_from([b"junk", b"\x00" * 8, b"\x1f"]))
    headers: list[bytes] = []
    if coding:
        headers.append(b"Content-Encoding: " + coding.encode())
    for extra in draw(
        st.lists(
            st.sampled_from(
                [
                    b"X-Trailing: value  \t",
                    b"X-Space : before the colon",
                    b"X-Fold: first" + eol + b" second",
                    b"Server: hostile",
                    b"X-Empty:",
                    b"Connection: keep-alive",
                    b"Content-Type: text/plain; charset=utf-8 ",
                    b"X-Tab:\tvalue",
                    b"Date: Wed, 02 Dec 2026 19:00:00 GMT",
                ]
            ),
            max_size=3,
        )
    ):
        headers.append(extra)
    framing = draw(st.sampled_from(["length", "length", "chunked", "close", "te-other"]))
    te = b""
    delta = 0
    body = payload
    short = False  # the body stops before its framing says: only the close can end it
    if framing == "length":
        delta = draw(st.sampled_from([0, 0, 0, 5, -1]))
        short = delta > 0
        size = len(payload) + delta
        name = draw(
            st.sampled_from([b"Content-Length: ", b"Content-Length : ", b"content-length:"])
        )
        headers.append(name + str(max(size, 0)).encode())
    elif framing == "chunked":
        headers.append(b"Transfer-Encoding: chunked")
        spell = draw(st.sampled_from([b"%x", b"%X", b"%x ", b"0%x", b"%x;ext=1", b"%x\t"]))
        cut = draw(st.integers(1, max(len(payload), 1)))
        pieces = [payload[i : i + cut] for i in range(0, len(payload), cut)]
        body = b"".join((spell % len(p)) + eol + p + eol for p in pieces) + b"0" + eol + eol
        if draw(st.booleans()):
            body = body[: draw(st.integers(0, len(body) - 1))]  # cut inside the framing
            short = True
    elif framing == "te-other":
        te = draw(
            st.sampled_from(
                [b"gzip", b"chunked;q=1", b"chunked, gzip", b"identity", b"", b"x" + eol + b" y"]
            )
        )
        headers.append(b"Transfer-Encoding: " + te)
    stray = draw(
        st.sampled_from(
            [b""] * 4 + [b"garbage", b"HTTP/1.1 200 OK" + eol + b"Content-Length: 0" + eol + eol]
        )
    )
    head = version + b" " + status + b" Reason" + eol + b"".join(h + eol for h in headers) + eol
    close = short or framing in ("close", "te-other") or draw(st.booleans())
    extra = bool(stray) or (framing == "length" and delta < 0)
    return Case(method, head + body + stray, close, coding, damage, framing, te, stray, extra)


def _script(case: Case, cuts: Sequence[int]) -> Any:
    def script(req: Request) -> Sequence[Action]:
        if req.path != "/first":
            own = b"own " + req.path.encode()
            return [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(own), own)]
        edges = [0, *sorted(set(cuts)), len(case.raw)]
        actions: list[Action] = []
        for start, end in itertools.pairwise(edges):
            if start < end:
                actions += [case.raw[start:end], Pause(0.002)]
        if case.close:
            actions.append(CLOSE)
        return actions

    return script


async def _outcome(lib: Any, url: str, method: str, **options: Any) -> Outcome:
    """What a caller of `lib` sees: the first request's result, its signals, the second's."""
    signals: list[str] = []
    config = lib.TraceConfig()

    async def on_end(*_: Any) -> None:
        signals.append("end")

    async def on_exception(*_: Any) -> None:
        signals.append("exception")

    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_exception)
    first: Outcome
    async with lib.ClientSession(
        trace_configs=[config], timeout=lib.ClientTimeout(total=5), **options
    ) as session:
        try:
            async with session.request(method, url + "/first") as resp:
                head = (resp.status, tuple(resp.version), tuple(resp.raw_headers))
                try:
                    first = ("ok", *head, await resp.read())
                except lib.ClientPayloadError:
                    first = ("payload error", *head)
        except lib.ClientResponseError as exc:
            first = ("response error", exc.status)
        except lib.ServerDisconnectedError:
            first = ("disconnected",)
        except TimeoutError:
            first = ("timeout",)
        second: Outcome
        try:
            async with session.get(url + "/second") as resp:
                second = (resp.status, await resp.read())
        except lib.ClientResponseError as exc:  # (a limit of the test's own may refuse it)
            second = ("response error", exc.status)
    return first, tuple(signals), second


def _run(lib: Any, case: Case, cuts: Sequence[int], backend: str, **options: Any) -> Outcome:
    async def main() -> Outcome:
        with anyio.fail_after(10):
            return await _outcome(lib, server.url, case.method, **options)

    with HostileServer(_script(case, cuts)) as server:
        result = asyncio.run(main()) if lib is aiohttp else anyio.run(main, backend=backend)
        assert not server.errors, server.errors
    return result


_aiohttp_seen: dict[Case, Outcome] = {}


def _aiohttp(case: Case) -> Outcome:
    if case not in _aiohttp_seen:
        _aiohttp_seen[case] = _run(aiohttp, case, (), "asyncio")
    return _aiohttp_seen[case]


def _allowed(case: Case, ours: Outcome, theirs: Outcome) -> bool:
    """compat's documented differences from aiohttp (README "Choices", "Wire behaviour").
    None of them returns bytes aiohttp does not: each is an error where aiohttp has another
    error or a result."""
    kind = ours[0][0]
    if kind == "ok":
        return False  # compat's bytes must be aiohttp's
    if case.framing == "te-other" and case.te in (b"", b"identity"):
        # httptools' llhttp refuses an empty Transfer-Encoding (aiohttp's reads to the close)
        return kind == "response error" or case.te == b"identity"
    if case.coding and (case.damage or case.stray):
        # truncated compressed bodies are errors (aiohttp accepts a gzip body cut short); a
        # body that fails to decode and stray bytes behind it is 400 before the body
        return kind in ("payload error", "response error")
    if case.coding == "x-gzip":
        return False  # decoded by compat, passed through by aiohttp: always a difference
    return False


def _check(case: Case, ours: Outcome, theirs: Outcome) -> None:
    assert ours[2] == theirs[2] == (200, b"own /second"), case  # the stray never leaks
    if case.coding == "x-gzip" and ours[0][0] == theirs[0][0] == "ok":
        # compat decodes x-gzip (a Choice); aiohttp passes it through: the same bytes decoded
        assert ours[0][:4] == theirs[0][:4], case
        assert gzip.decompress(theirs[0][4]) == ours[0][4], case
        return
    if ours != theirs and not _allowed(case, ours, theirs):
        pytest.fail(f"compat {ours}\n  != aiohttp {theirs}\n  for {case.raw!r}")


_ISSUE_CASES = [
    Case("GET", b"HTTP/1.1 200 OK\r\nContent-Length : 10\r\n\r\nhello", True, "", "",
         "length", b"", b""),
    Case("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello", True, "", "",
         "te-other", b"gzip", b""),
    Case("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nhello", True, "",
         "", "te-other", b"chunked, gzip", b""),
    Case("GET", b"HTTP/1.1 200 OK\r\nX-A: b  \r\nContent-Length: 5\r\n\r\nhello", False, "",
         "", "length", b"", b""),
    Case("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
         False, "", "", "chunked", b"", b""),
    Case("GET", b"HTTP/1.0 099 OK\r\n\r\nhello", True, "", "", "close", b"", b""),
    Case("GET", b"HTTP/1.0 200 OK\r\nContent-Encoding: gzip\r\n\r\n"
         + gzip.compress(b"hello", mtime=0) + b"junk", True, "gzip", "junk", "close", b"", b""),
    Case("GET", b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: 13\r\n\r\n"
         + bytes([*zlib.compress(b"hello")[:-1], zlib.compress(b"hello")[-1] ^ 1]), False,
         "deflate", "flip", "length", b"", b""),
    Case("GET", b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 129 + b"Content-Length: 0\r\n\r\n",
         False, "", "", "length", b"", b""),
    Case("GET", b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 8190 + b"\r\nContent-Length: 0\r\n\r\n",
         False, "", "", "length", b"", b""),
]  # fmt: skip


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("case", _ISSUE_CASES, ids=repr)
def test_the_issues_cases_read_as_aiohttp_reads_them(case: Case, backend: str) -> None:
    ours = _run(compat, case, (), backend)
    theirs = _aiohttp(case)
    if case.damage:  # corrupt compressed bodies: an error, never the bytes
        assert ours[0][0] == "payload error" and theirs[0][0] == "payload error", case
    _check(case, ours, theirs)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    # Each example runs real sockets for both clients (~0.1 s): shrinking would take
    # minutes, and a failure prints its raw bytes as they are.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    report_multiple_bugs=False,
)
@given(case=cases(), data=st.data())
def test_generated_responses_read_as_aiohttp_reads_them(
    backend: str, case: Case, data: st.DataObject
) -> None:
    theirs = _aiohttp(case)
    ours = _run(compat, case, (), backend)
    _check(case, ours, theirs)
    cuts = data.draw(st.lists(st.integers(1, len(case.raw) - 1), max_size=4), label="cuts")
    if cuts:
        split = _run(compat, case, cuts, backend)
        # split delivery: the one-piece outcome, or an error; never other bytes (bytes behind
        # a response fail it only if they share its last write, as in aiohttp)
        assert split[2] == (200, b"own /second"), case
        if split[0][0] == "ok" and not (case.extra and ours[0][0] != "ok"):
            assert split[0] == ours[0], f"split at {cuts}: {split} != {ours} for {case.raw!r}"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    ("case", "options", "kind"),
    [
        (_ISSUE_CASES[-2], {"max_headers": 200}, "ok"),
        (_ISSUE_CASES[-1], {"max_field_size": 9000}, "ok"),
        (_ISSUE_CASES[3], {"max_field_size": 10}, "response error"),
        (_ISSUE_CASES[3], {"max_line_size": 1}, "response error"),  # the reason: "OK"
        (_ISSUE_CASES[3], {"max_headers": 1}, "response error"),
    ],
    ids=["more-headers", "longer-field", "short-field", "short-line", "one-header"],
)
def test_head_limits_are_the_sessions_as_in_aiohttp(
    case: Case, options: dict[str, int], kind: str, backend: str
) -> None:
    # ClientSession(max_line_size=, max_field_size=, max_headers=) as aiohttp 3.14 takes them
    ours = _run(compat, case, (), backend, **options)
    theirs = _run(aiohttp, case, (), "asyncio", **options)
    assert ours == theirs, case
    assert ours[0][0] == kind


def test_versions_equal_aiohttps() -> None:
    assert compat.HttpVersion11 == aiohttp.HttpVersion11 == (1, 1)
    assert compat.HttpVersion10 == aiohttp.HttpVersion10
    assert compat.HttpVersion(2, 0) == aiohttp.HttpVersion(2, 0) > compat.HttpVersion11
