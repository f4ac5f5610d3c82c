"""The simulated event-notification dispatcher: signatures, body formats, retries, subscriptions
(docs/kaltura.md#webhook-bodies through #delivery-and-retries)."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs, unquote_plus

import pytest
import requests
from defusedxml import ElementTree
from kauto_local.simulator import BodyFormat, KalturaSimulator, TaskBehaviour
from sim_support import ADMIN_SECRET, PARTNER_ID, Receiver

pytestmark = pytest.mark.integration

USER_AGENT = "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.0.6) Gecko/2009011913 Firefox/3.0.6"


def _verify(received_body: bytes, headers: dict[str, str]) -> None:
    algorithm = headers["X-KALTURA-HASH-ALGO"]
    expected = hashlib.new(algorithm, ADMIN_SECRET.encode() + received_body).hexdigest()
    assert headers["X-KALTURA-SIGNATURE"] == expected


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_entry_ready_object_json_is_signed(sim: KalturaSimulator, receiver: Receiver, algorithm: str) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Quarterly all-hands/recording", duration=125)
    envelope = sim.dispatcher.entry_ready_envelope(entry.id)

    delivery = sim.dispatcher.send(receiver.url, envelope, hash_algorithm=algorithm)

    assert delivery.state == "delivered"
    (request,) = receiver.requests
    _verify(request.body, request.headers)
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Content-Type"] == "application/json"
    assert b"Quarterly all-hands\\/recording" in request.body
    body = json.loads(request.body)
    assert body["object"]["id"] == entry.id and body["object"]["objectType"] == "KalturaMediaEntry"
    assert (body["eventType"], body["eventObjectType"], body["templateSystemName"]) == (
        3,
        1,
        "HTTP_ENTRY_STATUS_EQUALS",
    )
    assert list(body)[-1] == "objectType" and body["objectType"] == "KalturaHttpNotification"
    assert body["eventNotificationJobId"] == delivery.job_id


def test_retries_on_500_until_success_with_a_stable_job_id(sim: KalturaSimulator, receiver: Receiver) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Retry me")
    receiver.statuses = [500, 202]

    delivery = sim.dispatcher.send(receiver.url, sim.dispatcher.entry_ready_envelope(entry.id))
    assert [attempt.status for attempt in delivery.attempts] == [500]
    sim.clock.advance(59)
    assert len(receiver.requests) == 1, "the retry interval is 60 s on the simulator clock"
    sim.clock.advance(1)
    sim.clock.advance(60)

    assert [attempt.status for attempt in delivery.attempts] == [500, 202, 200]
    assert delivery.state == "delivered"
    bodies = {request.body for request in receiver.requests}
    signatures = {request.headers["X-KALTURA-SIGNATURE"] for request in receiver.requests}
    assert len(bodies) == len(signatures) == 1
    assert json.loads(receiver.requests[0].body)["eventNotificationJobId"] == delivery.job_id


def test_three_attempts_then_the_job_fails(receiver: Receiver) -> None:
    with KalturaSimulator(seed=2, tls=False, retry_interval=0) as sim:
        sim.add_partner(PARTNER_ID, ADMIN_SECRET)
        entry = sim.add_entry(PARTNER_ID, name="Never")
        receiver.statuses = [500, 503, 201, 200]

        delivery = sim.dispatcher.send(receiver.url, sim.dispatcher.entry_ready_envelope(entry.id))

    assert [attempt.status for attempt in delivery.attempts] == [500, 503, 201]
    assert delivery.state == "failed"


def test_unreachable_receiver_is_a_failed_attempt(sim: KalturaSimulator) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Nobody home")

    delivery = sim.dispatcher.send("http://127.0.0.1:9/hook", sim.dispatcher.entry_ready_envelope(entry.id))

    assert delivery.attempts[0].status is None and delivery.attempts[0].error
    assert delivery.state == "retrying"


def test_legacy_urlencoded_json_body(sim: KalturaSimulator, receiver: Receiver) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Legacy ~ entry")

    sim.dispatcher.send(receiver.url, sim.dispatcher.entry_ready_envelope(entry.id), body_format=BodyFormat.LEGACY_JSON)

    (request,) = receiver.requests
    _verify(request.body, request.headers)
    assert request.headers["Content-Type"] == "application/json"
    assert request.body.startswith(b"data=%7B%22object%22")
    assert b"~" not in request.body
    assert json.loads(unquote_plus(request.body[5:].decode()))["object"]["name"] == "Legacy ~ entry"


def test_xml_body(sim: KalturaSimulator, receiver: Receiver) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Xml & co")

    sim.dispatcher.send(receiver.url, sim.dispatcher.entry_ready_envelope(entry.id), body_format="xml")

    (request,) = receiver.requests
    _verify(request.body, request.headers)
    assert request.headers["Content-Type"] == "application/xml"
    assert request.body.startswith(b"data=<notification><objectType>KalturaHttpNotification</objectType>")
    root = ElementTree.fromstring(request.body[len(b"data=") :])
    assert root.findtext("object/name") == "Xml & co"
    assert root.findtext("eventObjectType") == "1"


def test_data_fields_body(sim: KalturaSimulator, receiver: Receiver) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Quarterly all-hands recording")

    sim.dispatcher.send(receiver.url, sim.dispatcher.entry_ready_envelope(entry.id), body_format=BodyFormat.FIELDS)

    (request,) = receiver.requests
    _verify(request.body, request.headers)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.body.decode() == (
        f"entry_id={entry.id}&entry_name=Quarterly+all-hands+recording&entry_status=2&entry_reference_id=&trigger_status=2"
    )


def test_vendor_task_error_and_session_cue_point_envelopes(sim: KalturaSimulator, receiver: Receiver) -> None:
    item = sim.add_catalog_item(PARTNER_ID, behaviour=TaskBehaviour(result="error", err_description="No audio"))
    sim.add_reach_profile(PARTNER_ID, default_for=[item.id])
    entry = sim.add_entry(PARTNER_ID, name="Silent")
    api_ks = sim.ks(PARTNER_ID)

    task = requests.post(
        f"{sim.url}/api_v3/service/reach_entryVendorTask/action/add",
        data={
            "ks": api_ks,
            "format": 1,
            "entryVendorTask[entryId]": entry.id,
            "entryVendorTask[catalogItemId]": item.id,
        },
        timeout=10,
    ).json()
    sim.clock.advance(3600)
    session = sim.add_room_session(PARTNER_ID, announce=False)

    sim.dispatcher.send(receiver.url, sim.dispatcher.vendor_task_envelope(task["id"]))
    sim.dispatcher.send(receiver.url, sim.dispatcher.session_ended_envelope(session.cue_point_id))

    task_body, session_body = (json.loads(request.body) for request in receiver.requests)
    assert (task_body["eventObjectType"], task_body["object"]["status"]) == (42, 6)
    assert task_body["object"]["errDescription"] == "No audio"
    assert task_body["object"]["accessKey"].startswith("djJ8")
    assert session_body["eventObjectType"] == "cuePointEventNotifications.CuePoint"
    assert session_body["object"]["objectType"] == "KalturaSessionCuePoint"
    assert session_body["object"]["cuePointType"] == "sessionCuePoint.Session"
    assert session_body["object"]["duration"] == 3600 * 1000


def test_subscriptions_deliver_state_changes(sim: KalturaSimulator, receiver: Receiver) -> None:
    sim.subscribe(receiver.url, hash_algorithm="sha256")
    item = sim.add_catalog_item(PARTNER_ID, behaviour=TaskBehaviour(pending_seconds=10, processing_seconds=20))
    sim.add_reach_profile(PARTNER_ID, default_for=[item.id])
    entry = sim.add_entry(PARTNER_ID, name="Uploading", status=1, ready_in=30)

    sim.clock.advance(30)

    requests.post(
        f"{sim.url}/api_v3/service/reach_entryVendorTask/action/add",
        data={
            "ks": sim.ks(PARTNER_ID),
            "format": 1,
            "entryVendorTask[entryId]": entry.id,
            "entryVendorTask[catalogItemId]": item.id,
        },
        timeout=10,
    )
    sim.clock.advance(100)
    sim.add_room_session(PARTNER_ID, start=sim.clock.now() + 60, duration=600)
    sim.clock.advance(660)

    bodies = [json.loads(request.body) for request in receiver.requests]
    for request in receiver.requests:
        _verify(request.body, request.headers)
    assert [(body["eventObjectType"], body["object"].get("status")) for body in bodies] == [
        (1, 2),
        (42, 3),
        (42, 2),
        ("cuePointEventNotifications.CuePoint", 1),
    ]
    assert bodies[2]["templateSystemName"] == "Http_Entry_Vendor_Task_Finished_Processing"
    assert bodies[2]["object"]["outputObjectId"] == sim.caption_assets(entry.id)[0].id
    job_ids = [body["eventNotificationJobId"] for body in bodies]
    assert len(set(job_ids)) == 4


def test_subscription_filtered_to_ready_tasks_like_the_stock_template(
    sim: KalturaSimulator, receiver: Receiver
) -> None:
    sim.subscribe(receiver.url, kinds={"vendor_task_status"}, task_statuses={2}, body_format="fields")
    item = sim.add_catalog_item(PARTNER_ID)
    sim.add_reach_profile(PARTNER_ID, default_for=[item.id])
    entry = sim.add_entry(PARTNER_ID, name="Quiet")

    requests.post(
        f"{sim.url}/api_v3/service/reach_entryVendorTask/action/add",
        data={
            "ks": sim.ks(PARTNER_ID),
            "format": 1,
            "entryVendorTask[entryId]": entry.id,
            "entryVendorTask[catalogItemId]": item.id,
        },
        timeout=10,
    )
    sim.set_entry_status(entry.id, 2)
    sim.clock.advance(3600)

    (request,) = receiver.requests
    fields = parse_qs(request.body.decode())
    assert fields["status"] == ["2"] and fields["entryId"] == [entry.id]
    assert "accessKey" in fields
