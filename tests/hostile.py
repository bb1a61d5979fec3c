"""A misbehaving HTTP/1.1 server: each response is an exact byte script chosen by the test.

`HostileServer(script)` listens on 127.0.0.1 and serves every accepted connection from a thread
of its own, with blocking sockets (so it behaves the same whatever event loop the client under
test runs). For each request it reads off the wire, it calls `script(request)` and performs the
actions returned, in order:

- `bytes`: one `sendall` (each write a separate send, so a test decides what shares a segment);
- `Pause(seconds)`: sleep between writes (part of the wire script, e.g. a body after its head);
- `DELIVERED`: block until the client has read every byte written so far, so the next write
  reaches it as a read of its own (a split the client cannot merge, whatever the load);
- `Wait(event)`: block until a `threading.Event` the test sets (ordering by event, not by time);
- `Signal(event)`: set a `threading.Event` the test waits for;
- `CLOSE` / `RESET`: close the connection with a FIN / a TCP RST, and stop serving it.

It records every connection it accepted (`connections`), the raw bytes received on each
(`Connection.received`), and every request it parsed (`requests`, each with its connection and
its index on that connection), so tests observe from outside how many connections were opened,
what each request looked like on the wire and which connection served which request.

Every blocking call has a timeout; `stop()` (or leaving the `with` block) shuts everything down
and joins the threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

__all__ = [
    "CLOSE",
    "DELIVERED",
    "RESET",
    "Action",
    "Connection",
    "HostileServer",
    "Pause",
    "Request",
    "Script",
    "Signal",
    "Wait",
    "response",
]

TIMEOUT = 10.0
"""The bound on every blocking call the server makes (reads, writes, waits, joins)."""


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Wait:
    event: threading.Event


@dataclass(frozen=True)
class Signal:
    event: threading.Event


class _Close:
    def __repr__(self) -> str:
        return "CLOSE"


class _Reset:
    def __repr__(self) -> str:
        return "RESET"


CLOSE = _Close()
RESET = _Reset()


class _Delivered:
    def __repr__(self) -> str:
        return "DELIVERED"


DELIVERED = _Delivered()


def _queued(sock: socket.socket, request: int) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0" * 4))[0]  # type: ignore[no-any-return]


def connected_sockets() -> Iterator[tuple[socket.socket, Any]]:
    """Each connected socket of this process with its peer address, duplicated only for the
    time the caller looks at it (a listener or a closed socket is passed over)."""
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            dup = os.dup(int(name))
        except OSError:
            continue  # closed meanwhile
        try:
            sock = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue
        with sock:
            try:
                peer = sock.getpeername()
            except OSError:
                continue  # not connected: a listener, a closed one
            yield sock, peer


def _client_unread(conn: socket.socket) -> int | None:
    """Bytes waiting unread in the client's end of `conn`, or None if that end is not a socket
    of this process (the client under test runs in the process: its socket is found by
    address among the process's descriptors)."""
    want = (conn.getpeername(), conn.getsockname())
    for sock, peer in connected_sockets():
        with contextlib.suppress(OSError):
            if (sock.getsockname(), peer) == want:
                return _queued(sock, termios.FIONREAD)
    return None


Action = bytes | Pause | Wait | Signal | _Close | _Reset | _Delivered


@dataclass
class Request:
    """A request as the server parsed it off the wire."""

    conn: int  # index of the connection (in accept order)
    index: int  # index of this request on its connection
    number: int  # index among all requests the server saw
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes  # the request's exact bytes: head and body

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Connection:
    index: int
    sock: socket.socket
    received: bytearray = field(default_factory=bytearray)
    requests: list[Request] = field(default_factory=list)
    client_closed: threading.Event = field(default_factory=threading.Event)
    """Set when the client closed its end (a read returned EOF or the peer reset)."""
    done: threading.Event = field(default_factory=threading.Event)
    """Set when the server closed its socket and stopped serving this connection."""


Script = Callable[[Request], Sequence[Action]]


def response(
    status: int = 200,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] | None = None,
    *,
    reason: str = "OK",
    version: str = "HTTP/1.1",
    length: bool = True,
) -> bytes:
    """A response's exact bytes: `Content-Length` is added if `length` and none is given."""
    lines = [f"{version} {status} {reason}"]
    headers = list(headers or [])
    if length and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        headers.append(("Content-Length", str(len(body))))
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Closed(Exception):
    """The client closed the connection, or the server is stopping."""


