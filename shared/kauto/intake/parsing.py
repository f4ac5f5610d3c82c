"""Strict parsing of every body shape Kaltura's HTTP notifications send (docs/kaltura.md#webhook-bodies).

The format is detected from the bytes, not from ``Content-Type``: legacy ObjectData templates send a form-encoded
``data=`` body labelled ``application/json``, and DataFields bodies often carry libcurl's form default. The XML
parser is imported only when an XML body arrives, so JSON deliveries never pay for it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from kauto.intake.errors import MalformedRequestError, UnsupportedBodyFormatError
from kauto.models import BodyFormat

_DATA_PREFIX = b"data="
# PHP serialize() output: arrays/objects/strings carry a length (a:3:{, O:24:"Kaltura..."), scalars are i:/d:/b:,
# null is N; (ObjectData format=3, docs/kaltura.md#webhook-bodies).
_PHP_SERIALIZED = re.compile(rb"(?:[aOCs]:\d+:|[idb]:|N;)")
_FORM_KEY = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,128}")
_MAX_FORM_FIELDS = 256


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """A decoded body: an ObjectData envelope (JSON or XML) or a flat set of parameters (DataFields, text JSON)."""

    body_format: BodyFormat
    envelope: dict[str, Any] | None = None
    parameters: dict[str, str] | None = None


def parse_body(body: bytes) -> ParsedBody:
    """Decode ``body`` into a :class:`ParsedBody`.

    Raises :class:`MalformedRequestError` for invalid JSON/XML/form data (including trailing data after a JSON
    document) and :class:`UnsupportedBodyFormatError` for PHP-serialized ObjectData and unrecognized text.
    """
    if not body.strip():
        # A template without data posts nothing (docs/kaltura.md#webhook-bodies, first row); the signature covers
        # HASH(secret).
        return ParsedBody(BodyFormat.EMPTY)
    if body.lstrip()[:1] == b"{":
        return _json_body(_text(body), BodyFormat.OBJECT_JSON)
    if body.startswith(_DATA_PREFIX):
        rest = body[len(_DATA_PREFIX) :]
        if rest[:1] == b"<":
            # ObjectData XML is not url-encoded: strip the literal 5-byte prefix, never form-decode it.
            from kauto.intake.xml_body import parse_notification_xml  # imported here: keeps XML off the JSON path

            return ParsedBody(BodyFormat.OBJECT_XML, envelope=parse_notification_xml(rest))
        if _PHP_SERIALIZED.match(rest):
            raise UnsupportedBodyFormatError(
                "php_serialized",
                "PHP-serialized ObjectData (format 3) is not supported: set the template's data format to JSON",
            )
        if rest[:3].upper() == b"%7B":
            # Legacy template (custom data urlEncode=true): data= + PHP urlencode(JSON), docs/kaltura.md#webhook-bodies.
            if b"&" in rest:
                raise MalformedRequestError("malformed_form", "legacy data= body must hold a single field")
            return _json_body(_url_decoded(rest), BodyFormat.OBJECT_JSON_FORM)
    return ParsedBody(BodyFormat.DATA_FIELDS, parameters=_form_fields(_text(body)))


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRequestError("bad_encoding", "body is not UTF-8") from exc


def _url_decoded(value: bytes) -> str:
    try:
        return unquote_plus(_text(value), errors="strict")
    except UnicodeDecodeError as exc:
        raise MalformedRequestError("bad_encoding", "url-decoded body is not UTF-8") from exc


def _json_body(text: str, body_format: BodyFormat) -> ParsedBody:
    document = loads_strict(text)
    if not isinstance(document, dict):
        raise MalformedRequestError("malformed_json", "JSON body must be an object")
    if "object" in document or document.get("objectType") == "KalturaHttpNotification":
        return ParsedBody(body_format, envelope=document)
    if body_format is BodyFormat.OBJECT_JSON and all(_is_scalar(value) for value in document.values()):
        # DataText templates (pre-filled as application/json) post a flat object of their parameters.
        return ParsedBody(BodyFormat.TEXT_JSON, parameters={key: _scalar_text(v) for key, v in document.items()})
    raise UnsupportedBodyFormatError(
        "unrecognized_json", "JSON body is neither a Kaltura ObjectData notification nor a flat object of parameters"
    )


def loads_strict(text: str) -> Any:
    """``json.loads`` that also rejects duplicate keys, NaN/Infinity and pathological nesting (as 400s).

    Trailing data after the document is rejected by ``json.loads`` itself.
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError, _DuplicateKeyError, ValueError) as exc:
        raise MalformedRequestError("malformed_json", "body is not a valid JSON document") from exc


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError("duplicate key")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float)


def _scalar_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _form_fields(text: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, errors="strict", max_num_fields=_MAX_FORM_FIELDS
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsupportedBodyFormatError(
            "unrecognized_body", "body is not JSON, XML or form-encoded parameters"
        ) from exc
    fields = dict(pairs)
    if not pairs or not all(_FORM_KEY.fullmatch(key) for key in fields):
        raise UnsupportedBodyFormatError("unrecognized_body", "body is not JSON, XML or form-encoded parameters")
    if len(fields) != len(pairs):
        raise MalformedRequestError("malformed_form", "form body repeats a parameter")
    return fields
