"""OpenTelemetry auto-instrumentation for `compat.ClientSession` (the `otel` extra).

OpenTelemetry's aiohttp instrumentor adds its trace config to every `aiohttp.ClientSession`
by patching that class, which never reaches ours. `CompatInstrumentor` does the same for
`compat.ClientSession`, with OpenTelemetry's own aiohttp trace config, so spans are exactly
those of an aiohttp session. It is registered under OpenTelemetry's `opentelemetry_instrumentor`
entry point, so `opentelemetry-instrument python app.py` picks it up with no code change:

    from compat.otel import CompatInstrumentor
    CompatInstrumentor().instrument(tracer_provider=provider)   # or by hand
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from ._session import ClientSession

__all__ = ["CompatInstrumentor"]

_OPTIONS = (
    "url_filter",
    "request_hook",
    "response_hook",
    "tracer_provider",
    "meter_provider",
)


class CompatInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Adds OpenTelemetry's aiohttp-client trace config to every new `compat.ClientSession`."""

    _original_init: Any = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("httpx-trace-compat",)

    def _instrument(self, **kwargs: Any) -> None:
        options = {name: kwargs[name] for name in _OPTIONS if kwargs.get(name) is not None}
        original = ClientSession.__init__
        type(self)._original_init = original

        def __init__(session: ClientSession, *args: Any, **session_kwargs: Any) -> None:
            configs = list(session_kwargs.get("trace_configs") or ())
            configs.append(create_trace_config(**options))
            session_kwargs["trace_configs"] = configs
            original(session, *args, **session_kwargs)

        ClientSession.__init__ = __init__  # type: ignore[method-assign,assignment]

    def _uninstrument(self, **kwargs: Any) -> None:
        original = type(self)._original_init
        if original is not None:
            ClientSession.__init__ = original  # type: ignore[method-assign]
            type(self)._original_init = None
