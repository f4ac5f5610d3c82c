"""The weekly digest on fakes: numbers equal to the sums of the run's CSVs, a self-contained escaped page, the
previous week's comparison, week-over-week alerts and the summary once per run."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from digest_support import (
    FORMULA_NAME,
    PARTNER_ID,
    PREVIOUS_WEEK,
    WEEK,
    DigestWorld,
    add_caption_order,
    add_task,
    at,
    csv_dicts,
    decimal_sum,
    make_world,
    write_run,
)
from kauto.aws.report_keys import weekly_prefix
from kauto.weekly.digest import (
    DIGEST_HTML,
    DIGEST_JSON,
    RunNotCompleteError,
    WeekWindow,
    build_digest,
    csv_rows,
)
from kauto.weekly.wow import Metric

PREFIX = weekly_prefix(PARTNER_ID, WEEK)
PLAYS_DOWN_30 = {"week_over_week": [{"metric": "plays", "change_below_percent": -30}]}


def digest_json(world: DigestWorld, week: str = WEEK) -> dict:
    return json.loads(world.store.objects[f"{weekly_prefix(PARTNER_ID, week)}{DIGEST_JSON}"])


def page(world: DigestWorld) -> str:
    return world.store.objects[f"{PREFIX}{DIGEST_HTML}"].decode("utf-8")


@pytest.fixture
def world() -> DigestWorld:
    return make_world()


def test_totals_equal_the_sums_of_the_run_csvs(world: DigestWorld) -> None:
    keys = write_run(world, WEEK)

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    totals = digest_json(world)["totals"]

    content = csv_dicts(world, keys["top_content"])
    users = csv_dicts(world, keys["user_engagement"])
    rooms = [row for row in csv_dicts(world, keys["room_data"]) if not row["parent_entry_id"]]
    rates = [Decimal(row["meeting_engaged_play_time_ratio"]) for row in rooms if row["meeting_engaged_play_time_ratio"]]
    assert totals["plays"] == float(decimal_sum(content, "count_plays"))
    assert totals["minutes_viewed"] == float(decimal_sum(content, "sum_time_viewed"))
    assert totals["unique_viewers"] == len({row["name"] for row in users if Decimal(row["count_plays"]) > 0})
    assert totals["room_sessions"] == len({(row["entry_id"], row["cue_point_id"]) for row in rooms})
    assert totals["avg_engagement"] == float(sum(rates, Decimal(0)) * 100 / len(rates))
    # The same plays broken down by creator or by platform are not counted again.
    assert totals["plays"] == 326


def test_daily_room_series_add_up_to_the_week(world: DigestWorld) -> None:
    keys = write_run(world, WEEK)

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    daily = digest_json(world)["daily"]

    assert daily["room_sessions"] == [2, 0, 0, 1, 0, 0, 0]
    assert sum(daily["attendees"]) == len(csv_dicts(world, keys["attendees"]))
    assert daily["attendees"] == [3, 0, 0, 1, 0, 0, 0]
    assert daily["avg_engagement"] == [37.5, None, None, None, None, None, None]
    assert daily["plays"] == [10, 20, 30, 40, 50, 60, 70]
    assert daily["minutes_viewed"][1] == 30.0


def test_top_entries_add_up_split_rows_and_rank_by_plays(world: DigestWorld) -> None:
    write_run(world, WEEK)

    outcome = build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)

    ranking = [(entry.entry_id, entry.plays) for entry in outcome.digest.top_entries]
    assert ranking == [("1_alpha", 152), ("1_bravo", 97), ("1_split", 65), ("1_formula", 12)]
    names = {entry.entry_id: entry.name for entry in outcome.digest.top_entries}
    assert names["1_formula"] == FORMULA_NAME  # shown as in Kaltura, without the CSV's formula guard


def test_caption_orders_and_errors_come_from_the_ledger_rows_of_the_week(world: DigestWorld) -> None:
    write_run(world, WEEK)
    window = WeekWindow.of(WEEK, "Europe/Berlin")
    start, end = int(window.start.timestamp()), int(window.end.timestamp())
    add_caption_order(world, "1_alpha", start)  # first second of the week
    add_caption_order(world, "1_bravo", at(8), state="done")
    add_caption_order(world, "1_before", start - 1)  # Sunday 23:59:59 of the week before
    add_caption_order(world, "1_after", end)  # Monday 00:00 of the next week
    add_task(world, 1, "error", at(7))
    add_task(world, 2, "rejected", at(10))
    add_task(world, 3, "ready", at(10))
    add_task(world, 4, "error", end + 10)
    add_task(world, 5, "error", at(7), partner_id=PARTNER_ID + 1)

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    document = digest_json(world)

    assert document["totals"]["caption_orders"] == 2
    assert document["totals"]["caption_errors"] == 2
    assert document["daily"]["caption_orders"] == [1, 0, 1, 0, 0, 0, 0]


def test_the_page_is_self_contained_with_charts_and_escaped_values(world: DigestWorld) -> None:
    write_run(world, WEEK)

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    html = page(world)

    assert html.startswith("<!DOCTYPE html>")
    # The only URLs are links a person follows to the S3 console; no element loads anything (an escaped "src="
    # inside text is harmless).
    links = re.findall(r'<a href="([^"]*)"', html)
    assert links
    assert all(link.startswith("https://s3.console.aws.amazon.com/s3/object/reports-bucket?") for link in links)
    assert html.lower().count("http") == len(links)
    assert not re.search(r"<(?!a )[a-z][^>]*\s(src|href|xlink:href)\s*=", html, re.IGNORECASE)
    assert not re.search(r"url\(|@import|<script|<link|<iframe|<img|<object|<embed", html, re.IGNORECASE)
    assert html.count("<svg") >= 5
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x" in html
    assert world.store.content_types[f"{PREFIX}{DIGEST_HTML}"] == "text/html; charset=utf-8"


def test_the_previous_weeks_digest_json_is_the_comparison(world: DigestWorld) -> None:
    write_run(world, PREVIOUS_WEEK, scale=2)
    build_digest(PARTNER_ID, PREVIOUS_WEEK, world.deps, sources=world.sources)
    write_run(world, WEEK)

    outcome = build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)

    assert outcome.previous is not None
    assert outcome.previous.totals[Metric.PLAYS] == 652
    assert "compared with 2025-W01" in page(world)
    assert "-50.0%" in page(world)


def test_without_a_previous_digest_the_previous_run_is_read(world: DigestWorld) -> None:
    write_run(world, PREVIOUS_WEEK, scale=2)
    write_run(world, WEEK)

    outcome = build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)

    assert outcome.previous is not None
    assert outcome.previous.totals[Metric.PLAYS] == 652
    assert f"{weekly_prefix(PARTNER_ID, PREVIOUS_WEEK)}{DIGEST_JSON}" not in world.store.objects


def test_without_a_previous_run_nothing_is_compared(world: DigestWorld) -> None:
    world = make_world(PLAYS_DOWN_30)
    write_run(world, WEEK)

    outcome = build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)

    assert outcome.previous is None
    assert outcome.findings == ()
    assert "no data for 2025-W01" in page(world)


def test_a_week_over_week_alert_fires_once_per_run() -> None:
    world = make_world(PLAYS_DOWN_30)
    write_run(world, PREVIOUS_WEEK, scale=2)
    write_run(world, WEEK)

    first = build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    redelivered = build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)

    published = world.alerts.published
    changes = [json.loads(a.message) for a in published if a.attributes["alert"]["StringValue"] == "weekly_change"]
    assert (first.alerts_published, redelivered.alerts_published) == (1, 0)
    assert len(changes) == 1
    assert changes[0]["details"]["change_percent"] == -50.0
    assert changes[0]["links"] == [f"s3://reports-bucket/{PREFIX}{DIGEST_HTML}"]
    assert "Week-over-week alerts" in page(world)


def test_the_summary_links_the_page_once_per_run_and_names_no_entry(world: DigestWorld) -> None:
    write_run(world, WEEK)

    first = build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    again = build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)

    summaries = [a for a in world.alerts.published if a.attributes["alert"]["StringValue"] == "weekly_digest"]
    assert (first.summary_published, again.summary_published) == (True, False)
    assert len(summaries) == 1
    message = json.loads(summaries[0].message)
    assert message["severity"] == "info"
    assert message["links"][0] == f"s3://reports-bucket/{PREFIX}{DIGEST_HTML}"
    assert message["details"]["totals"]["plays"] == 326
    assert "Quarterly" not in summaries[0].message


def test_a_run_without_a_manifest_is_not_complete(world: DigestWorld) -> None:
    with pytest.raises(RunNotCompleteError):
        build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)

    assert world.alerts.published == []


def test_reports_missing_from_the_run_are_not_applicable(world: DigestWorld) -> None:
    write_run(world, WEEK, reports=["platforms", "room_data"])

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    totals = digest_json(world)["totals"]

    assert totals["plays"] is None
    assert totals["unique_viewers"] is None
    assert totals["room_sessions"] == 3
    assert "plays" not in digest_json(world)["daily"]


def test_without_kaltura_graphs_the_digest_is_built_without_daily_plays(world: DigestWorld) -> None:
    write_run(world, WEEK)
    world.kaltura.reports.fail = True

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)

    assert "plays" not in digest_json(world)["daily"]
    assert digest_json(world)["totals"]["plays"] == 326


def test_the_graph_asks_for_the_content_report_over_the_week_in_the_partners_zone(world: DigestWorld) -> None:
    write_run(world, WEEK)

    build_digest(PARTNER_ID, WEEK, world.deps, sources=world.sources)
    report_type, report_filter = world.kaltura.reports.calls[0]

    window = WeekWindow.of(WEEK, "Europe/Berlin")
    assert report_type == 1
    assert (report_filter.from_date, report_filter.to_date) == (window.start.timestamp(), window.end.timestamp())
    assert report_filter.time_zone_offset == -60  # CET: an hour east of UTC


def test_csv_rows_streams_split_lines_quotes_and_multibyte_characters() -> None:
    body = 'name,count\r\n"Caf\u00e9, ""Paris""\nline two",3\r\nplain,4\r\n'.encode()
    chunks = [body[i : i + 3] for i in range(0, len(body), 3)]

    assert list(csv_rows(chunks)) == [
        {"name": 'Caf\u00e9, "Paris"\nline two', "count": "3"},
        {"name": "plain", "count": "4"},
    ]
