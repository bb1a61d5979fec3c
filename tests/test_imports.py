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
