"""compat's cookie jar against aiohttp's, side by side on the same inputs.

Every comparison runs aiohttp's own code: `aiohttp.CookieJar` for storage and matching,
`ClientRequest.update_cookies` for the Cookie header it would write, and
`ClientResponse.cookies` for what a response exposes. Expiry is tested with `time.time`
patched, which both jars read at each call.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from http.cookies import BaseCookie, CookieError, Morsel, SimpleCookie
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import aiohttp.abc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from yarl import URL

from compat._cookies import CookieJar, DummyCookieJar, response_cookies
from compat.abc import AbstractCookieJar

AnyJar = CookieJar | aiohttp.CookieJar


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # aiohttp's jar takes the running loop in its constructor unless given one.
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    return clock


def aiohttp_header(cookies: BaseCookie[str]) -> str | None:
    """The Cookie header aiohttp's ClientRequest writes for these cookies (its own code)."""
    request = SimpleNamespace(headers=CIMultiDict[str]())
    aiohttp.ClientRequest.update_cookies(request, cookies)  # type: ignore[arg-type]
    header: str | None = request.headers.get("Cookie")
    return header


def aiohttp_response_cookies(values: list[str]) -> SimpleCookie:
    response = SimpleNamespace(_cookies=None, _raw_cookie_headers=tuple(values) or None)
    cookies: SimpleCookie = aiohttp.ClientResponse.cookies.fget(response)  # type: ignore[attr-defined]
    return cookies


def sent(cookies: BaseCookie[str]) -> dict[str, tuple[str, str, str]]:
    return {name: (m.key, m.value, m.coded_value) for name, m in cookies.items()}


def contents(jar: AnyJar) -> list[tuple[str, str, str, list[tuple[str, Any]]]]:
    return [(m.key, m.value, m.coded_value, list(m.items())) for m in jar]


