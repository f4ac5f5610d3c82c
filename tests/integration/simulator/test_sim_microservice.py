"""Reports Microservice: generate, poll pending -> in_progress -> completed on the clock, download
(docs/kaltura.md#reports-microservice)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from kauto_local.simulator import KalturaSimulator
from sim_support import PARTNER_ID, TIMEOUT

pytestmark = pytest.mark.integration


def _post(sim: KalturaSimulator, path: str, body: dict[str, Any], ks: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {ks}"} if ks else {}
    return requests.post(
        f"{sim.reports_url}/api/v1/report/{path}",
        json=body,
        headers=headers,
        verify=str(sim.ca_path),
        timeout=TIMEOUT,
    )


def test_generate_poll_and_download(sim: KalturaSimulator, admin_ks: str) -> None:
    sim.microservice.pending_seconds = 20
    sim.microservice.in_progress_seconds = 40
    generated = _post(sim, "generate", {"reportName": "registration", "reportParameters": {"appGuid": "g"}}, admin_ks)
    session_id = generated.json()["sessionId"]

    def status() -> str:
        return _post(sim, "serve", {"sessionId": session_id, "statusOnly": True}, admin_ks).json()["status"]

    assert generated.status_code == 200
    assert status() == "pending"
    sim.clock.advance(20)
    assert status() == "in_progress"
    early = _post(sim, "serve", {"sessionId": session_id}, admin_ks)
    assert early.json() == {"status": "in_progress"}
    sim.clock.advance(40)
    assert status() == "completed"

    download = _post(sim, "serve", {"sessionId": session_id}, admin_ks)

    assert download.headers["Content-Type"] == "text/csv"
    lines = download.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "user_id,email,first_name,last_name,registration_date,status"
    assert len(lines) == 1 + sim.microservice.rows
    assert [call.action for call in sim.calls if call.service == "microservice"] == ["generate"] + ["serve"] * 5


def test_failed_report(sim: KalturaSimulator, admin_ks: str) -> None:
    sim.microservice.failures["pollsActivity"] = "virtual event not found"
    session_id = _post(sim, "generate", {"reportName": "pollsActivity"}, admin_ks).json()["sessionId"]
    sim.clock.advance(sim.microservice.pending_seconds + sim.microservice.in_progress_seconds)

    result = _post(sim, "serve", {"sessionId": session_id, "statusOnly": True}, admin_ks).json()

    assert result == {"status": "failed", "error": "virtual event not found"}


def test_bearer_ks_is_checked(sim: KalturaSimulator, admin_ks: str) -> None:
    other_partner_ks = _other_partner_ks(sim)
    session_id = _post(sim, "generate", {"reportName": "registration"}, admin_ks).json()["sessionId"]

    assert _post(sim, "generate", {"reportName": "registration"}, None).status_code == 401
    assert _post(sim, "generate", {"reportName": "registration"}, "garbage").status_code == 401
    sim.clock.advance(86400)
    expired = _post(sim, "serve", {"sessionId": session_id, "statusOnly": True}, admin_ks)
    assert (expired.status_code, expired.json()) == (401, {"error": 'Invalid KS "EXPIRED", Error "-1,INVALID_STR"'})
    unknown = _post(sim, "serve", {"sessionId": session_id, "statusOnly": True}, other_partner_ks)
    assert unknown.status_code == 404, "a session of another partner is not visible"
    assert _post(sim, "generate", {"reportParameters": {}}, other_partner_ks).status_code == 400


def _other_partner_ks(sim: KalturaSimulator) -> str:
    sim.add_partner(PARTNER_ID + 1, "another-secret")
    return sim.ks(PARTNER_ID + 1, expiry_seconds=10 * 86400)