class HostileServer:
    """See the module docstring. `url` is http://127.0.0.1:PORT."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections: list[Connection] = []
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []  # exceptions raised by the script itself
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + path

    # --- lifecycle ---

    def start(self) -> HostileServer:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._acceptor.join(TIMEOUT)
        with self._lock:
            connections = list(self.connections)
            threads = list(self._threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(TIMEOUT)
        self._listener.close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what the tests read ---

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Wait until every connection accepted so far is closed on the server side."""
        deadline = time.monotonic() + timeout
        with self._lock:
            connections = list(self.connections)
        return all(conn.done.wait(max(0.0, deadline - time.monotonic())) for conn in connections)

    def received(self) -> bytes:
        """Every byte received on every connection, in connection order."""
        with self._lock:
            return b"".join(bytes(conn.received) for conn in self.connections)

    def paths(self) -> list[tuple[int, str]]:
        """(connection index, path) of every request, in the order the server read them."""
        with self._lock:
            return [(r.conn, r.path) for r in self.requests]

    # --- serving ---

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()  # stop() shuts the listener down: OSError
            except OSError:
                return
            if self._stopping.is_set():
                sock.close()
                return
            sock.settimeout(TIMEOUT)
            with self._lock:
                conn = Connection(len(self.connections), sock)
                self.connections.append(conn)
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: Connection) -> None:
        buffer = bytearray()
        try:
            while not self._stopping.is_set():
                request = self._read_request(conn, buffer)
                if not self._perform(conn, self.script(request)):
                    return
        except (_Closed, TimeoutError):  # the client closed, or stayed silent for TIMEOUT
            pass
        except OSError:  # the client reset the connection
            conn.client_closed.set()
        except BaseException as exc:  # a bug in a test's script: keep it for the test to see
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                conn.sock.close()
            conn.done.set()

    def _recv(self, conn: Connection, buffer: bytearray) -> None:
        data = conn.sock.recv(65536)
        if not data:
            conn.client_closed.set()
            raise _Closed
        conn.received += data
        buffer += data

    def _read_request(self, conn: Connection, buffer: bytearray) -> Request:
        while b"\r\n\r\n" not in buffer:
            self._recv(conn, buffer)
        end = buffer.index(b"\r\n\r\n") + 4
        head = bytes(buffer[:end])
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = [*lines[0].split(" ", 2), "", ""][:3]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        del buffer[:end]
        body = self._read_body(conn, buffer, headers)
        with self._lock:
            request = Request(
                conn=conn.index,
                index=len(conn.requests),
                number=len(self.requests),
                method=method,
                target=target,
                version=version,
                headers=headers,
                body=body,
                raw=head + body,  # the body as framed on the wire is in conn.received
            )
            conn.requests.append(request)
            self.requests.append(request)
        return request

    def _read_body(
        self, conn: Connection, buffer: bytearray, headers: list[tuple[str, str]]
    ) -> bytes:
        values = {k.lower(): v for k, v in headers}
        if "chunked" in values.get("transfer-encoding", "").lower():
            parts = []
            while True:
                while b"\r\n" not in buffer:
                    self._recv(conn, buffer)
                line_end = buffer.index(b"\r\n")
                size = int(bytes(buffer[:line_end]).split(b";")[0].strip() or b"0", 16)
                del buffer[: line_end + 2]
                if size == 0:
                    while not buffer.startswith(b"\r\n"):  # trailers, if any, then CRLF
                        while b"\r\n" not in buffer:
                            self._recv(conn, buffer)
                        if buffer.startswith(b"\r\n"):
                            break
                        del buffer[: buffer.index(b"\r\n") + 2]
                    del buffer[:2]
                    return b"".join(parts)
                while len(buffer) < size + 2:
                    self._recv(conn, buffer)
                parts.append(bytes(buffer[:size]))
                del buffer[: size + 2]
        length = int(values.get("content-length", "0") or "0")
        while len(buffer) < length:
            self._recv(conn, buffer)
        body = bytes(buffer[:length])
        del buffer[:length]
        return body

    def _perform(self, conn: Connection, actions: Sequence[Action]) -> bool:
        """Run a request's script; False if it closed the connection."""
        for action in actions:
            if isinstance(action, bytes):
                conn.sock.sendall(action)
            elif isinstance(action, Pause):
                if self._stopping.wait(action.seconds):
                    raise _Closed
            elif isinstance(action, Wait):
                deadline = time.monotonic() + TIMEOUT
                while not action.event.wait(0.05):
                    if self._stopping.is_set():
                        raise _Closed
                    if time.monotonic() > deadline:
                        raise RuntimeError("the test never set the event the script waits for")
            elif isinstance(action, Signal):
                action.event.set()
            elif isinstance(action, _Delivered):
                self._wait_delivered(conn)
            elif isinstance(action, _Reset):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return False
            elif isinstance(action, _Close):
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_WR)
                self._drain_until_client_closes(conn)
                return False
            else:  # pragma: no cover - a typo in a test's script
                raise TypeError(f"unknown action {action!r}")
        return True

    def _wait_delivered(self, conn: Connection) -> None:
        """Poll until our send queue is empty (all acknowledged: on loopback, in the client's
        receive queue) and the client's receive queue is empty too (its reader took it)."""
        deadline = time.monotonic() + TIMEOUT
        while _queued(conn.sock, termios.TIOCOUTQ) or _client_unread(conn.sock):
            if self._stopping.wait(0.0002):
                raise _Closed
            if time.monotonic() > deadline:
                raise RuntimeError("the client did not read what was sent")

    def _drain_until_client_closes(self, conn: Connection) -> None:
        """After our FIN, read (and record) until the client closes too, so our socket's
        close never turns into a RST that could destroy data still in flight to the client."""
        buffer = bytearray()
        with contextlib.suppress(_Closed, OSError):
            while not self._stopping.is_set():
                self._recv(conn, buffer)
