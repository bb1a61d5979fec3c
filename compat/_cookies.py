"""aiohttp's `CookieJar` and `DummyCookieJar`, rebuilt to behave as aiohttp 3.14.5's do.

Cookies live in buckets keyed `(domain, path without trailing "/")`; a cookie set without a
URL and without Domain lands in the `("", "")` bucket and goes to every host, IPs included.
Set-Cookie fields are parsed one cookie per field with aiohttp's lenient grammar (names may
hold `[]`, values may hold spaces); `http.cookies.SimpleCookie.load` would drop those.
Expiry uses `time.time()`, looked up at each call, so tests can patch the clock.
"""

from __future__ import annotations

import contextlib
import datetime
import heapq
import math
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from http.cookies import BaseCookie, CookieError, Morsel, SimpleCookie
from types import MappingProxyType
from typing import IO, Any

from yarl import URL

from .abc import AbstractCookieJar, LooseCookie, LooseCookies

__all__ = ["CookieJar", "DummyCookieJar", "response_cookies"]

_NO_URL = URL()
_Key = tuple[str, str, str]  # (domain, path key, name)
_Entry = tuple["Morsel[str]", _Key, str, str, int]  # stored, key, value and coded value sent, size

_QUOTER = SimpleCookie()
# Limits as aiohttp 3.14 enforces them (Firefox's numbers), and RFC 6265 6.1's per-field ones.
_DOMAIN_MAX, _DOMAIN_QUOTA, _TOTAL_MAX, _TOTAL_QUOTA = 180, 150, 3300, 3000
_REQUEST_MAX, _HEADER_MAX, _HEADER_PREFIX = 150, 8190, len("Cookie: ")
_RESPONSE_MAX, _PAIR_MAX, _ATTR_VALUE_MAX, _ATTR_STEPS = 50, 4096, 1024, 32
_FLAGS = frozenset(("secure", "httponly", "partitioned"))
_KNOWN = _FLAGS | {"path", "domain", "max-age", "expires", "samesite", "version", "comment"}
_ATTRS = tuple(Morsel())  # this Python's attribute names, in Morsel's order
_SAVED = tuple(a for a in _ATTRS if a not in ("max-age", "expires"))  # the deadline is saved
_Record = dict[str, str | bool | float]  # one cookie of a saved jar
_EPOCH_DAY = datetime.date(1970, 1, 1).toordinal()
_MAX_TIME = int(datetime.datetime.max.replace(tzinfo=datetime.timezone.utc).timestamp()) - 1
try:
    time.gmtime(_MAX_TIME)
except (OSError, OverflowError):  # Windows or 32-bit time_t
    _MAX_TIME = 2**31 - 1

_CTL = re.compile(r"[\x00-\x1f\x7f]")
_FIELD_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed in a field
_BAD_NAME = re.compile(r'[^\x21-\x7e]|[",;\\]')  # names: visible ASCII but these four
_ATTR_START = re.compile(r"[^;\s]", re.ASCII)
_ESCAPE = re.compile(r"\\(?:([0-3][0-7]{2})|(.))")
_TOKEN = r"\w!#%&'~`><@,:/$*+\-.^|)(?}{\[\]"  # a name's chars; a value's may also be "="
_QUOTED = r'"(?:[^\\"]|\\.)*"'
_QUOTED_PAIR = re.compile(
    rf"\s*(?P<name>[{_TOKEN}]+)\s*=\s*(?P<value>{_QUOTED})[ \t]*(?:;|$)", re.ASCII
)
_VALUE = "|".join(
    (
        _QUOTED,
        r'"[^";]*',  # an unterminated quote runs to the next ";"
        r"(?:\w{3,6}day|\w{3}),\s[\w\s-]{9,11}\s[\d:]{8}\s(?:GMT|[+-]\d{4})",  # RFC 1123/850
        r"\w{3}\s+\w{3}\s+[\s\d]\d\s+\d{2}:\d{2}:\d{2}\s+\d{4}",  # asctime()
        rf"[{_TOKEN}=]*",
    )
)
_ATTR = re.compile(
    rf"\s*(?P<name>[{_TOKEN}]+)(?:\s*=\s*(?P<value>{_VALUE}))?\s*(?:\s+|;|$)", re.ASCII
)
_DATE_TOKEN = re.compile(r"[\x00-\x08\x0a-\x1f\d:A-Za-z\x7f-\xff]+")
_DATE_TIME = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2})")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _is_ip(host: str | None) -> bool:
    """aiohttp's heuristic: a colon (IPv6), or only digits and dots (IPv4)."""
    if not host:
        return False
    return ":" in host or host.replace(".", "").isdigit()


