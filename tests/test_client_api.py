"""aiohttp's smaller client API, each piece checked against live aiohttp 3.14: `hdrs`, signals as
decorators, Content-Disposition and Link parsing, `ETag`, `ChainMapProxy`, `encode_basic_auth`,
and the session, response and `response.content` attributes added for issue 22."""

from __future__ import annotations

import asyncio
import gzip
import warnings
from collections.abc import Iterator
from typing import Any

import aiohttp
import aiohttp.hdrs
import aiosignal
import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy, MultiDictProxy, istr
from yarl import URL

import compat
import compat.hdrs
from compat._headervalues import parse_links

from .app_server import AppServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:.*deprecated.*:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def app() -> Iterator[AppServer]:
    srv = AppServer().start()
    yield srv
    srv.stop()


# --- hdrs -----------------------------------------------------------------------------------------


def test_hdrs_has_every_constant_of_aiohttps_with_the_same_value_and_type() -> None:
    theirs = {n for n in dir(aiohttp.hdrs) if n.isupper()}
    ours = {n for n in dir(compat.hdrs) if n.isupper()}
    assert ours == theirs
    for name in theirs:
        value = getattr(compat.hdrs, name)
        assert value == getattr(aiohttp.hdrs, name), name
        assert type(value) is type(getattr(aiohttp.hdrs, name)), name
    assert CIMultiDict({"content-type": "x"})[compat.hdrs.CONTENT_TYPE] == "x"
    assert isinstance(compat.hdrs.ETAG, istr)
    assert "hOsT" in compat.hdrs.HOST_ALL and len(compat.hdrs.HOST_ALL) == 16


# --- signals --------------------------------------------------------------------------------------


async def test_a_signal_is_a_decorator_that_appends_and_returns_the_handler() -> None:
    config = compat.TraceConfig()
    seen: list[str] = []

    @config.on_request_start
    async def on_start(session: Any, ctx: Any, params: Any) -> None:
        seen.append(params)

    assert on_start in config.on_request_start and callable(on_start)
    config.freeze()
    await config.on_request_start.send(None, None, "p")
    assert seen == ["p"]


def _error_of(action: Any, *args: Any) -> tuple[type[BaseException], str]:
    try:
        action(*args)
    except BaseException as exc:
        return type(exc), str(exc)
    raise AssertionError("no error")


def test_frozen_and_unfrozen_signal_errors_are_aiosignals() -> None:
    async def handler(*_: Any) -> None:
        pass

    for lib_signal in (aiosignal.Signal, compat.Signal):
        assert lib_signal(None) == []
    ours, theirs = compat.Signal(None), aiosignal.Signal(None)
    assert _error_of(lambda: hash(ours)) == _error_of(lambda: hash(theirs))
    ours.freeze()
    theirs.freeze()
    for mutate in (
        lambda s: s.append(handler),
        lambda s: s.insert(0, handler),
        lambda s: s(handler),
        lambda s: s.__setitem__(slice(0, 0), [handler]),
    ):
        assert _error_of(mutate, ours) == _error_of(mutate, theirs)
    assert repr(compat.Signal("me")) == repr(aiosignal.Signal("me"))


async def test_a_decorated_handler_runs_on_a_real_request(app: AppServer) -> None:
    config = compat.TraceConfig()
    statuses: list[int] = []

    @config.on_request_end
    async def on_end(session: Any, ctx: Any, params: Any) -> None:
        statuses.append(params.response.status)

    async with compat.ClientSession(trace_configs=[config]) as session:
        async with session.get(app.url_for("/items")) as resp:
            await resp.read()
    assert statuses == [200]


# --- Content-Disposition, Link ---------------------------------------------------------------------

_PIECES = [
    *"ab*01=;\"'\\/ \t%\né<>,",
    "filename",
    "name",
    "10",
    "%41",
    "%ff",
    "utf-8''",
    "latin-1'en'",
    "bogus''",
    "attachment",
    "inline",
    "rel",
    "next",
]


