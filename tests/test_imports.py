"""`import compat` loads only what the first use needs (issue 24): no httpx, httpcore, h2, h11,
trio or OpenTelemetry until their feature is used. Each check runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("httpx", "httpcore", "h2", "h11", "trio", "opentelemetry", "asyncio", "urllib.request")


def _loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(out.split())


def test_import_compat_loads_no_optional_or_httpx_machinery() -> None:
    loaded = _loaded_after("import compat")
    assert "compat._session" in loaded  # the session itself is not deferred
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


FEATURES = (
    "compat._websocket",
    "compat._multipart",
    "compat._formdata",
    "compat._digest",
    "pickle",
)


def test_features_load_on_first_use() -> None:
    assert not _loaded_after("import compat") & set(FEATURES)
    loaded = _loaded_after("import compat\ncompat.WSMsgType, compat.FormData")
    assert {"compat._websocket", "compat._formdata", "compat._multipart"} <= loaded
    assert "compat._digest" not in loaded


def test_lazy_names_are_listed_and_star_importable() -> None:
    import compat

    assert {"FormData", "MultipartWriter", "ClientWebSocketResponse"} <= set(dir(compat))
    names: dict[str, object] = {}
    exec("from compat import *", names)
    assert names["DigestAuthMiddleware"] is compat.DigestAuthMiddleware


def test_exception_names_and_params_import_without_httpx() -> None:
    loaded = _loaded_after(
        "from compat import ClientConnectorError, ServerDisconnectedError, TraceConfig,"
        " TraceRequestStartParams, ClientSession, TCPConnector"
    )
    assert "httpx" not in loaded and "httpcore" not in loaded


@pytest.mark.parametrize("name", ["TracedTransport", "traced_client"])
def test_httpx_entry_point_loads_httpx_on_first_use(name: str) -> None:
    loaded = _loaded_after(f"import compat\nassert callable(compat.{name})")
    assert "httpx" in loaded
    assert _loaded_after(f"from compat import {name}") >= {"httpx", "compat._httpx"}


def test_unknown_attribute_is_an_attribute_error() -> None:
    import compat

    with pytest.raises(AttributeError, match="no_such_name"):
        compat.no_such_name  # noqa: B018


def test_params_classes_are_made_dataclasses_on_first_use() -> None:
    """Making a dataclass runs several generated functions through `exec`: the 22 params
    classes are made when first asked for, one class object per name whoever asks."""
    code = """
import dataclasses, compat, compat._params as params
from yarl import URL
from multidict import CIMultiDict
made = [name for name in compat.__all__ if name.endswith("Params") and name in vars(params)]
assert made == [], made
start = params.request_start_params("GET", URL("http://h/"), CIMultiDict())
cls = compat.TraceRequestStartParams
assert type(start) is cls is params.TraceRequestStartParams
assert dataclasses.is_dataclass(cls) and cls.__slots__ == ("method", "url", "headers")
assert start == cls("GET", URL("http://h/"), CIMultiDict())
assert params.REUSECONN is params.REUSECONN
assert type(params.REUSECONN) is compat.TraceConnectionReuseconnParams
assert "TraceDnsCacheHitParams" not in vars(params)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
