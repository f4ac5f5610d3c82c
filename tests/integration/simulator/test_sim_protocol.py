"""API v3 request and response mechanics (docs/kaltura.md#notification-envelope, #api-requests): params, serialisation,
errors, multirequest."""

from __future__ import annotations

import json

import pytest
import requests
from kauto_local.simulator import KalturaSimulator
from sim_support import ADMIN_SECRET, PARTNER_ID, TIMEOUT, Api

pytestmark = pytest.mark.integration


@pytest.fixture
def catalog(sim: KalturaSimulator) -> int:
    item = sim.add_catalog_item(PARTNER_ID, price_per_unit=1.045)
    sim.add_reach_profile(PARTNER_ID, credit=100, default_for=[item.id])
    return item.id


def test_json_body_only_with_exactly_application_json(sim: KalturaSimulator, admin_ks: str) -> None:
    url = f"{sim.url}/api_v3/service/baseEntry/action/list"
    body = json.dumps({"ks": admin_ks, "format": 1}).encode()

    exact = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    with_charset = requests.post(
        url, data=body, headers={"Content-Type": "application/json; charset=utf-8"}, timeout=TIMEOUT
    )

    assert exact.json()["objectType"] == "KalturaBaseEntryListResponse"
    # docs/kaltura.md#api-requests: anything but exactly application/json falls back to PHP's $_POST, which is empty
    # here: no ks, XML.
    assert with_charset.headers["Content-Type"] == "text/xml"
    assert b"<code>MISSING_KS</code>" in with_charset.content


def test_query_path_and_legacy_forms_reach_the_same_action(sim: KalturaSimulator, admin_ks: str) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Path params")
    urls = [
        f"{sim.url}/api_v3/service/media/action/get?ks={admin_ks}&entryId={entry.id}&format=1",
        f"{sim.url}/api_v3/index.php/service/media/action/get/ks/{admin_ks}/entryId/{entry.id}/format/1",
        f"{sim.url}/api_v3/index.php?service=media&action=get&ks={admin_ks}&entryId={entry.id}&format=1",
    ]

    results = [requests.get(url, timeout=TIMEOUT).json() for url in urls]

    assert [result["id"] for result in results] == [entry.id] * 3


