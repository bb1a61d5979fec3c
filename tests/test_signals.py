"""Signal, TraceConfig and the params classes, without the network."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest
from multidict import CIMultiDict
from yarl import URL

import compat
from compat._tracing import AIOHTTP_SIGNALS, Tracer

pytestmark = pytest.mark.anyio


async def test_send_awaits_handlers_in_order_with_the_same_arguments() -> None:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def first(*args: Any, **kwargs: Any) -> None:
        calls.append(("first", args, kwargs))

    async def second(*args: Any, **kwargs: Any) -> None:
        calls.append(("second", args, kwargs))

    signal = compat.Signal(owner="me")
    signal.extend([first, second])
    signal.freeze()
    await signal.send(1, 2, key="v")
    assert calls == [("first", (1, 2), {"key": "v"}), ("second", (1, 2), {"key": "v"})]


async def test_sending_a_non_frozen_signal_raises() -> None:
    signal = compat.Signal(owner=None)
    with pytest.raises(RuntimeError, match="non-frozen"):
        await signal.send()


async def test_a_handler_exception_propagates_and_stops_later_handlers() -> None:
    seen: list[str] = []

    async def boom(*_: Any) -> None:
        raise KeyError("boom")

    async def later(*_: Any) -> None:
        seen.append("later")

    signal = compat.Signal(owner=None)
    signal.extend([boom, later])
    signal.freeze()
    with pytest.raises(KeyError):
        await signal.send()
    assert seen == []


def test_a_frozen_signal_refuses_every_mutation() -> None:
    async def handler(*_: Any) -> None:
        pass

    signal = compat.Signal(owner=None)
    signal.append(handler)
    signal.freeze()
    assert signal.frozen
    for mutate in (
        lambda: signal.append(handler),
        lambda: signal.insert(0, handler),
        lambda: signal.__setitem__(0, handler),
        lambda: signal.__delitem__(0),
        lambda: signal.remove(handler),
        lambda: signal.clear(),
    ):
        with pytest.raises(RuntimeError, match="frozen"):
            mutate()
    assert list(signal) == [handler]


def test_signal_is_a_list_like_with_a_useful_repr() -> None:
    async def handler(*_: Any) -> None:
        pass

    signal = compat.Signal(owner="owner-x")
    signal += [handler]
    assert len(signal) == 1 and signal[0] is handler and signal == [handler]
    text = repr(signal)
    assert "owner-x" in text and "frozen=False" in text and "handler" in text


def test_trace_config_has_all_16_signals_and_freezes_them() -> None:
    config = compat.TraceConfig()
    for name in AIOHTTP_SIGNALS:
        assert isinstance(getattr(config, name), compat.Signal), name
    assert len(AIOHTTP_SIGNALS) == 16
    config.freeze()
    assert all(getattr(config, name).frozen for name in AIOHTTP_SIGNALS)


def test_trace_config_ctx_calls_the_factory_by_keyword() -> None:
    received: list[dict[str, Any]] = []

    def factory(**kwargs: Any) -> SimpleNamespace:
        received.append(kwargs)
        return SimpleNamespace(**kwargs)

    config = compat.TraceConfig(factory)
    ctx = config.trace_config_ctx(trace_request_ctx={"attempt": 2})
    assert received == [{"trace_request_ctx": {"attempt": 2}}]
    assert ctx.trace_request_ctx == {"attempt": 2}
    default = compat.TraceConfig().trace_config_ctx()
    assert isinstance(default, SimpleNamespace) and default.trace_request_ctx is None


def test_params_are_frozen_slotted_and_compare_by_value() -> None:
    headers: CIMultiDict[str] = CIMultiDict(a="1")
    one = compat.TraceRequestStartParams(method="GET", url=URL("http://x/"), headers=headers)
    two = compat.TraceRequestStartParams(method="GET", url=URL("http://x/"), headers=headers)
    assert one == two
    assert not hasattr(one, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.method = "POST"  # type: ignore[misc]


def test_documented_aliases_resp_and_host() -> None:
    response: Any = object()
    end = compat.TraceRequestEndParams(
        method="GET", url=URL("http://x/"), headers=CIMultiDict(), response=response
    )
    assert end.resp is response
    redirect = compat.TraceRequestRedirectParams(
        method="GET", url=URL("http://x/"), headers=CIMultiDict(), response=response
    )
    assert redirect.resp is response
    for cls in (
        compat.TraceDnsResolveHostStartParams,
        compat.TraceDnsResolveHostEndParams,
        compat.TraceDnsCacheHitParams,
        compat.TraceDnsCacheMissParams,
    ):
        params = cls(host="example.org")
        assert params.Host == "example.org" == params.host
        with pytest.raises((AttributeError, TypeError)):
            params.Host = "other"  # type: ignore[misc]


def test_params_classes_and_field_names_match_aiohttp() -> None:
    import aiohttp.tracing as real
    import attr

    names = [n for n in dir(real) if n.startswith("Trace") and n.endswith("Params")]
    assert len(names) == 16
    for name in names:
        ours = [f.name for f in dataclasses.fields(getattr(compat, name))]
        theirs = [a.name for a in attr.fields(getattr(real, name))]
        assert ours == theirs, name


def test_tracer_skips_signals_without_handlers_and_accepts_aiohttp_configs() -> None:
    import aiohttp

    async def handler(*_: Any) -> None:
        pass

    ours = compat.TraceConfig()
    ours.on_request_end.append(handler)
    theirs = aiohttp.TraceConfig()
    theirs.on_request_end.append(handler)
    theirs.on_dns_cache_hit.append(handler)
    tracer = Tracer(owner=None, configs=(ours, theirs))
    assert [index for index, _ in tracer.on_request_end] == [0, 1]
    assert tracer.on_request_end[0][1] is handler  # ours: the handler itself
    assert tracer.on_request_end[1][1] == theirs.on_request_end.send  # aiohttp's: its send
    assert [index for index, _ in tracer.on_dns_cache_hit] == [1]
    assert tracer.on_request_start == ()
    assert tracer.on_tls_handshake_end == ()  # aiohttp's config has no extension signals
    assert ours.on_request_end.frozen and theirs.on_request_end.frozen
