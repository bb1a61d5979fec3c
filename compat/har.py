"""A HAR 1.2 recorder: every request a session makes, as an HTTP Archive a browser can draw.

Browsers' developer tools import HAR files into their network panel and draw each request's
waterfall (queueing, DNS, connect, TLS, send, wait, receive). `HarRecorder` builds that file
from compat's signals, so it works for both entry points:

    recorder = compat.har.HarRecorder()
    async with compat.ClientSession(trace_configs=[recorder.trace_config()]) as session:
        ...
    recorder.save("requests.har")

Each hop of a redirect is an entry of its own; `connection` names the TCP connection an entry
went over (the same id twice means the connection was reused). Secrets never reach the file
unless asked for: `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie` values and
URL passwords are redacted; bodies are recorded only with `record_bodies=True`, each bounded.
At most `max_entries` entries are kept (the oldest go first), so a long-lived session's
recorder holds bounded memory.
"""

from __future__ import annotations

import base64
import json
import os
from collections import deque
from datetime import datetime, timezone
from http.cookies import CookieError, SimpleCookie
from time import time
from typing import Any

from yarl import URL

from ._tracing import SIGNAL_NAMES, TraceConfig
from .timings import Timings

__all__ = ["REDACTED", "HarRecorder"]

REDACTED = "[redacted]"
"""What a secret is replaced with."""

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_DEFAULT_BODY_LIMIT = 1024 * 1024
_MAX_KNOWN_CONNECTIONS = 4096


def _version_text(version: Any) -> str:
    """'HTTP/1.1' whether the response gives a string or an (major, minor) named tuple."""
    if isinstance(version, tuple) and len(version) == 2:
        return f"HTTP/{version[0]}.{version[1]}"
    text = str(version or "")
    return "HTTP/2.0" if text == "HTTP/2" else text


class _Hop:
    """One request on the wire (a redirect makes several), as the signals reveal it."""

    __slots__ = (
        "body_limit",
        "connection_id",
        "decoded",
        "error",
        "finished",
        "headers_sent",
        "method",
        "new_connection",
        "protocol",
        "received",
        "request_body",
        "request_size",
        "response",
        "response_body",
        "saw_dns",
        "saw_tls",
        "server_ip",
        "started",
        "timings",
        "url",
    )

    def __init__(self, method: str, url: URL, body_limit: int | None) -> None:
        self.started = time()
        self.timings = Timings()
        self.method = method
        self.url = url
        self.headers_sent: list[tuple[str, str]] = []
        self.request_size = 0
        self.request_body: bytearray | None = None if body_limit is None else bytearray()
        self.response_body: bytearray | None = None if body_limit is None else bytearray()
        self.body_limit = body_limit or 0
        self.received = 0
        self.response: Any = None
        self.error: BaseException | None = None
        self.connection_id: str | None = None
        self.server_ip: str | None = None
        self.new_connection = False
        self.saw_dns = False
        self.saw_tls = False
        self.protocol: str | None = None
        self.decoded = True  # chunk signals carry the decoded body (not so under httpx)
        self.finished = False  # a redirect hop: its timeline ended at the redirect

    def keep(self, buffer: bytearray | None, chunk: bytes) -> None:
        if buffer is not None and len(buffer) < self.body_limit:
            buffer += chunk[: self.body_limit - len(buffer)]


class _RequestState:
    """The trace context of one request: what a handler of another config sees as usual."""

    __slots__ = ("hop", "trace_request_ctx")

    def __init__(self, trace_request_ctx: Any = None) -> None:
        self.trace_request_ctx = trace_request_ctx
        self.hop: _Hop | None = None