def _domain_match(domain: str, host: str) -> bool:
    return host == domain or (bool(domain) and host.endswith("." + domain) and not _is_ip(host))


def _utf8_len(text: str) -> int | None:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates
        return None


def _unquote(text: str) -> str:
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    return _ESCAPE.sub(lambda m: chr(int(m[1], 8)) if m[1] else m[2], text[1:-1])


def _morsel(key: str, value: str, coded: str) -> Morsel[str]:
    """A Morsel holding exactly this key and coded value (Morsel.set would refuse `[]`)."""
    morsel: Morsel[str] = Morsel()
    morsel.__setstate__({"key": key, "value": value, "coded_value": coded})  # type: ignore[attr-defined]
    return morsel


def _parse_date(text: str) -> int | None:
    """RFC 6265 5.1.1 cookie-date, to a Unix timestamp."""
    hms: tuple[int, ...] | None = None
    day = month = year = None
    for token in _DATE_TOKEN.findall(text):
        if hms is None and (match := _DATE_TIME.match(token)):
            hms = tuple(int(part) for part in match.groups())
        elif day is None and (match := re.match(r"\d{1,2}", token)):
            day = int(match[0])
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (match := re.match(r"\d{2,4}", token)):
            year = int(match[0])
    if hms is None or day is None or month is None or year is None:
        return None
    year += 1900 if 70 <= year <= 99 else 2000 if year <= 69 else 0
    if not 1 <= day <= 31 or year < 1601 or hms[0] > 23 or hms[1] > 59 or hms[2] > 59:
        return None
    days = datetime.date(year, month, 1).toordinal() - _EPOCH_DAY + day - 1  # day 31 may spill
    return ((days * 24 + hms[0]) * 60 + hms[1]) * 60 + hms[2]


def _parse_field(field: str) -> tuple[str, Morsel[str]] | None:
    """One Set-Cookie field to (name, Morsel), or None when aiohttp would skip it."""
    pair_end = field.find(";")
    if pair_end < 0:
        pair_end = attrs_at = len(field)
    else:
        attrs_at = pair_end + 1
    quoted = _QUOTED_PAIR.match(field) if '"' in field[:pair_end] else None
    if quoted and ";" in quoted["value"]:  # a quoted value may hold ";"
        name, coded, attrs_at = quoted["name"], quoted["value"], quoted.end()
    else:
        name, eq, coded = field[:pair_end].partition("=")
        if not eq:
            return None
    name, coded = name.strip(" \t"), coded.strip(" \t")
    size = _utf8_len(name + coded)
    if not name or _BAD_NAME.search(name) or size is None or size > _PAIR_MAX:
        return None
    if _CTL.search(value := _unquote(coded)):
        return None
    try:
        morsel = _morsel(name, value, coded)
    except CookieError:  # CPython builds that validate in __setstate__
        return None
    attrs, pos = field[attrs_at:], 0
    for _ in range(_ATTR_STEPS):
        if pos >= len(attrs):
            break
        if (match := _ATTR.match(attrs, pos)) is None:  # skip to the next attribute
            nxt = attrs.find(";", pos) + 1
            start = _ATTR_START.search(attrs, nxt) if nxt else None
            if start is None:
                break
            pos = start.start()
            continue
        pos, attr = match.end(), match["name"].lower()
        if attr not in _KNOWN or attr not in _ATTRS:  # unknown, or not in this Python's Morsel
            continue
        if attr in _FLAGS:
            morsel[attr] = True  # a flag's value is ignored
            continue
        raw = match["value"] or ""
        size = _utf8_len(raw)
        if size is not None and size <= _ATTR_VALUE_MAX and not _CTL.search(text := _unquote(raw)):
            morsel[attr] = text  # else the attribute is ignored
    return name, morsel


