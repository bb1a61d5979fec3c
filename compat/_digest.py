"""`DigestAuthMiddleware`: HTTP Digest authentication (RFC 7616) as a client middleware.

On a `401` with a `WWW-Authenticate: Digest …` challenge the request is sent once more with an
`Authorization: Digest …` answer; later requests in the challenge's protection space answer up
front (`preemptive=True`) with an increasing nonce count. Hashes: MD5, SHA(-1), SHA-256,
SHA-512, each with its `-sess` variant; qop `auth` and `auth-int` (auth-int hashes the body).
The credentials stay with the origin of the first request the middleware sees, and the
origins the challenge's `domain` names. Field order, quoting and errors are aiohttp 3.14's.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from typing import Any, Final

from yarl import URL

from ._exceptions import ClientError
from ._middlewares import ClientHandlerType, ClientRequest
from ._payload import Payload
from ._response import ClientResponse

__all__ = ["DigestAuthMiddleware"]

_HASHES: Final[dict[str, Callable[[bytes], Any]]] = {}
for _names, _fn in (
    (("MD5",), hashlib.md5),
    (("SHA",), hashlib.sha1),
    (("SHA256", "SHA-256"), hashlib.sha256),
    (("SHA512", "SHA-512"), hashlib.sha512),
):
    for _name in _names:
        _HASHES[_name] = _HASHES[_name + "-SESS"] = _fn
_SUPPORTED: Final = ", ".join(sorted(_HASHES))
_KEPT: Final = ("realm", "nonce", "qop", "algorithm", "opaque", "domain", "stale")
_QUOTED: Final = frozenset({"username", "realm", "nonce", "uri", "response", "opaque", "cnonce"})
_ESCAPE = re.compile(r'\\(["\\])')
_NAME = re.compile(r"\w+")


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _challenge_params(text: str) -> dict[str, str]:
    """The `name=value` / `name="value"` parameters of the first challenge in `text`: a bare
    word before any parameter (the scheme) is skipped, one after them starts the next
    challenge and ends the scan."""
    params: dict[str, str] = {}
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] in " \t,":
            pos += 1
            continue
        name_match = _NAME.match(text, pos)
        if name_match is None:
            pos += 1
            continue
        name, pos = name_match.group(), name_match.end()
        after = pos
        while after < end and text[after] in " \t":
            after += 1
        if after >= end or text[after] != "=":
            if params:
                break
            continue
        after += 1
        while after < end and text[after] in " \t":
            after += 1
        if after < end and text[after] == '"':
            closing = after + 1
            while closing < end and text[closing] != '"':
                closing += 2 if text[closing] == "\\" else 1
            if closing >= end:  # no closing quote: not a value
                pos = after
                continue
            params[name] = _ESCAPE.sub(r"\1", text[after + 1 : closing])
            pos = closing + 1
        else:
            stop = after
            while stop < end and text[stop] not in " \t,":
                stop += 1
            if stop == after:
                continue
            params[name] = text[after:stop]
            pos = stop
    return params


class DigestAuthMiddleware:
    """aiohttp's digest middleware: `ClientSession(middlewares=(DigestAuthMiddleware(u, p),))`."""

    def __init__(self, login: str, password: str, preemptive: bool = True) -> None:
        for given, what in ((login, "login"), (password, "password")):
            if given is None:
                raise ValueError(f"None is not allowed as {what} value")
        if ":" in login:
            raise ValueError('A ":" is not allowed in username (RFC 1945#section-11.1)')
        self._login = login
        self._password = password
        self._preemptive = preemptive
        self._challenge: dict[str, str] = {}
        self._space: list[str] = []
        self._origin: URL | None = None
        self._nonce = ""
        self._count = 0

    async def _encode(self, method: str, url: URL, body: Payload | bytes) -> str:
        """The `Authorization` value answering the stored challenge for this request."""
        challenge = self._challenge
        for required in ("realm", "nonce"):
            if required not in challenge:
                raise ClientError(
                    f"Malformed Digest auth challenge: Missing '{required}' parameter"
                )
        realm, nonce = challenge["realm"], challenge["nonce"]
        if not nonce:
            raise ClientError("Security issue: Digest auth challenge contains empty 'nonce' value")
        offered = {q.strip() for q in challenge.get("qop", "").split(",") if q.strip()}
        qop = ""
        if challenge.get("qop"):
            usable = offered & {"auth", "auth-int"}
            if not usable:
                raise ClientError(
                    "Digest auth error: Unsupported Quality of Protection (qop) value(s): "
                    + challenge["qop"]
                )
            qop = "auth-int" if "auth-int" in usable else "auth"
        algorithm = challenge.get("algorithm", "MD5")
        hash_fn = _HASHES.get(algorithm.upper())
        if hash_fn is None:
            raise ClientError(
                f"Digest auth error: Unsupported hash algorithm: {algorithm.upper()}. "
                f"Supported algorithms: {_SUPPORTED}"
            )

        def digest(*parts: str) -> str:
            return str(hash_fn(":".join(parts).encode("utf-8")).hexdigest())

        uri = url.raw_path_qs
        request_part = f"{method.upper()}:{uri}"
        if qop == "auth-int":
            entity = await body.as_bytes() if isinstance(body, Payload) else bytes(body)
            request_part += ":" + str(hash_fn(entity).hexdigest())
        self._count = self._count + 1 if nonce == self._nonce else 1
        self._nonce = nonce
        count = f"{self._count:08x}"
        cnonce = secrets.token_hex(8)
        secret = digest(self._login, realm, self._password)
        if algorithm.upper().endswith("-SESS"):
            secret = digest(secret, nonce, cnonce)
        if qop:
            answer = digest(secret, nonce, count, cnonce, qop, digest(request_part))
        else:
            answer = digest(secret, nonce, digest(request_part))

        fields = [
            ("username", _quote(self._login)),
            ("realm", _quote(realm)),
            ("nonce", _quote(nonce)),
            ("uri", uri),
            ("response", answer),
            ("algorithm", algorithm),
        ]
        if challenge.get("opaque"):
            fields.append(("opaque", _quote(challenge["opaque"])))
        if qop:
            fields += [("qop", qop), ("nc", count), ("cnonce", cnonce)]
        return "Digest " + ", ".join(
            f'{name}="{value}"' if name in _QUOTED else f"{name}={value}" for name, value in fields
        )

    def _covers(self, url: URL) -> bool:
        """Whether `url` is in the protection space (a listed URI is a path-prefix of it)."""
        target = str(url)
        for space in self._space:
            if target == space:
                return True
            if target.startswith(space) and (space.endswith("/") or target[len(space)] == "/"):
                return True
        return False

    def _take_challenge(self, response: ClientResponse) -> bool:
        """Store the digest challenge of a 401; True when the request should be sent again."""
        scheme, _, rest = response.headers.get("WWW-Authenticate", "").partition(" ")
        if response.status != 401 or scheme.lower() != "digest" or not rest:
            return False
        params = _challenge_params(rest)
        if not params:
            return False
        self._challenge = {key: params[key] for key in _KEPT if key in params}
        origin = response.url.origin()
        self._space = []
        for uri in self._challenge.get("domain", "").split():
            uri = uri.strip('"')
            if uri:
                self._space.append(str(origin.join(URL(uri)) if uri[0] == "/" else URL(uri)))
        if not self._space:
            self._space = [str(origin)]
        return bool(self._challenge)

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        origin = request.url.origin()
        if self._origin is None:
            self._origin = origin
        elif origin != self._origin and not self._covers(request.url):
            return await handler(request)  # another origin: the credentials stay home
        answer_now = self._preemptive and bool(self._challenge) and self._covers(request.url)
        response = None
        for attempt in range(2):
            if attempt or answer_now:
                request.headers["Authorization"] = await self._encode(
                    request.method, request.url, request.body
                )
            response = await handler(request)
            if not self._take_challenge(response):
                break
        assert response is not None
        return response