def test_nested_form_keys_in_both_spellings(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    first = sim.add_entry(PARTNER_ID, name="first")
    sim.add_entry(PARTNER_ID, name="second")
    sim.add_entry(PARTNER_ID, name="pending", status=4)

    brackets = api.call("baseEntry", "list", ks=admin_ks, **{"filter[idIn]": first.id})
    colons = api.call("baseEntry", "list", ks=admin_ks, **{"filter:statusEqual": 4})

    assert [obj["name"] for obj in brackets["objects"]] == ["first"]
    assert [obj["name"] for obj in colons["objects"]] == ["pending"]


def test_json_serialisation_matches_php_json_encode(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Réunion/Q1 ✓", duration=125)

    raw = api.post("media", "get", ks=admin_ks, entryId=entry.id).content

    raw.decode("ascii")  # pure ASCII
    assert b'"name":"R\\u00e9union\\/Q1 \\u2713"' in raw
    assert b'"dataUrl":"https:\\/\\/' in raw
    assert b"null" not in raw and b"replacedEntryId" not in raw
    assert b", " not in raw and b": " not in raw
    assert raw.endswith(b'"blockAutoTranscript":false,"objectType":"KalturaMediaEntry"}')
    assert b'"status":2,' in raw and b'"type":1,' in raw and b'"sourceType":"1"' in raw


def test_room_entries_serialise_their_plugin_type_as_a_string(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    room = sim.add_entry(PARTNER_ID, name="Room", entry_type="room.room")

    result = api.call("baseEntry", "get", ks=admin_ks, entryId=room.id)

    assert (result["type"], result["objectType"], result["roomType"]) == ("room.room", "KalturaRoomEntry", 1)
    assert api.call("media", "get", ks=admin_ks, entryId=room.id)["code"] == "ENTRY_ID_NOT_FOUND"


def test_errors_are_http_200_with_empty_args_as_a_list(api: Api) -> None:
    response = api.post("baseEntry", "list")

    assert response.status_code == 200
    assert response.content == (
        b'{"code":"MISSING_KS","message":"Missing KS, session not established",'
        b'"objectType":"KalturaAPIException","args":[]}'
    )


def test_default_format_is_xml(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Xml <&>")

    response = api.http.post(api.url("media", "get"), data={"ks": admin_ks, "entryId": entry.id}, timeout=TIMEOUT)

    assert response.headers["Content-Type"] == "text/xml"
    assert response.text.startswith('<?xml version="1.0" encoding="utf-8"?><xml><result><objectType>KalturaMediaEntry')
    assert "<name>Xml &lt;&amp;&gt;</name>" in response.text


def test_unknown_service_and_action(api: Api, admin_ks: str) -> None:
    assert api.call("nosuch", "list", ks=admin_ks)["code"] == "SERVICE_DOES_NOT_EXISTS"
    result = api.call("media", "fly", ks=admin_ks)
    assert (result["code"], result["args"]) == ("ACTION_DOES_NOT_EXISTS", {"ACTION": "fly", "SERVICE": "media"})


def test_form_multirequest_with_reference_and_a_failing_duplicate(
    sim: KalturaSimulator, api: Api, admin_ks: str, catalog: int
) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Multi", duration=125)
    params = {
        "ks": admin_ks,
        "format": 1,
        "1:service": "media",
        "1:action": "get",
        "1:entryId": entry.id,
        "2:service": "reach_entryvendortask",
        "2:action": "add",
        "2:entryVendorTask[objectType]": "KalturaEntryVendorTask",
        "2:entryVendorTask[entryId]": "{1:result:id}",
        "2:entryVendorTask[catalogItemId]": catalog,
        "3:service": "reach_entryvendortask",
        "3:action": "add",
        "3:entryVendorTask[entryId]": entry.id,
        "3:entryVendorTask[catalogItemId]": catalog,
        "4:service": "reach_entryvendortask",
        "4:action": "get",
        "4:id": "{2:result:id}",
    }

    response = requests.post(f"{sim.url}/api_v3/service/multirequest", data=params, timeout=TIMEOUT)

    results = response.json()
    assert response.status_code == 200
    assert [result["objectType"] for result in results] == [
        "KalturaMediaEntry",
        "KalturaEntryVendorTask",
        "KalturaAPIException",
        "KalturaEntryVendorTask",
    ]
    assert results[1]["entryId"] == entry.id and results[1]["status"] == 1
    assert results[2] == {
        "code": "ENTRY_VENDOR_TASK_DUPLICATION",
        "message": (
            f"Entry vendor task already exists for entry [{entry.id}] and catalog item [{catalog}] and version [0]"
        ),
        "objectType": "KalturaAPIException",
        "args": {"ENTRY_ID": entry.id, "CATALOG_ITEM_ID": str(catalog), "VERSION": "0"},
    }
    assert results[3]["id"] == results[1]["id"]
    logged = [(call.action, call.multirequest_index, call.error_code) for call in sim.calls]
    assert logged == [("get", 1, None), ("add", 2, None), ("add", 3, "ENTRY_VENDOR_TASK_DUPLICATION"), ("get", 4, None)]
    assert all("ks" not in call.params for call in sim.calls)


def test_json_multirequest_inherits_ks_unless_a_call_brings_its_own(sim: KalturaSimulator, admin_ks: str) -> None:
    user_ks = sim.ks(PARTNER_ID, session_type=0)
    body = {
        "ks": admin_ks,
        "format": 1,
        "1": {"service": "baseEntry", "action": "list", "filter": {"statusEqual": 2}},
        "2": {"service": "baseEntry", "action": "list", "ks": user_ks},
        "3": {"service": "session", "action": "start", "secret": ADMIN_SECRET, "partnerId": PARTNER_ID, "type": 2},
    }

    results = requests.post(f"{sim.url}/api_v3/service/multirequest", json=body, timeout=TIMEOUT).json()

    assert results[0]["objectType"] == "KalturaBaseEntryListResponse"
    assert results[1]["code"] == "SERVICE_FORBIDDEN"
    assert isinstance(results[2], str) and results[2].startswith("djJ8")
    assert all("secret" not in call.params for call in sim.calls)


def test_multirequest_in_xml(sim: KalturaSimulator, admin_ks: str) -> None:
    params = {"ks": admin_ks, "1:service": "baseEntry", "1:action": "list", "2:service": "media", "2:action": "get"}

    text = requests.post(f"{sim.url}/api_v3/service/multirequest", data=params, timeout=TIMEOUT).text

    assert "<result><item><objectType>KalturaBaseEntryListResponse</objectType>" in text
    assert "<item><error><code>MISSING_MANDATORY_PARAMETER</code>" in text
