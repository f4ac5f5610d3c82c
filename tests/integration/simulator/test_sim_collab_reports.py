"""Chat-and-collaboration reports of the Reports Microservice, keyed to the simulator's room sessions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from kauto_local.simulator import KalturaSimulator
from sim_support import PARTNER_ID, TIMEOUT

pytestmark = pytest.mark.integration

SESSION_START = 1_767_600_000  # 2026-01-05T08:00:00Z
SESSION_END = SESSION_START + 3600


def _post(sim: KalturaSimulator, path: str, body: dict[str, Any], ks: str) -> requests.Response:
    return requests.post(
        f"{sim.reports_url}/api/v1/report/{path}",
        json=body,
        headers={"Authorization": f"Bearer {ks}"},
        verify=str(sim.ca_path),
        timeout=TIMEOUT,
    )


def _download(sim: KalturaSimulator, ks: str, report: str, parameters: dict[str, Any]) -> list[dict[str, str]]:
    generated = _post(sim, "generate", {"reportName": report, "reportParameters": parameters}, ks)
    assert generated.status_code == 200, generated.text
    sim.clock.advance(sim.microservice.pending_seconds + sim.microservice.in_progress_seconds)
    body = _post(sim, "serve", {"sessionId": generated.json()["sessionId"]}, ks)
    assert body.headers["Content-Type"] == "text/csv"
    assert body.content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(body.content.decode("utf-8-sig"), newline="")))


def _when(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp())


def test_chat_and_polls_follow_the_session_with_rows_outside_it(sim: KalturaSimulator, admin_ks: str) -> None:
    session = sim.add_room_session(
        PARTNER_ID, start=SESSION_START, end=SESSION_END, attendees=9, chat_messages=24, polls=2
    )
    quiet = sim.add_room_session(PARTNER_ID, start=SESSION_START, end=SESSION_END, attendees=4)
    parameters = {"entries_ids": [session.room_entry_id], "from_date_id": "2026-01-05", "to_date_id": "2026-01-05"}

    chat = _download(sim, admin_ks, "groupChatTranscripts", parameters)
    polls = _download(sim, admin_ks, "pollsActivity", parameters)
    moderation = _download(sim, admin_ks, "chatModeration", parameters)
    activity = _download(sim, admin_ks, "chatUserActivity", parameters)
    moderator = _download(sim, admin_ks, "moderatorTranscripts", parameters)
    nothing = _download(sim, admin_ks, "groupChatTranscripts", parameters | {"entries_ids": [quiet.room_entry_id]})

    inside = [row for row in chat if SESSION_START <= _when(row["sentAt"]) <= SESSION_END]
    assert len(inside) == 24 and len(chat) > 24, "lobby and after-session messages are outside the session"
    assert {row["contextId"] for row in chat} == {session.room_entry_id}
    assert any("\n" in row["message"] for row in chat), "a message with a line break survives (quoted)"
    assert any(row["message"].startswith("=") for row in chat), "a formula-looking message for the cleaner"
    assert {"userEmail", "repliedToMessageId", "likes", "isDeleted", "subContext"} <= set(chat[0])
    assert {row["pollId"] for row in polls} == {f"poll-{session.cue_point_id}-0", f"poll-{session.cue_point_id}-1"}
    assert any(_when(row["answeredAt"]) > SESSION_END for row in polls), "a late answer after the session"
    assert any(_when(row["lastActivityAt"]) < SESSION_START for row in moderation)
    assert sum(int(row["messagesSent"]) for row in activity) == len(chat)
    assert {row["isModerator"] for row in moderator} == {"true", "false"}
    assert nothing == [], "a session without chat has an empty report (header only)"


def test_rooms_of_a_virtual_event_need_the_privilege(sim: KalturaSimulator) -> None:
    session = sim.add_room_session(
        PARTNER_ID, start=SESSION_START, end=SESSION_END, chat_messages=5, virtual_event_id="4321"
    )
    parameters = {"entries_ids": [session.room_entry_id], "virtual_event_ids": ["4321"]}
    body = {"reportName": "groupChatTranscripts", "reportParameters": parameters}

    refused = _post(sim, "generate", body, sim.ks(PARTNER_ID))
    allowed = _post(sim, "generate", body, sim.ks(PARTNER_ID, privileges="virtualeventid:4321"))
    bad_date = _post(sim, "generate", {**body, "reportParameters": {"from_date_id": "05/01/2026"}}, sim.ks(PARTNER_ID))

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert bad_date.status_code == 400
    assert sim.core.state.entries[session.room_entry_id].to_api("https://cdn")["virtualEventId"] == "4321"