def _parse_fields(fields: Iterable[str]) -> list[tuple[str, Morsel[str]]]:
    parsed: list[tuple[str, Morsel[str]]] = []
    for field in fields:
        if len(parsed) >= _RESPONSE_MAX:
            break
        if field and not _FIELD_CTL.search(field) and (cookie := _parse_field(field)):
            parsed.append(cookie)
    return parsed


def _own_morsel(name: str, item: LooseCookie, copy: bool) -> Morsel[str]:
    """The Morsel to store: a copy of a caller's one (unless `copy` is off), or a new one
    holding the quoted text of anything else (CookieError on an illegal name)."""
    if isinstance(item, Morsel):
        return item.copy() if copy else item
    holder = SimpleCookie()
    holder[name] = str(item)
    return holder[name]


def _place(cookie: Morsel[str], url: URL) -> tuple[str, str, bool] | None:
    """Where a cookie set from `url` is kept: (domain, path, host-only); None if `url`'s
    host may not set it. Normalises the cookie's Domain and Path attributes on the way."""
    host = url.raw_host
    domain: str = cookie.get("domain", "")
    if domain[-1:] == ".":  # aiohttp ignores a trailing-dot Domain altogether
        del cookie["domain"]
        domain = ""
    elif domain[:1] == ".":
        domain = cookie["domain"] = domain[1:]
    if domain and host and not _domain_match(domain, host):
        return None
    path: str = cookie["path"]
    if path[:1] != "/":  # the default-path: the URL's directory
        base = url.path if url.path[:1] == "/" else "/"
        path = cookie["path"] = base.rsplit("/", 1)[0] or "/"
    if domain or host is None:
        return domain, path, False
    return host, path, True


def _lifetime_end(cookie: Morsel[str]) -> float | None:
    """When a cookie expires (Max-Age wins over Expires); None for a session cookie. An
    attribute that does not parse is blanked, as aiohttp does."""
    if max_age := cookie["max-age"]:
        try:
            seconds = int(max_age)
        except ValueError:
            cookie["max-age"] = ""
            return None
        return 0.0 if seconds <= 0 else min(time.time() + min(seconds, _MAX_TIME), _MAX_TIME)
    if (expires := cookie["expires"]) and (when := _parse_date(expires)):
        return when
    if expires:  # unparsable, or exactly the epoch (falsy): a session cookie after all
        cookie["expires"] = ""
    return None


def response_cookies(set_cookie_values: Sequence[str]) -> SimpleCookie:
    """What aiohttp's `response.cookies` holds for these Set-Cookie values."""
    cookies = SimpleCookie()
    cookies.update(_parse_fields(set_cookie_values))
    return cookies


def _unpickle_legacy(file: IO[bytes]) -> Any:
    """Pre-JSON aiohttp jars were pickles: unpickle only the cookie types they hold (with the
    pure-Python unpickler: PyPy's accelerated one does not call `find_class` overrides)."""
    import pickle  # rare: loaded only for such a file

    allowed = {("http.cookies", "SimpleCookie"), ("http.cookies", "Morsel")}
    allowed |= {("collections", "defaultdict")}
    allowed |= {("builtins", name) for name in ("tuple", "set", "frozenset", "dict")}

    class Restricted(pickle._Unpickler):
        def find_class(self, module: str, name: str) -> type:
            if (module, name) not in allowed:
                raise pickle.UnpicklingError(f"Forbidden class in a cookie file: {module}.{name}")
            return super().find_class(module, name)  # type: ignore[no-any-return]

    return Restricted(file).load()


def _origin(domain: str) -> URL:
    """The URL a saved cookie is set again from: its domain's, or none for a shared one."""
    return URL.build(scheme="https", host=domain) if domain else _NO_URL


