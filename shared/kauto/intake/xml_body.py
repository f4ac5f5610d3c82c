"""ObjectData XML bodies (``format=2``): ``<notification>`` + the XML-serialised envelope
(docs/kaltura.md#webhook-bodies).

Parsed with defusedxml: any DTD is refused outright, so entity expansion (billion laughs) and external references
(XXE, ``SYSTEM "file://..."``) never happen. Imported lazily by :mod:`kauto.intake.parsing`.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException

from kauto.intake.errors import MalformedRequestError

_ROOT_TAG = "notification"
_ARRAY_ITEM_TAG = "item"
# envelope > object > array > item > nested object is as deep as Kaltura goes; anything deeper is not ours.
_MAX_DEPTH = 8


def parse_notification_xml(xml: bytes) -> dict[str, Any]:
    """Parse a ``<notification>`` document into the same envelope shape a JSON body has.

    Leaf values stay strings (XML has no types; the normalizer coerces them). Arrays (``<item>`` children) become
    lists. Raises :class:`MalformedRequestError` for invalid XML and for DTDs, entities or external references.
    """
    try:
        root = SafeElementTree.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedRequestError(
            "xml_forbidden", "XML with a DTD, entity declarations or external references is not accepted"
        ) from exc
    except ParseError as exc:
        raise MalformedRequestError("malformed_xml", "body is not a valid XML document") from exc
    if root.tag != _ROOT_TAG:
        raise MalformedRequestError("malformed_xml", "XML body must be a <notification> element")
    envelope = _value(root, depth=0)
    if not isinstance(envelope, dict):
        raise MalformedRequestError("malformed_xml", "<notification> must contain the notification fields")
    return envelope


def _value(element: Element, depth: int) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    if depth >= _MAX_DEPTH:
        raise MalformedRequestError("malformed_xml", "XML body is nested too deeply")
    if all(child.tag == _ARRAY_ITEM_TAG for child in children):
        return [_value(child, depth + 1) for child in children]
    result: dict[str, Any] = {}
    for child in children:
        if child.tag in result:
            raise MalformedRequestError("malformed_xml", f"XML element <{child.tag}> repeats")
        result[child.tag] = _value(child, depth + 1)
    return result
