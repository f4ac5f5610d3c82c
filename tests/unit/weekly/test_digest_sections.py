"""The digest's ops sections on fakes: the week's alerts from the alert claims of the ledger, drop-off, platforms,
geography and top creators from the run's CSVs, and every report file described and linked to the S3 console."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from digest_support import HOSTILE_NAME, PARTNER_ID, WEEK, DigestWorld, at, make_world, write_run
from kauto.aws.alerts import Alert, Severity
from kauto.aws.report_keys import weekly_prefix
from kauto.weekly.digest import DIGEST_HTML, DIGEST_JSON, build_digest
from kauto_local.fakes import InMemoryAlertPublisher

PREFIX = weekly_prefix(PARTNER_ID, WEEK)


@pytest.fixture
def world() -> DigestWorld:
    return make_world()


def digest_json(world: DigestWorld) -> dict:
    return json.loads(world.store.objects[f"{PREFIX}{DIGEST_JSON}"])


def page(world: DigestWorld) -> str:
    return world.store.objects[f"{PREFIX}{DIGEST_HTML}"].decode("utf-8")


def send_alert(
    world: DigestWorld, when: int, rule: str, severity: Severity, key: str, partner_id: int = PARTNER_ID
) -> None:
    """An alert published at ``when`` through the real publisher (its claim row lands in the world's ledger)."""
    publisher = InMemoryAlertPublisher(clock=lambda: when, ledger=world.ledger)
    alert = Alert(rule=rule, severity=severity, partner_id=partner_id, subject=f"{rule} {key}", summary="ids only")
    assert publisher.publish(alert, dedupe_key=key).published


def test_the_weeks_alerts_are_read_from_the_alert_claims_worst_first(world: DigestWorld) -> None:
    write_run(world, WEEK)
    send_alert(world, at(7), "reach_task_error", Severity.WARNING, "98765433")
    send_alert(world, at(8), "reach_task_error", Severity.WARNING, "98765434")
    send_alert(world, at(9), "reach_credit", Severity.CRITICAL, "credit")
    send_alert(world, at(10), "attendee_engagement_low", Severity.INFO, "0_room1/cp_a")
    send_alert(world, at(5), "reach_task_error", Severity.WARNING, "last-week")  # Sunday before the week
    send_alert(world, at(14), "reach_task_error", Severity.WARNING, "next-week")  # Tuesday after
    send_alert(world, at(8), "reach_task_error", Severity.WARNING, "other-partner", partner_id=12345678)

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    alerts = digest_json(world)["alerts"]

    assert [(a["rule"], a["severity"], a["subject_key"]) for a in alerts] == [
        ("reach_credit", "critical", "credit"),
        ("reach_task_error", "warning", "98765434"),
        ("reach_task_error", "warning", "98765433"),
        ("attendee_engagement_low", "info", "0_room1/cp_a"),
    ]
    assert all(a["published"] for a in alerts)
    html = page(world)
    assert "4 alert(s) of 3 kind(s)." in html
    assert "REACH task failed" in html and "<code>98765434</code>" in html
    assert "last-week" not in html and "next-week" not in html and "other-partner" not in html


def test_a_week_without_alerts_says_so_and_the_digest_does_not_list_its_own_summary(world: DigestWorld) -> None:
    write_run(world, WEEK)
    send_alert(world, at(8), "weekly_digest", Severity.INFO, "digest:2025-W01")

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)

    assert digest_json(world)["alerts"] == []
    assert "No alerts were sent this week." in page(world)


def test_dropoff_adds_up_the_quartiles_and_names_the_entries_that_lose_most(world: DigestWorld) -> None:
    write_run(world, WEEK)

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    dropoff = digest_json(world)["dropoff"]

    assert dropoff["plays"] == 200
    assert dropoff["reached"] == [148, 106, 74, 56]
    assert [(e["entry_id"], e["plays"], round(e["play_through"], 1)) for e in dropoff["weakest"]] == [
        ("1_bravo", 80, 5.0),
        ("1_alpha", 100, 40.0),
        ("1_split", 20, 60.0),
    ]
    html = page(world)
    assert "Plays reaching each point of the entry (% of plays)" in html
    assert "Reached 25%" in html and "74%" in html  # 148 of 200


def test_platforms_geography_and_creators_rank_plays_and_escape_names(world: DigestWorld) -> None:
    write_run(world, WEEK)

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    breakdowns = digest_json(world)["breakdowns"]

    assert [(r["label"], r["plays"]) for r in breakdowns["platforms"]] == [("Computer", 200), ("Mobile", 126)]
    assert [(r["label"], r["plays"]) for r in breakdowns["geography"]] == [
        ("GERMANY", 150),
        ("CÔTE D'IVOIRE", 50),
        ("FRANCE", 0),
    ]
    assert [(r["label"], r["plays"]) for r in breakdowns["creators"]] == [("Comms team", 217), (HOSTILE_NAME, 97)]
    html = page(world)
    assert HOSTILE_NAME not in html and "&lt;script&gt;" in html
    for title in ("Plays by device (plays)", "Plays by country, top 10 (plays)", "Plays by creator, top 10 (plays)"):
        assert f'<figcaption class="chart-title">{title}</figcaption>' in html


def test_every_report_file_is_described_and_linked_to_its_object_in_the_s3_console(world: DigestWorld) -> None:
    keys = write_run(world, WEEK)

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    sources = digest_json(world)["sources"]

    assert {source["report"] for source in sources} == set(keys)
    assert all(source["used_for"] for source in sources)
    by_report = {source["report"]: source["used_for"] for source in sources}
    assert by_report["breakouts"] == "breakout rooms of each session (raw data, not charted)"
    assert by_report["content_dropoff"] == "drop-off: how far plays got"
    html = page(world)
    for key in keys.values():
        link = html.split(f"<code>{key}</code>")[0].rsplit('<a href="', 1)[1].split('"')[0].replace("&amp;", "&")
        url = urlsplit(link)
        assert (url.scheme, url.netloc, url.path) == ("https", "s3.console.aws.amazon.com", "/s3/object/reports-bucket")
        assert parse_qs(url.query) == {"region": ["us-east-1"], "prefix": [key]}


def test_reports_missing_from_the_run_get_a_sentence_not_an_empty_chart(world: DigestWorld) -> None:
    write_run(world, WEEK, reports=["top_content", "room_data"])

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    html = page(world)

    assert "The drop-off report is not in this run." in html
    assert html.count("This report is not in this run.") == 3  # platforms, geography, creators
    assert digest_json(world)["breakdowns"] == {}
    assert digest_json(world)["dropoff"] is None
