"""Turn a parsed notification into the one :class:`~kauto.models.KalturaEvent` every later stage consumes.

Recognition follows docs/kaltura.md#recognising-events. Only whitelisted object fields are kept, coerced to one type
whatever the wire format (JSON ints, XML strings): user ids and creator ids (e-mail addresses in practice) are left out,
and the vendor task's ``accessKey`` (a KS) is never copied.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from kauto.intake.errors import MalformedRequestError, PartnerMismatchError
from kauto.intake.parsing import ParsedBody
from kauto.models import BodyFormat, EventKind, FieldValue, KalturaEvent

ENTRY_EVENT_OBJECT_TYPE = 1
ENTRY_VENDOR_TASK_EVENT_OBJECT_TYPE = 42
ENTRY_STATUS_READY = 2
VENDOR_TASK_OBJECT_TYPE = "KalturaEntryVendorTask"
SESSION_CUE_POINT_OBJECT_TYPE = "KalturaSessionCuePoint"
SESSION_CUE_POINT_TYPE = "sessionCuePoint.Session"


class _As(Enum):
    STR = "str"
    INT = "int"
    NUMBER = "number"
    ENUM = "enum"
    """Kaltura enums: core ones are ints, plugin ones strings such as ``room.room``
    (docs/kaltura.md#notification-envelope)."""


ENTRY_FIELDS: Mapping[str, _As] = {
    "id": _As.STR,
    "name": _As.STR,
    "type": _As.ENUM,
    "mediaType": _As.ENUM,
    "status": _As.ENUM,
    "duration": _As.INT,
    "msDuration": _As.INT,
    "createdAt": _As.INT,
    "updatedAt": _As.INT,
    "tags": _As.STR,
    "adminTags": _As.STR,
    "categories": _As.STR,
    "categoriesIds": _As.STR,
    "replacedEntryId": _As.STR,
    "replacementStatus": _As.ENUM,
    "sourceType": _As.STR,  # a string enum on the wire ("1", "36" = recorded live), kept as such
    "rootEntryId": _As.STR,
}
VENDOR_TASK_FIELDS: Mapping[str, _As] = {
    "id": _As.INT,
    "entryId": _As.STR,
    "status": _As.ENUM,
    "catalogItemId": _As.INT,
    "reachProfileId": _As.INT,
    "serviceType": _As.ENUM,
    "serviceFeature": _As.ENUM,
    "turnAroundTime": _As.INT,
    "errDescription": _As.STR,
    "outputObjectId": _As.STR,
    "createdAt": _As.INT,
    "updatedAt": _As.INT,
    "queueTime": _As.INT,
    "finishTime": _As.INT,
    "expectedFinishTime": _As.INT,
    "version": _As.INT,
    "price": _As.NUMBER,
}
SESSION_CUE_POINT_FIELDS: Mapping[str, _As] = {
    "id": _As.STR,
    "entryId": _As.STR,
    "cuePointType": _As.STR,
    "name": _As.STR,
    "status": _As.ENUM,
    "startTime": _As.INT,
    "endTime": _As.INT,
    "duration": _As.INT,
    "createdAt": _As.INT,
    "updatedAt": _As.INT,
}

_INTEGER = re.compile(r"-?[0-9]{1,19}")


def normalize(parsed: ParsedBody, *, partner_id: int, received_at: int) -> KalturaEvent:
    """Build the event for a verified body received on ``partner_id``'s path.

    Raises :class:`PartnerMismatchError` when the body names another partner and :class:`MalformedRequestError`
    when a field has a value of the wrong type.
    """
    if parsed.envelope is not None:
        return _from_envelope(parsed.envelope, parsed.body_format, partner_id, received_at)
    if parsed.parameters is not None:
        return _from_parameters(parsed.parameters, parsed.body_format, partner_id, received_at)
    return KalturaEvent(
        kind=EventKind.OTHER,
        partner_id=partner_id,
        dedupe_key=_content_key(partner_id, {}),
        job_id=None,
        template_id=None,
        template_system_name=None,
        event_type=None,
        event_object_type=None,
        object_type=None,
        object_id=None,
        entry_id=None,
        status=None,
        fields={},
        body_format=BodyFormat.EMPTY,
        received_at=received_at,
    )


def _from_envelope(
    envelope: dict[str, Any], body_format: BodyFormat, partner_id: int, received_at: int
) -> KalturaEvent:
    obj = envelope.get("object", {})
    if not isinstance(obj, dict):
        raise MalformedRequestError("invalid_field", "notification object must be an object")
    _check_partner(_coerce(obj.get("partnerId"), _As.INT, "object.partnerId"), partner_id)
    job_id = _coerce(envelope.get("eventNotificationJobId"), _As.INT, "eventNotificationJobId")
    event_object_type = _coerce(envelope.get("eventObjectType"), _As.ENUM, "eventObjectType")
    object_type = _coerce(obj.get("objectType"), _As.STR, "object.objectType")
    kind, spec = _recognize(event_object_type, object_type, obj)
    fields = _fields(obj, spec)
    object_id = _coerce(obj.get("id"), _As.STR, "object.id")
    entry_id = object_id if spec is ENTRY_FIELDS else _coerce(obj.get("entryId"), _As.STR, "object.entryId")
    status = _coerce(obj.get("status"), _As.ENUM, "object.status")
    return KalturaEvent(
        kind=kind,
        partner_id=partner_id,
        dedupe_key=_job_key(partner_id, job_id) if job_id is not None else _content_key(partner_id, envelope),
        job_id=job_id,
        template_id=_coerce(envelope.get("templateId"), _As.INT, "templateId"),
        template_system_name=_coerce(envelope.get("templateSystemName"), _As.STR, "templateSystemName") or None,
        event_type=_coerce(envelope.get("eventType"), _As.ENUM, "eventType"),
        event_object_type=event_object_type,
        object_type=object_type,
        object_id=object_id or None,
        entry_id=entry_id or None,
        status=None if status is None else str(status),
        fields=fields,
        body_format=body_format,
        received_at=received_at,
    )


def _recognize(
    event_object_type: FieldValue | None, object_type: str | None, obj: Mapping[str, Any]
) -> tuple[EventKind, Mapping[str, _As] | None]:
    if event_object_type == ENTRY_VENDOR_TASK_EVENT_OBJECT_TYPE or object_type == VENDOR_TASK_OBJECT_TYPE:
        return EventKind.VENDOR_TASK_STATUS, VENDOR_TASK_FIELDS
    if obj.get("cuePointType") == SESSION_CUE_POINT_TYPE or object_type == SESSION_CUE_POINT_OBJECT_TYPE:
        # A session cue point gets its end time when the session ends (docs/kaltura.md#room-session-end).
        ended = _coerce(obj.get("endTime"), _As.INT, "object.endTime") is not None
        return (EventKind.SESSION_ENDED if ended else EventKind.OTHER), SESSION_CUE_POINT_FIELDS
    if event_object_type == ENTRY_EVENT_OBJECT_TYPE:
        ready = _coerce(obj.get("status"), _As.ENUM, "object.status") == ENTRY_STATUS_READY
        # HTTP templates also fire for the temporary entry that carries a media replacement; it is not an entry
        # users see, so it is not acted on (docs/kaltura.md#recognising-events: skip a non-empty replacedEntryId).
        temporary = bool(_coerce(obj.get("replacedEntryId"), _As.STR, "object.replacedEntryId"))
        return (EventKind.ENTRY_READY if ready and not temporary else EventKind.OTHER), ENTRY_FIELDS
    return EventKind.OTHER, None


def _from_parameters(
    parameters: dict[str, str], body_format: BodyFormat, partner_id: int, received_at: int
) -> KalturaEvent:
    body_partner = parameters.get("partner_id", parameters.get("partnerId"))
    _check_partner(_coerce(body_partner, _As.INT, "partner_id"), partner_id)
    entry_id = parameters.get("entry_id") or None
    fields: dict[str, FieldValue] = {}
    kind = EventKind.OTHER
    status = _coerce(parameters.get("entry_status"), _As.ENUM, "entry_status")
    if entry_id is not None:
        # Content parameters of the stock entry templates (docs/kaltura.md#stock-templates): entry_id, entry_name,
        # entry_status, entry_reference_id. Everything else in the scope is ignored.
        fields["id"] = entry_id
        if "entry_name" in parameters:
            fields["name"] = parameters["entry_name"]
        if status is not None:
            fields["status"] = status
        if status == ENTRY_STATUS_READY:
            kind = EventKind.ENTRY_READY
    return KalturaEvent(
        kind=kind,
        partner_id=partner_id,
        # No job id in parameter bodies: the whole content identifies the delivery (a retry resends it unchanged).
        dedupe_key=_content_key(partner_id, parameters),
        job_id=None,
        template_id=None,
        template_system_name=None,
        event_type=None,
        event_object_type=None,
        object_type=None,
        object_id=entry_id,
        entry_id=entry_id,
        status=None if status is None or entry_id is None else str(status),
        fields=fields,
        body_format=body_format,
        received_at=received_at,
    )


def _check_partner(body_partner_id: FieldValue | None, path_partner_id: int) -> None:
    if body_partner_id is not None and body_partner_id != path_partner_id:
        raise PartnerMismatchError("partner_mismatch", "notification belongs to another partner than the URL")


def _fields(obj: Mapping[str, Any], spec: Mapping[str, _As] | None) -> dict[str, FieldValue]:
    if spec is None:
        return {}
    fields: dict[str, FieldValue] = {}
    for name, kind in spec.items():
        value = _coerce(obj.get(name), kind, f"object.{name}")
        if value is not None:
            fields[name] = value
    return fields


def _coerce(value: Any, kind: _As, name: str) -> Any:
    """Coerce a wire value to ``kind``; ``None`` for absent values (JSON drops nulls, XML may send empty elements)."""
    if value is None or (value == "" and kind is not _As.STR):
        return None
    if isinstance(value, bool | dict | list):
        raise MalformedRequestError("invalid_field", f"{name} has an unexpected type")
    if kind is _As.STR:
        if isinstance(value, float):
            raise MalformedRequestError("invalid_field", f"{name} must be a string")
        return str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    if kind is _As.ENUM and isinstance(value, str):
        return value
    if kind is _As.NUMBER:
        number = float(value) if isinstance(value, str) and _is_decimal(value) else value
        if isinstance(number, float) and number == number and abs(number) != float("inf"):
            return number
    if kind is _As.INT and isinstance(value, float) and value.is_integer():
        return int(value)
    raise MalformedRequestError("invalid_field", f"{name} must be a number")


def _is_decimal(text: str) -> bool:
    return re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", text) is not None


def _job_key(partner_id: int, job_id: int) -> str:
    # eventNotificationJobId stays the same across Kaltura's retries of one job (docs/kaltura.md#notification-envelope).
    return f"{partner_id}:job:{job_id}"


def _content_key(partner_id: int, content: Mapping[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # A JSON body may escape a lone surrogate (\ud800) that UTF-8 cannot encode: surrogatepass gives it bytes of its
    # own (distinct keys for distinct content) and leaves every valid string's key as it was.
    return f"{partner_id}:sha256:{hashlib.sha256(canonical.encode('utf-8', 'surrogatepass')).hexdigest()}"