def _outcome(function: Any, *args: Any) -> tuple[Any, list[tuple[str, str]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: Any = ("ok", function(*args))
        except Exception as exc:
            result = ("error", type(exc).__name__)
    return result, [(w.category.__name__, str(w.message)) for w in caught]


@settings(max_examples=3000, deadline=None)
@given(
    prefix=st.sampled_from(["", "attachment; ", "inline;", 'form-data; name="f"; ']),
    pieces=st.lists(st.sampled_from(_PIECES), max_size=14),
)
def test_content_disposition_parses_as_aiohttp(prefix: str, pieces: list[str]) -> None:
    header = prefix + "".join(pieces)
    theirs = _outcome(aiohttp.multipart.parse_content_disposition, header)
    assert _outcome(compat.parse_content_disposition, header) == theirs
    if theirs[0][0] == "ok":
        params = theirs[0][1][1]
        for name in ("filename", "name"):
            assert _outcome(compat.content_disposition_filename, params, name) == _outcome(
                aiohttp.multipart.content_disposition_filename, params, name
            )


@pytest.mark.parametrize(
    "header",
    [
        "attachment; filename=\"a b.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt",
        'attachment; filename="\\\\..\\\\etc/passwd"',
        "inline; filename*0=\"foo.\"; filename*1=html; filename*2*=utf-8''%e2%82%ac",
        'attachment; filename="semi;colon.txt"',
        "attachment; filename*=bogus-charset''x",
        "attachment; name=a; name=b",
        "attachment; ; filename=x",
        "attach ment",
        "",
    ],
)
def test_content_disposition_known_cases(header: str) -> None:
    for function, args in (
        ("parse_content_disposition", (header,)),
        ("content_disposition_filename", ({"filename*0": "a", "filename*1": "b"},)),
    ):
        assert _outcome(getattr(compat, function), *args) == _outcome(
            getattr(aiohttp.multipart, function), *args
        )


class _Head:
    """What aiohttp's `ClientResponse.links` reads: headers and url."""

    def __init__(self, values: list[str]) -> None:
        self.headers = CIMultiDictProxy(CIMultiDict([("Link", v) for v in values]))
        self.url = URL("http://api.example/v1/items?page=2")


def _aiohttp_links(values: list[str]) -> Any:
    return aiohttp.ClientResponse.__dict__["links"].wrapped(_Head(values))


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join), max_size=3))
def test_links_parse_as_aiohttp(values: list[str]) -> None:
    values = [("<" + v if i % 2 == 0 else v) for i, v in enumerate(values)]
    ours = _outcome(parse_links, values, _Head(values).url)
    assert ours == _outcome(_aiohttp_links, values)


# --- small helpers --------------------------------------------------------------------------------


def test_encode_basic_auth_etag_and_chain_map_proxy_as_aiohttp() -> None:
    for args in (("user", "pass"), ("üser", "pä", "latin-1"), ("u",), ("a:b", "c")):
        assert _outcome(compat.encode_basic_auth, *args) == _outcome(
            aiohttp.encode_basic_auth, *args
        )
    assert compat.ETag("v1", is_weak=True) == compat.ETag(value="v1", is_weak=True)
    with pytest.raises(AttributeError):
        compat.ETag("v1").value = "v2"  # type: ignore[misc]
    maps: list[dict[str, int]] = [{"a": 1, "b": 2}, {"b": 3, "c": 4}]
    ours, theirs = compat.ChainMapProxy(maps), aiohttp.ChainMapProxy(maps)
    assert list(ours) == list(theirs) and len(ours) == len(theirs) == 3
    assert dict(ours) == dict(theirs) and repr(ours) == repr(theirs)
    assert ours["b"] == 2 and ours.get("z", 9) == 9 and "c" in ours and bool(ours)
    assert repr(compat.ChainMapProxy([])) == repr(aiohttp.ChainMapProxy([]))
    assert not compat.ChainMapProxy([{}])
    with pytest.raises(KeyError):
        ours["z"]
    with pytest.raises(TypeError, match="forbidden"):
        type("Sub", (compat.ChainMapProxy,), {})


# --- live attributes: the same values as aiohttp's -------------------------------------------------


async def _response_facts(lib: Any, app: AppServer) -> dict[str, Any]:
    async with lib.ClientSession() as session:
        async with session.get(app.url_for("/items?per=2&page=2")) as resp:
            links = resp.links
            facts: dict[str, Any] = {
                "links": {k: dict(v) for k, v in links.items()},
                "links_types": (type(links), {type(v) for v in links.values()}),
                "host": resp.host,
                "url_obj": resp.url_obj,
                "content_disposition": resp.content_disposition,
                "limits": resp.content.get_read_buffer_limits(),
            }
            await resp.read()
        async with session.get(app.url_for("/download?kib=16")) as resp:
            disposition = resp.content_disposition
            facts["disposition"] = (
                disposition.type,
                dict(disposition.parameters),
                type(disposition.parameters),
                disposition.filename,
            )
            await resp.content.wait_eof()
            unread = resp.content.total_bytes
            body = await resp.read()
            facts["body"] = (len(body), unread == len(body))
            facts["totals"] = (
                resp.content.total_bytes,
                resp.content.total_raw_bytes == resp.content.total_compressed_bytes,
                resp.content.total_compressed_bytes < len(body),
            )
    return facts


async def test_response_attributes_equal_aiohttps(app: AppServer) -> None:
    theirs = await anyio.to_thread.run_sync(lambda: asyncio.run(_response_facts(aiohttp, app)))
    ours = await _response_facts(compat, app)
    assert ours["links_types"] == (MultiDictProxy, {MultiDictProxy})
    assert ours == theirs
    assert ours["links"]["next"]["url"] == URL(app.url_for("/items?per=2&page=3"))
    assert ours["disposition"][3] == "résumé.bin"
    expected = len(gzip.decompress(gzip.compress(bytes(range(256)) * 64)))
    assert ours["body"] == (expected, True)


