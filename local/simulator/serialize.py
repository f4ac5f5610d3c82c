"""Kaltura's response serialisers: PHP-``json_encode``-compatible JSON (format=1) and the API v3 XML (format=2).

API objects are plain dicts built with :func:`kaltura_object`, which drops nulls and appends ``objectType`` last,
the way ``KalturaJsonSerializer`` emits them (docs/kaltura.md#notification-envelope, #api-success).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

OBJECT_TYPE = "objectType"


def kaltura_object(object_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """An API object: ``fields`` in order without the null ones, then ``"objectType"``."""
    obj = {key: value for key, value in fields.items() if value is not None and key != OBJECT_TYPE}
    obj[OBJECT_TYPE] = object_type
    return obj


def list_response(object_type: str, objects: list[dict[str, Any]], total_count: int) -> dict[str, Any]:
    """``{"objects": [...], "totalCount": N, "objectType": "Kaltura...ListResponse"}`` (docs/kaltura.md#api-success)."""
    return kaltura_object(object_type, {"objects": objects, "totalCount": total_count})


def _php_value(value: Any) -> Any:
    """Map a Python value onto what PHP would have encoded: nulls dropped, whole floats as ints, ``{}`` as ``[]``."""
    if isinstance(value, Mapping):
        cleaned = {str(key): _php_value(item) for key, item in value.items() if item is not None}
        # PHP encodes an empty array as a JSON list, e.g. an error without arguments has "args":[]
        # (docs/kaltura.md#api-errors).
        return cleaned if cleaned else []
    if isinstance(value, list | tuple):
        return [_php_value(item) for item in value]
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def kaltura_json(value: Any) -> bytes:
    """Serialise like PHP ``json_encode`` with default flags: compact, ASCII-only, ``/`` escaped as ``\\/``."""
    text = json.dumps(_php_value(value), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    # A "/" can only occur inside JSON strings, so escaping it textually is exact.
    return text.replace("/", "\\/").encode("ascii")


def _xml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return escape(str(value))


def _xml_value(value: Any) -> str:
    if isinstance(value, Mapping):
        parts = []
        if OBJECT_TYPE in value:
            # Kaltura's XML serialiser writes the type first.
            parts.append(f"<objectType>{escape(str(value[OBJECT_TYPE]))}</objectType>")
        for key, item in value.items():
            if key == OBJECT_TYPE or item is None:
                continue
            parts.append(f"<{key}>{_xml_value(item)}</{key}>")
        return "".join(parts)
    if isinstance(value, list | tuple):
        return "".join(f"<item>{_xml_value(item)}</item>" for item in value)
    return _xml_scalar(value)


def kaltura_xml_fragment(value: Any) -> str:
    """The XML body of one value as Kaltura's ``KalturaXmlSerializer`` writes it (no envelope)."""
    return _xml_value(value)


def kaltura_xml_error(error: Mapping[str, Any]) -> str:
    """``<error>`` element of an API exception (docs/kaltura.md#api-errors XML shape)."""
    args = error.get("args") or {}
    items = "".join(
        "<item><objectType>KalturaApiExceptionArg</objectType>"
        f"<name>{escape(str(name))}</name><value>{escape(str(value))}</value></item>"
        for name, value in args.items()
    )
    return (
        f"<error><code>{escape(str(error['code']))}</code><message>{escape(str(error['message']))}</message>"
        f"<objectType>KalturaAPIException</objectType><args>{items}</args></error>"
    )


def is_api_exception(value: Any) -> bool:
    """True for a serialised ``KalturaAPIException``."""
    return isinstance(value, Mapping) and value.get(OBJECT_TYPE) == "KalturaAPIException"


def kaltura_xml_response(value: Any, execution_time: float) -> bytes:
    """A whole format=2 response: ``<xml><result>…</result><executionTime>…</executionTime></xml>``."""
    if is_api_exception(value):
        inner = kaltura_xml_error(value)
    elif isinstance(value, list):
        # multirequest: one <item> per call, errors inline
        inner = "".join(
            f"<item>{kaltura_xml_error(item) if is_api_exception(item) else _xml_value(item)}</item>" for item in value
        )
    else:
        inner = _xml_value(value)
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<xml><result>{inner}</result><executionTime>{execution_time:.6f}</executionTime></xml>"
    )
    return body.encode("utf-8")


def php_float(value: float) -> str:
    """How PHP (serialize_precision=-1) prints a float inside report strings: shortest repr, whole numbers bare."""
    if value.is_integer():
        return str(int(value))
    return repr(value)
