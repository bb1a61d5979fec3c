"""The live API surface against aiohttp 3.14: every client-side name of `aiohttp.__all__`, and the
public attributes of `ClientSession`, `TCPConnector`/`BaseConnector`/`UnixConnector`,
`ClientResponse` and `response.content` (names and value types, read off live objects after a
real request), must exist in compat, or be listed below as not built (with the reason) or as
pending (another issue of this round builds it; the lead removes entries as branches merge).

The README's lists of provided and not-built names are generated from this file:
`python -m tests.test_api_surface` rewrites them; `test_readme_lists_are_current` fails when
they are stale, so the README never claims a name the code does not have.
"""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

import compat

from .app_server import AppServer

README = Path(__file__).resolve().parent.parent / "README.md"

NOT_CLIENT_SIDE = {
    "GunicornWebWorker": "aiohttp's server, run under Gunicorn",
    "GunicornUVLoopWebWorker": "aiohttp's server, run under Gunicorn",
    "NamedPipeConnector": "Windows named pipes on asyncio's ProactorEventLoop only",
}

NOT_BUILT = {
    # top-level names
    "AddrInfoType": "the type of `TCPConnector(socket_factory=)`, aiohappyeyeballs' socket hook; compat opens its sockets through anyio (so trio works) and takes no socket factory",
    "SocketFactoryType": "as `AddrInfoType`: `socket_factory=` is not built",
    "DataQueue": "an asyncio queue (it takes the loop) inside aiohttp's parsers and websocket reader; anyio's memory object streams do this on both backends",
    "FlowControlDataQueue": "deprecated in aiohttp (removed in 4.0); protocol-internal",
    "EofStream": "the end-of-stream signal of `DataQueue`, not built with it",
    "streamer": "deprecated in aiohttp (`@streamer` is a coroutine-to-payload decorator, superseded by async generators as `data=`, which compat takes)",
    "EMPTY_PAYLOAD": "aiohttp's shared empty `StreamReader`; compat gives every response a `StreamReader` of its own (`at_eof()` is True for an empty body)",
    # attributes
    "ClientSession.ATTRS": "aiohttp-internal: the private attribute names it warns about setting",
    "ClientSession.loop": "deprecated in aiohttp; an asyncio loop, which trio does not have",
    "ClientResponse.ATTRS": "aiohttp-internal, as `ClientSession.ATTRS`",
    "ClientResponse.start": "aiohttp-internal: reads the head from an aiohttp `Connection`; compat's engine has read it when the response exists",
    "ClientResponse.output_size": "deprecated since aiohttp 3.14.4 in favour of `UploadTracker`",
    "ClientResponse.upload_complete": "deprecated since aiohttp 3.14.4 in favour of `UploadTracker`; an `asyncio.Future`, which trio does not have",
    "TCPConnector.connect": "hands out aiohttp's `Connection` (an asyncio protocol and transport) for a `ClientRequest`; compat's connections belong to its engine, which writes and reads them itself on both backends: send through a session",
    "BaseConnector.connect": "as `TCPConnector.connect`",
    "UnixConnector.connect": "as `TCPConnector.connect`",
    "StreamReader.feed_data": "the writing side of aiohttp's reader, fed by its protocol; compat's transport feeds the body, `response.content` is read-only",
    "StreamReader.feed_eof": "as `feed_data`",
    "StreamReader.set_exception": "as `feed_data`",
    "StreamReader.on_eof": "as `feed_data`: a callback hook for aiohttp's protocol",
    "StreamReader.begin_http_chunk_receiving": "as `feed_data`",
    "StreamReader.end_http_chunk_receiving": "as `feed_data`",
}

PENDING: dict[str, int] = {}

KNOWN_TYPE_DIFFERENCES = {
    "ClientResponse.connection": "aiohttp sets it to None once the body is in; compat keeps the socket details readable (README, Choices)",
}

CLASSES = (
    "ClientSession",
    "TCPConnector",
    "BaseConnector",
    "UnixConnector",
    "ClientResponse",
    "StreamReader",
)


def client_names() -> list[str]:
    return [n for n in aiohttp.__all__ if n not in NOT_CLIENT_SIDE]


def _kind(value: Any) -> str:
    """What a value is, in terms both libraries share: a callable, or its type's name."""
    if isinstance(value, type):
        return "class"
    if callable(value):
        return "callable"
    return type(value).__name__