async def _session_facts(lib: Any) -> dict[str, Any]:
    async def check(resp: Any) -> None:
        pass

    auth = lib.BasicAuth("u", "p")
    connector = lib.TCPConnector()
    session = lib.ClientSession(
        connector=connector,
        connector_owner=False,
        auth=auth,
        raise_for_status=check,
        skip_auto_headers=["User-Agent"],
    )
    facts = {
        "auth": session.auth == auth,
        "connector_owner": session.connector_owner,
        "raise_for_status": session.raise_for_status is check,
        "skip_auto_headers": session.skip_auto_headers,
        "skip_types": {type(h) for h in session.skip_auto_headers},
        "json_serialize": session.json_serialize.__name__,
        "connector": (connector.limit, connector.limit_per_host, connector.force_close),
        "family": connector.family,
        "version": session.version,
        "use_dns_cache": connector.use_dns_cache,
    }
    session.detach()
    facts["detached"] = (session.closed, session.connector, connector.closed)
    await connector.close()
    return facts


async def test_session_attributes_equal_aiohttps() -> None:
    theirs = await anyio.to_thread.run_sync(lambda: asyncio.run(_session_facts(aiohttp)))
    assert await _session_facts(compat) == theirs


# --- compat.request(), BaseConnector, set_zlib_backend -------------------------------


async def _one_off(lib: Any, app: AppServer) -> Any:
    async with lib.request("GET", app.url_for("/items?per=1"), params={"page": "3"}) as resp:
        return resp.status, await resp.json(), sorted(resp.links), resp.headers["Content-Type"]


async def test_request_is_a_one_off_session_as_aiohttp(app: AppServer) -> None:
    theirs = await anyio.to_thread.run_sync(lambda: asyncio.run(_one_off(aiohttp, app)))
    assert (
        await _one_off(compat, app)
        == theirs
        == (200, {"items": ["item-3-0"]}, ["last"], "application/json")
    )
    connector = compat.TCPConnector()
    async with compat.request("GET", app.url_for("/items"), connector=connector) as resp:
        assert resp.status == 200
    assert not connector.closed  # a connector passed in stays open, as aiohttp
    await connector.close()
    with pytest.raises(compat.ClientConnectorError):
        async with compat.request("GET", "http://127.0.0.1:1/"):
            pass
    with pytest.raises(ValueError, match=r"HTTP/1\.1"):
        compat.request("GET", app.url, version=(1, 0))


def test_base_connector_and_its_subclasses() -> None:
    assert issubclass(compat.TCPConnector, compat.BaseConnector)
    assert issubclass(compat.UnixConnector, compat.BaseConnector)
    for name in ("TCPConnector", "UnixConnector", "BaseConnector"):
        assert (
            getattr(compat, name).allowed_protocol_schema_set
            == getattr(aiohttp, name).allowed_protocol_schema_set
        )

    class Tuned(compat.TCPConnector):  # settings in a subclass: supported
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(limit=7, **kwargs)

    tuned = Tuned(limit_per_host=2)
    assert (tuned.limit, tuned.limit_per_host) == (7, 2)
    compat.ClientSession(connector=tuned).detach()

    class Socks(compat.TCPConnector):  # aiohttp-socks' hook: refused by name
        async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("never called")

    with pytest.raises(TypeError, match="_wrap_create_connection"):
        Socks()
    with pytest.raises(TypeError, match="opens no connections"):
        compat.ClientSession(connector=compat.BaseConnector())


def test_an_aiohttp_connector_is_refused_by_name() -> None:
    async def attempt() -> None:
        connector = aiohttp.TCPConnector()
        try:
            with pytest.raises(TypeError, match=r"aiohttp\.connector\.TCPConnector"):
                compat.ClientSession(connector=connector)  # type: ignore[arg-type]
        finally:
            await connector.close()

    asyncio.run(attempt())


class _CountingZlib:
    """A zlib-compatible backend that counts the decompressors made from it."""

    def __init__(self) -> None:
        import zlib

        self.made = 0
        self.error = zlib.error
        self.MAX_WBITS = zlib.MAX_WBITS
        self.compressobj = zlib.compressobj
        self._zlib = zlib

    def decompressobj(self, *args: Any) -> Any:
        self.made += 1
        return self._zlib.decompressobj(*args)


async def test_set_zlib_backend_inflates_bodies_with_the_given_module(app: AppServer) -> None:
    import zlib

    backend = _CountingZlib()
    compat.set_zlib_backend(backend)
    try:
        async with compat.ClientSession() as session:
            async with session.get(app.url_for("/download?kib=4")) as resp:
                body = await resp.read()
    finally:
        compat.set_zlib_backend(zlib)
    assert backend.made == 1 and len(body) == 4096
    with pytest.raises(TypeError, match="decompressobj"):
        compat.set_zlib_backend(object())
