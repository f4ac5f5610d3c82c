"""Fault knobs: latency, 5xx, ACTION_BLOCKED, expired KS, connection reset, truncated body; counts and probabilities."""

from __future__ import annotations

import pytest
import requests
from kauto_local.simulator import KalturaSimulator
from sim_support import ADMIN_SECRET, PARTNER_ID, TIMEOUT, Api

pytestmark = pytest.mark.integration

BROKEN_TRANSFER = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)


def test_latency_makes_a_short_client_timeout_fire_once(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    rule = sim.faults.latency("baseEntry/list", 400, count=1)

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(api.url("baseEntry", "list"), data={"ks": admin_ks, "format": 1}, timeout=0.05)
    after = requests.post(api.url("baseEntry", "list"), data={"ks": admin_ks, "format": 1}, timeout=TIMEOUT)

    assert after.json()["objectType"] == "KalturaBaseEntryListResponse"
    assert rule.fired == 1


def test_http_errors_for_the_next_n_calls(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.faults.http_error("baseentry/LIST", 503, count=2)

    statuses = [api.post("baseEntry", "list", ks=admin_ks).status_code for _ in range(3)]
    other = api.post("media", "list", ks=admin_ks)

    assert statuses == [503, 503, 200]
    assert other.status_code == 200
    assert [(call.executed, call.faults) for call in sim.calls_to("baseEntry", "list")] == [
        (False, ("http_status:503:before",)),
        (False, ("http_status:503:before",)),
        (True, ()),
    ]


def test_action_blocked_is_a_kaltura_error(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.faults.action_blocked("baseEntry/*", count=1)

    blocked = api.post("baseEntry", "get", ks=admin_ks, entryId="1_x")

    assert blocked.status_code == 200
    assert blocked.json() == {
        "code": "ACTION_BLOCKED",
        "message": "Action [get] in service [baseEntry] is blocked",
        "objectType": "KalturaAPIException",
        "args": {"ACTION_NAME": "get", "SERVICE_NAME": "baseEntry"},
    }
    assert api.call("baseEntry", "get", ks=admin_ks, entryId="1_x")["code"] == "ENTRY_ID_NOT_FOUND"


def test_expired_ks_fault_looks_like_a_real_expiry(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.faults.expired_ks("*", count=1)

    first = api.post("baseEntry", "list", ks=admin_ks).content
    second = api.call("baseEntry", "list", ks=admin_ks)

    sim.clock.advance(86400)
    assert api.post("baseEntry", "list", ks=admin_ks).content == first
    assert second["objectType"] == "KalturaBaseEntryListResponse"


def test_connection_reset_before_the_action_runs(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.faults.connection_reset("session/start", count=1)

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(
            api.url("session", "start"),
            data={"secret": ADMIN_SECRET, "partnerId": PARTNER_ID, "type": 2, "format": 1},
            timeout=TIMEOUT,
        )

    assert [call.executed for call in sim.calls] == [False]


def test_connection_reset_after_the_action_ran_then_the_retry_is_a_duplicate(
    sim: KalturaSimulator, api: Api, admin_ks: str
) -> None:
    item = sim.add_catalog_item(PARTNER_ID)
    sim.add_reach_profile(PARTNER_ID, default_for=[item.id])
    entry = sim.add_entry(PARTNER_ID, name="Once")
    sim.faults.connection_reset("reach_entryVendorTask/add", count=1, when="after")
    order = {
        "ks": admin_ks,
        "format": 1,
        "entryVendorTask[entryId]": entry.id,
        "entryVendorTask[catalogItemId]": item.id,
    }

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(api.url("reach_entryVendorTask", "add"), data=order, timeout=TIMEOUT)
    retry = requests.post(api.url("reach_entryVendorTask", "add"), data=order, timeout=TIMEOUT).json()

    assert len(sim.tasks(PARTNER_ID)) == 1
    assert retry["code"] == "ENTRY_VENDOR_TASK_DUPLICATION"


def test_truncated_json_body(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.faults.truncated_body("baseEntry/list", count=1)

    with pytest.raises(BROKEN_TRANSFER):
        requests.post(api.url("baseEntry", "list"), data={"ks": admin_ks, "format": 1}, timeout=TIMEOUT)

    assert api.call("baseEntry", "list", ks=admin_ks)["totalCount"] == 0


def test_truncated_streamed_csv(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.configure_room_report(6001, body_bytes=5_000_000)
    sim.faults.truncated_body("report/getCsvFromStringParams", count=1, after_bytes=300_000)
    received = 0

    with pytest.raises(BROKEN_TRANSFER):
        response = api.http.post(
            api.url("report", "getCsvFromStringParams"),
            data={"ks": admin_ks, "id": 6001, "params": "from_date=0;to_date=1"},
            stream=True,
            timeout=TIMEOUT,
        )
        for chunk in response.iter_content(64 * 1024):
            received += len(chunk)

    assert 0 < received <= 300_000


def test_path_prefix_rule_hits_the_reports_microservice(sim: KalturaSimulator, admin_ks: str) -> None:
    sim.faults.http_error("/api/v1/", 502, count=1)
    url = f"{sim.url}/api/v1/report/generate"
    headers = {"Authorization": f"Bearer {admin_ks}"}

    first = requests.post(url, json={"reportName": "registration"}, headers=headers, timeout=TIMEOUT)
    second = requests.post(url, json={"reportName": "registration"}, headers=headers, timeout=TIMEOUT)

    assert (first.status_code, second.status_code) == (502, 200)
    assert "sessionId" in second.json()


def test_api_faults_hit_single_calls_inside_a_multirequest(sim: KalturaSimulator, admin_ks: str) -> None:
    sim.faults.action_blocked("media/list")
    body = {
        "ks": admin_ks,
        "format": 1,
        "1": {"service": "baseEntry", "action": "list"},
        "2": {"service": "media", "action": "list"},
        "3": {"service": "baseEntry", "action": "list"},
    }

    results = requests.post(f"{sim.url}/api_v3/service/multirequest", json=body, timeout=TIMEOUT).json()

    assert [result["objectType"] for result in results] == [
        "KalturaBaseEntryListResponse",
        "KalturaAPIException",
        "KalturaBaseEntryListResponse",
    ]
    assert results[1]["code"] == "ACTION_BLOCKED"


def test_probability_draws_are_reproducible_for_a_seed() -> None:
    def pattern(seed: int) -> list[int]:
        with KalturaSimulator(seed=seed, tls=False) as simulator:
            simulator.add_partner(PARTNER_ID, ADMIN_SECRET)
            simulator.faults.http_error("system/ping", 500, probability=0.5)
            url = f"{simulator.url}/api_v3/service/system/action/ping"
            return [requests.post(url, data={"format": 1}, timeout=TIMEOUT).status_code for _ in range(24)]

    first, again, other = pattern(3), pattern(3), pattern(4)

    assert first == again
    assert set(first) == {200, 500}
    assert first != other


def test_api_faults_by_path_prefix_and_on_the_microservice(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.faults.expired_ks("/api_v3/", count=1)
    sim.faults.expired_ks("microservice/generate", count=1)
    sim.faults.action_blocked("/api/v1/report/serve", count=1)
    url = f"{sim.url}/api/v1/report"
    headers = {"Authorization": f"Bearer {admin_ks}"}

    api_call = api.call("baseEntry", "list", ks=admin_ks)
    generate = requests.post(f"{url}/generate", json={"reportName": "x"}, headers=headers, timeout=TIMEOUT)
    serve = requests.post(f"{url}/serve", json={"sessionId": "s", "statusOnly": True}, headers=headers, timeout=TIMEOUT)

    assert api_call["args"]["KSID"] == "EXPIRED"
    assert (generate.status_code, generate.json()) == (401, {"error": 'Invalid KS "EXPIRED", Error "-1,INVALID_STR"'})
    assert (serve.status_code, serve.json()) == (429, {"error": "ACTION_BLOCKED"})
    assert [call.faults for call in sim.calls] == [("expired_ks",), ("expired_ks",), ("action_blocked",)]


def test_redirect_answers_with_a_location_instead_of_running_the_call(
    sim: KalturaSimulator, api: Api, admin_ks: str
) -> None:
    rule = sim.faults.redirect("report/serve", "https://elsewhere.example/x.csv", status=307, count=1)
    url = f"{sim.url}/api_v3/index.php/service/report/action/serve/ks/{admin_ks}/id/1234567_nope.csv/report.csv"

    redirected = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    served = requests.get(url, allow_redirects=False, timeout=TIMEOUT)

    assert (redirected.status_code, redirected.headers["Location"], redirected.content) == (
        307,
        "https://elsewhere.example/x.csv",
        b"",
    )
    assert served.status_code == 200 and "<code>FILE_DOESNT_EXIST</code>" in served.text
    assert rule.fired == 1
    assert [(call.executed, call.faults) for call in sim.calls] == [(False, ("redirect:307",)), (True, ())]
    with pytest.raises(ValueError, match="redirect"):
        sim.faults.redirect("*", "https://x.example", status=200)


def test_streamed_body_cut_before_its_first_byte_is_not_a_complete_empty_body(
    sim: KalturaSimulator, api: Api, admin_ks: str
) -> None:
    sim.faults.truncated_body("report/getCsvFromStringParams", count=1, after_bytes=0)

    with pytest.raises(BROKEN_TRANSFER):
        response = api.http.post(
            api.url("report", "getCsvFromStringParams"),
            data={"ks": admin_ks, "id": 6001, "params": "from_date=0;to_date=1"},
            stream=True,
            timeout=TIMEOUT,
        )
        b"".join(response.iter_content(1024))