def _attributes(obj: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in dir(obj):
            if name.startswith("_"):
                continue
            try:
                out[name] = _kind(getattr(obj, name))
            except Exception as exc:  # a property that raises on this object
                out[name] = f"raises {type(exc).__name__}"
    return out


async def live_surface(lib: Any, app: AppServer) -> dict[str, dict[str, str]]:
    """Public attributes and value kinds of live objects, after a request with a body read."""
    surface: dict[str, dict[str, str]] = {}
    for cls, args in (("BaseConnector", ()), ("UnixConnector", ("/nonexistent.sock",))):
        connector = getattr(lib, cls)(*args)
        surface[cls] = _attributes(connector)
        await connector.close()
    async with lib.ClientSession() as session:
        surface["ClientSession"] = _attributes(session)
        surface["TCPConnector"] = _attributes(session.connector)
        async with session.get(app.url_for("/items")) as resp:
            surface["ClientResponse"] = _attributes(resp)
            surface["StreamReader"] = _attributes(resp.content)
            await resp.read()
    return surface


@pytest.fixture(scope="module")
def app() -> Iterator[AppServer]:
    srv = AppServer().start()
    yield srv
    srv.stop()


def test_every_client_name_is_provided_not_built_or_pending() -> None:
    missing = [
        n
        for n in client_names()
        if not hasattr(compat, n) and n not in NOT_BUILT and n not in PENDING
    ]
    assert missing == []
    stale = [n for n in (*NOT_BUILT, *PENDING) if "." not in n and hasattr(compat, n)]
    assert stale == [], "provided now: take them off the not-built / pending lists"
    assert all(NOT_BUILT[n].strip() for n in NOT_BUILT)


def test_provided_names_are_the_same_kind_of_thing() -> None:
    for name in client_names():
        if hasattr(compat, name):
            ours, theirs = getattr(compat, name), getattr(aiohttp, name)
            assert _kind(ours) == _kind(theirs) or type(ours).__name__ == type(theirs).__name__, (
                name
            )
            if isinstance(theirs, type) and issubclass(theirs, BaseException):
                for base in theirs.__mro__[1:]:
                    if base.__module__.startswith("aiohttp") and hasattr(compat, base.__name__):
                        assert issubclass(ours, getattr(compat, base.__name__)), (name, base)


@pytest.mark.anyio
async def test_live_attributes_and_value_types_match_aiohttp(app: AppServer) -> None:
    theirs = await anyio.to_thread.run_sync(lambda: asyncio.run(live_surface(aiohttp, app)))
    ours = await live_surface(compat, app)
    missing, wrong_type = [], []
    for cls in CLASSES:
        for name, kind in theirs[cls].items():
            key = f"{cls}.{name}"
            if key in NOT_BUILT:
                assert name not in ours[cls], f"{key} is provided now: take it off the list"
                continue
            if key in PENDING:  # absent, or not yet of aiohttp's type
                assert ours[cls].get(name) != kind, f"{key} is provided now: take it off the list"
                continue
            if name not in ours[cls]:
                missing.append(key)
            elif ours[cls][name] != kind and key not in KNOWN_TYPE_DIFFERENCES:
                wrong_type.append((key, kind, ours[cls][name]))
    assert missing == []
    assert wrong_type == []


# --- the README's lists, generated from the code ----------------------------------------------------


def _wrapped(text: str, indent: str = "") -> str:
    return textwrap.fill(
        text, 100, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


def _provided_block() -> str:
    names = [n for n in client_names() if hasattr(compat, n)]
    lines = [
        f"compat provides {len(names)} of the {len(client_names())} client-side names of "
        "aiohttp 3.14's `__all__` under the same name (checked live by "
        "`tests/test_api_surface.py`, with the public attributes of the session, connectors, "
        "response and `response.content`; the rest are listed under Not built):",
        ", ".join(f"`{n}`" for n in sorted(names, key=str.lower)) + ".",
    ]
    return "\n\n".join(_wrapped(line) for line in lines)


def _not_built_block() -> str:
    lines = ["aiohttp client names and attributes not built, and why:", ""]
    lines += [_wrapped(f"- `{name}`: {why}.", "  ") for name, why in NOT_BUILT.items()]
    lines += [
        _wrapped(f"- `{name}`: {why} (not client-side).", "  ")
        for name, why in NOT_CLIENT_SIDE.items()
    ]
    pending: dict[int, list[str]] = {}
    for name, issue in PENDING.items():
        pending.setdefault(issue, []).append(f"`{name}`")
    if pending:
        lines += ["", "Being built (an entry leaves this list when its branch merges):", ""]
        lines += [
            _wrapped(f"- issue #{issue}: {', '.join(names)}.", "  ")
            for issue, names in sorted(pending.items())
        ]
    return "\n".join(lines)


BLOCKS = {"api-names": _provided_block, "api-not-built": _not_built_block}


def _marked(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)", re.S)


def rendered_readme(text: str) -> str:
    for name, render in BLOCKS.items():
        text, found = _marked(name).subn(
            lambda m, r=render: m.group(1) + r() + "\n" + m.group(3), text
        )
        assert found == 1, f"README has no <!-- {name}:start/end --> block"
    return text


def test_readme_lists_are_current() -> None:
    text = README.read_text()
    assert text == rendered_readme(text), "stale README lists: run python -m tests.test_api_surface"
    not_built = text[text.index("## Not built") :]
    for name in [n for n in client_names() if not hasattr(compat, n)]:
        assert f"`{name}`" in not_built, name


if __name__ == "__main__":
    README.write_text(rendered_readme(README.read_text()))
    sys.exit(0)
