"""The weekly digest as a person sees it, in headless Chromium: every chart's title visible (not only to screen
readers), "no data" written out where a series is empty, no sideways scrolling on a desktop (1280 px) or a phone
(390 px, mail clients), and no request for anything outside the file. Screenshots: ``test-output/weekly-digest-*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import Chromium, save_screenshot
from digest_support import PARTNER_ID, PREVIOUS_WEEK, WEEK, DigestWorld, add_task, at, make_world, write_run
from kauto.aws.alerts import Alert, Severity
from kauto.aws.report_keys import weekly_prefix
from kauto.weekly.digest import DIGEST_HTML, build_digest
from kauto_local.fakes import InMemoryAlertPublisher

CHART_TITLES = [
    "Plays per day (plays)",
    "Minutes viewed per day (minutes)",
    "Room sessions per day (sessions)",
    "Room attendees per day (people)",
    "Average room engagement per day (% of play time)",
    "Caption orders per day (orders)",
    "Top entries by plays (plays)",
    "Plays reaching each point of the entry (% of plays)",
    "Plays by device (plays)",
    "Plays by country, top 10 (plays)",
    "Plays by creator, top 10 (plays)",
]
SECTIONS = [
    "Week-over-week alerts",
    "Key totals",
    "Alerts this week",
    "Daily trend",
    "Top entries",
    "Drop-off",
    "Platforms and devices",
    "Geography",
    "Top creators",
    "Report files of this run",
]


@pytest.fixture(scope="module")
def digest_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digest with a previous week, a week-over-week alert, the week's alerts and one empty series (no caption
    orders this week)."""
    world: DigestWorld = make_world({"week_over_week": [{"metric": "plays", "change_above_percent": 50}]})
    write_run(world, PREVIOUS_WEEK)
    write_run(world, WEEK, scale=2)
    add_task(world, 7001, "error", at(8))
    publisher = InMemoryAlertPublisher(clock=lambda: at(8), ledger=world.ledger)
    for rule, severity, key in (
        ("reach_task_error", Severity.WARNING, "7001"),
        ("reach_credit", Severity.CRITICAL, "c"),
    ):
        alert = Alert(rule=rule, severity=severity, partner_id=PARTNER_ID, subject=f"{rule} {key}", summary="ids")
        publisher.publish(alert, dedupe_key=key)
    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    path = tmp_path_factory.mktemp("digest") / "digest.html"
    path.write_bytes(world.store.objects[f"{weekly_prefix(PARTNER_ID, WEEK)}{DIGEST_HTML}"])
    return path


@pytest.mark.parametrize("width", [1280, 390])
def test_every_chart_title_is_visible_and_nothing_overflows_or_is_fetched(
    chromium: Chromium, digest_file: Path, tmp_path: Path, width: int
) -> None:
    page = chromium.open(digest_file, width=width)
    save_screenshot(page, tmp_path, f"weekly-digest-{width}")

    assert page.visible_texts(".chart-title") == CHART_TITLES
    assert page.count("figure.chart-figure") == len(CHART_TITLES)
    assert page.visible_texts("h2") == SECTIONS
    assert page.visible_texts(".no-data") == ["0 on every day"]  # caption orders: no empty 0-1 axis
    assert page.visible_texts("svg > title") == []  # what the charts had before: screen readers only
    assert page.overflow_px == 0
    assert page.clipped == []  # no table scrolls sideways inside its section either
    assert page.external_requests == []
    assert page.requests == [digest_file.resolve().as_uri()]


def test_the_weeks_alerts_and_the_report_links_are_visible(chromium: Chromium, digest_file: Path) -> None:
    page = chromium.open(digest_file, width=390)

    worst = page.visible_texts("section h3 + ul li")
    assert worst[0].startswith("critical REACH credit problem: c")
    assert worst[1].startswith("warning REACH task failed: 7001")
    links = page.evaluate("Array.from(document.querySelectorAll('a')).map((a) => a.href)")
    assert len(links) == 9
    assert all(link.startswith("https://s3.console.aws.amazon.com/s3/object/reports-bucket?") for link in links)
