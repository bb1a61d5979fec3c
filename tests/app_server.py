"""tests/server.py's server with the routes the migration tests need (a login that sets a cookie
on its redirect, an upload endpoint that parses what it got, a Docker-like API, bodies chosen by
the test), served on TCP (optionally TLS) or on a Unix socket."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import gzip
import hashlib
import json
import ssl
from urllib.parse import parse_qsl, unquote_to_bytes

from .server import Request, TestServer, _response

CONTAINERS = [
    {"Id": "4f1c", "Names": ["/web"], "State": "running"},
    {"Id": "9a2b", "Names": ["/db"], "State": "exited"},
]


def _json(value: object, status: int = 200, headers: list[tuple[str, str]] | None = None) -> bytes:
    return _response(
        status, json.dumps(value).encode(), [("Content-Type", "application/json"), *(headers or [])]
    )


def parse_form(content_type: str, body: bytes) -> list[dict[str, object]]:
    """The fields of a urlencoded or multipart body: name, filename, type, size, sha256."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return [
            {"name": k, "value": v} for k, v in parse_qsl(body.decode(), keep_blank_values=True)
        ]
    if not content_type.startswith("multipart/"):
        return [{"raw": hashlib.sha256(body).hexdigest(), "size": len(body)}]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: list[dict[str, object]] = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True) or b""
        fields.append(
            {
                "name": part.get_param("name", header="content-disposition"),
                "filename": part.get_filename(),
                "type": part.get_content_type(),
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        )
    return fields


class AppServer(TestServer):
    """Serves on 127.0.0.1 (TLS with a context), or on the Unix socket `unix_path`."""

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, *, unix_path: str | None = None
    ) -> None:
        super().__init__(ssl_context)
        self.unix_path = unix_path
        self.calls: dict[str, int] = {}

    async def _start(self) -> None:
        if self.unix_path is None:
            await super()._start()
        else:
            self._server = await asyncio.start_unix_server(self._serve, self.unix_path)

    async def _route(self, request: Request, writer: asyncio.StreamWriter) -> bytes | None:
        parts = request.path.strip("/").split("/")
        name, args = parts[0], parts[1:]
        q = {k: v[0] for k, v in request.query.items()}
        if name == "login":  # a cookie set on the redirect
            return _response(
                302,
                b"",
                [("Set-Cookie", "session=s3cr3t; Path=/"), ("Location", q.get("next", "/whoami"))],
            )
        if name == "whoami":
            return _json(
                {
                    "cookie": request.header("cookie"),
                    "authorization": request.header("authorization"),
                    "host": request.header("host"),
                    "path": request.path,
                }
            )
        if name == "set":  # /set?name=value: one Set-Cookie per query item
            cookies = [("Set-Cookie", f"{k}={v}; Path=/") for k, v in q.items()]
            return _response(200, b"set", cookies)
        if name == "upload":
            content_type = request.header("content-type") or ""
            return _json(
                {
                    "type": content_type.split(";")[0],
                    "length": request.header("content-length"),
                    "chunked": request.header("transfer-encoding"),
                    "fields": parse_form(content_type, request.body),
                },
                201,
            )
        if name == "body":  # /body?b=<percent-encoded bytes>
            return _response(
                200, unquote_to_bytes(q.get("b", "")), [("Content-Type", "text/plain")]
            )
        if name == "chunks":  # /chunks?b=abc,de,f: one HTTP chunk each, written one by one
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in q.get("b", "").split(","):
                data = piece.encode()
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.02)
            writer.write(b"0\r\n\r\n")
            return None
        if name == "items":  # a paginated API: 3 pages, Link headers as GitHub's
            page = int(q.get("page", "1"))
            base = f"/items?per={q.get('per', '2')}"
            links = [f'<{base}&page={page + 1}>; rel="next"'] if page < 3 else []
            links.append(f'<{base}&page=3>; rel=last; title="the end"')
            items = [f"item-{page}-{i}" for i in range(int(q.get("per", "2")))]
            return _json({"items": items}, headers=[("Link", ", ".join(links))])
        if name == "flaky":  # /flaky/<key>?fail=N: the first N calls per key get a 503
            self.calls[args[0]] = self.calls.get(args[0], 0) + 1
            if self.calls[args[0]] <= int(q.get("fail", "1")):
                return _response(503, b"busy", [("Retry-After", "0")])
            return _json({"key": args[0], "calls": self.calls[args[0]]})
        if name == "download":  # a gzip-encoded file in HTTP chunks, with a file name
            data = gzip.compress(bytes(range(256)) * int(q.get("kib", "64")) * 4)
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n"
                b'ETag: W/"v1"\r\nContent-Type: application/octet-stream\r\n'
                b'Content-Disposition: attachment; filename="resume.bin"; '
                b"filename*=UTF-8''r%C3%A9sum%C3%A9.bin\r\n\r\n"
            )
            for start in range(0, len(data), 4096):
                piece = data[start : start + 4096]
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            return None
        if name == "pinned":
            return _json({"secret": 42})
        if name == "containers":  # Docker's API, a little of it
            if args == ["json"]:
                return _json(CONTAINERS)
            if args == ["create"] and request.method == "POST":
                spec = json.loads(request.body)
                return _json({"Id": "c0ffee", "Image": spec.get("Image"), "Warnings": []}, 201)
            if len(args) == 2 and args[1] == "logs":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(4):
                    line = f"{args[0]} log line {i}\n".encode()
                    writer.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.01)
                writer.write(b"0\r\n\r\n")
                return None
            return _json({"message": "no such container"}, 404)
        return await super()._route(request, writer)
