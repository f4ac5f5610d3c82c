"""Models shared by every stage: the normalized Kaltura event that the webhook enqueues and the workers consume."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kauto.errors import KautoError

FieldValue = str | int | float
"""Type of a value in :attr:`KalturaEvent.fields` (Kaltura enums arrive as int or string, see
docs/kaltura.md#notification-envelope)."""


class EventKind(StrEnum):
    """What happened, as far as the automations care."""

    ENTRY_READY = "entry_ready"
    VENDOR_TASK_STATUS = "vendor_task_status"
    SESSION_ENDED = "session_ended"
    OTHER = "other"


class BodyFormat(StrEnum):
    """How the notification body was encoded on the wire (docs/kaltura.md#webhook-bodies), or ``SWEEP`` for events the
    sweep built."""

    OBJECT_JSON = "object_json"
    """ObjectData JSON, raw (templates created after 2016-07-21)."""
    OBJECT_JSON_FORM = "object_json_form"
    """ObjectData JSON of a legacy template: ``data=`` + url-encoded JSON (still labelled ``application/json``)."""
    OBJECT_XML = "object_xml"
    """ObjectData XML: ``data=<notification>...</notification>``, not url-encoded."""
    DATA_FIELDS = "data_fields"
    """DataFields: ``http_build_query`` of the template's content and user parameters."""
    TEXT_JSON = "text_json"
    """DataText whose text is a flat JSON object of parameters."""
    EMPTY = "empty"
    """A template without data (the stock templates ship like that): an empty body."""
    SWEEP = "sweep"
    """Not a Kaltura delivery: built by the scheduled sweep from what it found through the API."""


class EventFormatError(KautoError):
    """A serialized event (an SQS message body) does not match the event model."""


@dataclass(frozen=True, slots=True)
class KalturaEvent:
    """One Kaltura notification, normalized; serialized as the SQS message body (see :meth:`to_json`).

    ``fields`` holds only the object fields the workers need (no personal data, vendor-task ``accessKey`` never
    included). ``dedupe_key`` identifies the delivery across Kaltura's retries.
    """

    kind: EventKind
    partner_id: int
    dedupe_key: str
    job_id: int | None
    template_id: int | None
    template_system_name: str | None
    event_type: int | str | None
    event_object_type: int | str | None
    object_type: str | None
    object_id: str | None
    entry_id: str | None
    status: str | None
    fields: Mapping[str, FieldValue]
    body_format: BodyFormat
    received_at: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (enums as their string values)."""
        # Built by hand: dataclasses.asdict deep-copies every value and was the costliest step of a delivery.
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["kind"] = self.kind.value
        data["body_format"] = self.body_format.value
        data["fields"] = dict(self.fields)
        return data

    def to_json(self) -> str:
        """Compact JSON used as the SQS message body."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KalturaEvent:
        """Rebuild an event from :meth:`to_dict` output; raises :class:`EventFormatError` naming the bad field."""
        expected = set(cls.__dataclass_fields__)
        missing = expected - data.keys()
        unexpected = data.keys() - expected
        if missing or unexpected:
            raise EventFormatError(f"event fields differ: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        try:
            kind = EventKind(data["kind"])
            body_format = BodyFormat(data["body_format"])
        except ValueError as exc:
            raise EventFormatError(f"unknown kind or body_format: {exc}") from exc
        fields = data["fields"]
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and _is_field_value(v) for k, v in fields.items()
        ):
            raise EventFormatError("fields must be an object of string/number values")
        return cls(
            kind=kind,
            partner_id=_typed(data, "partner_id", int),
            dedupe_key=_typed(data, "dedupe_key", str),
            job_id=_optional(data, "job_id", int),
            template_id=_optional(data, "template_id", int),
            template_system_name=_optional(data, "template_system_name", str),
            event_type=_optional(data, "event_type", int, str),
            event_object_type=_optional(data, "event_object_type", int, str),
            object_type=_optional(data, "object_type", str),
            object_id=_optional(data, "object_id", str),
            entry_id=_optional(data, "entry_id", str),
            status=_optional(data, "status", str),
            fields=dict(fields),
            body_format=body_format,
            received_at=_typed(data, "received_at", int),
        )

    @classmethod
    def sweep(
        cls,
        kind: EventKind,
        *,
        partner_id: int,
        dedupe_key: str,
        object_type: str,
        object_id: str,
        entry_id: str | None,
        received_at: int,
        status: str | None = None,
        fields: Mapping[str, FieldValue] | None = None,
    ) -> KalturaEvent:
        """An event the project builds itself (the sweep, a matched recording, an operator's replay): no
        notification template or job behind it, body format ``SWEEP``."""
        return cls(
            kind=kind,
            partner_id=partner_id,
            dedupe_key=dedupe_key,
            job_id=None,
            template_id=None,
            template_system_name=None,
            event_type=None,
            event_object_type=None,
            object_type=object_type,
            object_id=object_id,
            entry_id=entry_id,
            status=status,
            fields=dict(fields or {}),
            body_format=BodyFormat.SWEEP,
            received_at=received_at,
        )

    @classmethod
    def from_json(cls, text: str) -> KalturaEvent:
        """Parse an SQS message body produced by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EventFormatError(f"event is not JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise EventFormatError("event must be a JSON object")
        return cls.from_dict(data)


def _is_field_value(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _typed(data: Mapping[str, Any], name: str, *types: type) -> Any:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, types):
        raise EventFormatError(f"{name} must be {' or '.join(t.__name__ for t in types)}")
    return value


def _optional(data: Mapping[str, Any], name: str, *types: type) -> Any:
    return None if data[name] is None else _typed(data, name, *types)
