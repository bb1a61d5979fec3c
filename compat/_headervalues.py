"""Response header values aiohttp parses for its users: `response.content_disposition` (on the
multipart module's Content-Disposition parser) and `response.links` (RFC 8288 Link headers,
with aiohttp's leniencies).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

from multidict import MultiDict, MultiDictProxy
from yarl import URL

__all__ = ["ContentDisposition", "content_disposition", "parse_links"]


@dataclass(frozen=True, slots=True)
class ContentDisposition:
    """`response.content_disposition`: the type, its parameters, and the file name they give."""

    type: str | None
    parameters: MappingProxyType[str, str]
    filename: str | None


def content_disposition(header: str | None) -> ContentDisposition | None:
    """`response.content_disposition` for a header value (None when there is no header)."""
    if header is None:
        return None
    from ._multipart import content_disposition_filename, parse_content_disposition

    kind, params = parse_content_disposition(header)
    view = MappingProxyType(params)
    return ContentDisposition(kind, view, content_disposition_filename(view))


_LINK_SPLIT = re.compile(r",(?=\s*<)")


def _link_param(text: str) -> tuple[str, str] | None:
    """`name=value`, `name="value"` or `name='value'`; None if it is neither."""
    name, equals, value = text.partition("=")
    name, value = name.rstrip(), value.lstrip()
    if not equals or not name or any(c.isspace() for c in name):
        return None
    if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0]:
        return name, value[1:-1]
    if any(c.isspace() for c in value):
        return None
    return name, value


def parse_links(values: Iterable[str], base: URL) -> MultiDictProxy[MultiDictProxy[str | URL]]:
    """`response.links`: each link of the Link headers under its `rel` (its target when it has
    none), as aiohttp gives them: the parameters, and `url` resolved against `base`."""
    links: MultiDict[MultiDictProxy[str | URL]] = MultiDict()
    text = ", ".join(values)
    if not text:
        return MultiDictProxy(links)
    for entry in _LINK_SPLIT.split(text):
        line = entry.lstrip().partition("\n")[0]
        end = line.rfind(">")
        if not line.startswith("<") or end < 0:
            continue
        target, rest = line[1:end], line[end + 1 :]
        link: MultiDict[str | URL] = MultiDict()
        for piece in rest.split(";")[1:]:
            param = _link_param(piece.strip())
            if param is not None:
                link.add(*param)
        key = link.get("rel", target)
        link.add("url", base.join(URL(target)))
        links.add(str(key), MultiDictProxy(link))
    return MultiDictProxy(links)