def _saved_deadline(record: Mapping[str, Any], where: str) -> float | None:
    raw = record.get("expires_timestamp")
    if raw is None:
        return None
    try:
        deadline = float(raw)
    except (OverflowError, TypeError, ValueError):
        deadline = math.nan
    if not math.isfinite(deadline):
        raise ValueError(f"Cookie {where}: expiration timestamp must be a finite number")
    return deadline


def _restore(record: Mapping[str, Any]) -> Morsel[str]:
    morsel = _morsel(record["key"], record["value"], record["coded_value"])
    attrs = {attr: record[attr] for attr in _ATTRS if attr in record}
    if record.get("host_only"):
        attrs["domain"] = ""  # set again from its host, it becomes host-only again
    morsel.update(attrs)
    return morsel


def _saved_cookies(
    file_path: str | os.PathLike[str],
) -> Iterator[tuple[URL, str, Morsel[str], float | None]]:
    """Each cookie of a saved jar, with the URL to set it from and its absolute deadline.

    The file is aiohttp's JSON, or the pickle that aiohttp wrote before it.
    """
    import json

    try:
        with open(file_path, encoding="utf-8") as file:
            data = json.load(file)
    except ValueError:  # not JSON; a UnicodeDecodeError is a ValueError too
        with open(file_path, "rb") as file:
            legacy = _unpickle_legacy(file)
        for (domain, _), bucket in legacy.items():
            yield from ((_origin(domain), name, m, None) for name, m in bucket.items())
        return
    for place, records in data.items():
        url = _origin(place.partition("|")[0])
        for name, record in records.items():
            deadline = _saved_deadline(record, f"{name!r} in {place!r}")
            yield url, name, _restore(record), deadline