class Pair:
    """A compat jar and an aiohttp jar, fed the same calls."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        self.ours = CookieJar(**kwargs)
        self.theirs = aiohttp.CookieJar(loop=loop, **kwargs)

    def __getattr__(self, method: str) -> Callable[..., tuple[Any, Any]]:
        def both(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
            return getattr(self.ours, method)(*args, **kwargs), getattr(self.theirs, method)(
                *args, **kwargs
            )

        return both

    def set(self, url: str, *set_cookie: str) -> None:
        self.update_cookies_from_headers(list(set_cookie), URL(url))

    def header(self, url: str) -> str | None:
        """The Cookie header both send to `url`; asserts they agree, in filter_cookies too."""
        ours = self.ours.cookie_header(URL(url))
        ours_filtered = self.ours.filter_cookies(URL(url))
        theirs_filtered = self.theirs.filter_cookies(URL(url))
        assert sent(ours_filtered) == sent(theirs_filtered)
        assert ours == aiohttp_header(theirs_filtered)
        assert ours == aiohttp_header(ours_filtered)
        return ours

    def check(self) -> list[tuple[str, str, str, list[tuple[str, Any]]]]:
        """Asserts both jars hold the same cookies, in the same order, with the same state."""
        assert contents(self.ours) == contents(self.theirs)
        assert len(self.ours) == len(self.theirs)
        assert self.ours.host_only_cookies == self.theirs.host_only_cookies
        assert list(self.ours.cookies) == list(self.theirs.cookies)
        return contents(self.ours)


@pytest.fixture
def pair(loop: asyncio.AbstractEventLoop) -> Callable[..., Pair]:
    return lambda **kwargs: Pair(loop, **kwargs)


# --- quoting --------------------------------------------------------------------------------

VALUES = {"semi": "a;b", "comma": "a,b", "space": "a b", "eq": "a=b", "dq": 'x"y', "uni": "café"}
VALUES |= {"tok": "abc-123_~!", "empty": "", "bs": "a\\b", "tab": "a\tb", "brk": "[x]"}


def test_update_cookies_quoting(pair: Callable[..., Pair]) -> None:
    jars = pair()
    jars.update_cookies(VALUES)
    # The tab value can't be sent: both jars drop it.
    assert jars.header("http://example.com/") == (
        r'brk="[x]"; bs="a\\b"; comma="a\054b"; dq="x\"y"; empty=""; eq="a=b"; '
        r'semi="a\073b"; space="a b"; tok=abc-123_~!; uni="caf\351"'
    )
    jars.check()


def test_quote_cookie_false_sends_raw(pair: Callable[..., Pair]) -> None:
    jars = pair(quote_cookie=False)
    assert jars.ours.quote_cookie is False
    jars.update_cookies({"semi": "a;b", "space": "a b", "uni": "café"})
    jars.set("http://example.com/", 'q="x;y"', "plain=a b")
    assert jars.header("http://example.com/") == "plain=a b; q=x;y; semi=a;b; space=a b; uni=café"
    jars.check()


def test_server_values_sent_as_received(pair: Callable[..., Pair]) -> None:
    jars = pair()
    # Quoted by the server: sent back verbatim. Unquoted: quoted if needed. A UTF-8 header
    # decoded as Latin-1 (as HTTP stacks do) is quoted byte by byte.
    jars.set("http://example.com/", 'q="x;y"', 'o="a\\054b"', "sp=a b", "u=caf\xc3\xa9", "t=tok")
    assert jars.header("http://example.com/") == (
        r'o="a\054b"; q="x;y"; sp="a b"; t=tok; u="caf\303\251"'
    )
    jars.check()


def test_morsels_and_pairs_and_basecookie(pair: Callable[..., Pair]) -> None:
    jars = pair()
    server = SimpleCookie()
    server.load('m="quoted value"; Path=/; HttpOnly')
    jars.update_cookies(server, URL("http://example.com/"))
    jars.update_cookies([("t1", "1"), ("t2", "2 2")], URL("http://example.com/a/b"))
    morsel: Morsel[str] = Morsel()
    morsel.set("own", "v", "v")
    morsel["domain"] = ".example.com"
    jars.update_cookies({"own": morsel}, URL("http://www.example.com/"))
    assert morsel["domain"] == ".example.com"  # the caller's Morsel is not changed
    jars.check()
    for url in ("http://example.com/a/x", "http://sub.example.com/", "http://other.com/"):
        jars.header(url)


@pytest.mark.parametrize("name", ["a b", "path", "Domain", "a;b", "é"])
def test_illegal_names_raise_as_aiohttp(pair: Callable[..., Pair], name: str) -> None:
    jars = pair()
    with pytest.raises(CookieError):
        jars.ours.update_cookies({name: "x"})
    with pytest.raises(CookieError):
        jars.theirs.update_cookies({name: "x"})


def test_unsendable_values_dropped(pair: Callable[..., Pair]) -> None:
    jars = pair()
    morsel: Morsel[str] = Morsel()
    morsel.__setstate__({"key": "ctl", "value": "a\nb", "coded_value": "a\nb"})  # type: ignore[attr-defined]
    jars.update_cookies({"nl": "a\nb", "ctl": morsel, "sur": "\udcff", "ok": "1"})
    assert jars.header("http://example.com/") == "ok=1"
    jars.check()


# --- header form ----------------------------------------------------------------------------


def test_header_one_line_sorted_by_name(pair: Callable[..., Pair]) -> None:
    jars = pair()
    jars.set("http://example.com/", "zz=1", "B=2", "a=3", "_=4", "aa=5")
    assert jars.header("http://example.com/") == "B=2; _=4; a=3; aa=5; zz=1"
    assert jars.header("http://other.com/") is None


def test_cookie_header_empty_jar(pair: Callable[..., Pair]) -> None:
    jars = pair()
    assert jars.ours.cookie_header(URL("http://example.com/")) is None
    assert jars.header("http://example.com/") is None
    assert len(jars.ours) == 0 and list(jars.ours) == []


def test_filter_cookies_str_url_warns(pair: Callable[..., Pair]) -> None:
    jars = pair()
    jars.update_cookies({"a": "1"})
    for jar in (jars.ours, jars.theirs):
        with pytest.warns(DeprecationWarning):
            assert sent(jar.filter_cookies("http://example.com/")) == {"a": ("a", "1", "1")}  # type: ignore[arg-type]


# --- domains --------------------------------------------------------------------------------

DOMAIN_URLS = [
    "http://example.com/",
    "http://www.example.com/",
    "http://a.b.example.com/",
    "http://notexample.com/",
    "http://com/",
    "http://example.org/",
    "http://www.example.com./",
    "http://example.com./",
]


@pytest.mark.parametrize(
    ("origin", "set_cookie"),
    [
        ("http://example.com/", "c=1"),  # host-only
        ("http://www.example.com/", "c=1"),  # host-only, not sent to the parent
        ("http://www.example.com/", "c=1; Domain=example.com"),
        ("http://www.example.com/", "c=1; Domain=.example.com"),  # leading dot dropped
        ("http://www.example.com/", "c=1; Domain=EXAMPLE.com"),
        ("http://www.example.com/", "c=1; Domain=example.com."),  # trailing dot: host-only
        ("http://www.example.com/", "c=1; Domain=com"),  # no public-suffix list
        ("http://www.example.com/", "c=1; Domain=other.com"),  # rejected
        ("http://www.example.com/", "c=1; Domain=ample.com"),  # rejected: not on a dot
        ("http://www.example.com/", "c=1; Domain=a.www.example.com"),  # rejected: subdomain
        ("http://example.com/", "c=1; Domain="),
        ("http://www.example.com./", "c=1"),
        ("http://WWW.Example.COM/", "c=1"),
    ],
)
def test_domain_matching(pair: Callable[..., Pair], origin: str, set_cookie: str) -> None:
    jars = pair()
    jars.set(origin, set_cookie)
    jars.check()
    for url in DOMAIN_URLS:
        jars.header(url)


def test_host_only_and_domain_cookie_same_name(pair: Callable[..., Pair]) -> None:
    jars = pair()
    jars.set("http://example.com/", "c=host")
    jars.set("http://example.com/", "c=domain; Domain=example.com")  # replaces: same identity
    jars.set("http://www.example.com/", "c=www")
    assert jars.header("http://www.example.com/") == "c=www"
    assert jars.header("http://a.example.com/") == "c=domain"
    jars.check()


def test_update_cookies_without_url_is_shared(pair: Callable[..., Pair]) -> None:
    jars = pair()
    jars.update_cookies({"shared": "1"})
    morsel: Morsel[str] = Morsel()
    morsel.set("scoped", "2", "2")
    morsel["domain"] = "example.com"
    jars.update_cookies({"scoped": morsel})
    for url in ["http://anything.org/x", "http://127.0.0.1/", "http://[::1]:8080/", *DOMAIN_URLS]:
        jars.header(url)
    assert jars.header("http://127.0.0.1/") == "shared=1"
    assert jars.header("http://sub.example.com/") == "scoped=2; shared=1"
    jars.check()


def test_localhost_and_ports(pair: Callable[..., Pair]) -> None:
    jars = pair()
    jars.set("http://localhost:8080/", "a=1")
    jars.set("http://localhost:9090/", "b=2; Domain=localhost")
    assert jars.header("http://localhost:1234/") == "a=1; b=2"
    assert jars.header("https://localhost/") == "a=1; b=2"
    assert jars.header("http://sub.localhost/") == "b=2"
    jars.check()


# --- IP hosts -------------------------------------------------------------------------------

IP_URLS = ["http://127.0.0.1/", "http://127.0.0.2/", "http://[::1]/", "http://localhost/"]


def test_ip_hosts_safe_jar(pair: Callable[..., Pair]) -> None:
    jars = pair()
    assert jars.ours.unsafe is False
    jars.set("http://127.0.0.1:8080/", "fromip=1")
    jars.set("http://[::1]:8080/", "fromip6=1")
    jars.update_cookies({"viaurl": "1"}, URL("http://127.0.0.1/"))
    assert jars.check() == []
    jars.update_cookies({"shared": "1"})
    for url in IP_URLS:
        assert jars.header(url) == "shared=1"
    # response.cookies keeps what the jar refused
    assert sorted(response_cookies(["fromip=1"])) == ["fromip"]


def test_ip_hosts_unsafe_jar(pair: Callable[..., Pair]) -> None:
    jars = pair(unsafe=True)
    jars.set("http://127.0.0.1:8080/", "v4=1")
    jars.set("http://[::1]:8080/", "v6=1")
    jars.set("http://127.0.0.1/", "dom=1; Domain=127.0.0.1")
    jars.set("http://127.0.0.1/", "bad=1; Domain=0.0.1")
    jars.update_cookies({"viaurl": "1"}, URL("http://127.0.0.1/"))
    jars.check()
    assert jars.header("http://127.0.0.1:9999/") == "dom=1; v4=1; viaurl=1"
    assert jars.header("http://[::1]/") == "v6=1"
    assert jars.header("http://127.0.0.2/") is None
    assert jars.header("http://localhost/") is None


# --- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "set_cookie"),
    [
        ("http://example.com/", "c=1"),
        ("http://example.com/dir/page", "c=1"),  # default path /dir
        ("http://example.com/dir/", "c=1"),  # default path /dir
        ("http://example.com/dir", "c=1"),  # default path /
        ("http://example.com/a/b/c", "c=1"),  # default path /a/b
        ("http://example.com/x", "c=1; Path=/dir"),
        ("http://example.com/x", "c=1; Path=/dir/"),
        ("http://example.com/x", "c=1; Path=dir"),  # not absolute: default path
        ("http://example.com/x", "c=1; Path="),
        ("http://example.com/a%20b/c", "c=1"),
        ("http://example.com/x", "c=1; Path=/a b"),
    ],
)
def test_path_matching(pair: Callable[..., Pair], origin: str, set_cookie: str) -> None:
    jars = pair()
    jars.set(origin, set_cookie)
    jars.check()
    for path in ["", "/", "/dir", "/dir/", "/dir/sub", "/dirx", "/x", "/a/b", "/a/b/c", "/a b/"]:
        jars.header("http://example.com" + path)


def test_most_specific_path_wins_and_all_sent(pair: Callable[..., Pair]) -> None:
    jars = pair()
    jars.set("http://example.com/", "c=root; Path=/", "c=deep; Path=/a/b", "d=1; Path=/a")
    jars.set("http://www.example.com/", "c=www; Path=/")
    assert jars.header("http://example.com/a/b/c") == "c=deep; d=1"
    assert jars.header("http://example.com/a") == "c=root; d=1"
    jars.check()


# --- Secure, HttpOnly, SameSite ---------------------------------------------------------------


def test_secure_only_over_https(pair: Callable[..., Pair]) -> None:
    jars = pair()
    jars.set("https://example.com/", "s=1; Secure", "p=2", "h=3; HttpOnly", "ss=4; SameSite=Strict")
    jars.set("http://example.com/", "fromhttp=5; Secure")  # aiohttp stores it all the same
    jars.update_cookies({"shared": "6"})
    assert jars.header("http://example.com/") == "h=3; p=2; shared=6; ss=4"
    assert jars.header("https://example.com/") == "fromhttp=5; h=3; p=2; s=1; shared=6; ss=4"
    assert jars.header("wss://example.com/") == jars.header("https://example.com/")
    assert jars.header("ws://example.com/") == "h=3; p=2; shared=6; ss=4"
    stored = {key: dict(items) for key, _, _, items in jars.check()}
    assert stored["h"]["httponly"] is True and stored["ss"]["samesite"] == "Strict"


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:8080",
        URL("http://localhost:8080"),
        ["http://localhost:8080", URL("http://other")],
        [],
    ],
)
def test_treat_as_secure_origin(pair: Callable[..., Pair], origin: Any) -> None:
    jars = pair(treat_as_secure_origin=origin)
    assert jars.ours.treat_as_secure_origin == jars.theirs.treat_as_secure_origin
    jars.set("https://localhost/", "s=1; Secure")
    for url in ["http://localhost:8080/x", "http://localhost:8081/", "http://localhost/"]:
        jars.header(url)
    jars.header("http://other/")
    jars.header("/relative")


# --- expiry ---------------------------------------------------------------------------------


def test_max_age_expires(pair: Callable[..., Pair], clock: Clock) -> None:
    jars = pair()
    jars.set(
        "http://example.com/",
        "a=1; Max-Age=10",
        "b=2",
        "c=3; Max-Age=20; Expires=Thu, 01 Jan 1970 00:00:01 GMT",
    )
    assert jars.header("http://example.com/") == "a=1; b=2; c=3"
    clock.now += 10
    assert jars.header("http://example.com/") == "b=2; c=3"
    clock.now += 10
    assert jars.header("http://example.com/") == "b=2"
    jars.check()


def test_expires_date(pair: Callable[..., Pair], clock: Clock) -> None:
    clock.now = 1_600_000_000.0  # 2020-09-13
    jars = pair()
    jars.set(
        "http://example.com/",
        "rfc1123=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT",
        "rfc850=2; expires=Wednesday, 09-Jun-21 10:18:14 GMT",
        "asctime=3; Expires=Wed Jun  9 10:18:14 2021",
        "offset=4; Expires=Wed, 09 Jun 2021 10:18:14 +0000",
        "utc=5; Expires=Wed, 09 Jun 2021 10:18:14 UTC",  # not read: a session cookie
        "junk=6; Expires=never",
        "epoch=7; Expires=Thu, 01 Jan 1970 00:00:00 GMT",  # timestamp 0: a session cookie
        "gone=8; Expires=Thu, 01 Jan 1970 00:00:01 GMT",
    )
    assert (
        jars.header("http://example.com/")
        == "asctime=3; epoch=7; junk=6; offset=4; rfc1123=1; rfc850=2; utc=5"
    )
    clock.now = 1_623_233_894.0  # 2021-06-09 10:18:14
    assert jars.header("http://example.com/") == "epoch=7; junk=6; utc=5"
    jars.check()


def test_deleting_cookies(pair: Callable[..., Pair], clock: Clock) -> None:
    jars = pair()
    jars.set("http://example.com/", "a=1", "b=2", "c=3", "d=4; Path=/x", "e=5")
    jars.set("http://example.com/", "a=; Max-Age=0", "b=x; Max-Age=-1")
    jars.set("http://example.com/", "c=; Expires=Sun, 06 Nov 1994 08:49:37 GMT")
    jars.set("http://example.com/", "d=; Max-Age=0")  # other path: deletes nothing
    jars.set("http://example.com/", "e=; Max-Age=junk; Expires=Sun, 06 Nov 1994 08:49:37 GMT")
    assert jars.header("http://example.com/x/y") == 'd=4; e=""'
    assert [entry[0] for entry in jars.check()] == ["e", "d"]  # buckets: ("example.com", "") first


def test_replacement_drops_old_expiry(pair: Callable[..., Pair], clock: Clock) -> None:
    jars = pair()
    jars.set("http://example.com/", "a=1; Max-Age=5")
    jars.set("http://example.com/", "a=2")
    clock.now += 100
    assert jars.header("http://example.com/") == "a=2"


@pytest.mark.parametrize("max_age", ["+5", " 5", "1_0", "5.5", "-0", "9" * 30, "-" + "9" * 400])
def test_odd_max_age(pair: Callable[..., Pair], clock: Clock, max_age: str) -> None:
    jars = pair()
    jars.update_cookies({"m": _morsel_with("m", "1", **{"max-age": max_age})}, URL("http://a.com/"))
    jars.check()
    clock.now += 7
    jars.header("http://a.com/")
    jars.check()


def test_len_counts_expired_until_expiry_runs(pair: Callable[..., Pair], clock: Clock) -> None:
    jars = pair()
    jars.set("http://example.com/", "a=1; Max-Age=1", "b=2")
    clock.now += 2
    assert (len(jars.ours), len(jars.theirs)) == (2, 2)
    jars.set("http://example.com/", "junk")  # nothing parsed: nothing done
    assert (len(jars.ours), len(jars.theirs)) == (2, 2)
    assert len(jars.check()) == 1


def test_real_clock_max_age() -> None:
    jar = CookieJar()
    jar.update_cookies_from_headers(["a=1; Max-Age=1"], URL("http://example.com/"))
    assert jar.cookie_header(URL("http://example.com/")) == "a=1"
    deadline = time.time() + 1.0
    time.sleep(max(deadline - time.time(), 0) + 0.05)
    assert jar.cookie_header(URL("http://example.com/")) is None
    assert len(jar) == 0


# --- clear, iteration -----------------------------------------------------------------------


def _morsel_with(name: str, value: str, **attrs: Any) -> Morsel[str]:
    morsel: Morsel[str] = Morsel()
    morsel.set(name, value, value)
    for attr, attr_value in attrs.items():
        morsel[attr] = attr_value
    return morsel


def _fill(jars: Pair) -> None:
    jars.set("http://example.com/", "a=1", "b=2; Domain=example.com; Secure")
    jars.set("http://www.example.com/", "c=3", "d=4; Path=/p")
    jars.set("http://other.org/", "e=5; Max-Age=5")
    jars.update_cookies({"f": "6"})


@pytest.mark.parametrize(
    "domain", ["example.com", "www.example.com", "com", "other.org", "", "ample.com", "x"]
)
def test_clear_domain(pair: Callable[..., Pair], domain: str) -> None:
    jars = pair()
    _fill(jars)
    jars.clear_domain(domain)
    jars.check()


def test_clear(pair: Callable[..., Pair], clock: Clock) -> None:
    jars = pair()
    _fill(jars)
    jars.clear(lambda m: m.key in ("a", "d"))
    jars.check()
    clock.now += 10  # e expires: clear(predicate) drops it without asking the predicate
    seen: list[str] = []
    jars.clear(lambda m: seen.append(m.key) or False)  # type: ignore[func-returns-value]
    assert "e" not in seen
    jars.check()
    jars.clear()
    assert jars.check() == [] and jars.ours.cookies == {}


def test_iter_and_len(pair: Callable[..., Pair]) -> None:
    jars = pair()
    _fill(jars)
    assert len(jars.ours) == 6
    assert [m.key for m in jars.ours] == ["a", "b", "c", "d", "e", "f"]
    jars.check()


# --- limits (aiohttp 3.14) ------------------------------------------------------------------


def test_per_domain_eviction(pair: Callable[..., Pair]) -> None:
    jars = pair()
    for i in range(170):
        jars.set("http://example.com/", f"c{i:03}=1")
    jars.header("http://example.com/")  # touches every cookie at once (the first 150 sent)
    for i in range(170, 200):
        jars.set("http://example.com/", f"c{i:03}=1" + ("; Secure" if i % 3 else ""))
    jars.check()
    jars.header("http://example.com/")
    jars.header("https://example.com/")


def test_secure_cookies_evicted_only_for_secure(pair: Callable[..., Pair]) -> None:
    jars = pair()
    for i in range(180):
        jars.set("https://example.com/", f"s{i:03}=1; Secure")
    jars.set("https://example.com/", "plain=1")  # dropped: only Secure cookies to evict
    jars.set("https://example.com/", "sec=1; Secure")  # evicts the least recently used
    jars.set("https://example.com/", "gone=1; Max-Age=0")  # a deletion evicts nothing
    jars.check()


def test_request_limits(pair: Callable[..., Pair]) -> None:
    jars = pair()
    for i in range(160):
        jars.set("http://example.com/", f"n{i:03}=1")
    jars.set("http://example.com/", "deep=1; Path=/a")
    header = jars.header("http://example.com/a")
    assert header is not None and len(header.split("; ")) == 150 and "deep=1" in header
    big = pair()
    for i in range(5):
        big.set("http://example.com/", f"big{i}=" + "x" * 3000)
    header = big.header("http://example.com/")
    assert header is not None and len(header) < 8190
    big.check()


def test_total_limit(pair: Callable[..., Pair]) -> None:
    jars = pair()
    for i in range(3310):
        jars.update_cookies({"c": "1"}, URL(f"http://h{i}.example/"))
    # At 3300 the least recently used go, down to 3000; then the jar fills up again.
    assert (len(jars.ours), len(jars.theirs)) == (3010, 3010)
    jars.check()


# --- save / load ----------------------------------------------------------------------------


def test_save_load_round_trip_and_aiohttp_files(
    pair: Callable[..., Pair], clock: Clock, tmp_path: Path
) -> None:
    jars = pair()
    _fill(jars)
    jars.set("https://example.com/", 'q="x;y"; Secure; HttpOnly; SameSite=Lax; Max-Age=100')
    jars.set("http://example.com/", "u=caf\xc3\xa9; Expires=Wed, 09 Jun 2100 10:18:14 GMT")
    jars.set("http://example.com/", "x=1; Domain=example.com.")
    jars.ours.save(tmp_path / "ours.json")
    jars.theirs.save(tmp_path / "theirs.json")
    ours_data = json.loads((tmp_path / "ours.json").read_text())
    assert ours_data == json.loads((tmp_path / "theirs.json").read_text())
    assert (tmp_path / "ours.json").read_text() == (tmp_path / "theirs.json").read_text()
    assert (tmp_path / "ours.json").stat().st_mode & 0o777 == 0o600
    urls = ["http://example.com/", "https://www.example.com/p/", "http://other.org/"]
    expected = [jars.header(url) for url in urls]
    for source in ("ours.json", "theirs.json"):
        loaded = pair()
        loaded.load(tmp_path / source)
        # Max-Age and Expires are not saved (the deadline is), in either jar.
        assert [e[:3] for e in loaded.check()] == [e[:3] for e in jars.check()]
        assert [loaded.header(url) for url in urls] == expected
        clock.now += 6  # e (Max-Age=5) expires in the loaded jars too
        assert loaded.header("http://other.org/") == "f=6"
        clock.now -= 6


def test_load_replaces_contents_and_bad_file_keeps_jar(
    pair: Callable[..., Pair], tmp_path: Path
) -> None:
    jars = pair()
    jars.set("http://example.com/", "a=1")
    view = jars.ours.cookies
    jars.save(tmp_path / "one.json")
    jars.set("http://example.com/", "b=2")
    jars.load(tmp_path / "one.json")
    assert [entry[0] for entry in jars.check()] == ["a"] and list(view) == [("example.com", "")]
    bad = {
        "example.com|": {
            "a": {"key": "a", "value": "1", "coded_value": "1", "expires_timestamp": "nan"}
        }
    }
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    for jar in (jars.ours, jars.theirs):
        with pytest.raises(ValueError, match="finite number"):
            jar.load(tmp_path / "bad.json")
    assert [entry[0] for entry in jars.check()] == ["a"]


def test_load_legacy_pickle(pair: Callable[..., Pair], tmp_path: Path) -> None:
    # What aiohttp before the JSON format wrote: pickle of defaultdict[(domain, path)] -> SimpleCookie
    legacy: defaultdict[tuple[str, str], SimpleCookie] = defaultdict(SimpleCookie)
    legacy["example.com", ""]["a"] = _morsel_with("a", "1", domain="example.com", path="/")
    legacy["", ""]["s"] = _morsel_with("s", "2", path="/")
    (tmp_path / "legacy.pickle").write_bytes(pickle.dumps(legacy, pickle.HIGHEST_PROTOCOL))
    jars = pair()
    jars.load(tmp_path / "legacy.pickle")
    assert [entry[0] for entry in jars.check()] == ["a", "s"]
    jars.header("http://sub.example.com/")
    (tmp_path / "evil.pickle").write_bytes(pickle.dumps({"x": SimpleNamespace()}))
    for jar in (jars.ours, jars.theirs):
        with pytest.raises(pickle.UnpicklingError):
            jar.load(tmp_path / "evil.pickle")


def test_load_respects_ip_rules(pair: Callable[..., Pair], tmp_path: Path) -> None:
    unsafe = pair(unsafe=True)
    unsafe.set("http://127.0.0.1/", "ip=1")
    unsafe.ours.save(tmp_path / "ip.json")
    for kwargs in ({}, {"unsafe": True}):
        jars = pair(**kwargs)
        jars.load(tmp_path / "ip.json")
        jars.check()


# --- response.cookies, DummyCookieJar -------------------------------------------------------

SET_COOKIES = [
    "a=1",
    "b = 2 ; Path = /x ; Domain = .Example.com",
    'q="x;y"; Path=/',
    'half="x; Path=/',
    "spaces=a b c",
    "brackets[0]=v",
    "n,comma=1",
    "=nameless",
    "noequals",
    "",
    "dup=1",
    "dup=2",
    "tab=\ta\t",
    "ctl=a\x01b",
    "e=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Max-Age=5; Secure=no; HttpOnly; SameSite=None",
    "f=1; Path=/ HttpOnly",
    'g=1;;; ;Path=/p;  ;Unknown=1; =x; Comment="a;b"',
    "h=é; Path=/é",
    "long=" + "x" * 5000,
    'esc="a\\"b\\073"',
]


def test_response_cookies_as_aiohttp() -> None:
    ours, theirs = response_cookies(SET_COOKIES), aiohttp_response_cookies(SET_COOKIES)
    assert contents_of(ours) == contents_of(theirs)
    assert ours.output() == theirs.output()
    assert response_cookies([]) == aiohttp_response_cookies([]) == SimpleCookie()
    many = [f"c{i}=1" for i in range(60)]
    assert contents_of(response_cookies(many)) == contents_of(aiohttp_response_cookies(many))


def contents_of(cookies: BaseCookie[str]) -> list[tuple[str, str, str, str, list[tuple[str, Any]]]]:
    return [(name, m.key, m.value, m.coded_value, list(m.items())) for name, m in cookies.items()]


def test_jar_from_headers_as_aiohttp(pair: Callable[..., Pair]) -> None:
    jars = pair()
    jars.set("https://www.example.com/x/y", *SET_COOKIES)
    jars.check()
    for url in [
        "https://www.example.com/x/",
        "http://example.com/p/q",
        "https://www.example.com/é",
    ]:
        jars.header(url)


def test_dummy_cookie_jar(loop: asyncio.AbstractEventLoop) -> None:
    ours, theirs = DummyCookieJar(), aiohttp.DummyCookieJar(loop=loop)
    for jar in (ours, theirs):
        jar.update_cookies({"a": "1"})
        jar.update_cookies_from_headers(["b=2"], URL("http://example.com/"))
        jar.clear()
        jar.clear_domain("example.com")
        assert len(jar) == 0 and list(jar) == []
        filtered = jar.filter_cookies(URL("http://example.com/"))
        assert type(filtered) is SimpleCookie and not filtered
        assert jar.quote_cookie is True and jar.unsafe is False
        assert jar.cookies == {} and jar.host_only_cookies == frozenset()
    assert ours.cookie_header(URL("http://example.com/")) is None


def test_jars_are_abstract_cookie_jars(loop: asyncio.AbstractEventLoop) -> None:
    """Code typed against aiohttp.abc.AbstractCookieJar takes compat's jars, as aiohttp's."""
    for ours, theirs in (
        (CookieJar(), aiohttp.CookieJar(loop=loop)),
        (DummyCookieJar(), aiohttp.DummyCookieJar(loop=loop)),
    ):
        assert isinstance(ours, AbstractCookieJar)
        assert isinstance(theirs, aiohttp.abc.AbstractCookieJar)


# --- differential fuzzing of the Set-Cookie grammar ----------------------------------------

_PIECES = st.sampled_from(
    [
        *("a", "Z", "0", "=", ";", " ", "\t", '"', "\\", ",", "[", "]", "é", "\x7f", "\x01", "$"),
        *(".", "/", "\\073", "Path", "path=/", "Domain", "domain=.example.com", "Max-Age"),
        *(
            "Expires",
            "Secure",
            "HttpOnly",
            "SameSite",
            "Wed, 09 Jun 2021 10:18:14 GMT",
            "max-age=0",
        ),
    ]
)
_FIELDS = st.lists(st.lists(_PIECES, max_size=12).map("".join), max_size=4)


@settings(max_examples=400, deadline=None)
@given(fields=_FIELDS)
def test_fuzz_set_cookie_fields(loop: asyncio.AbstractEventLoop, fields: list[str]) -> None:
    assert contents_of(response_cookies(fields)) == contents_of(aiohttp_response_cookies(fields))
    jars = Pair(loop)
    jars.set("http://www.example.com/d/p", *fields)
    jars.check()
    jars.header("http://www.example.com/d/")
    jars.header("https://example.com/")
