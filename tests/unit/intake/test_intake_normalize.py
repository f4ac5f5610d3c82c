"""Normalization into KalturaEvent: recognition (docs/kaltura.md#recognising-events), field whitelists, types, partner,
dedupe key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kauto.intake.errors import MalformedRequestError, PartnerMismatchError
from kauto.intake.normalize import normalize
from kauto.intake.parsing import ParsedBody, parse_body
from kauto.models import BodyFormat, EventKind, KalturaEvent

PARTNER = 1234567
KS = "djJ8MTIzNDU2N3xGQUtFLUtT"


def envelope_event(obj: dict[str, Any], **envelope: Any) -> KalturaEvent:
    document = {"object": obj, **envelope, "objectType": "KalturaHttpNotification"}
    return normalize(ParsedBody(BodyFormat.OBJECT_JSON, envelope=document), partner_id=PARTNER, received_at=1)


def entry(**fields: Any) -> dict[str, Any]:
    return {
        "id": "1_abc",
        "name": "Town hall",
        "partnerId": PARTNER,
        "userId": "jane.doe@example.com",
        "creatorId": "jane.doe@example.com",
        "status": 2,
        "type": 1,
        "mediaType": 1,
        "replacedEntryId": "",
        "downloadUrl": "https://example.com/x",
        "objectType": "KalturaMediaEntry",
        **fields,
    }


def vendor_task(**fields: Any) -> dict[str, Any]:
    return {
        "id": 11,
        "entryId": "1_abc",
        "partnerId": PARTNER,
        "status": 2,
        "userId": "jane.doe@example.com",
        "accessKey": KS,
        "price": 2.09,
        "objectType": "KalturaEntryVendorTask",
        **fields,
    }


def cue_point(**fields: Any) -> dict[str, Any]:
    return {
        "id": "1_cue",
        "entryId": "1_room",
        "partnerId": PARTNER,
        "cuePointType": "sessionCuePoint.Session",
        "sessionOwner": "jane.doe@example.com",
        "startTime": 0,
        "endTime": 3600000,
        "objectType": "KalturaSessionCuePoint",
        **fields,
    }


def test_entry_ready_keeps_worker_fields_and_drops_personal_data() -> None:
    event = envelope_event(entry(), eventObjectType=1, eventType=3, eventNotificationJobId=7, templateId=9)

    assert event.kind is EventKind.ENTRY_READY
    assert (event.object_id, event.entry_id, event.status, event.job_id) == ("1_abc", "1_abc", "2", 7)
    assert event.fields == {
        "id": "1_abc",
        "name": "Town hall",
        "status": 2,
        "type": 1,
        "mediaType": 1,
        "replacedEntryId": "",
    }
    assert "jane.doe" not in event.to_json()


@pytest.mark.parametrize("status", [0, 1, 4, 7, -1, "virusScan.Infected"])
def test_entry_in_another_status_is_other(status: object) -> None:
    event = envelope_event(entry(status=status), eventObjectType=1, eventType=3)

    assert event.kind is EventKind.OTHER
    assert event.status == str(status)


def test_temporary_replacement_entry_is_not_entry_ready() -> None:
    event = envelope_event(entry(replacedEntryId="1_original"), eventObjectType=1, eventType=3)

    assert event.kind is EventKind.OTHER
    assert event.fields["replacedEntryId"] == "1_original"


def test_enums_arriving_as_strings_are_recognized() -> None:
    event = envelope_event(entry(status="2", type="room.room"), eventObjectType="1", eventType="3")

    assert event.kind is EventKind.ENTRY_READY
    assert (event.event_object_type, event.event_type) == (1, 3)
    assert event.fields["type"] == "room.room"
    assert event.fields["status"] == 2


def test_entry_without_code_on_the_template_arrives_empty_and_is_other() -> None:
    event = envelope_event({"objectType": "KalturaBaseEntry"}, eventObjectType=1, eventType=3)

    assert event.kind is EventKind.OTHER
    assert event.object_id is None


@pytest.mark.parametrize(
    ("event_object_type", "obj"),
    [(42, vendor_task()), (None, vendor_task()), (42, {**vendor_task(), "objectType": "KalturaSomethingNew"})],
)
def test_vendor_task_is_recognized_and_its_access_key_never_kept(event_object_type: int | None, obj: dict) -> None:
    event = envelope_event(obj, eventObjectType=event_object_type, eventType=3)

    assert event.kind is EventKind.VENDOR_TASK_STATUS
    assert (event.object_id, event.entry_id, event.status) == ("11", "1_abc", "2")
    assert "accessKey" not in event.fields
    assert KS not in event.to_json()
    assert "jane.doe" not in event.to_json()


def test_vendor_task_error_carries_its_description() -> None:
    event = envelope_event(vendor_task(status=6, errDescription="no credit"), eventObjectType=42)

    assert (event.status, event.fields["errDescription"]) == ("6", "no credit")


def test_session_cue_point_with_end_time_is_session_ended() -> None:
    event = envelope_event(cue_point(), eventObjectType="cuePointEventNotifications.CuePoint", eventType=3)

    assert event.kind is EventKind.SESSION_ENDED
    assert (event.object_id, event.entry_id) == ("1_cue", "1_room")
    assert event.fields["endTime"] == 3600000
    assert "sessionOwner" not in event.fields


@pytest.mark.parametrize("end_time", [None, ""])
def test_session_cue_point_without_end_time_is_other(end_time: object) -> None:
    obj = cue_point(endTime=end_time)

    event = envelope_event(obj, eventObjectType="cuePointEventNotifications.CuePoint")

    assert event.kind is EventKind.OTHER


def test_other_cue_points_and_other_objects_are_other() -> None:
    ad = {"id": "1_ad", "cuePointType": "adCuePoint.Ad", "objectType": "KalturaAdCuePoint"}

    assert envelope_event(ad, eventObjectType="cuePointEventNotifications.CuePoint").kind is EventKind.OTHER
    assert envelope_event({"id": 5, "objectType": "KalturaCategory"}, eventObjectType=2).kind is EventKind.OTHER


def test_xml_and_json_of_the_same_notification_normalize_identically() -> None:
    json_body = json.dumps(
        {"object": vendor_task(finishTime=1767256920), "eventObjectType": 42, "eventNotificationJobId": 5}
    ).encode()
    xml_body = (
        b"data=<notification><object><id>11</id><entryId>1_abc</entryId><partnerId>1234567</partnerId>"
        b"<status>2</status><userId>jane.doe@example.com</userId><accessKey>" + KS.encode() + b"</accessKey>"
        b"<price>2.09</price><finishTime>1767256920</finishTime><errDescription></errDescription>"
        b"<objectType>KalturaEntryVendorTask</objectType></object><eventObjectType>42</eventObjectType>"
        b"<eventNotificationJobId>5</eventNotificationJobId></notification>"
    )

    from_json = normalize(parse_body(json_body), partner_id=PARTNER, received_at=1).to_dict()
    from_xml = normalize(parse_body(xml_body), partner_id=PARTNER, received_at=1).to_dict()

    assert from_json.pop("body_format") == "object_json"
    assert from_xml.pop("body_format") == "object_xml"
    from_xml["fields"].pop("errDescription")  # XML sends empty elements where JSON drops nulls
    assert from_json == from_xml


def test_body_naming_another_partner_is_a_mismatch() -> None:
    with pytest.raises(PartnerMismatchError):
        envelope_event(entry(partnerId=7654321), eventObjectType=1)


def test_partner_id_as_string_matches() -> None:
    assert envelope_event(entry(partnerId="1234567"), eventObjectType=1).partner_id == PARTNER


@pytest.mark.parametrize(
    ("obj", "event_object_type"),
    [
        (entry(createdAt="yesterday"), 1),
        (entry(createdAt=True), 1),
        (entry(name={"first": "x"}), 1),
        (entry(duration=1.5), 1),
        (entry(partnerId="12x"), 1),
        (vendor_task(price="cheap"), 42),
        (vendor_task(price=float("nan")), 42),
    ],
)
def test_fields_of_the_wrong_type_are_400(obj: dict[str, Any], event_object_type: int) -> None:
    with pytest.raises(MalformedRequestError) as error:
        envelope_event(obj, eventObjectType=event_object_type)
    assert error.value.reason == "invalid_field"


def test_object_that_is_not_an_object_is_400() -> None:
    with pytest.raises(MalformedRequestError):
        normalize(ParsedBody(BodyFormat.OBJECT_JSON, envelope={"object": [1, 2]}), partner_id=PARTNER, received_at=1)


def test_dedupe_key_is_the_job_id_when_present() -> None:
    first = envelope_event(entry(updatedAt=1), eventObjectType=1, eventNotificationJobId=99)
    retry = envelope_event(entry(updatedAt=1), eventObjectType=1, eventNotificationJobId=99)

    assert first.dedupe_key == retry.dedupe_key == "1234567:job:99"


def data_fields(body: bytes) -> KalturaEvent:
    return normalize(parse_body(body), partner_id=PARTNER, received_at=1)


def test_data_fields_entry_ready() -> None:
    event = data_fields(b"entry_id=1_abc&entry_name=Town+hall&entry_status=2&entry_reference_id=&trigger_status=2")

    assert event.kind is EventKind.ENTRY_READY
    assert (event.entry_id, event.status, event.job_id) == ("1_abc", "2", None)
    assert event.fields == {"id": "1_abc", "name": "Town hall", "status": 2}


def test_data_fields_dedupe_key_ignores_parameter_order_but_not_content() -> None:
    one = data_fields(b"entry_id=1_abc&entry_status=2&trigger_status=2")
    same = data_fields(b"trigger_status=2&entry_status=2&entry_id=1_abc")
    other = data_fields(b"entry_id=1_abd&entry_status=2&trigger_status=2")

    assert one.dedupe_key == same.dedupe_key != other.dedupe_key
    assert one.dedupe_key.startswith("1234567:sha256:")


@pytest.mark.parametrize(
    "body", [b"entry_id=1_abc&entry_status=1", b"entry_status=2", b"category_id=5&category_status=2"]
)
def test_data_fields_that_are_not_a_ready_entry_are_other(body: bytes) -> None:
    assert data_fields(body).kind is EventKind.OTHER


@pytest.mark.parametrize("body", [b"entry_id=1_abc&entry_status=2&partner_id=99", b"entry_id=1&partnerId=99"])
def test_data_fields_naming_another_partner_is_a_mismatch(body: bytes) -> None:
    with pytest.raises(PartnerMismatchError):
        data_fields(body)


def test_data_fields_keep_only_whitelisted_parameters() -> None:
    event = data_fields(b"entry_id=1_abc&entry_status=2&user_email=jane.doe%40example.com")

    assert "jane.doe" not in json.dumps(event.fields)


def test_empty_body_is_other() -> None:
    event = normalize(parse_body(b""), partner_id=PARTNER, received_at=5)

    assert (event.kind, event.body_format, event.received_at) == (EventKind.OTHER, BodyFormat.EMPTY, 5)