class HarRecorder:
    """Records requests into a HAR 1.2 log; hand `trace_config()` to a session or client."""

    def __init__(
        self,
        *,
        max_entries: int = 1000,
        record_bodies: bool = False,
        max_body_size: int = _DEFAULT_BODY_LIMIT,
        redact: bool = True,
        comment: str = "",
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._hops: deque[_Hop] = deque(maxlen=max_entries)
        self._body_limit = max_body_size if record_bodies else None
        self._redact = redact
        self._comment = comment
        self._dropped = 0
        # a connection's socket (its id()) and (local, peer) address pair -> its id in the file
        self._connections: dict[object, str] = {}
        self._next_connection = 0

    # --- recording ---

    def trace_config(self) -> TraceConfig:
        """A TraceConfig that records into this recorder (one per session is fine)."""
        config = TraceConfig(_RequestState)
        for name in SIGNAL_NAMES:
            getattr(config, name).append(self._handler(name))
        return config

    def _handler(self, name: str) -> Any:
        special = getattr(self, f"_{name}", None)

        async def record(session: Any, ctx: _RequestState, params: Any) -> None:
            if name == "on_request_start":
                ctx.hop = _Hop(params.method, params.url, self._body_limit)
                # httpx decodes above its transport: there chunks are the wire's bytes
                ctx.hop.decoded = not type(session).__module__.startswith("httpx")
            hop = ctx.hop
            if hop is None or hop.finished:
                return
            hop.timings.mark(name, params)
            if special is not None:
                special(ctx, hop, params)

        return record

    def _add(self, hop: _Hop) -> None:
        if len(self._hops) == self._hops.maxlen:
            self._dropped += 1
        self._hops.append(hop)

    def _on_connection_create_start(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        hop.new_connection = True

    def _on_dns_resolvehost_start(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        hop.saw_dns = True

    _on_dns_cache_hit = _on_dns_resolvehost_start

    def _on_tls_handshake_start(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        hop.saw_tls = True

    def _on_connection_established(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        self._next_connection += 1
        hop.connection_id = str(self._next_connection)
        hop.protocol = params.protocol
        if params.peer is not None:
            hop.server_ip = str(params.peer[0])
            # a new connection may have the address pair of a closed one: it takes it over
            self._connections[(params.local, params.peer)] = hop.connection_id

    def _on_request_headers_sent(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        hop.method, hop.url = params.method, params.url
        hop.headers_sent = list(params.headers.items())

    def _on_request_chunk_sent(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        hop.request_size += len(params.chunk)
        hop.keep(hop.request_body, params.chunk)

    def _on_response_chunk_received(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        hop.received += len(params.chunk)
        hop.keep(hop.response_body, params.chunk)

    def _on_request_end(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        self._responded(hop, params)
        self._add(hop)

    def _on_request_redirect(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        self._responded(hop, params)
        hop.finished = True  # the redirect body is dropped unread: this hop ends here
        self._add(hop)
        location = params.response.headers.get("Location", "")
        target = params.url.join(URL(location)) if location else params.url
        ctx.hop = _Hop(params.method, target, self._body_limit)
        ctx.hop.decoded = hop.decoded
        ctx.hop.timings.mark("on_request_redirect", params)

    def _on_request_exception(self, ctx: _RequestState, hop: _Hop, params: Any) -> None:
        hop.error = params.exception
        if hop.response is None:
            self._add(hop)

    def _responded(self, hop: _Hop, params: Any) -> None:
        response = params.response
        hop.response = response
        connection = getattr(response, "connection", None)
        transport = getattr(connection, "transport", None)
        if transport is None:  # a mocked response: no connection at all
            return
        # A connection is known by its socket object, or by its address pair while it is
        # open; a new connection (established) takes over whatever an old one left behind.
        sock = id(transport.get_extra_info("socket"))
        pair = (transport.get_extra_info("sockname"), transport.get_extra_info("peername"))
        if hop.connection_id is None:  # reused
            known = self._connections.get(sock) or self._connections.get(pair)
            if known is None:
                self._next_connection += 1
                known = str(self._next_connection)
            hop.connection_id = known
        connections = self._connections
        if len(connections) > _MAX_KNOWN_CONNECTIONS:  # the oldest half goes: bounded memory
            for key in list(connections)[: len(connections) // 2]:
                del connections[key]
        connections[sock] = hop.connection_id
        if pair != (None, None):
            connections[pair] = hop.connection_id
        if hop.server_ip is None and isinstance(pair[1], tuple):
            hop.server_ip = str(pair[1][0])

    # --- the file ---

    def entries(self) -> list[dict[str, Any]]:
        """The recorded entries, oldest first, as HAR 1.2 `entries[]` objects."""
        return [self._entry(hop) for hop in list(self._hops)]

    def to_dict(self) -> dict[str, Any]:
        """The whole HAR document (`{"log": …}`)."""
        from . import __version__

        log: dict[str, Any] = {
            "version": "1.2",
            "creator": {"name": "httpx-trace-compat", "version": __version__},
            "pages": [],
            "entries": self.entries(),
        }
        notes = [self._comment] if self._comment else []
        if self._dropped:
            notes.append(f"{self._dropped} older entries dropped (max_entries)")
        if notes:
            log["comment"] = "; ".join(notes)
        return {"log": log}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the HAR file (UTF-8 JSON)."""
        with open(path, "w", encoding="utf-8") as file:
            json.dump(self.to_dict(), file, indent=1, ensure_ascii=False)

    def clear(self) -> None:
        self._hops.clear()
        self._dropped = 0

    def _entry(self, hop: _Hop) -> dict[str, Any]:
        version = (
            _version_text(hop.response.version)
            if hop.response is not None
            else ("HTTP/2.0" if hop.protocol == "HTTP/2" else "HTTP/1.1")
        )
        timings = self._timings(hop)
        entry: dict[str, Any] = {
            "startedDateTime": datetime.fromtimestamp(hop.started, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "time": round(sum(v for k, v in timings.items() if k != "ssl" and v > 0), 3),
            "request": self._request(hop, version),
            "response": self._response(hop, version),
            "cache": {},
            "timings": timings,
        }
        if hop.server_ip is not None:
            entry["serverIPAddress"] = hop.server_ip
        if hop.connection_id is not None:
            entry["connection"] = hop.connection_id
        return entry

    def _timings(self, hop: _Hop) -> dict[str, float]:
        ms = {phase: round(s * 1000, 3) for phase, s in hop.timings.phases.items()}
        new = hop.new_connection
        return {
            "blocked": ms["blocked"],
            "dns": ms["dns"] if new and hop.saw_dns else -1,
            # HAR counts the TLS handshake inside connect too (and again alone as `ssl`)
            "connect": round(ms["connect"] + ms["tls"], 3) if new else -1,
            "ssl": ms["tls"] if new and hop.saw_tls else -1,
            "send": ms["send"],
            "wait": ms["wait"],
            "receive": ms["receive"],
        }

    def _url(self, url: URL) -> str:
        if url.password is not None and self._redact:
            url = url.with_password(REDACTED)
        return str(url)

    def _headers(self, pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
        return [
            {
                "name": name,
                "value": REDACTED if self._redact and name.lower() in _SECRET_HEADERS else value,
            }
            for name, value in pairs
        ]

    def _request(self, hop: _Hop, version: str) -> dict[str, Any]:
        url = hop.url
        pairs = hop.headers_sent
        cookies = [
            {"name": name.strip(), "value": REDACTED if self._redact else value.strip()}
            for header, line in pairs
            if header.lower() == "cookie"
            for name, _, value in (part.partition("=") for part in line.split(";"))
            if name.strip()
        ]
        request: dict[str, Any] = {
            "method": hop.method,
            "url": self._url(url),
            "httpVersion": version,
            "cookies": cookies,
            "headers": self._headers(pairs),
            "queryString": [{"name": k, "value": v} for k, v in url.query.items()],
            "headersSize": _head_size(f"{hop.method} {url.raw_path_qs} {version}", pairs)
            if pairs and not version.startswith("HTTP/2")
            else -1,
            "bodySize": hop.request_size,
        }
        if hop.request_size:
            mime = next((v for k, v in pairs if k.lower() == "content-type"), "")
            post: dict[str, Any] = {"mimeType": mime, "text": ""}
            if hop.request_body is not None:
                post.update(_body_text(bytes(hop.request_body)))
                if len(hop.request_body) < hop.request_size:
                    post["comment"] = f"first {len(hop.request_body)} bytes only"
            request["postData"] = post
        return request

    def _response(self, hop: _Hop, version: str) -> dict[str, Any]:
        response = hop.response
        if response is None:
            failed: dict[str, Any] = {
                "status": 0,
                "statusText": "",
                "httpVersion": "",
                "cookies": [],
                "headers": [],
                "content": {"size": 0, "mimeType": "x-unknown"},
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": -1,
            }
            if hop.error is not None:
                failed["_error"] = f"{type(hop.error).__name__}: {hop.error}"
            return failed
        pairs = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in response.raw_headers
        ]
        header = {name.lower(): value for name, value in reversed(pairs)}  # first one wins
        encoded = "content-encoding" in header
        content: dict[str, Any] = {
            "size": hop.received,
            "mimeType": header.get("content-type", "x-unknown"),
        }
        if hop.response_body is not None:
            content.update(_body_text(bytes(hop.response_body)))
        body_size: int = hop.received if not encoded or not hop.decoded else -1
        if encoded and hop.decoded and header.get("content-length", "").isdigit():
            body_size = int(header["content-length"])
            if hop.received:
                content["compression"] = hop.received - body_size
        location = header.get("location", "")
        result: dict[str, Any] = {
            "status": response.status,
            "statusText": response.reason or "",
            "httpVersion": version,
            "cookies": self._set_cookies(v for k, v in pairs if k.lower() == "set-cookie"),
            "headers": self._headers(pairs),
            "content": content,
            "redirectURL": str(hop.url.join(URL(location))) if location else "",
            "headersSize": _head_size(f"{version} {response.status} {response.reason or ''}", pairs)
            if not version.startswith("HTTP/2")
            else -1,
            "bodySize": body_size,
        }
        if hop.error is not None:
            result["_error"] = f"{type(hop.error).__name__}: {hop.error}"
        return result

    def _set_cookies(self, lines: Any) -> list[dict[str, Any]]:
        cookies: list[dict[str, Any]] = []
        for line in lines:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(line)
            except CookieError:
                continue
            for morsel in jar.values():
                cookie: dict[str, Any] = {
                    "name": morsel.key,
                    "value": REDACTED if self._redact else morsel.value,
                    "httpOnly": bool(morsel["httponly"]),
                    "secure": bool(morsel["secure"]),
                }
                for field in ("path", "domain", "expires"):
                    if morsel[field]:
                        cookie[field] = str(morsel[field])
                cookies.append(cookie)
        return cookies


def _head_size(first_line: str, pairs: list[tuple[str, str]]) -> int:
    """Bytes of an HTTP/1.x head: the first line, each field line, the blank line."""
    size = len(first_line.encode("latin-1", "replace")) + 2
    for name, value in pairs:
        size += len(name.encode("latin-1", "replace")) + 2 + len(value.encode("latin-1", "replace"))
        size += 2
    return size + 2


def _body_text(body: bytes) -> dict[str, str]:
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(body).decode("ascii"), "encoding": "base64"}
