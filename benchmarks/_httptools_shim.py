"""Python wrappers around httptools' Cython entry points, so that cProfile can see them.

Used by `benchmarks.profile` only (see `expose_httptools` there); the timed benchmarks never
import this module.
"""

from __future__ import annotations

from typing import Any

import httptools

ORIGINAL_PARSER = httptools.HttpResponseParser
ORIGINAL_PARSE_URL = httptools.parse_url


class HttpResponseParser(ORIGINAL_PARSER):
    __slots__ = ()

    def feed_data(self, data: Any) -> None:
        ORIGINAL_PARSER.feed_data(self, data)


def parse_url(url: bytes) -> Any:
    return ORIGINAL_PARSE_URL(url)