class CookieJar(AbstractCookieJar):
    """RFC 6265 cookie storage with aiohttp's API and behaviour (aiohttp 3.14.5)."""

    def __init__(
        self,
        *,
        unsafe: bool = False,
        quote_cookie: bool = True,
        treat_as_secure_origin: str | URL | Iterable[str | URL] | None = None,
    ) -> None:
        self._unsafe = unsafe
        self._quote_cookie = quote_cookie
        origins = treat_as_secure_origin
        if origins is None:
            origins = ()
        elif isinstance(origins, (str, URL)):
            origins = (origins,)
        self._secure_origins = frozenset(URL(o).origin() for o in origins)
        self._reset()

    def _reset(self) -> None:
        self._cookies: dict[tuple[str, str], SimpleCookie] = {}
        self._host_only: set[_Key] = set()
        self._deadlines: dict[_Key, float] = {}
        self._soonest = math.inf  # no deadline before this one (a lower bound)
        self._used: dict[_Key, int] = {}  # last use, for least-recently-used eviction
        self._wire: dict[_Key, tuple[str, str, int]] = {}  # value, coded value sent, its size
        self._clock = 0
        self._per_domain: Counter[str] = Counter()
        self._count = 0

    @property
    def unsafe(self) -> bool:
        return self._unsafe

    @property
    def quote_cookie(self) -> bool:
        return self._quote_cookie

    @property
    def treat_as_secure_origin(self) -> frozenset[URL]:
        return self._secure_origins

    @property
    def cookies(self) -> MappingProxyType[tuple[str, str], SimpleCookie]:
        return MappingProxyType(self._cookies)

    @property
    def host_only_cookies(self) -> frozenset[tuple[str, str, str]]:
        return frozenset(self._host_only)

    def __iter__(self) -> Iterator[Morsel[str]]:
        self._expire()
        for bucket in self._cookies.values():
            yield from bucket.values()

    def __len__(self) -> int:
        return self._count  # as aiohttp: expired cookies count until something expires them

    def update_cookies(self, cookies: LooseCookies, response_url: URL = _NO_URL) -> None:
        self._update(cookies, response_url, copy=True)

    def update_cookies_from_headers(self, headers: Iterable[str], response_url: URL) -> None:
        """Store the cookies of a response's Set-Cookie header values."""
        if not self._unsafe and _is_ip(response_url.raw_host):
            return
        if parsed := _parse_fields(headers):
            self._update(parsed, response_url, copy=False, check=False)

    def _update(
        self,
        cookies: LooseCookies,
        url: URL,
        *,
        copy: bool,
        check: bool = True,
        expiration: float | None = None,
    ) -> None:
        """Store cookies set from `url`; `check=False` for parsed ones (already sendable),
        `expiration` for a saved jar's absolute deadlines."""
        if not self._unsafe and _is_ip(url.raw_host):
            return
        pairs = cookies.items() if isinstance(cookies, Mapping) else cookies
        for name, item in pairs:
            cookie = _own_morsel(name, item, copy)
            if (place := _place(cookie, url)) is None:
                continue
            domain, path, host_only = place
            deadline = _lifetime_end(cookie) if expiration is None else expiration
            if not check or self._sendable(cookie):
                self._store((domain, path.rstrip("/"), name), cookie, host_only, deadline)
        self._expire()

    def _store(
        self, key: _Key, cookie: Morsel[str], host_only: bool, deadline: float | None
    ) -> None:
        domain, _, name = key
        known = name in self._cookies.get(key[:2], ())
        if not known and not self._has_room(domain, deadline, bool(cookie["secure"])):
            return
        if host_only:
            cookie["domain"] = domain
            self._host_only.add(key)
        else:  # a Domain cookie replaces the host-only one of the same key
            self._host_only.discard(key)
        if deadline is None:  # a replacement does not inherit the old one's expiry
            self._deadlines.pop(key, None)
        else:
            self._deadlines[key] = deadline
            self._soonest = min(deadline, self._soonest)
        if not known:
            self._count += 1
            self._per_domain[domain] += 1
        shelf = self._cookies.setdefault(key[:2], SimpleCookie())
        if shelf.get(name) != cookie:  # setting an equal cookie again keeps the stored one
            shelf[name] = cookie
            self._wire.pop(key, None)
        self._touch([key])

    def _has_room(self, domain: str, deadline: float | None, secure: bool) -> bool:
        """Whether a new cookie fits, after evicting as Firefox (and aiohttp 3.14) does."""
        if self._per_domain[domain] < _DOMAIN_MAX and self._count < _TOTAL_MAX:
            return True
        if deadline is not None and deadline <= time.time():
            return True  # it only deletes: stored (and expired) without evicting anything
        if self._per_domain[domain] < _DOMAIN_MAX:  # the jar is full, not the domain
            self._expire()
            used = self._used
            oldest = heapq.nsmallest(self._count - _TOTAL_QUOTA, used, used.__getitem__)
            self._delete(oldest)
            return True
        return self._evict_from(domain, secure)

    def _evict_from(self, domain: str, secure: bool) -> bool:
        """Bring a full domain down to its quota minus one for a newcomer, expired cookies
        first, then plain ones, least recently used first; Secure cookies only give way to a
        Secure newcomer. False: nothing may go, the newcomer is dropped."""
        self._expire()
        held = self._per_domain[domain]
        surplus = held - _DOMAIN_QUOTA + 1
        if surplus <= 0:
            return True
        ranked = sorted(
            (bool(morsel["secure"]), self._used.get(key, 0), key)
            for key, morsel in self._held(domain)
        )
        only_secure = ranked[0][0] if ranked else True
        if only_secure and held < _DOMAIN_MAX:
            return True
        if only_secure and not secure:
            return False
        # the first `surplus` of the weakest class: plain ones never make Secure ones go too
        self._delete([key for guarded, _, key in ranked[:surplus] if guarded == only_secure])
        return True

    @staticmethod
    def _sendable(cookie: Morsel[str]) -> bool:
        text = f"{cookie.key}={cookie.value}{cookie.coded_value}"
        return not _CTL.search(text) and _utf8_len(text) is not None

    def _touch(self, keys: Iterable[_Key]) -> None:
        """Mark cookies as used now: eviction goes least recently used first."""
        self._clock += 1
        self._used.update(dict.fromkeys(keys, self._clock))

    def _held(self, domain: str | None = None) -> Iterator[tuple[_Key, Morsel[str]]]:
        """The stored cookies with their keys: all, or those of one domain."""
        for (owner, path), bucket in self._cookies.items():
            if domain is None or owner == domain:
                yield from (((owner, path, name), morsel) for name, morsel in bucket.items())

    def _expire(self) -> None:
        if not self._deadlines or (now := time.time()) < self._soonest:
            return
        self._delete([key for key, when in self._deadlines.items() if when <= now])
        self._soonest = min(self._deadlines.values(), default=math.inf)

    def _delete(self, keys: Iterable[_Key]) -> None:
        for key in keys:
            domain, path, name = key
            self._host_only.discard(key)
            self._deadlines.pop(key, None)
            self._used.pop(key, None)
            self._wire.pop(key, None)
            bucket = self._cookies.get((domain, path))
            if bucket is None:
                continue
            if bucket.pop(name, None) is not None:
                self._count -= 1
                self._per_domain[domain] -= 1
                if self._per_domain[domain] <= 0:
                    del self._per_domain[domain]
            if not bucket:
                del self._cookies[domain, path]

    def clear(self, predicate: Callable[[Morsel[str]], bool] | None = None) -> None:
        if predicate is None:
            self._reset()
            return
        now = time.time()
        self._delete(
            [
                key
                for key, cookie in self._held()
                if self._deadlines.get(key, math.inf) <= now or predicate(cookie)
            ]
        )

    def clear_domain(self, domain: str) -> None:
        """Clear the cookies of `domain` and of its subdomains."""
        self.clear(lambda cookie: _domain_match(domain, cookie.get("domain", "")))

    def _select(self, url: URL) -> dict[str, _Entry]:
        """The cookies to send to `url`, least specific first, by name."""
        self._expire()
        host, url_path = url.raw_host or "", url.path
        insecure = url.scheme not in ("https", "wss")
        if insecure and self._secure_origins:
            with contextlib.suppress(ValueError):  # a relative URL has no origin
                insecure = url.origin() not in self._secure_origins
        if not _is_ip(host):
            labels = host.split(".")
            domains = [".".join(labels[i:]) for i in range(len(labels) - 1, -1, -1)]
        else:
            domains = [host] if self._unsafe else []
        parts = url_path.split("/")
        paths = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        chosen: dict[str, _Entry] = {}
        for bucket_key in [("", "")] + [(d, p) for d in domains for p in paths if d or p]:
            if (bucket := self._cookies.get(bucket_key)) is None:
                continue
            shared = bucket_key == ("", "")  # sent everywhere, whatever the path
            for name, cookie in bucket.items():
                key = (*bucket_key, name)
                if not shared and (
                    (key in self._host_only and cookie["domain"] != host)
                    or len(cookie["path"]) > len(url_path)
                ):
                    continue
                if insecure and cookie["secure"]:
                    continue
                if (wire := self._wire.get(key)) is None:
                    wire = self._wire[key] = self._wire_form(cookie)
                chosen.pop(name, None)  # the most specific match wins
                chosen[name] = (cookie, key, *wire)
        size = _HEADER_PREFIX - 2 + sum(2 + entry[4] for entry in chosen.values())
        if len(chosen) > _REQUEST_MAX or size > _HEADER_MAX:  # most specific first
            size, admitted = _HEADER_PREFIX - 2, list[tuple[str, _Entry]]()
            for name, entry in reversed(chosen.items()):
                if len(admitted) >= _REQUEST_MAX:
                    break
                if size + 2 + entry[4] <= _HEADER_MAX:
                    size += 2 + entry[4]
                    admitted.append((name, entry))
            chosen = dict(reversed(admitted))
        self._touch(entry[1] for entry in chosen.values())
        return chosen

    def _wire_form(self, cookie: Morsel[str]) -> tuple[str, str, int]:
        if not self._quote_cookie:
            value = coded = cookie.value
        elif cookie.coded_value[:1] == '"':  # sent back as the server quoted it
            value, coded = cookie.value, cookie.coded_value
        else:
            value, coded = _QUOTER.value_encode(cookie.value)
        return value, coded, _utf8_len(f"{cookie.key}={coded}") or 0

    def filter_cookies(self, request_url: URL = _NO_URL) -> BaseCookie[str]:
        """The cookies to send to `request_url`; each Morsel's coded_value is what is sent."""
        filtered: BaseCookie[str] = BaseCookie()
        if not self._cookies:
            return filtered
        if type(request_url) is not URL:
            warnings.warn(
                "filter_cookies expects yarl.URL instances only, "
                f"and will stop working in 4.x, got {type(request_url)}",
                DeprecationWarning,
                stacklevel=2,
            )
            request_url = URL(request_url)
        for name, (cookie, _, value, coded, _) in self._select(request_url).items():
            filtered[name] = _morsel(cookie.key, value, coded)
        return filtered

    def cookie_header(self, request_url: URL) -> str | None:
        """The Cookie header aiohttp would send to `request_url`, or None."""
        if not self._cookies:
            return None
        chosen = self._select(request_url)
        if not chosen:
            return None
        # aiohttp writes SimpleCookie.output(header="", sep=";").strip(): sorted by name.
        return "; ".join(f"{chosen[n][0].key}={chosen[n][3]}" for n in sorted(chosen)).strip()

    def save(self, file_path: str | os.PathLike[str]) -> None:
        """Write the jar in aiohttp 3.14's JSON; created readable by its owner only, as it
        may hold session tokens."""
        data = {
            f"{domain}|{path}": {
                name: self._record((domain, path, name), morsel) for name, morsel in bucket.items()
            }
            for (domain, path), bucket in self._cookies.items()
        }
        import json

        descriptor = os.open(file_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2)

    def _record(self, key: _Key, morsel: Morsel[str]) -> _Record:
        """A cookie as saved: its text, its attributes but Max-Age and Expires, and what the
        jar knows beside it (host-only, else it comes back a domain cookie; the deadline)."""
        record: _Record = {"key": morsel.key, "value": morsel.value}
        record["coded_value"] = morsel.coded_value
        record.update({attr: morsel[attr] for attr in _SAVED if morsel.get(attr)})
        if key in self._host_only:
            record["host_only"] = True
        deadline = self._deadlines.get(key)
        return record if deadline is None else {**record, "expires_timestamp": deadline}

    def load(self, file_path: str | os.PathLike[str]) -> None:
        """Replace the jar's cookies with a saved jar's (JSON, or an older aiohttp's pickle).

        Loaded cookies pass the same checks as `update_cookies`; a bad file raises and leaves
        the jar as it was.
        """
        fresh = CookieJar(
            unsafe=self._unsafe,
            quote_cookie=self._quote_cookie,
            treat_as_secure_origin=self._secure_origins,
        )
        for url, name, morsel, deadline in _saved_cookies(file_path):
            fresh._update({name: morsel}, url, copy=False, expiration=deadline)
        live = self._cookies  # views from `cookies` must stay live: keep this dict
        live.clear()
        live.update(fresh._cookies)
        vars(self).update(vars(fresh), _cookies=live)


class DummyCookieJar(AbstractCookieJar):
    """A jar that stores nothing, for sessions that should not keep cookies."""

    @property
    def unsafe(self) -> bool:
        return False

    @property
    def quote_cookie(self) -> bool:
        return True

    @property
    def treat_as_secure_origin(self) -> frozenset[URL]:
        return frozenset()

    @property
    def cookies(self) -> MappingProxyType[tuple[str, str], SimpleCookie]:
        return MappingProxyType({})

    @property
    def host_only_cookies(self) -> frozenset[tuple[str, str, str]]:
        return frozenset()

    def __iter__(self) -> Iterator[Morsel[str]]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def clear(self, predicate: Callable[[Morsel[str]], bool] | None = None) -> None:
        pass

    def clear_domain(self, domain: str) -> None:
        pass

    def update_cookies(self, cookies: LooseCookies, response_url: URL = _NO_URL) -> None:
        pass

    def update_cookies_from_headers(self, headers: Iterable[str], response_url: URL) -> None:
        pass

    def filter_cookies(self, request_url: URL) -> BaseCookie[str]:
        return SimpleCookie()

    def cookie_header(self, request_url: URL) -> str | None:
        return None
