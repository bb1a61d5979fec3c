"""HAR 1.2 as a JSON Schema, written from the HAR 1.2 specification's object descriptions.

Required fields, types and the value ranges the specification gives (timings are -1 where a
phase does not apply, else >= 0; sizes are -1 when unknown). Custom fields start with "_".
"""

from __future__ import annotations

from typing import Any

_NAME_VALUE: dict[str, Any] = {
    "type": "object",
    "required": ["name", "value"],
    "properties": {
        "name": {"type": "string"},
        "value": {"type": "string"},
        "comment": {"type": "string"},
    },
}

_COOKIE: dict[str, Any] = {
    "type": "object",
    "required": ["name", "value"],
    "properties": {
        "name": {"type": "string"},
        "value": {"type": "string"},
        "path": {"type": "string"},
        "domain": {"type": "string"},
        "expires": {"type": ["string", "null"]},
        "httpOnly": {"type": "boolean"},
        "secure": {"type": "boolean"},
        "comment": {"type": "string"},
    },
}

_SIZE = {"type": "integer", "minimum": -1}
_PHASE = {"type": "number", "minimum": -1}
_CUSTOM = {"^_": {}}

_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": [
        "method",
        "url",
        "httpVersion",
        "cookies",
        "headers",
        "queryString",
        "headersSize",
        "bodySize",
    ],
    "properties": {
        "method": {"type": "string", "minLength": 1},
        "url": {"type": "string", "format": "uri"},
        "httpVersion": {"type": "string"},
        "cookies": {"type": "array", "items": _COOKIE},
        "headers": {"type": "array", "items": _NAME_VALUE},
        "queryString": {"type": "array", "items": _NAME_VALUE},
        "postData": {
            "type": "object",
            "required": ["mimeType"],
            "properties": {
                "mimeType": {"type": "string"},
                "text": {"type": "string"},
                "params": {"type": "array"},
                "comment": {"type": "string"},
            },
        },
        "headersSize": _SIZE,
        "bodySize": _SIZE,
        "comment": {"type": "string"},
    },
    "patternProperties": _CUSTOM,
    "additionalProperties": False,
}

_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": [
        "status",
        "statusText",
        "httpVersion",
        "cookies",
        "headers",
        "content",
        "redirectURL",
        "headersSize",
        "bodySize",
    ],
    "properties": {
        "status": {"type": "integer", "minimum": 0},
        "statusText": {"type": "string"},
        "httpVersion": {"type": "string"},
        "cookies": {"type": "array", "items": _COOKIE},
        "headers": {"type": "array", "items": _NAME_VALUE},
        "content": {
            "type": "object",
            "required": ["size", "mimeType"],
            "properties": {
                "size": {"type": "integer", "minimum": 0},
                "compression": {"type": "integer"},
                "mimeType": {"type": "string"},
                "text": {"type": "string"},
                "encoding": {"type": "string"},
                "comment": {"type": "string"},
            },
        },
        "redirectURL": {"type": "string"},
        "headersSize": _SIZE,
        "bodySize": _SIZE,
        "comment": {"type": "string"},
    },
    "patternProperties": _CUSTOM,
    "additionalProperties": False,
}

_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["startedDateTime", "time", "request", "response", "cache", "timings"],
    "properties": {
        "pageref": {"type": "string"},
        "startedDateTime": {"type": "string", "format": "date-time"},
        "time": {"type": "number", "minimum": 0},
        "request": _REQUEST,
        "response": _RESPONSE,
        "cache": {"type": "object"},
        "timings": {
            "type": "object",
            "required": ["send", "wait", "receive"],
            "properties": {
                "blocked": _PHASE,
                "dns": _PHASE,
                "connect": _PHASE,
                "send": {"type": "number", "minimum": 0},
                "wait": {"type": "number", "minimum": 0},
                "receive": {"type": "number", "minimum": 0},
                "ssl": _PHASE,
                "comment": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "serverIPAddress": {"type": "string"},
        "connection": {"type": "string"},
        "comment": {"type": "string"},
    },
    "patternProperties": _CUSTOM,
    "additionalProperties": False,
}

HAR_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["log"],
    "properties": {
        "log": {
            "type": "object",
            "required": ["version", "creator", "entries"],
            "properties": {
                "version": {"const": "1.2"},
                "creator": {
                    "type": "object",
                    "required": ["name", "version"],
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                },
                "browser": {"type": "object"},
                "pages": {"type": "array"},
                "entries": {"type": "array", "items": _ENTRY},
                "comment": {"type": "string"},
            },
            "additionalProperties": False,
        }
    },
}
