"""The event model as the SQS message body: round trip and validation for consumers."""

from __future__ import annotations

import json

import pytest
from kauto.models import BodyFormat, EventFormatError, EventKind, KalturaEvent

EVENT = KalturaEvent(
    kind=EventKind.VENDOR_TASK_STATUS,
    partner_id=1234567,
    dedupe_key="1234567:job:5",
    job_id=5,
    template_id=9,
    template_system_name="Http_Entry_Vendor_Task_Finished_Processing",
    event_type=3,
    event_object_type=42,
    object_type="KalturaEntryVendorTask",
    object_id="11",
    entry_id="1_abc",
    status="2",
    fields={"id": 11, "price": 2.09, "entryId": "1_abc"},
    body_format=BodyFormat.OBJECT_XML,
    received_at=1767254714,
)


def test_json_round_trip() -> None:
    assert KalturaEvent.from_json(EVENT.to_json()) == EVENT


def test_message_body_uses_plain_values() -> None:
    data = json.loads(EVENT.to_json())

    assert (data["kind"], data["body_format"], data["fields"]["price"]) == ("vendor_task_status", "object_xml", 2.09)


def test_string_event_object_type_round_trips() -> None:
    event = KalturaEvent.from_dict({**EVENT.to_dict(), "event_object_type": "cuePointEventNotifications.CuePoint"})

    assert event.event_object_type == "cuePointEventNotifications.CuePoint"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "entry_deleted"}, "kind"),
        ({"partner_id": "1234567"}, "partner_id"),
        ({"partner_id": True}, "partner_id"),
        ({"job_id": 1.5}, "job_id"),
        ({"fields": {"nested": {"a": 1}}}, "fields"),
        ({"fields": {"flag": True}}, "fields"),
        ({"extra": 1}, "unexpected"),
    ],
)
def test_invalid_message_bodies_are_rejected_naming_the_field(change: dict, message: str) -> None:
    with pytest.raises(EventFormatError, match=message):
        KalturaEvent.from_dict({**EVENT.to_dict(), **change})


def test_missing_field_is_named() -> None:
    data = EVENT.to_dict()
    del data["dedupe_key"]

    with pytest.raises(EventFormatError, match="dedupe_key"):
        KalturaEvent.from_dict(data)


@pytest.mark.parametrize("text", ["not json", "[1]"])
def test_non_object_bodies_are_rejected(text: str) -> None:
    with pytest.raises(EventFormatError):
        KalturaEvent.from_json(text)
